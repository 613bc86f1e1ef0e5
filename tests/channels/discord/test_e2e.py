"""Discord end to end: the real discord.py on the fake gateway → App (intake, dispatcher,
responder, ReplyStream) → a scripted provider → replies on the fake REST API, with every request
recorded and timestamped (time.monotonic())."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from bot.splitting import split_text
from tests.fakes.discord_server import FakeDiscord, Request
from tests.fakes.scripted_provider import ScriptedProvider

from .conftest import CHANNEL, DM, GUILD

EPS = 0.001
TEXT_ROUTES = ("send", "edit", "edit_original", "followup", "webhook_edit")


def words(n: int, start: int = 0) -> list[str]:
    return [f" w{i}" for i in range(start, start + n)]


def reply_requests(fake: FakeDiscord) -> list[Request]:
    """Requests made for replies: typing and text (not login, gateway, command sync)."""
    return [r for r in fake.requests if r.route in ("typing", *TEXT_ROUTES, "delete", "callback")]


def texts(fake: FakeDiscord) -> list[Request]:
    return [r for r in fake.requests if r.route in TEXT_ROUTES]


def gaps(reqs: list[Request]) -> list[float]:
    return [b.t - a.t for a, b in zip(reqs, reqs[1:], strict=False)]


def timeline(fake: FakeDiscord) -> list[tuple[str, float, int]]:
    reqs = reply_requests(fake)
    t0 = reqs[0].t if reqs else 0.0
    return [(r.route, round(r.t - t0, 3), r.status) for r in reqs]


async def settled(app: Any, n: int = 1) -> None:
    """Until `n` replies have ended (the App's metrics) and their delivery is flushed."""

    def done() -> int:
        total = 0.0
        for family in app.metrics.replies.collect():
            for s in family.samples:
                if s.name.endswith("_total"):
                    total += s.value
        return int(total)

    for _ in range(2000):
        if done() >= n:
            break
        await asyncio.sleep(0.01)
    await app.responder.flush()


async def test_dm_streams_by_edits_with_the_interval_kept(fake: FakeDiscord, run_app) -> None:
    pieces = ["Hello", " there,", *words(20)]
    app, _ = await run_app(ScriptedProvider(pieces, interval=0.05), edit_interval=0.2)
    data = await fake.message_create(DM, "hi")
    await settled(app)
    expected = "".join(pieces)
    assert fake.texts(DM) == [expected], timeline(fake)
    reqs = reply_requests(fake)
    assert reqs[0].route == "typing", timeline(fake)
    sends, edits = fake.of("send"), fake.of("edit")
    assert len(sends) == 1 and len(edits) >= 3, timeline(fake)  # really streamed, in one message
    assert min(gaps(texts(fake))) >= 0.2 - EPS, timeline(fake)
    assert sends[0].body["message_reference"]["message_id"] == data["id"]  # the reply references the question
    assert all(r.body["allowed_mentions"]["parse"] == [] for r in sends + edits)
    assert [r.status for r in reqs] == [200 if r.route != "typing" else 204 for r in reqs]
    assert edits[-1].body["content"] == expected  # the final edit carries exactly the model's text
    previews = [sends[0], *edits[:-1]]
    assert all(r.body["content"].endswith(" ▌") for r in previews)  # "still writing", removed at the end


async def test_guild_mention_is_answered_and_a_plain_message_is_not(fake: FakeDiscord, run_app) -> None:
    app, _ = await run_app(ScriptedProvider(["Four."]))
    await fake.message_create(CHANNEL, "talking among ourselves", guild_id=GUILD)
    q = await fake.message_create(CHANNEL, f"<@{fake.bot_id}> what is 2+2?", guild_id=GUILD)
    await settled(app)
    assert fake.texts(CHANNEL) == ["Four."]
    [send] = fake.of("send")
    assert send.body["message_reference"]["message_id"] == q["id"]
    assert app.metrics is not None


async def test_thread_follow_up_without_mention_is_answered_in_the_thread(fake: FakeDiscord, run_app) -> None:
    thread = 700
    fake.add_thread(GUILD, CHANNEL, thread)
    app, _ = await run_app(ScriptedProvider(["Sure."]))
    await fake.message_create(thread, f"<@{fake.bot_id}> help me here", guild_id=GUILD)
    await settled(app, 1)
    await fake.message_create(thread, "and one more thing", guild_id=GUILD)
    await settled(app, 2)
    assert fake.texts(thread) == ["Sure.", "Sure."]
    assert fake.texts(CHANNEL) == []


async def test_bot_author_is_ignored(fake: FakeDiscord, run_app) -> None:
    app, _ = await run_app(ScriptedProvider(["never"]))
    await fake.message_create(DM, "I am a bot", user_id=31337, bot=True)
    q = await fake.message_create(DM, "I am a person")
    await settled(app)
    assert fake.texts(DM) == ["never"]
    assert fake.of("send")[0].body["message_reference"]["message_id"] == q["id"]


async def test_ask_is_deferred_at_once_then_streamed_into_the_response(fake: FakeDiscord, run_app) -> None:
    pieces = ["The sky", " is blue", " because", *words(10)]
    app, _ = await run_app(ScriptedProvider(pieces, ttft=0.2, interval=0.05), edit_interval=0.15)
    inter = await fake.interaction("ask", {"prompt": "why is the sky blue?"}, channel_id=CHANNEL, guild_id=GUILD)
    await settled(app)
    expected = "".join(pieces)
    assert fake.interaction_texts(inter["token"]) == [expected], timeline(fake)
    reqs = reply_requests(fake)
    assert reqs[0].route == "callback" and reqs[0].body["type"] == 5, timeline(fake)  # acknowledged first
    assert not fake.of("typing")  # "… is thinking" is the indicator
    originals = fake.of("edit_original")
    assert len(originals) >= 3, timeline(fake)  # streamed into the deferred response
    assert originals[0].t - reqs[0].t >= 0.2 - 0.05  # the first text waited for the model, not the ack
    assert min(gaps(texts(fake))) >= 0.15 - EPS, timeline(fake)
    assert all(r.body["allowed_mentions"]["parse"] == [] for r in originals)
    assert "Authorization" not in originals[0].headers  # the interaction token authorises it


async def test_model_command_answers_in_the_ephemeral_response(fake: FakeDiscord, run_app) -> None:
    app, _ = await run_app(ScriptedProvider(["unused"]))
    inter = await fake.interaction("model", channel_id=DM)
    await fake.wait_for(lambda f: f.interaction_texts(inter["token"]) and f.interaction_texts(inter["token"])[0])
    [text] = fake.interaction_texts(inter["token"])
    assert "automatically" in text  # the core's /model answer
    assert fake.of("callback")[0].body["data"]["flags"] == 64


async def test_429_mid_stream_is_waited_once_and_nothing_is_lost(fake: FakeDiscord, run_app) -> None:
    retry_after = 0.5
    pieces = ["Start", *words(25)]
    app, _ = await run_app(ScriptedProvider(pieces, interval=0.04), edit_interval=0.1)
    fake.rate_limit("edit", retry_after, when=lambda r: len(fake.of("edit")) >= 2)  # the second edit
    await fake.message_create(DM, "go")
    await settled(app)
    expected = "".join(pieces)
    assert fake.texts(DM) == [expected], timeline(fake)
    reqs = texts(fake)
    limited = [r for r in reqs if r.status == 429]
    assert len(limited) == 1, timeline(fake)
    assert limited[0].answer["retry_after"] == retry_after and limited[0].answer["global"] is False
    after = [r for r in reqs if r.t > limited[0].t]
    wait = after[0].t - limited[0].t
    assert wait >= retry_after - EPS, timeline(fake)  # the whole wait ...
    assert wait < 2 * retry_after, timeline(fake)  # ... once (not discord.py's sleep and then ours)
    assert after[0].body["content"] != limited[0].body["content"]  # the newest text, not the stale one
    assert len(fake.of("send")) == 1 and [r for r in reqs if r.status >= 400] == limited
    assert after[-1].body["content"] == expected


async def test_long_answer_with_a_code_block_is_split_correctly(fake: FakeDiscord, run_app) -> None:
    code = "\n".join(f"    print('line {i:03d} of the example program')" for i in range(70))
    prose = " ".join(f"Sentence number {i} explains a bit more." for i in range(40))
    text = f"{prose}\n\n```python\n{code}\n```\n\n{prose}"
    assert len(text) > 5000
    pieces = [text[i : i + 200] for i in range(0, len(text), 200)]
    app, _ = await run_app(ScriptedProvider(pieces, interval=0.005), edit_interval=0.05, channel_messages=100)
    await fake.message_create(DM, "write a lot")
    await settled(app)
    shown = fake.texts(DM)
    assert shown == split_text(text, 2000), [len(m) for m in shown]
    assert len(shown) >= 3 and all(len(m) <= 2000 for m in shown)
    assert all(m.count("```") % 2 == 0 for m in shown)  # every part closes what it opens
    cut = [m for m in shown if "```" in m]
    assert any(m.startswith("```python") for m in cut[1:])  # reopened with its language
    sends = fake.of("send")
    assert "message_reference" in sends[0].body and all("message_reference" not in s.body for s in sends[1:])


async def test_typing_is_refreshed_until_the_first_text(fake: FakeDiscord, run_app) -> None:
    app, _ = await run_app(ScriptedProvider(["Thought", " about it."], ttft=0.5), typing_refresh=0.12)
    await fake.message_create(DM, "think first")
    await settled(app)
    await asyncio.sleep(0.3)  # room for a typing request that was never stopped to show up
    reqs = reply_requests(fake)
    typing = [r for r in reqs if r.route == "typing"]
    first_text = next(r for r in reqs if r.route in TEXT_ROUTES)
    assert len(typing) >= 3, timeline(fake)
    assert min(gaps(typing)) >= 0.12 - EPS, timeline(fake)
    assert all(t.t < first_text.t for t in typing), timeline(fake)
    assert fake.texts(DM) == ["Thought about it."]


async def test_edited_question_is_answered_again_in_place(fake: FakeDiscord, run_app) -> None:
    provider = ScriptedProvider(["Paris", " is in France."])
    app, _ = await run_app(provider)
    q = await fake.message_create(DM, "capital of Frnace?")
    await settled(app, 1)
    [first] = fake.visible(DM)
    provider.pieces = ["Paris", ", the capital of France."]
    await fake.message_update(q, "capital of France?")
    await settled(app, 2)
    assert fake.texts(DM) == ["Paris, the capital of France."]  # the same message, edited
    assert len(fake.of("send")) == 1
    assert fake.visible(DM)[0].id == first.id


async def test_everyone_in_model_output_pings_nobody(fake: FakeDiscord, run_app) -> None:
    pieces = ["Hey @everyone and @here, ", f"ask <@{4242}> or <@&{GUILD}>."]
    app, _ = await run_app(ScriptedProvider(pieces))
    await fake.message_create(DM, "ping them")
    await settled(app)
    [shown] = fake.texts(DM)
    assert "@everyone" not in shown and "@here" not in shown and "<@" not in shown
    assert shown == "Hey ＠everyone and ＠here, ask <＠4242> or <＠&100>."
    assert len(shown) == len("".join(pieces))
    for r in fake.of("send", "edit"):
        assert r.body["allowed_mentions"] == {"parse": [], "users": [], "roles": [], "replied_user": False}


async def test_channel_budget_is_shared_by_replies_in_one_channel(fake: FakeDiscord, run_app) -> None:
    """Two replies at once in one channel draw on one budget (the core's leaky bucket): over any
    stretch of the sends and edits made there, count <= capacity + elapsed * rate."""
    capacity, per = 3, 1.0
    pieces = ["Reply", *words(20)]
    app, _ = await run_app(
        ScriptedProvider(pieces, interval=0.05), edit_interval=0.1, channel_messages=capacity, channel_seconds=per
    )
    await fake.message_create(CHANNEL, f"<@{fake.bot_id}> one", guild_id=GUILD, user_id=1)
    await fake.message_create(CHANNEL, f"<@{fake.bot_id}> two", guild_id=GUILD, user_id=2)
    await settled(app, 2)
    expected = "".join(pieces)
    assert fake.texts(CHANNEL) == [expected, expected], timeline(fake)
    metered = texts(fake)
    assert len(metered) >= capacity + 3, timeline(fake)
    rate, slack = capacity / per, 0.05
    for i in range(len(metered)):
        for j in range(i, len(metered)):
            count, elapsed = j - i + 1, metered[j].t - metered[i].t
            assert count <= capacity + (elapsed + slack) * rate, (i, j, timeline(fake))


async def test_a_deleted_reply_stops_the_stream_quietly(fake: FakeDiscord, run_app) -> None:
    """The person deletes the answer mid-stream: the edit gets Unknown Message (10008), the core's
    "message gone"; on Discord that stops the reply: no new message, no more edits, the model
    stopped, nothing kept in the history."""
    pieces = ["Start", *words(60)]
    provider = ScriptedProvider(pieces, interval=0.05)
    app, _ = await run_app(provider, edit_interval=0.1)
    await fake.message_create(DM, "go")
    await fake.wait_for(lambda f: f.of("send"))
    fake.delete(int(fake.of("send")[0].answer["id"]))
    await settled(app)
    gone = [r for r in fake.of("edit") if r.status == 404]
    assert len(gone) == 1 and gone[0].code == 10008  # one failed edit, no storm
    assert len(fake.of("send")) == 1 and fake.texts(DM) == []  # not sent again
    assert [r for r in fake.of("edit") if r.t > gone[0].t] == []  # nothing after it
    last = await app.store.last_reply(f"discord:{DM}")
    assert last is not None and last.outcome == "deleted" and last.completion_tokens < len(pieces)
    assert await app.store.history(f"discord:{DM}", 10) == []


async def test_missing_permissions_are_reported_once(fake: FakeDiscord, run_app) -> None:
    app, _ = await run_app(ScriptedProvider(["hello"]))
    fake.missing_permissions("send", times=10)
    with structlog.testing.capture_logs() as logs:
        await fake.message_create(CHANNEL, f"<@{fake.bot_id}> one", guild_id=GUILD, user_id=1)
        await settled(app, 1)
        await fake.message_create(CHANNEL, f"<@{fake.bot_id}> two", guild_id=GUILD, user_id=2)
        await settled(app, 2)
    reported = [e for e in logs if e["event"] == "discord.missing_permissions"]
    assert len(reported) == 1 and reported[0]["channel"] == str(CHANNEL)
    assert "Send Messages" in reported[0]["fix"]


async def test_long_ask_answer_continues_in_follow_up_messages(fake: FakeDiscord, run_app) -> None:
    text = " ".join(f"Sentence {i} of a long answer to a slash command." for i in range(90))
    assert len(text) > 4000
    pieces = [text[i : i + 300] for i in range(0, len(text), 300)]
    app, _ = await run_app(ScriptedProvider(pieces, interval=0.01), edit_interval=0.05, channel_messages=100)
    inter = await fake.interaction("ask", {"prompt": "go long"}, channel_id=DM)
    await settled(app)
    shown = fake.interaction_texts(inter["token"])
    assert shown == split_text(text, 2000), [len(m) for m in shown]
    assert len(fake.of("followup")) == len(shown) - 1
    assert all(not (r.body.get("flags", 0) & 64) for r in fake.of("followup"))  # /ask answers are public


async def test_allow_lists_refuse_politely_in_dms_and_silently_in_guilds(fake: FakeDiscord, run_app) -> None:
    app, _ = await run_app(ScriptedProvider(["answer"]), allow_users=[1])
    await fake.message_create(DM, "hi", user_id=4242)
    await fake.message_create(CHANNEL, f"<@{fake.bot_id}> hi", guild_id=GUILD, user_id=4242)
    inter = await fake.interaction("ask", {"prompt": "q"}, channel_id=CHANNEL, guild_id=GUILD, user_id=4242)
    await fake.message_create(DM + 1, "hello", user_id=1)  # listed: answered
    await settled(app, 1)
    await app.intake.flush()
    assert fake.texts(DM + 1) == ["answer"]
    assert fake.texts(DM) == ["Sorry, this bot only answers people it has been set up for."]
    assert [m for m in fake.visible(CHANNEL) if m.interaction_token is None] == []  # silence in the guild
    [callback] = fake.of("callback")
    assert callback.body["type"] == 4 and callback.body["data"]["flags"] == 64  # only the person sees it
    assert fake.interaction_texts(inter["token"]) == ["Sorry, this bot only answers people it has been set up for."]
    assert not fake.of("edit_original", "followup")


async def test_discords_own_channel_bucket_loses_nothing(fake: FakeDiscord, run_app) -> None:
    """The fake enforces Discord's window (N per window, 429 until it resets). The core's budget is
    a leaky bucket, which can put more than N into one window; whatever 429s that causes are waited
    out in full and both answers still end exact."""
    fake.channel_limit = (3, 1.0)
    pieces = ["Reply", *words(20)]
    app, _ = await run_app(
        ScriptedProvider(pieces, interval=0.05), edit_interval=0.1, channel_messages=3, channel_seconds=1.0
    )
    await fake.message_create(CHANNEL, f"<@{fake.bot_id}> one", guild_id=GUILD, user_id=1)
    await fake.message_create(CHANNEL, f"<@{fake.bot_id}> two", guild_id=GUILD, user_id=2)
    await settled(app, 2)
    expected = "".join(pieces)
    assert fake.texts(CHANNEL) == [expected, expected], timeline(fake)
    reqs = texts(fake)
    for r in (r for r in reqs if r.status == 429 and r.route == "edit"):  # each reply waits its 429 out
        same = [x for x in reqs if x.t > r.t and x.path == r.path]
        assert not same or same[0].t - r.t >= r.answer["retry_after"] - EPS, timeline(fake)
    assert all(r.status in (200, 429) for r in reqs), timeline(fake)


async def test_a_long_answer_ends_as_a_new_message_and_a_short_one_in_place(fake: FakeDiscord, run_app) -> None:
    """Edits notify nobody: an answer that took longer than notify_after is posted anew (so the
    person who looked away is notified) and its streamed preview deleted."""
    pieces = ["Slow", *words(12)]
    app, _ = await run_app(ScriptedProvider(pieces, interval=0.05), edit_interval=0.1, notify_after=0.3)
    await fake.message_create(DM, "tell me slowly")
    await settled(app)
    expected = "".join(pieces)
    assert fake.texts(DM) == [expected], timeline(fake)
    sends, deletes = fake.of("send"), fake.of("delete")
    assert len(sends) == 2 and len(deletes) == 1, timeline(fake)
    assert sends[1].body["content"] == expected and deletes[0].t > sends[1].t  # new message first, then delete
    app.responder.chain.providers = {"local": ScriptedProvider(["Quick."])}  # type: ignore[assignment]
    await fake.message_create(DM, "and quickly?")
    await settled(app, 2)
    assert fake.texts(DM) == [expected, "Quick."]
    assert len(fake.of("send")) == 3 and len(fake.of("delete")) == 1  # finished in place
