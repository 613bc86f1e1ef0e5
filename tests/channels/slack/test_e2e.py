"""Slack end to end: the real slack-bolt (Socket Mode) and slack_sdk on the fake Slack → App
(intake, dispatcher, responder, ReplyStream) → a scripted provider → replies on the fake Web API,
every request recorded and timestamped (time.monotonic())."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from bot.splitting import split_text
from bot.types import Delta, GenerationRequest
from tests.fakes.scripted_provider import ScriptedProvider
from tests.fakes.slack_server import Call, FakeSlack

from .conftest import CHANNEL, DM, settled

EPS = 0.001
TEXT = ("chat.startStream", "chat.appendStream", "chat.stopStream", "chat.postMessage", "chat.update")


class StampedProvider(ScriptedProvider):
    """Remembers when the model was asked (time.monotonic(), the fake's clock)."""

    asked_at: float | None = None

    async def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        if self.asked_at is None:
            self.asked_at = time.monotonic()
        async for d in super().stream(req):
            yield d


def words(n: int, start: int = 0) -> list[str]:
    return [f" w{i}" for i in range(start, start + n)]


def texts(fake: FakeSlack) -> list[Call]:
    return fake.of(*TEXT)


def gaps(calls: list[Call]) -> list[float]:
    return [b.t - a.t for a, b in zip(calls, calls[1:], strict=False)]


def timeline(fake: FakeSlack) -> list[tuple[str, float, str | None]]:
    reply = [c for c in fake.calls if c.method not in ("auth.test", "apps.connections.open")]
    t0 = reply[0].t if reply else 0.0
    return [(c.method, round(c.t - t0, 3), c.error) for c in reply]


async def test_dm_is_streamed_through_a_native_stream(fake: FakeSlack, run_app) -> None:
    pieces = ["Hello", " there,", *words(20)]
    provider = StampedProvider(pieces, interval=0.03)
    app, _ = await run_app(provider, stream_interval=0.1)
    q, env = await fake.dm("hi")
    await settled(app)
    expected = "".join(pieces)
    assert fake.texts(DM, q.ts) == [expected], timeline(fake)
    starts, appends, stops = fake.of("chat.startStream"), fake.of("chat.appendStream"), fake.of("chat.stopStream")
    assert len(starts) == 1 and len(appends) >= 3 and len(stops) == 1, timeline(fake)
    assert starts[0].params["thread_ts"] == q.ts  # a thread reply under the question
    streamed = starts[0].params["markdown_text"] + "".join(a.params["markdown_text"] for a in appends)
    assert streamed + (stops[0].params.get("markdown_text") or "") == expected  # only new text each time
    assert min(gaps(texts(fake))) >= 0.1 - EPS, timeline(fake)
    assert not fake.of("chat.postMessage", "chat.update")
    assert provider.asked_at is not None
    # acknowledged before the model was asked: bolt sends the ack before the listener runs; the
    # fake reads that frame from its socket a loop turn or two later, hence the small allowance
    assert fake.acks[env][0] <= provider.asked_at + 0.005
    assert [c.error for c in fake.calls if c.error] == []


async def test_channel_mention_is_answered_in_a_thread_and_a_plain_message_is_not(fake: FakeSlack, run_app) -> None:
    app, _ = await run_app(ScriptedProvider(["Four", " it is", *words(5)], interval=0.02))
    await fake.channel_message("talking among ourselves")
    q, _ = await fake.mention("what is 2+2?")
    await settled(app)
    expected = "Four it is" + "".join(words(5))
    assert fake.texts(CHANNEL, q.ts) == [expected], timeline(fake)
    assert fake.texts(CHANNEL) == [expected]  # nothing at the channel's top level
    start = fake.of("chat.startStream")[0]
    assert start.params["recipient_team_id"] == fake.team_id and start.params["recipient_user_id"] == "U0042"
    assert app.dispatcher is not None
    assert len(fake.of("chat.startStream")) == 1  # the message event and app_mention: answered once


async def test_thread_follow_up_without_mention_is_answered(fake: FakeSlack, run_app) -> None:
    app, _ = await run_app(ScriptedProvider(["Sure."]))
    q, _ = await fake.mention("help me here")
    await settled(app, 1)
    await fake.channel_message("and one more thing", thread_ts=q.ts)
    await settled(app, 2)
    await fake.channel_message("a thread the bot never joined", thread_ts=fake.person_message(CHANNEL, "x").ts)
    await asyncio.sleep(0.1)
    assert fake.texts(CHANNEL, q.ts) == ["Sure.", "Sure."]
    assert fake.texts(CHANNEL) == ["Sure.", "Sure."]
    assert all(c.params["thread_ts"] == q.ts for c in fake.of("chat.postMessage", "chat.startStream"))


async def test_refused_stream_falls_back_to_post_and_update_with_the_interval_kept(fake: FakeSlack, run_app) -> None:
    pieces = ["Start", *words(30)]
    app, channel = await run_app(ScriptedProvider(pieces, interval=0.02), stream_interval=0.03, edit_interval=0.15)
    fake.fail("chat.startStream", "missing_recipient_team_id", times=100)
    q, _ = await fake.mention("go")
    await settled(app)
    expected = "".join(pieces)
    assert fake.texts(CHANNEL, q.ts) == [expected], timeline(fake)
    posts, updates = fake.of("chat.postMessage"), fake.of("chat.update")
    assert len(posts) == 1 and len(updates) >= 3, timeline(fake)  # streamed by updates, one message
    assert len(fake.of("chat.startStream")) == 1  # the refusal is believed for the rest of the reply
    fallback = [*posts, *updates]
    assert min(gaps(fallback)) >= 0.15 - EPS, timeline(fake)  # Slack's pace, not the stream's
    assert updates[-1].params["text"] == expected


async def test_expired_stream_falls_back_to_updating_the_same_message(fake: FakeSlack, run_app) -> None:
    pieces = ["Start", *words(30)]
    app, _ = await run_app(ScriptedProvider(pieces, interval=0.02), stream_interval=0.05, edit_interval=0.1)
    q, _ = await fake.dm("go")
    await fake.wait_for(lambda f: f.of("chat.appendStream"))
    fake.expire_stream(DM, fake.of("chat.startStream")[0].answer["ts"])
    await settled(app)
    expected = "".join(pieces)
    assert fake.texts(DM, q.ts) == [expected], timeline(fake)
    refused = [c for c in texts(fake) if c.error]
    assert [c.error for c in refused] == ["message_not_in_streaming_state"], timeline(fake)
    assert not fake.of("chat.postMessage")  # the streamed message itself is updated
    assert {c.params["ts"] for c in fake.of("chat.update")} == {fake.of("chat.startStream")[0].answer["ts"]}


async def test_reaction_while_thinking_is_removed_once_text_shows(fake: FakeSlack, run_app) -> None:
    app, _ = await run_app(ScriptedProvider(["Thought", " about it."], ttft=0.2))
    q, _ = await fake.mention("think first")
    await fake.wait_for(lambda f: f.of("reactions.add"))
    assert q.reactions == {"eyes"}
    await settled(app)
    await fake.wait_for(lambda f: f.of("reactions.remove"))
    assert q.reactions == set()
    add, remove = fake.of("reactions.add")[0], fake.of("reactions.remove")[0]
    first_text = texts(fake)[0]
    assert add.t < first_text.t < remove.t, timeline(fake)
    assert add.params["name"] == "eyes" and add.params["timestamp"] == q.ts


async def test_reaction_is_removed_when_the_reply_fails(fake: FakeSlack, run_app) -> None:
    app, _ = await run_app(ScriptedProvider(["never shown"], ttft=0.1))
    for method in TEXT:
        fake.fail(method, "channel_not_found", times=100)
    q, _ = await fake.mention("this will fail")
    await settled(app)
    await fake.wait_for(lambda f: f.of("reactions.remove"))
    assert q.reactions == set()
    assert fake.texts(CHANNEL) == []


async def test_retried_event_is_not_answered_twice(fake: FakeSlack, run_app) -> None:
    app, _ = await run_app(ScriptedProvider(["Once."]))
    q = fake.person_message(DM, "hello?")
    event = fake.message_event(q)
    env1, body = await fake.event(event)
    await fake.event(event, event_id=body["event_id"], retry_attempt=1)  # Slack's retry: same event_id
    await settled(app)
    await asyncio.sleep(0.1)
    assert fake.texts(DM) == ["Once."]
    assert len(fake.acks) == 2  # both acknowledged, one answer


async def test_429_mid_stream_is_waited_and_the_final_text_is_exact(fake: FakeSlack, run_app) -> None:
    retry_after = 0.4
    pieces = ["Start", *words(25)]
    app, _ = await run_app(ScriptedProvider(pieces, interval=0.03), stream_interval=0.05)
    fake.rate_limit("chat.appendStream", retry_after, when=lambda p: len(fake.of("chat.appendStream")) >= 2)
    q, _ = await fake.dm("go")
    await settled(app)
    expected = "".join(pieces)
    assert fake.texts(DM, q.ts) == [expected], timeline(fake)
    reqs = texts(fake)
    limited = [c for c in reqs if c.status == 429]
    assert len(limited) == 1, timeline(fake)
    after = [c for c in reqs if c.t > limited[0].t]
    assert retry_after - EPS <= after[0].t - limited[0].t < 2 * retry_after, timeline(fake)
    assert [c for c in reqs if c.error] == limited


async def test_bot_author_is_ignored(fake: FakeSlack, run_app) -> None:
    app, channel = await run_app(ScriptedProvider(["never"]))
    other = fake.person_message(DM, "I am a bot", user="U0BOT")
    await fake.event(fake.message_event(other, bot_id="B0OTHER"))
    me = fake.person_message(DM, "I am the bot itself", user=fake.bot_user_id)
    await fake.event(fake.message_event(me))
    q, _ = await fake.dm("I am a person")
    await settled(app)
    await asyncio.sleep(0.05)
    assert fake.texts(DM) == ["never"]
    assert fake.of("chat.postMessage")[0].params["thread_ts"] == q.ts


async def test_30000_character_answer_is_split_with_code_blocks_intact(fake: FakeSlack, run_app) -> None:
    code = "\n".join(f"    print('line {i:04d} of the example program')" for i in range(300))
    prose = " ".join(f"Sentence number {i} explains a bit more." for i in range(240))
    text = f"{prose}\n\n```python\n{code}\n```\n\n{prose}"
    assert len(text) > 30_000
    pieces = [text[i : i + 500] for i in range(0, len(text), 500)]
    app, _ = await run_app(ScriptedProvider(pieces, interval=0.002), stream_interval=0.02, edit_interval=0.02)
    q, _ = await fake.dm("write a lot")
    await settled(app)
    parts = split_text(text, 12_000)
    msgs = fake.bot_messages(DM, q.ts)
    assert [m.text for m in msgs] == parts, [len(m.text) for m in msgs]
    assert len(parts) >= 3 and all(len(p) <= 12_000 for p in parts)
    assert all(p.count("```") % 2 == 0 for p in parts)
    assert all(len(c.params.get("markdown_text") or "") <= 12_000 for c in texts(fake))
    assert [c.error for c in fake.calls if c.error] == []


async def test_assistant_thread_gets_prompts_status_and_a_title(fake: FakeSlack, run_app) -> None:
    app, channel = await run_app(ScriptedProvider(["Paris", " is the capital."], ttft=0.15))
    thread_ts, env = await fake.assistant_thread_started()
    await fake.wait_ack(env)
    await fake.wait_for(lambda f: (DM, thread_ts) in f.prompts)
    assert fake.prompts[(DM, thread_ts)][0]["message"] == "Summarise this channel"
    q, _ = await fake.dm("What is the capital of France, and why is it that one?", thread_ts=thread_ts)
    await fake.wait_for(lambda f: (DM, thread_ts) in f.statuses)
    assert fake.statuses[(DM, thread_ts)] == "is thinking…"
    await settled(app)
    await fake.wait_for(lambda f: len(f.of("assistant.threads.setStatus")) >= 2)
    assert fake.texts(DM, thread_ts) == ["Paris is the capital."]
    assert (DM, thread_ts) not in fake.statuses
    status = fake.of("assistant.threads.setStatus")
    assert status[-1].params["status"] == "" and status[-1].t > texts(fake)[0].t
    assert fake.titles[(DM, thread_ts)] == "What is the capital of France, and why is it that one?"
    assert not fake.of("reactions.add")  # the status is the indicator here
    assert q.thread_ts == thread_ts
    env = await fake.assistant_context_changed(thread_ts, context_channel="C0777")
    await fake.wait_ack(env)
    await fake.wait_for(lambda f: channel.assistant_context(DM, thread_ts).get("channel_id") == "C0777")


async def test_edited_question_is_answered_again_in_place(fake: FakeSlack, run_app) -> None:
    provider = ScriptedProvider(["Paris", " is in France."])
    app, _ = await run_app(provider)
    q, _ = await fake.dm("capital of Frnace?")
    await settled(app, 1)
    [first] = fake.bot_messages(DM, q.ts)
    provider.pieces = ["Paris", ", the capital of France."]
    await fake.edit(q, "capital of France?")
    await settled(app, 2)
    assert fake.texts(DM) == ["Paris, the capital of France."]  # the same message, updated
    assert fake.bot_messages(DM)[0].ts == first.ts
    assert provider.requests[-1].messages[-1].content == "capital of France?"


async def test_slash_command_reaches_the_core_as_a_command(fake: FakeSlack, run_app) -> None:
    app, _ = await run_app(ScriptedProvider(["unused"]))
    env = await fake.slash_command("/switchboard", "model")
    await fake.wait_ack(env)
    await fake.wait_for(lambda f: f.responses)
    [(_, body)] = fake.responses
    assert "automatically" in body["text"] and body["response_type"] == "ephemeral"
    assert not fake.of(*TEXT)


async def test_model_typed_in_a_dm_is_a_command(fake: FakeSlack, run_app) -> None:
    provider = ScriptedProvider(["unused"])
    app, _ = await run_app(provider)
    await fake.dm("/reset")
    await fake.wait_for(lambda f: f.texts(DM))
    assert fake.texts(DM) == ["Conversation cleared."]
    assert provider.requests == []


async def test_fallback_keeps_the_channels_pace_across_replies(fake: FakeSlack, run_app) -> None:
    """Two answers in one channel, both refused streams: their messages and updates together stay
    within the channel's pace (a leaky bucket: count <= capacity + elapsed * rate)."""
    capacity, per = 2, 0.5
    pieces = ["Reply", *words(20)]
    app, _ = await run_app(
        ScriptedProvider(pieces, interval=0.03),
        stream_interval=0.03,
        edit_interval=0.05,
        channel_messages=capacity,
        channel_seconds=per,
    )
    fake.fail("chat.startStream", "team_access_not_granted", times=100)
    q1, _ = await fake.mention("one", user="U1")
    q2, _ = await fake.mention("two", user="U2")
    await settled(app, 2)
    expected = "".join(pieces)
    assert fake.texts(CHANNEL, q1.ts) == [expected] and fake.texts(CHANNEL, q2.ts) == [expected], timeline(fake)
    metered = fake.of("chat.postMessage", "chat.update")
    assert len(metered) >= capacity + 3, timeline(fake)
    rate, slack = capacity / per, 0.02
    for i in range(len(metered)):
        for j in range(i, len(metered)):
            count, elapsed = j - i + 1, metered[j].t - metered[i].t
            assert count <= capacity + (elapsed + slack) * rate, (i, j, timeline(fake))


async def test_socket_mode_reconnects_when_slack_asks(fake: FakeSlack, run_app) -> None:
    app, _ = await run_app(ScriptedProvider(["Still here."]))
    await fake.disconnect()
    await fake.wait_for(lambda f: f.connections == 2 and len(f.of("apps.connections.open")) == 2)
    await fake.wait_connected()
    await asyncio.sleep(0.05)
    q, env = await fake.dm("are you there?")
    await fake.wait_ack(env)
    await settled(app)
    assert fake.texts(DM, q.ts) == ["Still here."]


async def test_allow_lists_refuse_politely_in_dms_and_silently_in_channels(fake: FakeSlack, run_app) -> None:
    app, _ = await run_app(ScriptedProvider(["answer"]), allow_users=["U0001"])
    q, _ = await fake.dm("hi", user="U0042")
    await fake.mention("hi", user="U0042")
    ok, _ = await fake.dm("hello", channel="D0001", user="U0001")
    await settled(app, 1)
    await app.intake.flush()
    assert fake.texts("D0001", ok.ts) == ["answer"]
    assert fake.texts(DM, q.ts) == ["Sorry, this bot only answers people it has been set up for."]
    assert fake.texts(CHANNEL) == []
    assert fake.of("chat.postMessage")[0].params["mrkdwn"] is False  # the refusal goes out as plain text


async def test_reaction_comes_off_when_shutdown_cuts_a_reply_before_any_text(fake: FakeSlack, run_app) -> None:
    app, _ = await run_app(ScriptedProvider(["too late"], ttft=5.0), config={"dispatcher": {"shutdown_grace": 0.1}})
    q, _ = await fake.mention("slow one")
    await fake.wait_for(lambda f: f.of("reactions.add"))
    await app.stop()
    assert q.reactions == set()
    assert fake.texts(CHANNEL) == []
