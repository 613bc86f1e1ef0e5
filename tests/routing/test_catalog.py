from __future__ import annotations

import pytest

from bot.config import LOCAL_DEFAULT_MODEL
from routing.catalog import BUILTIN, PRICES_CHECKED, Catalog, UnknownModel
from tests.routing._util import make_cfg

REQUIRED = [
    "cerebras/llama-3.3-70b",
    "cerebras/llama3.1-8b",
    "cerebras/gpt-oss-120b",
    "cerebras/qwen-3-32b",
    "cerebras/qwen-3-235b",
    "cerebras/zai-glm-4.7",
    "gemini/gemini-2.5-flash",
    "gemini/gemini-2.5-pro",
    "gemini/gemini-2.0-flash",
    "anthropic/claude-sonnet-5-5",
    LOCAL_DEFAULT_MODEL,
]


def test_builtin_catalog_loads_with_every_required_model() -> None:
    cat = Catalog.from_config(make_cfg())
    refs = {m.ref for m in cat}
    assert set(REQUIRED) <= refs
    assert len(cat) == len(BUILTIN)
    assert PRICES_CHECKED.startswith("2026-")


@pytest.mark.parametrize("ref", REQUIRED)
def test_entries_are_complete(ref: str) -> None:
    m = Catalog.from_config(make_cfg()).resolve(ref)
    assert m.provider == ref.split("/")[0]
    assert m.id
    assert m.context_window >= 8192
    assert m.max_output and m.max_output > 0
    assert m.ttft_ms and m.tokens_per_s
    assert m.reasoning
    if m.provider != "local":
        assert m.price_input > 0 and m.price_output > 0 and m.price_cached_input is not None


def test_known_ids_and_windows() -> None:
    cat = Catalog.from_config(make_cfg())
    assert cat.resolve("cerebras/qwen-3-235b").id == "qwen-3-235b-a22b-instruct-2507"
    assert cat.resolve("flash").context_window == 1_048_576
    assert cat.resolve("oss").params == {"reasoning_effort": "low"}


def test_aliases_resolve_case_insensitively() -> None:
    cat = Catalog.from_config(make_cfg())
    assert cat.resolve("fast").ref == "cerebras/llama-3.3-70b"
    assert cat.resolve("FLASH").ref == "gemini/gemini-2.5-flash"
    assert cat.resolve("local").ref == LOCAL_DEFAULT_MODEL
    assert "pro" in cat.aliases and cat.aliases_of("gemini/gemini-2.5-pro") == ["pro"]
    assert "sonnet" in cat and "nope" not in cat
    with pytest.raises(UnknownModel):
        cat.resolve("nope")
    assert cat.get("nope") is None


def test_cost() -> None:
    m = Catalog.from_config(make_cfg()).resolve("flash")
    # 1M uncached in, 1M out, plus 1M cached in
    assert m.cost(2_000_000, 1_000_000, cached_tokens=1_000_000) == pytest.approx(0.30 + 2.50 + 0.03)
    assert Catalog.from_config(make_cfg()).resolve("local").cost(10_000, 10_000) == 0


def test_config_overrides_a_builtin_entry_and_keeps_the_rest() -> None:
    cfg = make_cfg(
        {
            "models": {
                "cerebras/llama-3.3-70b": {
                    "context_window": 65_536,
                    "price": {"input": 0.6, "output": 0.6},
                    "alias": "everyday",
                    "params": {"temperature": 0.2},
                }
            }
        }
    )
    m = Catalog.from_config(cfg).resolve("everyday")
    assert m.ref == "cerebras/llama-3.3-70b"
    assert m.context_window == 65_536
    assert (m.price_input, m.price_output, m.price_cached_input) == (0.6, 0.6, None)
    assert m.max_output == 8192  # untouched
    assert {"fast", "everyday"} <= set(m.aliases)
    assert m.params == {"temperature": 0.2}


def test_config_adds_a_model_and_an_alias() -> None:
    cfg = make_cfg(
        {
            "providers": {"vllm": {"kind": "openai", "base_url": "http://127.0.0.1:8000/v1", "api_key": "x"}},
            "models": {
                "vllm/qwen2.5-7b": {"id": "Qwen/Qwen2.5-7B-Instruct", "context_window": 32768, "alias": ["q7", "home"]}
            },
            "routing": {"aliases": {"best": "anthropic/claude-sonnet-5-5", "fast": "vllm/qwen2.5-7b"}},
        }
    )
    cat = Catalog.from_config(cfg)
    m = cat.resolve("q7")
    assert (m.provider, m.id, m.context_window) == ("vllm", "Qwen/Qwen2.5-7B-Instruct", 32768)
    assert cat.resolve("home") is m
    assert cat.resolve("best").ref == "anthropic/claude-sonnet-5-5"
    assert cat.resolve("fast").ref == "vllm/qwen2.5-7b"  # routing.aliases win over built-in aliases
