"""How hard is this message? A score in [0, 1], a tier, and the reasons, fast.

Two scorers, one result type:

- `HeuristicScorer`: surface signals — length, code, math, reasoning verbs, several questions or
  list items, conversation depth, and chit-chat (which pulls the score down). Each signal adds
  points; the score is 1 - exp(-points). Only the first `SCAN_CHARS` characters are scanned, so a
  300k-token document costs the same as a paragraph (its length still counts). p99 well under
  0.2 ms here (bench/router_latency.py).
- `EmbeddingScorer`: semantic-router style. Example utterances per tier (config
  `routing.examples`, else `routing.examples.DEFAULT_EXAMPLES`) are encoded once at load; a
  message is encoded (its first 24 tokens), compared with every example, and the tiers' top-3
  mean similarities go through a softmax; score = P(standard)*0.5 + P(complex)*1.0.
- `CombinedScorer`: (1 - w) * heuristic + w * embedding, w = `routing.embedding_weight`.

`tier_for(score, thresholds)` maps a score to "simple" / "standard" / "complex".
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

TIERS = ("simple", "standard", "complex")
TIER_VALUE = {"simple": 0.0, "standard": 0.5, "complex": 1.0}
SCAN_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Complexity:
    score: float  # in [0, 1]
    signals: tuple[tuple[str, float], ...] = ()  # (what was seen, points or similarity)
    method: str = "heuristic"
    note: str | None = None  # a ready explanation (the embedding path)
    parts: tuple[Complexity, ...] = ()  # the combined path's components

    def explain(self, limit: int = 4) -> str:
        if self.parts:
            return "; ".join(f"{p.method} {p.score:.2f}: {p.explain(3)}" for p in self.parts)
        if self.note is not None:
            return self.note
        if not self.signals:
            return "no signal of complexity"
        shown = sorted(self.signals, key=lambda s: -abs(s[1]))[:limit]
        return ", ".join(f"{name} {pts:+.2f}" for name, pts in shown)


class Scorer(Protocol):
    name: str

    def score(self, text: str, turns: int = 0) -> Complexity: ...


def tier_for(score: float, thresholds: dict[str, float]) -> str:
    if score >= thresholds.get("complex", 0.65):
        return "complex"
    if score >= thresholds.get("standard", 0.35):
        return "standard"
    return "simple"


# --- heuristic ----------------------------------------------------------------------------------


def _bset(words: list[str] | str) -> frozenset[bytes]:
    return frozenset(w.encode() for w in (words.split() if isinstance(words, str) else words))


# bytes.translate + split is ~10x faster than a word regex: punctuation (except a few characters
# that belong to words like c++, c#, don't, trade-off) becomes a space
_KEEP = set(b"abcdefghijklmnopqrstuvwxyz0123456789+#'_-")
_PUNCT_TO_SPACE = bytes(c if (c in _KEEP or c >= 128) else 32 for c in range(256))
_FENCE = "```"
_CODE_LINE_STARTS = tuple(
    "\n" + k
    for k in (
        "def ",
        "class ",
        "import ",
        "from ",
        "#include",
        "function ",
        "const ",
        "let ",
        "var ",
        "public ",
        "fn ",
        "func ",
        "return ",
        "    ",
        "\t",
        "SELECT ",
        "select ",
        "<div",
        "$ ",
    )
)
_CODE_TOKENS = ("{", "}", ";", "=>", "::", "`", "();", "!=", "==")
_ARITH = re.compile(r"[0-9] ?[-+*/^=<>] ?\(?[0-9]")
_LIST_MARKS = tuple("\n" + m for m in ("1.", "2.", "3.", "4.", "1)", "2)", "3)", "- ", "* ", "\u2022"))
_MATH_CHARS = tuple("∑∫√≤≥≠∞πθλ∂")
_MATH_TEX = ("\\frac", "\\int", "\\sum", "\\sqrt", "\\lim", "\\begin{")

CODE_WORDS = _bset(
    [
        "code",
        "function",
        "method",
        "class",
        "bug",
        "error",
        "exception",
        "traceback",
        "stacktrace",
        "compile",
        "compiler",
        "compiles",
        "regex",
        "python",
        "javascript",
        "typescript",
        "rust",
        "golang",
        "java",
        "c++",
        "sql",
        "api",
        "endpoint",
        "script",
        "algorithm",
        "refactor",
        "debug",
        "async",
        "thread",
        "threads",
        "deadlock",
        "segfault",
        "docker",
        "kubernetes",
        "json",
        "yaml",
        "html",
        "css",
        "bash",
        "linux",
        "git",
        "database",
        "query",
        "schema",
    ]
)
CODE_PHRASES = ("stack trace", "unit test", "memory leak", "race condition", "time complexity")
MATH_WORDS = _bset(
    [
        "integral",
        "derivative",
        "differentiate",
        "prove",
        "proof",
        "theorem",
        "lemma",
        "equation",
        "equations",
        "inequality",
        "probability",
        "variance",
        "matrix",
        "eigenvalue",
        "eigenvalues",
        "eigenvector",
        "polynomial",
        "logarithm",
        "modulo",
        "prime",
        "primes",
        "permutation",
        "permutations",
        "combinatorics",
        "optimization",
        "optimisation",
        "calculus",
        "statistics",
        "regression",
    ]
)
REASONING_WORDS = _bset(
    [
        "analyze",
        "analyse",
        "analysis",
        "compare",
        "contrast",
        "evaluate",
        "assess",
        "derive",
        "design",
        "architect",
        "architecture",
        "tradeoff",
        "tradeoffs",
        "trade-off",
        "trade-offs",
        "optimize",
        "optimise",
        "critique",
        "justify",
        "implication",
        "implications",
        "strategy",
        "strategies",
        "plan",
        "debug",
        "refactor",
        "implement",
        "investigate",
        "diagnose",
        "recommend",
        "recommendation",
        "recommendations",
        "estimate",
        "summarize",
        "summarise",
        "synthesize",
        "synthesise",
        "calculate",
        "solve",
        "migrate",
        "migration",
        "scalability",
        "detailed",
        "thorough",
        "thoroughly",
        "comprehensive",
        "rigorous",
        "explain",
    ]
)
REASONING_PHRASES = (
    "explain why",
    "why does",
    "why do ",
    "how does",
    "how would",
    "step by step",
    "step-by-step",
    "pros and cons",
    "in depth",
    "in-depth",
    "in detail",
    "what would happen",
    "walk me through",
    "reason about",
)
CODE_TASK_VERBS = _bset(
    ["write", "implement", "build", "create", "fix", "generate", "port", "convert", "optimize", "optimise"]
)
SEQUENCE_WORDS = _bset(["first", "firstly", "second", "secondly", "then", "finally", "additionally", "also"])
CHITCHAT_FIRST = _bset(
    [
        "hi",
        "hello",
        "hey",
        "howdy",
        "yo",
        "sup",
        "thanks",
        "thank",
        "thx",
        "ty",
        "ok",
        "okay",
        "cool",
        "nice",
        "great",
        "lol",
        "haha",
        "bye",
        "cheers",
        "yes",
        "no",
        "yep",
        "nope",
        "sure",
        "gm",
        "gn",
        "good",
        "morning",
        "evening",
        "night",
    ]
)


class HeuristicScorer:
    """Surface signals -> points -> score = 1 - exp(-points). Weights are plain attributes."""

    name = "heuristic"

    def __init__(
        self,
        *,
        w_length: float = 0.45,
        w_fence: float = 0.55,
        w_code_syntax: float = 0.30,
        w_code_words: float = 0.12,
        w_code_task: float = 0.20,
        w_math: float = 0.25,
        w_arith: float = 0.10,
        w_reasoning: float = 0.22,
        w_questions: float = 0.15,
        w_list: float = 0.10,
        w_depth: float = 0.06,
        w_chitchat: float = -0.6,
    ) -> None:
        self.w = dict(
            length=w_length,
            fence=w_fence,
            code_syntax=w_code_syntax,
            code_words=w_code_words,
            code_task=w_code_task,
            math=w_math,
            arith=w_arith,
            reasoning=w_reasoning,
            questions=w_questions,
            list=w_list,
            depth=w_depth,
            chitchat=w_chitchat,
        )

    def score(self, text: str, turns: int = 0) -> Complexity:
        w = self.w
        n = len(text)
        head = text if n <= SCAN_CHARS else text[:SCAN_CHARS]
        low = head.lower()
        words = low.encode("utf-8", "ignore").translate(_PUNCT_TO_SPACE).split()
        wset = set(words)
        signals: list[tuple[str, float]] = []

        # length: 0 at <= 60 chars, w_length at ~2,000 chars, capped at 1.5x beyond
        if n > 60:
            signals.append(
                (
                    f"{n} chars" if n < 10_000 else f"{n // 1000}k chars",
                    w["length"] * min(math.log(n / 60) / _LOG_2000_60, 1.5),
                )
            )
        fences = head.count(_FENCE)
        if fences:
            signals.append(("code block", w["fence"] * (2 if fences >= 4 else 1)))
        else:
            syntax = sum(1 for k in _CODE_LINE_STARTS if k in head) + sum(1 for k in _CODE_TOKENS if k in head)
            if syntax >= 2:
                signals.append(("code syntax", w["code_syntax"] * min(syntax - 1, 3) / 1.5))
        code = wset & CODE_WORDS
        if "\n" in head or " " in low:
            code.update(p.encode() for p in CODE_PHRASES if p in low)
        if code and not wset.isdisjoint(CODE_TASK_VERBS):
            signals.append(("code task", w["code_task"]))
        if code:
            signals.append((f"code terms ({_names(code)})", w["code_words"] * min(len(code), 3)))
        maths = wset & MATH_WORDS
        if (not head.isascii() and any(c in head for c in _MATH_CHARS)) or (
            "\\" in head and any(t in head for t in _MATH_TEX)
        ):
            maths = maths | {b"notation"}
        if maths:
            signals.append((f"math ({_names(maths)})", w["math"] * min(len(maths), 3)))
        arith = len(_ARITH.findall(head))
        if arith:
            signals.append(("arithmetic", w["arith"] * min(arith, 3)))
        verbs = wset & REASONING_WORDS
        verbs.update(p.strip().encode() for p in REASONING_PHRASES if p in low)
        if verbs:
            signals.append((f"reasoning ({_names(verbs)})", w["reasoning"] * min(len(verbs), 4)))
        q = head.count("?")
        if q >= 2:
            signals.append((f"{q} questions", w["questions"] * min(q - 1, 3)))
        items = sum(("\n" + head).count(m) for m in _LIST_MARKS) if "\n" in head else 0
        seq = len(wset & SEQUENCE_WORDS)
        if items >= 2 or seq >= 2:
            parts = max(items, seq)
            signals.append((f"{parts} parts", w["list"] * min(parts, 5)))
        if turns >= 4:
            signals.append((f"turn {turns}", w["depth"] * min(math.log2(turns / 2), 3)))
        if n <= 80 and words and words[0] in CHITCHAT_FIRST and len(words) <= 8 and len(signals) <= 1:
            signals.append(("chit-chat", w["chitchat"]))

        points = sum(p for _, p in signals)
        score = 1.0 - math.exp(-points) if points > 0 else 0.0
        return Complexity(round(score, 4), tuple(signals), "heuristic")


_LOG_2000_60 = math.log(2000 / 60)


def _names(found: set[bytes], limit: int = 3) -> str:
    return ", ".join(sorted(x.decode() for x in found)[:limit])


# --- embedding ----------------------------------------------------------------------------------


class EmbeddingScorer:
    """Nearest tier examples in a sentence-embedding space (semantic-router style)."""

    name = "embedding"

    def __init__(
        self,
        examples: Mapping[str, Sequence[str]],
        encoder: object | None = None,
        top_k: int = 3,
        temperature: float = 0.04,
    ) -> None:
        import numpy as np

        from routing import embedding

        self._np = np
        self.encoder = encoder if encoder is not None else embedding.shared_encoder()
        self.top_k = top_k
        self.temperature = temperature
        self.tiers = [t for t in TIERS if examples.get(t)]
        if len(self.tiers) < 2:
            raise ValueError("the embedding scorer needs examples for at least two tiers")
        self.examples = {t: list(examples[t]) for t in self.tiers}
        # encoded once, at load
        # the encoder module is imported lazily (onnxruntime is optional), so it is typed loosely
        self.matrices = {t: self.encoder.encode_many(self.examples[t]) for t in self.tiers}  # type: ignore[attr-defined]
        self.values = np.array([TIER_VALUE[t] for t in self.tiers], dtype=np.float32)

    def score(self, text: str, turns: int = 0) -> Complexity:
        return self.score_vector(self.encoder.encode(text))  # type: ignore[attr-defined]  # lazily imported encoder

    def score_vector(self, v: object) -> Complexity:
        """Score an already-encoded message (the quality benchmark encodes each prompt once)."""
        np = self._np
        sims = []
        best: list[tuple[str, float]] = []
        for t in self.tiers:
            s = self.matrices[t] @ v
            k = min(self.top_k, len(s))
            top = np.partition(s, len(s) - k)[-k:]
            sims.append(float(top.mean()))
            best.append((f'{t} ~ "{_short(self.examples[t][int(s.argmax())])}"', float(s.max())))
        z = np.array(sims, dtype=np.float64) / self.temperature
        p = np.exp(z - z.max())
        p /= p.sum()
        score = float(p @ self.values)
        signals = tuple((f"{t} sim", round(sim, 3)) for t, sim in zip(self.tiers, sims, strict=False))
        nearest = max(best, key=lambda b: b[1])
        note = f"nearest {nearest[0]} ({nearest[1]:.2f}); " + " / ".join(
            f"{t} {pt:.2f}" for t, pt in zip(self.tiers, p, strict=False)
        )
        signals += ((f"nearest {nearest[0]}", round(nearest[1], 3)),)
        return Complexity(round(score, 4), signals, "embedding", note=note)


def _short(s: str, n: int = 40) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


class CombinedScorer:
    name = "combined"

    def __init__(self, heuristic: HeuristicScorer, embedding: EmbeddingScorer, weight: float = 0.5) -> None:
        self.heuristic = heuristic
        self.embedding = embedding
        self.weight = weight

    def score(self, text: str, turns: int = 0) -> Complexity:
        h = self.heuristic.score(text, turns)
        e = self.embedding.score(text, turns)
        s = (1 - self.weight) * h.score + self.weight * e.score
        signals = (("heuristic", h.score),) + h.signals + (("embedding", e.score),) + e.signals
        return Complexity(round(s, 4), signals, "combined", parts=(h, e))
