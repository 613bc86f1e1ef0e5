from __future__ import annotations

import pytest

from bot.types import LatencyClass
from routing.directives import apply_directive, is_model_directive, parse_model_directive
from tests.routing._util import CHITCHAT, LONG_DOC, caps, conv, keyed, make_cfg, make_router, msg


@pytest.mark.parametrize(
    "text, expected",
    [
        ("/model pro", "pro"),
        ("  /model   cerebras/qwen-3-32b  ", "cerebras/qwen-3-32b"),
        ("/MODEL Flash", "Flash"),
        ("/model@SwitchboardBot sonnet", "sonnet"),
        ("/model default", "default"),
        ("/model DEFAULT", "default"),
        ("/model auto", "default"),
        ("/model reset", "default"),
        ("/model", None),
        ("/model@Bot", None),
        ("/models pro", None),
        ("please /model pro", None),
        ("/model pro extra words", None),
        ("hello", None),
        ("", None),
    ],
)
def test_parse_model_directive(text: str, expected: str | None) -> None:
    assert parse_model_directive(text) == expected


def test_is_model_directive_includes_bare_form() -> None:
    assert is_model_directive("/model")
    assert is_model_directive("/model pro")
    assert not is_model_directive("what model are you?")


def test_apply_directive_sets_keeps_and_clears() -> None:
    state = apply_directive(None, "/model pro")
    assert state == "pro"
    state = apply_directive(state, "an ordinary message")
    assert state == "pro"
    state = apply_directive(state, "/model")  # asking, not changing
    assert state == "pro"
    assert apply_directive(state, "/model default") is None


def test_sticky_model_is_used_for_every_message_until_default() -> None:
    router = make_router(keyed())
    sticky = apply_directive(None, "/model pro")
    for text in (CHITCHAT, "explain quantum tunnelling", "ok thanks"):
        d = router.decide(msg(text), caps(LatencyClass.SYNC), conv(sticky_model=sticky))
        assert d.model == "gemini/gemini-2.5-pro"
        assert "/model pro" in d.reason and "sticky" in d.reason
    sticky = apply_directive(sticky, "/model default")
    d = router.decide(msg(CHITCHAT), caps(LatencyClass.SYNC), conv(sticky_model=sticky))
    assert d.model == "cerebras/llama3.1-8b"
    assert "/model" not in d.reason


def test_sticky_by_full_ref_and_fallbacks_follow() -> None:
    router = make_router(keyed())
    d = router.decide(msg(CHITCHAT), caps("async"), conv(sticky_model="cerebras/zai-glm-4.7"))
    assert d.chain[0] == "cerebras/zai-glm-4.7"
    assert len(d.chain) > 1 and d.chain[-1] == "local/smollm2-135m"


def test_sticky_unknown_model_is_ignored_with_a_reason() -> None:
    router = make_router(keyed())
    d = router.decide(msg(CHITCHAT), caps("sync"), conv(sticky_model="gpt-9000"))
    assert d.model == "cerebras/llama3.1-8b"
    assert "/model gpt-9000 is not in the catalog" in d.reason


def test_sticky_model_without_key_is_ignored_with_a_reason() -> None:
    cfg = make_cfg({"providers": {"cerebras": {"kind": "openai", "api_key": "k"}}})
    router = make_router(cfg)
    d = router.decide(msg(CHITCHAT), caps("sync"), conv(sticky_model="sonnet"))
    assert d.model.startswith("cerebras/")
    assert "anthropic" in d.reason and "ignored" in d.reason


def test_sticky_model_too_small_for_the_prompt_is_passed_over() -> None:
    router = make_router(keyed())
    d = router.decide(msg(LONG_DOC), caps("sync"), conv(sticky_model="fast"))
    assert d.model == "gemini/gemini-2.5-flash"
    assert "/model fast holds 128k tokens" in d.reason
