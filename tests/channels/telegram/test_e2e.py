"""Telegram end to end: PTB polling the fake Bot API → App (dispatcher, responder, ReplyStream) →
a scripted provider → replies on the fake, with every Bot API call recorded and timestamped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.app import App
from channels.telegram import TelegramChannel
from tests.conftest import make_config
from tests.fakes.scripted_provider import ScriptedProvider
from tests.fakes.telegram_server import FakeTelegram, parse_telegram_html

from .conftest import tg_config

USER = 4242
GROUP = -1001234
BOT = "switchboard_bot"


@pytest.fixture
async def run_app(fake: FakeTelegram) -> AsyncIterator[Any]:
    apps: list[App] = []

    async def _run(provider: ScriptedProvider, *, serve_http: bool = False, **tg: Any) -> tuple[App, TelegramChannel]:
        channel = TelegramChannel(tg_config(fake, **tg))
        app = App(
            make_config(channels={"webchat": {"enabled": False}}),
            providers={"local": provider},
            channels=[channel],
            serve_http=serve_http,
        )
        await app.start()
        apps.append(app)
        return app, channel

    yield _run
    for app in apps:
        await app.stop()


def after_start(fake: FakeTelegram) -> list[Any]:
    """Calls that are part of replies (not polling / start-up)."""
    return [c for c in fake.calls if c.method not in ("getMe", "deleteWebhook", "getUpdates", "setWebhook")]


def words(n: int, start: int = 0) -> list[str]:
    return [f" w{i}" for i in range(start, start + n)]


async def test_private_chat_streams_drafts_then_one_send(fake: FakeTelegram, run_app) -> None:
    pieces = ["Hello", " **wor", "ld**", ", this", " is", " a", " streamed", " answer."]
    await run_app(ScriptedProvider(pieces, interval=0.15))
    fake.push_update(fake.make_message(USER, "hi", message_id=10))
    await fake.wait_for(lambda f: f.texts(USER), timeout=10)
    calls = after_start(fake)
    assert calls[0].method == "sendChatAction" and calls[0].params["action"] == "typing"
    drafts = fake.calls_of("sendMessageDraft")
    assert len(drafts) >= 3  # really streamed
    assert all(parse_telegram_html(c.params["text"]).strip() for c in drafts)  # never empty
    assert len({c.params["draft_id"] for c in drafts}) == 1
    gaps = [b.t - a.t for a, b in zip(drafts, drafts[1:], strict=False)]
    assert min(gaps) >= 0.3 - 0.001  # throttled: draft_interval 0.3 s from the end of the previous call
    sends = fake.calls_of("sendMessage")
    assert len(sends) == 1 and sends[0].t > drafts[-1].t
    assert sends[0].params["text"] == "Hello <b>world</b>, this is a streamed answer."
    assert fake.texts(USER) == ["Hello world, this is a streamed answer."]
    assert not fake.calls_of("editMessageText")
    assert "reply_parameters" not in sends[0].params


async def test_group_reply_streams_by_edits_a_second_apart(fake: FakeTelegram, run_app) -> None:
    pieces = ["The answer", *words(30)]
    await run_app(ScriptedProvider(pieces, interval=0.1))
    fake.push_update(fake.make_message(GROUP, f"@{BOT} tell me", message_id=900))
    expected = "The answer" + "".join(words(30))
    await fake.wait_for(lambda f: f.texts(GROUP) == [expected], timeout=15)
    sends, edits = fake.calls_of("sendMessage"), fake.calls_of("editMessageText")
    assert len(sends) == 1 and len(edits) >= 2
    assert sends[0].params["reply_parameters"]["message_id"] == 900  # quotes the question
    stamps = [sends[0].t] + [e.t for e in edits]
    gaps = [round(b - a, 3) for a, b in zip(stamps, stamps[1:], strict=False)]
    # ReplyStream spaces request *starts* by 1 s; arrival adds loopback / event-loop jitter (the
    # fake shares the test's loop), so allow a little under — see the report on pacing from ends
    assert min(gaps) >= 1.0 - 0.001, (gaps, [(c.method, round(c.t, 3), c.status) for c in after_start(fake)])
    assert not fake.calls_of("sendMessageDraft")
    await asyncio.sleep(0.2)
    assert len(fake.texts(GROUP)) == 1


async def test_flood_control_mid_stream_loses_nothing(fake: FakeTelegram, run_app) -> None:
    pieces = ["Start", *words(25)]
    await run_app(ScriptedProvider(pieces, interval=0.08))
    fake.flood("editMessageText", 1.5)  # the first edit is refused: wait 1.5 s
    fake.push_update(fake.make_message(GROUP, f"@{BOT} go"))
    expected = "Start" + "".join(words(25))
    await fake.wait_for(lambda f: f.texts(GROUP) == [expected], timeout=15)
    edits = fake.calls_of("editMessageText")
    refused = [e for e in edits if e.status == 429]
    assert len(refused) == 1
    after = [e for e in edits if e.t > refused[0].t]
    assert after and after[0].t - refused[0].t >= 1.45  # waited the whole retry_after
    assert len(fake.calls_of("sendMessage")) == 1  # no duplicate message
    await asyncio.sleep(0.2)
    assert fake.texts(GROUP) == [expected]


async def test_the_first_draft_carries_the_first_delta(fake: FakeTelegram, run_app) -> None:
    """A draft costs no message budget: nothing waits for a dozen characters to exist."""
    await run_app(ScriptedProvider(["Hi", " there, and the rest of the answer."], interval=0.4))
    fake.push_update(fake.make_message(USER, "hello"))
    await fake.wait_for(lambda f: f.calls_of("sendMessageDraft"), timeout=5)
    assert parse_telegram_html(fake.calls_of("sendMessageDraft")[0].params["text"]) == "Hi"
    await fake.wait_for(lambda f: f.texts(USER), timeout=5)
    assert fake.texts(USER) == ["Hi there, and the rest of the answer."]


async def test_flood_control_on_the_final_send_of_a_draft(fake: FakeTelegram, run_app) -> None:
    await run_app(ScriptedProvider(["Short", " and", " sweet", " reply."], interval=0.05))
    fake.flood("sendMessage", 1)
    fake.push_update(fake.make_message(USER, "hi"))
    await fake.wait_for(lambda f: f.texts(USER), timeout=10)
    sends = fake.calls_of("sendMessage")
    assert [s.status for s in sends] == [429, 200]
    assert sends[1].t - sends[0].t >= 1.0 - 0.001
    await asyncio.sleep(0.2)
    assert fake.texts(USER) == ["Short and sweet reply."]


async def test_not_modified_is_success(fake: FakeTelegram, run_app) -> None:
    pieces = ["First", *words(12)]
    await run_app(ScriptedProvider(pieces, interval=0.1))
    expected = "First" + "".join(words(12))
    # the final edit got through but its answer says "not modified": must not be sent again
    fake.not_modified(when=lambda p: p.get("text") == expected)
    fake.push_update(fake.make_message(GROUP, f"@{BOT} go"))
    await fake.wait_for(lambda f: any(c.error and "not modified" in c.error for c in f.calls), timeout=15)
    await asyncio.sleep(1.5)
    assert fake.texts(GROUP) == [expected]
    assert len(fake.calls_of("sendMessage")) == 1
    assert [c.params["text"] for c in fake.calls_of("editMessageText")].count(expected) == 1


async def test_html_rejected_goes_again_as_plain_text_in_a_group(fake: FakeTelegram, run_app) -> None:
    await run_app(ScriptedProvider(["Some **bold** answer ", "that", " streams."], interval=0.05))
    fake.fail(
        "sendMessage",
        description='Bad Request: can\'t parse entities: Unsupported start tag "b"',
        when=lambda p: p.get("parse_mode") == "HTML",
        times=10,
    )
    fake.fail(
        "editMessageText",
        description='Bad Request: can\'t parse entities: Unsupported start tag "b"',
        when=lambda p: p.get("parse_mode") == "HTML",
        times=10,
    )
    fake.push_update(fake.make_message(GROUP, f"@{BOT} go"))
    final = "Some **bold** answer that streams."
    await fake.wait_for(lambda f: f.texts(GROUP) == [final], timeout=10)
    await asyncio.sleep(0.3)
    assert fake.texts(GROUP) == [final]
    ok = [c for c in fake.calls_of("sendMessage", "editMessageText") if c.status == 200]
    assert all("parse_mode" not in c.params for c in ok)


async def test_html_rejected_on_final_send_in_private(fake: FakeTelegram, run_app) -> None:
    await run_app(ScriptedProvider(["Some **bold**", " answer."], interval=0.05), private_streaming="draft")
    fake.fail(
        "sendMessage",
        description='Bad Request: can\'t parse entities: Unsupported start tag "b"',
        when=lambda p: p.get("parse_mode") == "HTML",
    )
    fake.push_update(fake.make_message(USER, "go"))
    await fake.wait_for(lambda f: f.texts(USER), timeout=10)
    await asyncio.sleep(0.3)
    assert fake.texts(USER) == ["Some **bold** answer."]
    assert [c.status for c in fake.calls_of("sendMessage")] == [400, 200]


@pytest.mark.parametrize("chat, mode", [(USER, "none"), (USER, "draft"), (GROUP, "edit")])
async def test_long_answer_split_in_three_valid_parts(fake: FakeTelegram, run_app, chat: int, mode: str) -> None:
    para = "Lorem ipsum **dolor** sit amet, `code` & <tags> consectetur adipiscing elit. " * 8
    text = "\n\n".join([para.strip()] * 17)[:10_000]
    assert len(text) == 10_000
    chunks = [text[i : i + 500] for i in range(0, len(text), 500)]
    streaming = {"private_streaming": mode} if chat > 0 else {"group_streaming": mode}
    await run_app(ScriptedProvider(chunks, interval=0.02), **streaming)
    fake.push_update(fake.make_message(chat, "write a lot" if chat > 0 else f"@{BOT} write a lot"))
    from bot.splitting import split_text
    from channels.telegram.render import markdown_to_html

    expected = [parse_telegram_html(markdown_to_html(p)) for p in split_text(text, 4096)]
    assert len(expected) == 3
    await fake.wait_for(lambda f: f.texts(chat) == expected, timeout=20)
    await asyncio.sleep(0.3)
    assert fake.texts(chat) == expected  # three messages, nothing sent twice
    accepted = [c for c in fake.calls_of("sendMessage", "editMessageText", "sendMessageDraft") if c.status == 200]
    assert all(c.params.get("parse_mode") == "HTML" for c in accepted)  # every part valid HTML
    assert not [c for c in fake.calls if c.status == 400]
    assert all(len(t) <= 4096 for t in fake.texts(chat))
    sends = [c.t for c in fake.calls_of("sendMessage") if c.status == 200]
    assert all(b - a >= 1.0 - 0.001 for a, b in zip(sends, sends[1:], strict=False))  # new messages at the chat's pace


async def test_typing_repeats_while_not_streaming(fake: FakeTelegram, run_app) -> None:
    await run_app(ScriptedProvider(["Done", " thinking."], ttft=1.0), private_streaming="none", typing_refresh=0.2)
    fake.push_update(fake.make_message(USER, "think hard"))
    await fake.wait_for(lambda f: f.texts(USER), timeout=10)
    await asyncio.sleep(0.5)
    typing = fake.calls_of("sendChatAction")
    send = fake.calls_of("sendMessage")[0]
    assert len(typing) >= 4
    gaps = [b.t - a.t for a, b in zip(typing, typing[1:], strict=False)]
    assert all(0.1 <= g <= 0.45 for g in gaps), gaps  # 0.2 s, give or take loop jitter under load
    assert all(t.t < send.t for t in typing)  # stops once the answer is sent
    assert not fake.calls_of("sendMessageDraft", "editMessageText")
    assert fake.texts(USER) == ["Done thinking."]


async def test_unlisted_user_gets_no_model_call(fake: FakeTelegram, run_app) -> None:
    provider = ScriptedProvider(["never"])
    _, channel = await run_app(provider, allow_users=[1])
    fake.push_update(fake.make_message(USER, "hello?"))
    await fake.wait_for(lambda f: f.texts(USER), timeout=5)
    await asyncio.sleep(0.2)
    assert provider.requests == []
    assert fake.texts(USER) == [channel.cfg.refusal_text]
    assert not fake.calls_of("sendChatAction")


async def test_unlisted_users_get_one_refusal_groups_get_silence(fake: FakeTelegram, run_app) -> None:
    """The core's access policy, declared by the adapter's allow-lists, applied by the intake."""
    provider = ScriptedProvider(["ok"])
    app, channel = await run_app(provider, allow_users=[1, "@Carol"], allow_chats=[-500])
    fake.push_update(fake.make_message(USER, "let me in"))
    fake.push_update(fake.make_message(USER, "please"))
    fake.push_update(fake.make_message(GROUP, f"@{BOT} hi from an unlisted group"))
    fake.push_update(fake.make_message(777, "hi", user_id=777, username="carol"))  # allowed by username
    fake.push_update(fake.make_message(1, "hi", user_id=1, username=None))  # allowed by id
    fake.push_update(fake.make_message(-500, f"@{BOT} hi", user_id=31337))  # allowed chat
    await fake.wait_for(lambda f: f.texts(777) and f.texts(1) and f.texts(-500) and f.texts(USER), timeout=5)
    await app.dispatcher.drain()
    await asyncio.sleep(0.1)
    assert len(provider.requests) == 3
    assert fake.texts(USER) == [channel.cfg.refusal_text]  # one refusal, not one per message
    assert fake.texts(GROUP) == []  # silence in groups
    assert app.intake.refused == 3


async def test_duplicate_update_answered_once(fake: FakeTelegram, run_app) -> None:
    provider = ScriptedProvider(["One answer."])
    await run_app(provider)
    upd = fake.push_update(fake.make_message(USER, "hi"))
    await fake.wait_for(lambda f: f.texts(USER), timeout=5)
    fake.push_update(upd, redeliver=True)
    fake.push_update(fake.make_message(GROUP, "people talking"))  # not addressed: ignored
    await asyncio.sleep(0.5)
    assert len(provider.requests) == 1
    assert fake.texts(USER) == ["One answer."]
    assert fake.texts(GROUP) == [] and not [c for c in fake.calls_of("sendChatAction") if c.params["chat_id"] == GROUP]


async def test_commands_answered_by_the_runtime(fake: FakeTelegram, run_app) -> None:
    provider = ScriptedProvider(["model text"])
    await run_app(provider)
    fake.push_update(fake.make_message(GROUP, f"/help@{BOT}"))
    await fake.wait_for(lambda f: f.texts(GROUP), timeout=5)
    assert provider.requests == []
    assert "/model" in fake.texts(GROUP)[0]


async def test_forum_topic_answered_in_topic(fake: FakeTelegram, run_app) -> None:
    await run_app(ScriptedProvider(["In the topic."]))
    fake.push_update(fake.make_message(GROUP, f"@{BOT} hi", thread_id=50, is_topic=True, message_id=61))
    await fake.wait_for(lambda f: f.texts(GROUP), timeout=5)
    for c in after_start(fake):
        assert c.params.get("message_thread_id") == 50 or c.method == "editMessageText"
    assert fake.sent[GROUP][0].thread_id == 50 and fake.sent[GROUP][0].reply_to == 61


async def test_webhook_end_to_end(fake: FakeTelegram, run_app) -> None:
    provider = ScriptedProvider(["Via", " webhook."])
    app, channel = await run_app(
        provider,
        serve_http=True,
        mode="webhook",
        webhook_url="https://bot.example.com/tg",
        webhook_secret="abc",
        webhook_path="/tg",
    )
    assert fake.webhook["secret_token"] == "abc"
    url = f"{app.base_url}/tg"
    upd = fake.make_message(USER, "hello", update_id=500)
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=upd) as r:
            assert r.status == 401
        async with http.post(url, json=upd, headers={"X-Telegram-Bot-Api-Secret-Token": "nope"}) as r:
            assert r.status == 401
        for _ in range(2):
            async with http.post(url, json=upd, headers={"X-Telegram-Bot-Api-Secret-Token": "abc"}) as r:
                assert r.status == 200
    await fake.wait_for(lambda f: f.texts(USER), timeout=5)
    await asyncio.sleep(0.2)
    assert fake.texts(USER) == ["Via webhook."]
    assert len(provider.requests) == 1


async def test_app_builds_the_channel_from_config(fake: FakeTelegram) -> None:
    cfg = make_config(
        channels={
            "webchat": {"enabled": False},
            "telegram": {
                "token": fake.token,
                "base_url": fake.base_url,
                "conflict_probe": 0,
                "warm_interval": 0,
                "poll_timeout": 1,
            },
        }
    )
    provider = ScriptedProvider(["Built", " from config."])
    app = App(cfg, providers={"local": provider}, serve_http=False)
    assert isinstance(app.channels["telegram"], TelegramChannel)
    await app.start()
    try:
        fake.push_update(fake.make_message(USER, "hi"))
        await fake.wait_for(lambda f: f.texts(USER), timeout=5)
        assert fake.texts(USER) == ["Built from config."]
    finally:
        await app.stop()


def test_bad_table_fails_app_construction() -> None:
    from bot.errors import ConfigError

    cfg = make_config(channels={"webchat": {"enabled": False}, "telegram": {"token": "1:a", "pol_timeout": 3}})
    with pytest.raises(ConfigError, match=r"channels\.telegram\.pol_timeout: unknown key"):
        App(cfg, providers={"local": ScriptedProvider()}, serve_http=False)


@pytest.mark.parametrize("chat", [USER, GROUP])
async def test_shutdown_mid_reply_still_delivers_the_visible_end(fake: FakeTelegram, chat: int) -> None:
    """The app stops its channels, waits the grace period, then cancels replies; their closing
    notice must still get out before the connections close."""
    channel = TelegramChannel(tg_config(fake))
    provider = ScriptedProvider(["Partial answer", *words(200)], interval=0.05)
    app = App(
        make_config(channels={"webchat": {"enabled": False}}, dispatcher={"shutdown_grace": 0.2}),
        providers={"local": provider},
        channels=[channel],
        serve_http=False,
    )
    await app.start()
    fake.push_update(fake.make_message(chat, f"@{BOT} long one"))
    await fake.wait_for(lambda f: f.calls_of("sendMessageDraft", "sendMessage"), timeout=5)
    await asyncio.sleep(0.3)
    await app.stop()
    shown = fake.texts(chat)  # the closing mark went out before App.stop() closed the connections
    assert len(shown) == 1 and shown[0].startswith("Partial answer w0 w1") and shown[0].endswith("[…]")
    assert not channel._connected


async def test_group_budget_is_shared_across_replies(fake: FakeTelegram, run_app) -> None:
    """Two replies in one group draw on one budget (scaled down here: 2 at once, then 1 per second)."""
    from dataclasses import replace

    from bot.types import RateBudget

    _, channel = await run_app(ScriptedProvider(["Reply", *words(40)], interval=0.05))
    channel._caps["group"] = replace(channel._caps["group"], chat_budget=RateBudget(2, 2.0))
    fake.push_update(fake.make_message(GROUP, f"@{BOT} one", user_id=1))
    fake.push_update(fake.make_message(GROUP, f"@{BOT} two", user_id=2))
    expected = "Reply" + "".join(words(40))
    await fake.wait_for(lambda f: f.texts(GROUP) == [expected, expected], timeout=20)
    calls = [c for c in fake.calls_of("sendMessage", "editMessageText") if c.params["chat_id"] == GROUP]
    t0 = calls[0].t
    for i, c in enumerate(calls):  # leaky bucket: at most 2 + (elapsed seconds) calls so far
        assert i + 1 <= 2 + (c.t - t0) / 1.0 + 0.2, [round(x.t - t0, 2) for x in calls]
    assert len(fake.calls_of("sendMessage")) == 2


async def test_an_edited_question_is_answered_again_in_place(fake: FakeTelegram, run_app) -> None:
    """Editing the last question answered replaces its answer in place (one message, edited) and
    the history; an edit of an older question, or a second delivery of one edit, is ignored."""
    provider = ScriptedProvider(["First answer."])
    app, _ = await run_app(provider)
    first_q = fake.push_update(fake.make_message(USER, "What is 2+2?", message_id=10))
    await fake.wait_for(lambda f: f.texts(USER) == ["First answer."], timeout=5)
    await app.dispatcher.drain()
    provider.pieces = ["Second", " answer."]
    edit = fake.push_update(fake.make_edit(first_q, "What is 3+3?", edit_date=2_000_000_000))
    await fake.wait_for(lambda f: f.texts(USER) == ["Second answer."], timeout=5)
    await app.dispatcher.drain()
    assert len(fake.calls_of("sendMessage")) == 1  # replaced in place: no new message
    assert fake.calls_of("editMessageText")[-1].params["message_id"] == fake.sent[USER][0].message_id
    assert [m.content for m in provider.requests[-1].messages[1:]] == ["What is 3+3?"]  # the old exchange is gone
    history = await app.store.history(f"telegram:{USER}", 10)
    assert [(t.role, t.content) for t in history] == [("user", "What is 3+3?"), ("assistant", "Second answer.")]

    fake.push_update(edit, redeliver=True)  # the same edit delivered twice: answered once
    fake.push_update(fake.make_message(USER, "And 4+4?", message_id=11))
    await fake.wait_for(lambda f: len(f.texts(USER)) == 2, timeout=5)
    await app.dispatcher.drain()
    fake.push_update(fake.make_edit(first_q, "What is 5+5?", edit_date=2_000_000_100))  # no longer the last
    await asyncio.sleep(0.3)
    await app.dispatcher.drain()
    assert len(provider.requests) == 3
    assert fake.texts(USER) == ["Second answer.", "Second answer."]
