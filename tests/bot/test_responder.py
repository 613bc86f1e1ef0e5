"""The reply pipeline through the real App: fallbacks, failures, commands, timings, history."""

from __future__ import annotations

import asyncio

from bot.app import App
from bot.errors import ProviderAuthError, ProviderUnavailable
from bot.providers.openai_compat import OpenAICompatProvider
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.recording_channel import RecordingChannel
from tests.fakes.scripted_provider import ScriptedProvider

HOSTED = {
    "providers": {"hosted": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"}},
    "models": {"hosted/big": {"price": {"input": 1.0, "output": 2.0}}},
    "routing": {"default": "hosted/big", "use_table": False},
}


async def run(app: App, channel: RecordingChannel, *texts: str, conversation: str = "rec:1") -> None:
    await app.start()
    try:
        for t in texts:
            await channel.say(t, conversation)
            await app.dispatcher.drain()
        await app.responder.flush()
    finally:
        await app.stop()


async def test_failure_before_first_token_falls_back_to_the_next_model():
    channel = RecordingChannel()
    hosted = ScriptedProvider(name="hosted", fail_before=ProviderUnavailable("down", provider="hosted", status=503))
    local = ScriptedProvider(["from", " local"], name="local")
    app = App(make_config(**HOSTED), providers={"hosted": hosted, "local": local}, channels=[channel])
    await app.start()
    await channel.say("hello")
    await app.dispatcher.drain()
    await app.responder.flush()
    rec = await app.store.last_reply("rec:1")
    await app.stop()
    assert channel.replies() == ["from local"]
    assert len(hosted.requests) == 1 and len(local.requests) == 1
    assert rec.model == "local/smollm2-135m" and rec.outcome == "fallback"


async def test_failure_after_text_ends_with_a_visible_notice():
    channel = RecordingChannel()
    hosted = ScriptedProvider(["partial", " answer", " never", " finished"], name="hosted", fail_after=2)
    local = ScriptedProvider(["unused"], name="local")
    app = App(make_config(**HOSTED), providers={"hosted": hosted, "local": local}, channels=[channel])
    await run(app, channel, "hello")
    (reply,) = channel.replies()
    assert reply.startswith("partial answer") and "[answer cut off: hosted" in reply
    assert not local.requests  # the visible text is not silently replaced by another model's


async def test_every_model_failing_ends_in_a_notice():
    channel = RecordingChannel()
    err = ProviderAuthError("bad key", provider="hosted", status=401)
    app = App(
        make_config(**HOSTED),
        channels=[channel],
        providers={
            "hosted": ScriptedProvider(name="hosted", fail_before=err),
            "local": ScriptedProvider(name="local", fail_before=ProviderUnavailable("no model", provider="local")),
        },
    )
    await run(app, channel, "hello")
    (reply,) = channel.replies()
    assert reply.startswith("Sorry, I couldn't get an answer") and "hosted: AuthError 401; local: Unavailable" in reply
    assert "bad key" not in reply  # the provider's raw message stays in the log


async def test_real_provider_usage_and_cost_are_kept(tmp_path):
    channel = RecordingChannel()
    async with FakeOpenAI("The answer is 42.", ttft=0.02, prompt_tokens=1000, cached_tokens=400) as srv:
        cfg = make_config(
            **{
                **HOSTED,
                "providers": {"hosted": {"kind": "openai", "base_url": srv.base_url, "api_key": "k"}},
                "models": {"hosted/big": {"price": {"input": 1.0, "output": 2.0, "cached_input": 0.5}}},
            }
        )
        provider = OpenAICompatProvider("hosted", cfg.providers["hosted"])
        app = App(cfg, channels=[channel], providers={"hosted": provider, "local": ScriptedProvider()})
        await app.start()
        await channel.say("what is the answer?")
        await app.dispatcher.drain()
        await app.responder.flush()
        rec = await app.store.last_reply("rec:1")
        await app.stop()
    assert channel.replies() == ["The answer is 42."]
    assert rec.model == "hosted/big" and rec.outcome == "ok"
    assert rec.prompt_tokens == 1000 and rec.cached_tokens == 400 and rec.completion_tokens == 4
    assert abs(rec.cost_usd - (600 * 1.0 + 400 * 0.5 + 4 * 2.0) / 1e6) < 1e-12
    assert rec.ttft >= 0.02 and rec.first_visible >= rec.ttft and rec.total >= rec.first_visible
    assert "configured default" in rec.route_reason or "hosted/big" in rec.route_reason
    body = srv.chat_requests[0].body
    assert body["messages"][0]["role"] == "system" and body["messages"][-1]["content"] == "what is the answer?"


async def test_model_command_is_sticky_until_default():
    channel = RecordingChannel()
    hosted = ScriptedProvider(["hosted"], name="hosted")
    local = ScriptedProvider(["local"], name="local")
    cfg = make_config(**{**HOSTED, "models": {"hosted/big": {"alias": "big"}}})
    app = App(cfg, channels=[channel], providers={"hosted": hosted, "local": local})
    await run(app, channel, "/model local", "one", "/model", "/model default", "two", "/model nope")
    replies = channel.replies()
    assert replies[0] == "This chat now uses local/smollm2-135m."
    assert replies[1] == "local"
    assert "local/smollm2-135m" in replies[2]
    assert replies[3] == "Back to automatic model choice."
    assert replies[4] == "hosted"
    assert replies[5].startswith("Unknown model 'nope'")


async def test_status_reports_the_last_reply():
    channel = RecordingChannel()
    app = App(make_config(), channels=[channel], providers={"local": ScriptedProvider(["hi"], ttft=0.01)})
    await run(app, channel, "/status", "hello", "/status")
    first, _, last = channel.replies()
    assert "No reply yet" in first
    assert "Last reply: local/smollm2-135m" in last and "TTFT" in last


async def test_interrupt_mode_cancels_and_marks_the_old_reply():
    channel = RecordingChannel()
    slow = ScriptedProvider(["word"] * 50, name="local", interval=0.02)
    app = App(make_config(dispatcher={"queue_mode": "interrupt"}), channels=[channel], providers={"local": slow})
    await app.start()
    await channel.say("first")
    await asyncio.sleep(0.15)
    await channel.say("second")
    await app.dispatcher.drain()
    await app.responder.flush()
    await app.stop()
    first, second = channel.replies()
    assert first.endswith("[…]") and first.startswith("word")
    assert second == "word" * 50


async def test_monthly_budget_spent_routes_to_free_models_only():
    channel = RecordingChannel()
    hosted = ScriptedProvider(["paid"], name="hosted")
    local = ScriptedProvider(["free"], name="local")
    cfg = make_config(**HOSTED, budget={"monthly_usd": 0.01})
    app = App(cfg, channels=[channel], providers={"hosted": hosted, "local": local})
    await app.start()
    await channel.say("one")
    await app.dispatcher.drain()
    assert channel.replies() == ["paid"]
    app.spend.add(0.02)  # the month's spend passes the budget
    await channel.say("two")
    await app.dispatcher.drain()
    rec = await app.store.last_reply("rec:1")
    await app.stop()
    assert channel.replies() == ["paid", "free"]
    assert rec.model == "local/smollm2-135m" and "monthly budget $0.01 reached" in rec.route_reason


async def test_budget_spend_is_loaded_from_the_ledger(tmp_path):
    import time

    from bot.store.base import ReplyRecord
    from bot.store.sqlite import SqliteStore

    path = tmp_path / "s.sqlite3"
    store = SqliteStore(path)
    await store.open()
    await store.save_reply("k", [], ReplyRecord(time.time(), "c", "k", "m", "r", 0.1, 0.1, 0.2, 1, 1, 0, 7.5))
    await store.close()
    app = App(make_config(budget={"monthly_usd": 10}), store=SqliteStore(path), channels=[RecordingChannel()])
    await app.start()
    try:
        assert app.spend.spend().spent_usd == 7.5 and not app.spend.spend().exhausted
        app.spend.add(2.5)
        assert app.spend.spend().exhausted
    finally:
        await app.stop()


async def test_history_carries_the_previous_exchange():
    channel = RecordingChannel()
    local = ScriptedProvider(["answer one"])
    app = App(make_config(), channels=[channel], providers={"local": local})
    await run(app, channel, "question one", "question two")
    second = local.requests[1].messages
    assert [(t.role, t.content) for t in second[1:]] == [
        ("user", "question one"),
        ("assistant", "answer one"),
        ("user", "question two"),
    ]


async def test_an_empty_answer_moves_down_the_chain():
    channel = RecordingChannel()
    hosted = ScriptedProvider([], name="hosted")  # finishes cleanly with no text
    local = ScriptedProvider(["from local"], name="local")
    app = App(make_config(**HOSTED), providers={"hosted": hosted, "local": local}, channels=[channel])
    await run(app, channel, "hello")
    assert channel.replies() == ["from local"]


async def test_an_unexpected_error_ends_typing_and_says_so():
    class Broken(ScriptedProvider):
        async def stream(self, req):
            raise RuntimeError("a bug")
            yield  # pragma: no cover

    channel = RecordingChannel()  # typing_refresh 1.0 s
    app = App(make_config(), channels=[channel], providers={"local": Broken()})
    await app.start()
    await channel.say("hello")
    await app.dispatcher.drain()
    await app.responder.flush()
    typing_after = len(channel.surfaces[0].of("typing"))
    await asyncio.sleep(1.2)  # longer than one typing refresh
    await app.stop()
    (reply,) = channel.replies()
    assert reply.startswith("Sorry, something went wrong")
    assert len(channel.surfaces[0].of("typing")) == typing_after  # typing stopped for good


async def test_a_complete_answer_is_delivered_whole_even_if_interrupted_while_delivering():
    from bot.types import Capabilities, LatencyClass, Markup, Streaming

    slow_edits = Capabilities(
        Streaming.EDIT,
        LatencyClass.SEMI_SYNC,
        4096,
        min_edit_interval=0.3,
        typing_refresh=None,
        markup=Markup.PLAIN,
        first_chunk_chars=1,
    )
    channel = RecordingChannel(slow_edits)
    provider = ScriptedProvider(["Hello", " there,", " the", " complete", " answer."], interval=0.01)
    app = App(make_config(dispatcher={"queue_mode": "interrupt"}), channels=[channel], providers={"local": provider})
    await app.start()
    await channel.say("first")
    await asyncio.sleep(0.1)  # generation done, the final edit waits for the 0.3 s interval
    await channel.say("second")
    await app.dispatcher.drain()
    await app.responder.flush()
    await app.stop()
    assert channel.replies()[0] == "Hello there, the complete answer."


async def test_interrupted_reply_is_recorded_and_charged():
    channel = RecordingChannel()
    hosted = ScriptedProvider(["word "] * 100, name="hosted", interval=0.02)
    cfg = make_config(**HOSTED, dispatcher={"queue_mode": "interrupt"})
    app = App(cfg, channels=[channel], providers={"hosted": hosted, "local": ScriptedProvider()})
    await app.start()
    await channel.say("first")
    await asyncio.sleep(0.2)
    spent_before = app.spend.spent
    await channel.say("second")
    await app.dispatcher.drain()
    await app.responder.flush()
    rows = await app.store._run(
        lambda c: c.execute("SELECT outcome, completion_tokens, cost_usd FROM replies").fetchall()
    )
    await app.stop()
    outcomes = [r[0] for r in rows]
    assert "interrupted" in outcomes
    interrupted = rows[outcomes.index("interrupted")]
    assert interrupted[1] > 0 and interrupted[2] > 0  # estimated from the text streamed so far
    assert app.spend.spent > spent_before


async def test_spend_from_real_usage_counts_against_the_budget():
    channel = RecordingChannel()
    async with FakeOpenAI("ok", prompt_tokens=1_000_000) as srv:  # one reply costs $1 of input
        cfg = make_config(
            **{**HOSTED, "providers": {"hosted": {"kind": "openai", "base_url": srv.base_url, "api_key": "k"}}},
            budget={"monthly_usd": 1.0},
        )
        provider = OpenAICompatProvider("hosted", cfg.providers["hosted"])
        app = App(cfg, channels=[channel], providers={"hosted": provider, "local": ScriptedProvider(["free"])})
        await run(app, channel, "one", "two")
    assert channel.replies() == ["ok", "free"]


async def test_an_undelivered_reply_is_not_written_into_history():
    from bot.errors import PlatformError

    channel = RecordingChannel()
    local = ScriptedProvider(["lost"])
    app = App(make_config(), channels=[channel], providers={"local": local})
    await app.start()
    original = channel.surface

    def failing_surface(msg):
        s = original(msg)
        if len(channel.surfaces) == 1:
            s.fail_when("send", PlatformError("platform down"), lambda c: True, times=99)
        return s

    channel.surface = failing_surface
    await channel.say("first")
    await app.dispatcher.drain()
    await channel.say("second")
    await app.dispatcher.drain()
    rows = await app.store._run(lambda c: c.execute("SELECT outcome FROM replies ORDER BY id").fetchall())
    await app.stop()
    assert [t.content for t in local.requests[1].messages[1:]] == ["second"]  # "lost" never reached it
    assert [r[0] for r in rows] == ["undelivered", "ok"]


async def test_duplicates_are_counted_in_metrics():
    channel = RecordingChannel()
    app = App(make_config(), channels=[channel], providers={"local": ScriptedProvider()})
    await app.start()
    msg = await channel.say("hi")
    await app.dispatcher.submit(msg)
    await app.dispatcher.drain()
    body = app.metrics.render().decode()
    await app.stop()
    assert 'switchboard_duplicates_dropped_total{channel="rec"} 1.0' in body


async def test_a_channel_that_fails_to_start_leaves_nothing_open():
    class Refusing(RecordingChannel):
        async def start(self, inbox):
            raise RuntimeError("409 Conflict")

    app = App(make_config(), channels=[Refusing()], providers={"local": ScriptedProvider()})
    try:
        await app.start()
    except RuntimeError:
        pass
    assert app._runner is None and app.store._conn is None


def test_dispatcher_settings_come_from_the_config():
    app = App(
        make_config(dispatcher={"max_concurrent": 3, "queue_mode": "collect", "dedupe_window": 7}),
        channels=[RecordingChannel()],
        providers={"local": ScriptedProvider()},
    )
    d = app.dispatcher
    assert (d.max_concurrent, d.queue_mode, d._seen._window) == (3, "collect", 7)  # type: ignore[attr-defined]


async def test_channels_start_only_once_everything_else_is_ready(monkeypatch):
    """No message is taken before the providers are warm and the GC is tuned (a full collection
    with the first replies in flight cost one of them ~80 ms)."""
    import bot.app

    events: list[str] = []
    monkeypatch.setattr(bot.app, "tune_gc", lambda: events.append("gc tuned"))

    class Provider(ScriptedProvider):
        async def start(self) -> None:
            await asyncio.sleep(0.05)
            events.append("provider ready")

    class Channel(RecordingChannel):
        async def start(self, inbox) -> None:
            events.append("channel started")
            await super().start(inbox)

    app = App(make_config(), providers={"local": Provider()}, channels=[Channel()])
    await app.start()
    await app.stop()
    assert events == ["provider ready", "gc tuned", "channel started"]


async def test_an_edit_after_the_edit_window_is_ignored():
    from bot.types import ChatKind, InboundMessage

    channel = RecordingChannel()
    local = ScriptedProvider(["answer"])
    app = App(make_config(bot={"edit_window": 0.0}), providers={"local": local}, channels=[channel])
    await app.start()
    try:
        msg = await channel.say("question")
        await app.dispatcher.drain()
        await app.responder.flush()
        edit = InboundMessage(
            "rec", msg.conversation, "u1", "changed", f"{msg.message_id}:edit", ChatKind.PRIVATE, edit_of=msg.message_id
        )
        await asyncio.sleep(0.01)
        await app.intake.submit(edit)
        await app.dispatcher.drain()
        assert len(local.requests) == 1 and channel.replies() == ["answer"]
    finally:
        await app.stop()


async def test_an_ask_command_is_a_question_even_when_it_starts_with_a_slash():
    from bot.types import ChatKind, Command, InboundMessage

    channel = RecordingChannel()
    local = ScriptedProvider(["answered"])
    app = App(make_config(), providers={"local": local}, channels=[channel])
    await app.start()
    try:
        question = "/etc/hosts: what is it for?"
        msg = InboundMessage(
            "rec", "rec:1", "u1", question, "i1", ChatKind.COMMAND, chat_id="rec:1", command=Command("ask", question)
        )
        await app.intake.submit(msg)
        await app.dispatcher.drain()
        await app.responder.flush()
        assert channel.replies() == ["answered"]
        assert local.requests[0].messages[-1].content == question
    finally:
        await app.stop()


async def test_a_delivery_taken_before_a_restart_is_still_a_repeat_after_it(tmp_path):
    from bot.store.sqlite import SqliteStore
    from bot.types import ChatKind, InboundMessage

    def msg() -> InboundMessage:
        return InboundMessage("rec", "rec:1", "u1", "hello", "update-77", ChatKind.PRIVATE, chat_id="rec:1")

    answered: list[str] = []
    for _ in range(2):  # the same process twice, on the same data directory
        channel = RecordingChannel()
        local = ScriptedProvider(["hi"])
        app = App(make_config(), providers={"local": local}, channels=[channel], store=SqliteStore(tmp_path / "db"))
        await app.start()
        try:
            await app.intake.submit(msg())  # the platform delivers it (again, after the restart)
            await app.dispatcher.drain()
            await app.responder.flush()
            answered += channel.replies()
        finally:
            await app.stop()
    assert answered == ["hi"]  # answered once, across the restart


async def test_a_message_still_queued_at_shutdown_gets_a_notice_not_silence():
    from bot.intake import NOT_ANSWERED

    channel = RecordingChannel()
    slow = ScriptedProvider(["word "] * 100, interval=0.02)
    app = App(make_config(dispatcher={"shutdown_grace": 0.1}), providers={"local": slow}, channels=[channel])
    await app.start()
    await channel.say("first")
    await channel.say("second")  # queued behind the first in the same conversation
    await asyncio.sleep(0.1)
    await app.stop()
    first, second = channel.replies()
    assert first.startswith("word") and first.endswith("[…]")  # cut by shutdown, with the mark
    assert second == NOT_ANSWERED  # the queued one is told, not dropped in silence
    assert len(slow.requests) == 1
