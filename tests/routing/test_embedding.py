"""The embedding path: runs where the optional encoder is installed, is skipped elsewhere."""

from __future__ import annotations

import pytest

from bot.types import LatencyClass
from routing import embedding
from routing.complexity import CombinedScorer, EmbeddingScorer, HeuristicScorer, tier_for
from routing.examples import DEFAULT_EXAMPLES
from routing.router import Router, build_scorer
from tests.routing._util import ANALYSIS, CHITCHAT, caps, conv, keyed, msg

needs_encoder = pytest.mark.skipif(not embedding.available(), reason="optional encoder not installed")


class FakeEncoder:
    """Bag-of-letters vectors: deterministic, no model, enough to test the scorer's arithmetic."""

    def encode(self, text: str):
        import numpy as np

        v = np.zeros(26, dtype=np.float32)
        for ch in text.lower():
            if "a" <= ch <= "z":
                v[ord(ch) - 97] += 1
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode_many(self, texts):
        import numpy as np

        return np.stack([self.encode(t) for t in texts])


def test_embedding_scorer_arithmetic_with_a_fake_encoder() -> None:
    pytest.importorskip("numpy")
    s = EmbeddingScorer({"simple": ["aaaa", "aaab"], "complex": ["zzzz", "zzzy"]}, encoder=FakeEncoder())
    lo, hi = s.score("aaa"), s.score("zzz")
    assert lo.score < 0.1 < 0.9 < hi.score
    assert lo.method == "embedding"
    assert "nearest simple" in lo.explain(limit=5)


def test_embedding_scorer_needs_two_tiers() -> None:
    pytest.importorskip("numpy")
    with pytest.raises(ValueError):
        EmbeddingScorer({"simple": ["a"]}, encoder=FakeEncoder())


def test_combined_scorer_weights_both() -> None:
    pytest.importorskip("numpy")
    e = EmbeddingScorer({"simple": ["hi"], "complex": ["prove analyze derive"]}, encoder=FakeEncoder())
    c = CombinedScorer(HeuristicScorer(), e, weight=0.5).score(ANALYSIS)
    names = [n for n, _ in c.signals]
    assert "heuristic" in names and "embedding" in names


def test_missing_encoder_falls_back_to_heuristic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedding, "available", lambda: False)
    scorer, note = build_scorer(keyed(scorer="combined"))
    assert isinstance(scorer, HeuristicScorer)
    assert "not installed" in note
    cfg = keyed(scorer="embedding")
    r = Router(cfg, __import__("routing.catalog", fromlist=["Catalog"]).Catalog.from_config(cfg))
    d = r.decide(msg(CHITCHAT), caps("sync"), conv())
    assert "heuristic only" in d.reason


@needs_encoder
def test_real_encoder_vectors() -> None:
    import numpy as np

    enc = embedding.shared_encoder()
    v = enc.encode("hello there")
    assert v.shape == (embedding.DIMENSION,)
    assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-4
    a, b, c = (enc.encode(t) for t in ("how do I sort a list in python", "python: sorting a list", "I love pancakes"))
    assert float(a @ b) > float(a @ c)


@needs_encoder
def test_real_embedding_scorer_tiers() -> None:
    s = EmbeddingScorer(DEFAULT_EXAMPLES)
    th = {"standard": 0.35, "complex": 0.65}
    assert tier_for(s.score("hey! how are you doing?").score, th) == "simple"
    assert tier_for(s.score("design a sharded job queue and analyze its failure modes").score, th) == "complex"


@needs_encoder
def test_router_with_combined_scorer_explains_both_paths() -> None:
    cfg = keyed(scorer="combined", embedding_weight=0.5)
    from routing.catalog import Catalog

    r = Router(cfg, Catalog.from_config(cfg))
    d = r.decide(msg(ANALYSIS), caps(LatencyClass.ASYNC), conv())
    assert "combined" in d.reason and "heuristic" in d.reason and "embedding" in d.reason
    assert d.tier in ("standard", "complex")


async def test_adecide_inline_on_the_heuristic_path() -> None:
    from tests.routing._util import make_router

    r = make_router(keyed())
    assert not r.blocking
    d = await r.adecide(msg(CHITCHAT), caps("sync"), conv())
    assert d.model == "cerebras/llama3.1-8b"


async def test_adecide_in_a_thread_on_the_embedding_path() -> None:
    pytest.importorskip("numpy")
    from routing.catalog import Catalog

    cfg = keyed()
    e = EmbeddingScorer({"simple": ["hi"], "complex": ["prove analyze derive"]}, encoder=FakeEncoder())
    r = Router(cfg, Catalog.from_config(cfg), scorer=CombinedScorer(HeuristicScorer(), e))
    assert r.blocking
    d = await r.adecide(msg(ANALYSIS), caps("async"), conv())
    assert d.tier in ("standard", "complex")


@needs_encoder
def test_fast_copy_matches_the_packaged_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    texts = ["hello there", "derive the closed form of the Fibonacci sequence", "fix my SQL query"]
    plain = embedding.Encoder(fast=False)
    assert plain.model_path == plain.source_path
    fast = embedding.shared_encoder()
    for t in texts:
        assert float(np.dot(plain.encode(t), fast.encode(t))) > 0.95
    monkeypatch.setenv(embedding.FAST_ENV, "0")
    assert embedding.Encoder().model_path == plain.source_path


def test_fast_copy_failure_falls_back(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    bogus = tmp_path / "not-a-model.onnx"
    bogus.write_bytes(b"not onnx")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert embedding._fast_copy(bogus) is None
