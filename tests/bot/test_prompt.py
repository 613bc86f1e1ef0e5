"""Fitting prompts into a context window (bot/prompt.py), and conversations that never get stuck."""

from __future__ import annotations

from bot.prompt import CHARS_PER_TOKEN, estimate_tokens, fit_prompt
from bot.types import ChatTurn

SYSTEM = ChatTurn("system", "Be brief.")


def history(n: int, size: int = 3000) -> list[ChatTurn]:
    return [t for i in range(n) for t in (ChatTurn("user", f"q{i} " * 10), ChatTurn("assistant", "a" * size))]


def test_a_prompt_that_fits_is_untouched() -> None:
    msgs = [SYSTEM, *history(2, 100), ChatTurn("user", "hi")]
    fitted = fit_prompt(msgs, 8192, 1024)
    assert list(fitted.messages) == msgs and fitted.dropped_turns == 0 and not fitted.note


def test_oldest_turns_go_first_and_the_rest_fits() -> None:
    msgs = [SYSTEM, *history(30), ChatTurn("user", "hi")]
    fitted = fit_prompt(msgs, 8192, 1024)
    kept = fitted.messages
    assert kept[0] == SYSTEM and kept[-1] == ChatTurn("user", "hi")
    assert kept[1].role == "user"  # the history never starts with an answer
    assert kept[-3:-1] == tuple(msgs[-3:-1])  # the newest exchange is kept
    assert fitted.dropped_turns > 0 and not fitted.note
    assert estimate_tokens(kept) <= 8192 - 1024


def test_a_message_too_long_on_its_own_is_cut_with_a_note() -> None:
    long = "word " * 20_000  # 100k characters
    fitted = fit_prompt([SYSTEM, *history(3), ChatTurn("user", long)], 8192, 1024, model="local/smollm2-135m")
    assert [t.role for t in fitted.messages] == ["system", "user"]
    kept = fitted.messages[-1].content
    assert long.startswith(kept) and 0 < len(kept) < len(long)
    assert fitted.kept_chars == len(kept)
    assert estimate_tokens(fitted.messages) <= 8192 - 1024
    assert fitted.note.startswith("[your message was too long for local/smollm2-135m")
    assert f"{len(kept):,}" in fitted.note and f"{len(long):,}" in fitted.note


def test_room_for_the_answer_never_takes_more_than_a_quarter() -> None:
    msgs = [SYSTEM, ChatTurn("user", "x" * (600 * CHARS_PER_TOKEN))]
    fitted = fit_prompt(msgs, 1000, 4096)  # max_tokens larger than the window
    assert not fitted.note  # 600 estimated tokens fit in 1000 - 250


async def test_a_long_conversation_on_the_bundled_model_never_gets_stuck() -> None:
    """30 turns of long answers, then "hi"; then a 99k-character message: both answered by the real
    local model (its context made small here so that the test is quick)."""
    import time

    from bot.app import App
    from bot.store.base import ReplyRecord
    from tests.conftest import make_config
    from tests.fakes.recording_channel import RecordingChannel

    channel = RecordingChannel()
    cfg = make_config(providers={"local": {"kind": "local", "n_ctx": 1024}}, bot={"max_tokens": 8})
    app = App(cfg, channels=[channel], serve_http=False)
    await app.start()
    try:
        record = ReplyRecord(time.time(), "rec", "rec:1", "local/smollm2-135m", "", 0.1, 0.1, 1.0, 1, 1, 0, 0.0)
        for t in history(30, 2000):  # what 30 long answers leave behind
            await app.store.save_reply("rec:1", [t], record)
        for text in ("hi", "word " * 20_000 + "end"):
            await channel.say(text)
            await app.dispatcher.drain()
            await app.responder.flush()
            last = await app.store.last_reply("rec:1")
            assert last is not None and last.outcome == "ok", last
        first, second = channel.replies()
        assert first and "Sorry" not in first
        assert second.rstrip().endswith("characters]") and "[your message was too long for local/smollm2-135m" in second
    finally:
        await app.stop()
