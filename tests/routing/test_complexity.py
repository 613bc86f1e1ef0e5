from __future__ import annotations

import time

import pytest

from routing.complexity import SCAN_CHARS, HeuristicScorer, tier_for
from tests.routing._util import ANALYSIS, CHITCHAT, CODING, LONG_DOC

H = HeuristicScorer()
TH = {"standard": 0.35, "complex": 0.65}

CODE_BUG = """My Flask app crashes on start:
```
Traceback (most recent call last):
  File "app.py", line 12, in <module>
    db.init_app(app)
AttributeError: 'NoneType' object has no attribute 'init_app'
```
Why does this happen and how do I fix it?"""


@pytest.mark.parametrize(
    "text", ["hi", "thanks!", "ok cool", "good morning :)", CHITCHAT, "what's the capital of France?"]
)
def test_chitchat_and_short_facts_are_simple(text: str) -> None:
    c = H.score(text)
    assert tier_for(c.score, TH) == "simple", c


@pytest.mark.parametrize("text", [CODING, "explain how HTTPS works and why certificates matter, in detail"])
def test_everyday_tasks_are_standard(text: str) -> None:
    c = H.score(text)
    assert tier_for(c.score, TH) == "standard", c


@pytest.mark.parametrize("text", [ANALYSIS, CODE_BUG])
def test_multi_step_analysis_and_debugging_are_complex(text: str) -> None:
    c = H.score(text)
    assert tier_for(c.score, TH) == "complex", c


def test_score_is_in_unit_interval_and_monotone_in_signals() -> None:
    a = H.score("sort a list")
    b = H.score("write a python function to sort a list")
    c = H.score("write a python function to sort a list, analyze its time complexity and compare it to merge sort")
    for x in (a, b, c):
        assert 0.0 <= x.score <= 1.0
    assert a.score < b.score < c.score


def test_each_signal_is_named() -> None:
    text = (
        "1. Derive the variance of X + Y\n2. Then prove the bound ∑ x_i ≤ n\n"
        "```python\ndef f(x):\n    return x\n```\nWhat is 3 + 4? And why?"
    )
    names = " ".join(name for name, _ in H.score(text, turns=10).signals)
    for needle in ("chars", "code block", "math", "reasoning", "questions", "parts", "turn 10", "arithmetic"):
        assert needle in names, (needle, names)


def test_conversation_depth_raises_the_score() -> None:
    assert H.score("and the next step?", turns=20).score > H.score("and the next step?", turns=0).score


def test_explain_lists_the_strongest_signals() -> None:
    e = H.score(ANALYSIS).explain()
    assert e.startswith("reasoning (")
    assert H.score("").explain() == "no signal of complexity"


def test_long_document_scan_is_bounded() -> None:
    assert len(LONG_DOC) > 100 * SCAN_CHARS
    t = time.perf_counter()
    for _ in range(50):
        H.score(LONG_DOC)
    assert (time.perf_counter() - t) / 50 < 0.005  # generous; the benchmark holds the real budget


def test_weights_are_configurable() -> None:
    no_len = HeuristicScorer(w_length=0.0)
    assert no_len.score("x" * 5000).score == 0.0
    assert H.score("x" * 5000).score > 0.3
