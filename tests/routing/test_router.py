from __future__ import annotations

import pytest

from bot.config import LOCAL_DEFAULT_MODEL
from bot.types import LatencyClass
from routing.catalog import Catalog
from routing.complexity import Complexity
from routing.router import DEFAULT_TABLE, Router
from tests.routing._util import (
    ALL_KEYS,
    ANALYSIS,
    CHITCHAT,
    CODING,
    LONG_DOC,
    caps,
    conv,
    keyed,
    make_cfg,
    make_router,
    msg,
)


class FixedScorer:
    """Returns a given score: tests the table and thresholds apart from the heuristics."""

    name = "fixed"

    def __init__(self, score: float) -> None:
        self.value = score

    def score(self, text: str, turns: int = 0) -> Complexity:
        return Complexity(self.value, (("fixed", self.value),), "fixed")


def router_with(cfg, score: float) -> Router:
    return Router(cfg, Catalog.from_config(cfg), scorer=FixedScorer(score))


TIER_SCORE = {"simple": 0.1, "standard": 0.5, "complex": 0.9}


# --- the table, per latency class -------------------------------------------------------------


@pytest.mark.parametrize("lc", [c.value for c in LatencyClass])
@pytest.mark.parametrize("tier", ["simple", "standard", "complex"])
def test_table_cell_primary_and_fallbacks(lc: str, tier: str) -> None:
    router = router_with(keyed(), TIER_SCORE[tier])
    d = router.decide(msg("x"), caps(lc), conv())
    cell = DEFAULT_TABLE[lc][tier]
    assert d.tier == tier
    assert d.latency_class == LatencyClass(lc)
    assert d.model == cell[0]
    assert list(d.chain[: min(len(cell), 3)]) == cell[:3]
    assert d.chain[-1] == LOCAL_DEFAULT_MODEL
    assert len(d.chain) <= 4
    assert f"table {lc}.{tier}" in d.reason


def test_research_stack_shape() -> None:
    r = router_with(keyed(), 0.1)
    assert r.decide(msg("x"), caps("sync"), conv()).model in ("cerebras/llama3.1-8b", "cerebras/gpt-oss-120b")
    r = router_with(keyed(), 0.5)
    for lc in ("sync", "semi_sync", "async"):
        assert r.decide(msg("x"), caps(lc), conv()).model == "cerebras/llama-3.3-70b"
    r = router_with(keyed(), 0.9)
    assert r.decide(msg("x"), caps("sync"), conv()).model == "cerebras/qwen-3-32b"
    assert r.decide(msg("x"), caps("async"), conv()).model == "cerebras/qwen-3-235b"


def test_config_overrides_one_cell_and_keeps_the_rest() -> None:
    cfg = keyed(
        classes={"sync": {"simple": "cerebras/gpt-oss-120b"}, "async": {"complex": ["gemini/gemini-2.5-pro", "sonnet"]}}
    )
    r = router_with(cfg, 0.1)
    assert r.decide(msg("x"), caps("sync"), conv()).model == "cerebras/gpt-oss-120b"
    assert r.decide(msg("x"), caps("async"), conv()).model == DEFAULT_TABLE["async"]["simple"][0]
    d = router_with(cfg, 0.9).decide(msg("x"), caps("async"), conv())
    assert d.chain[:2] == ("gemini/gemini-2.5-pro", "anthropic/claude-sonnet-5-5")


def test_use_table_false_means_default_then_fallbacks() -> None:
    cfg = keyed(use_table=False, default="flash", fallbacks=["cerebras/gpt-oss-120b"])
    d = router_with(cfg, 0.9).decide(msg("x"), caps("sync"), conv())
    assert d.chain[:2] == ("gemini/gemini-2.5-flash", "cerebras/gpt-oss-120b")


# --- availability ---------------------------------------------------------------------------------


def test_no_keys_everything_goes_to_the_local_model() -> None:
    cfg = make_cfg()
    for score in (0.0, 0.5, 0.95):
        r = router_with(cfg, score)
        for lc in LatencyClass:
            d = r.decide(msg("anything"), caps(lc), conv())
            assert d.chain == (LOCAL_DEFAULT_MODEL,)
            assert "no hosted model available" in d.reason


def test_provider_configured_but_key_env_unset_is_unavailable() -> None:
    data = {"providers": {"cerebras": {"kind": "openai", "api_key": "${CEREBRAS_API_KEY}"}}}
    cfg = make_cfg(data, env={})
    r = router_with(cfg, 0.5)
    d = r.decide(msg("x"), caps("sync"), conv())
    assert d.chain == (LOCAL_DEFAULT_MODEL,)
    cfg = make_cfg(data, env={"CEREBRAS_API_KEY": "sk-1"})
    assert router_with(cfg, 0.5).decide(msg("x"), caps("sync"), conv()).model == "cerebras/llama-3.3-70b"


@pytest.mark.parametrize("score", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("lc", [c.value for c in LatencyClass])
def test_model_without_key_is_never_chosen(score: float, lc: str) -> None:
    cfg = make_cfg({"providers": {"gemini": {"kind": "gemini", "api_key": "k"}}})  # no cerebras, no anthropic
    r = router_with(cfg, score)
    for text in ("x", LONG_DOC):
        d = r.decide(msg(text), caps(lc), conv())
        assert all(ref.split("/")[0] in ("gemini", "local") for ref in d.chain), d.chain
        assert d.model.startswith("gemini/")


def test_is_available_and_why() -> None:
    cfg = make_cfg({"providers": {"gemini": {"kind": "gemini", "api_key": ""}}})
    r = make_router(cfg)
    flash = r.catalog.resolve("flash")
    assert not r.is_available(flash)
    assert "no API key" in r.why_unavailable(flash)
    assert "not configured" in r.why_unavailable(r.catalog.resolve("fast"))
    assert r.is_available(r.catalog.resolve("local"))


def test_skipped_cell_models_are_named_in_the_reason() -> None:
    cfg = make_cfg({"providers": {"gemini": {"kind": "gemini", "api_key": "k"}}})
    d = router_with(cfg, 0.5).decide(msg("x"), caps("sync"), conv())
    assert d.model == "gemini/gemini-2.5-flash"
    assert "not configured" in d.reason


# --- the context constraint -----------------------------------------------------------------------


@pytest.mark.parametrize("lc", [c.value for c in LatencyClass])
def test_long_document_goes_to_a_model_that_holds_it(lc: str, all_keys_router: Router) -> None:
    d = all_keys_router.decide(msg(LONG_DOC), caps(lc), conv())
    assert d.model == "gemini/gemini-2.5-flash"
    assert d.prompt_tokens > 300_000
    assert "long prompt" in d.reason and "1M context" in d.reason
    cat = all_keys_router.catalog
    for ref in d.chain[:-1]:
        assert cat.resolve(ref).context_window >= d.prompt_tokens


def test_history_counts_towards_the_prompt(all_keys_router: Router) -> None:
    small = all_keys_router.decide(msg("and now?"), caps("sync"), conv(history_chars=1000))
    big = all_keys_router.decide(msg("and now?"), caps("sync"), conv(history_chars=600_000))
    assert small.model.startswith("cerebras/")
    assert big.model == "gemini/gemini-2.5-flash"
    assert big.prompt_tokens >= 150_000


def test_just_below_and_above_a_context_window(all_keys_router: Router) -> None:
    # cerebras/llama-3.3-70b: 128k context; the router reserves bot.max_tokens (1024) for the reply
    fits = "a " * ((128_000 - 1024 - 200) * 2)
    too_long = "a " * ((128_000 + 500) * 2)
    assert all_keys_router.decide(msg(fits), caps("semi_sync"), conv()).chain[0] != "gemini/gemini-2.5-flash"
    assert all_keys_router.decide(msg(too_long), caps("semi_sync"), conv()).model == "gemini/gemini-2.5-flash"


def test_long_context_list_is_configurable() -> None:
    cfg = keyed(long_context=["anthropic/claude-sonnet-5-5"])
    d = make_router(cfg).decide(msg(LONG_DOC), caps("sync"), conv())
    assert d.model == "anthropic/claude-sonnet-5-5"


def test_no_key_for_any_long_model_falls_to_local_with_a_note() -> None:
    cfg = make_cfg({"providers": {"cerebras": ALL_KEYS["providers"]["cerebras"]}})
    d = make_router(cfg).decide(msg(LONG_DOC), caps("async"), conv())
    assert d.chain == (LOCAL_DEFAULT_MODEL,)
    assert "cut to fit" in d.reason


# --- thresholds and tiers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "score, tier",
    [(0.0, "simple"), (0.349, "simple"), (0.35, "standard"), (0.649, "standard"), (0.65, "complex"), (1.0, "complex")],
)
def test_default_thresholds(score: float, tier: str) -> None:
    assert router_with(keyed(), score).decide(msg("x"), caps("sync"), conv()).tier == tier


def test_configured_thresholds_move_the_tiers() -> None:
    cfg = keyed(thresholds={"standard": 0.1, "complex": 0.3})
    assert router_with(cfg, 0.05).decide(msg("x"), caps("sync"), conv()).tier == "simple"
    assert router_with(cfg, 0.2).decide(msg("x"), caps("sync"), conv()).tier == "standard"
    assert router_with(cfg, 0.31).decide(msg("x"), caps("sync"), conv()).tier == "complex"


# --- the reason, and the done-criteria messages ---------------------------------------------------


def test_reason_names_tier_score_signals_class_model_and_fallbacks(all_keys_router: Router) -> None:
    d = all_keys_router.decide(msg(ANALYSIS), caps("semi_sync"), conv())
    r = d.reason
    assert d.tier == "complex"
    assert r.startswith("complex (score ")
    assert ">= 0.65" in r
    assert "reasoning (" in r  # the signals that made it complex
    assert "semi_sync" in r
    assert f"-> {d.model}" in r
    assert "table semi_sync.complex" in r
    assert "then " + d.chain[1] in r


DONE_GRID = {
    # latency class: (chit-chat, coding question, multi-step analysis, 300k-token document)
    "sync": ("cerebras/llama3.1-8b", "cerebras/llama-3.3-70b", "cerebras/qwen-3-32b", "gemini/gemini-2.5-flash"),
    "semi_sync": (
        "cerebras/llama-3.3-70b",
        "cerebras/llama-3.3-70b",
        "cerebras/qwen-3-235b",
        "gemini/gemini-2.5-flash",
    ),
    "async": ("cerebras/llama-3.3-70b", "cerebras/llama-3.3-70b", "cerebras/qwen-3-235b", "gemini/gemini-2.5-flash"),
    "batch": ("cerebras/llama-3.3-70b", "cerebras/gpt-oss-120b", "cerebras/qwen-3-235b", "gemini/gemini-2.5-flash"),
}


@pytest.mark.parametrize("lc", list(DONE_GRID))
def test_done_criteria_messages_on_each_channel_class(lc: str, all_keys_router: Router) -> None:
    texts = (CHITCHAT, CODING, ANALYSIS, LONG_DOC)
    tiers = ("simple", "standard", "complex", None)
    for text, tier, model in zip(texts, tiers, DONE_GRID[lc], strict=False):
        d = all_keys_router.decide(msg(text), caps(lc), conv())
        assert d.model == model, d.reason
        if tier:
            assert d.tier == tier, d.reason
        assert d.reason.startswith(d.tier) and f"-> {d.model}" in d.reason


def test_decision_params_raise_reasoning_only_where_the_channel_can_wait() -> None:
    cfg = keyed(classes={"sync": {"complex": "oss"}, "async": {"complex": "oss"}})
    assert router_with(cfg, 0.9).decide(msg("x"), caps("sync"), conv()).params["reasoning_effort"] == "low"
    assert router_with(cfg, 0.9).decide(msg("x"), caps("async"), conv()).params["reasoning_effort"] == "medium"


def test_max_chain() -> None:
    d = router_with(keyed(max_chain=2), 0.9).decide(msg("x"), caps("async"), conv())
    assert len(d.chain) == 2 and d.chain[-1] == LOCAL_DEFAULT_MODEL


def test_as_dict_round_trips_the_decision(all_keys_router: Router) -> None:
    d = all_keys_router.decide(msg(CODING), caps("sync"), conv())
    out = d.as_dict()
    assert out["model"] == d.model and out["chain"] == list(d.chain) and out["latency_class"] == "sync"


def test_outside_the_table_models_that_start_in_time_come_first() -> None:
    # sonnet (~700 ms) is listed before flash (~400 ms) in the fallbacks; on a sync channel
    # (500 ms) flash goes first, on an async one (3 s) the configured order stands
    cfg = keyed(use_table=False, fallbacks=["sonnet", "flash"], max_chain=10)
    sync = router_with(cfg, 0.5).decide(msg("x"), caps("sync"), conv())
    assert sync.chain.index("gemini/gemini-2.5-flash") < sync.chain.index("anthropic/claude-sonnet-5-5")
    slow = router_with(cfg, 0.5).decide(msg("x"), caps("async"), conv())
    assert slow.chain[:2] == ("anthropic/claude-sonnet-5-5", "gemini/gemini-2.5-flash")


def test_a_slow_primary_is_flagged_in_the_reason() -> None:
    cfg = keyed(classes={"sync": {"complex": "pro"}})
    d = router_with(cfg, 0.9).decide(msg("x"), caps("sync"), conv())
    assert d.model == "gemini/gemini-2.5-pro"
    assert "expected TTFT ~1500 ms > sync target 500 ms" in d.reason


def test_problems_name_unknown_models_in_the_routing_config() -> None:
    cfg = keyed(default="gpt-9", classes={"sync": {"simple": ["fast", "nope"]}, "warp": {"simple": "fast"}})
    problems = make_router(cfg).problems()
    assert "routing.default: unknown model 'gpt-9'" in problems
    assert "routing.classes.sync.simple: unknown model 'nope'" in problems
    assert any("routing.classes.warp" in p for p in problems)
    assert make_router(keyed()).problems() == []


def test_an_unavailable_first_choice_is_named() -> None:
    cfg = make_cfg(
        {
            "providers": {"cerebras": ALL_KEYS["providers"]["cerebras"]},
            "routing": {"classes": {"sync": {"simple": ["sonnet", "oss"]}}},
        }
    )
    d = router_with(cfg, 0.1).decide(msg("x"), caps("sync"), conv())
    assert d.model == "cerebras/gpt-oss-120b"
    assert "table sync.simple" in d.reason
    assert "first choice skipped (anthropic/claude-sonnet-5-5: provider 'anthropic' not configured)" in d.reason
