"""The adapter: updates from the fake (polling and webhook) → InboundMessages, filtered."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from bot.errors import ConfigError, PlatformError
from bot.types import ChatKind, Streaming
from channels.telegram import TelegramChannel, TgContext, build
from tests.fakes.telegram_server import FakeTelegram

from .conftest import RecordingInbox, tg_config

USER = 4242
GROUP = -1001234
BOT = "switchboard_bot"


async def settle(fake: FakeTelegram, ch: TelegramChannel) -> None:
    """Wait until the channel has taken everything queued (its next getUpdates confirms it)."""
    last = fake.last_update_id
    await fake.wait_for(lambda f: any((c.params.get("offset") or 0) > last for c in f.calls_of("getUpdates")))


async def test_start_order_and_private_message(fake: FakeTelegram, started) -> None:
    ch, inbox = await started()
    assert [c.method for c in fake.calls[:3]] == ["getMe", "deleteWebhook", "getUpdates"]
    fake.push_update(fake.make_message(USER, "hello there", message_id=10))
    (msg,) = await inbox.wait(1)
    assert msg.channel == "telegram"
    assert msg.text == "hello there"
    assert msg.conversation == f"telegram:{USER}"
    assert msg.message_id == f"{USER}:10"
    assert msg.sender_id == str(USER) and msg.sender_name == "Alice"
    assert msg.chat_kind is ChatKind.PRIVATE
    assert (msg.chat_id, msg.reply_to, msg.thread_id) == (str(USER), "10", None)
    assert TgContext.of(msg) == TgContext(USER, "private", 10, None, USER)  # what the surface answers to
    polls = fake.calls_of("getUpdates")
    assert polls[-1].params["allowed_updates"] == ["message", "edited_message"]


async def test_updates_queued_before_start_are_delivered(fake: FakeTelegram, started) -> None:
    fake.push_update(fake.make_message(USER, "early"))
    ch, inbox = await started()
    assert [m.text for m in await inbox.wait(1)] == ["early"]


async def test_group_messages_need_addressing(fake: FakeTelegram, started) -> None:
    ch, inbox = await started()
    await fake.wait_for(lambda f: f.calls_of("getUpdates"))
    fake.push_update(fake.make_message(GROUP, "just chatting"))
    fake.push_update(fake.make_message(GROUP, "hey @other_bot do it"))
    fake.push_update(fake.make_message(GROUP, "/help@other_bot"))
    fake.push_update(
        fake.make_message(
            GROUP,
            "a reply to a person",
            reply_to={
                "message_id": 3,
                "date": 0,
                "chat": {"id": GROUP, "type": "supergroup"},
                "from": {"id": 99, "is_bot": False, "first_name": "Bob"},
                "text": "x",
            },
        )
    )
    fake.push_update(fake.make_message(GROUP, f"@{BOT} what is 2+2?"))
    fake.push_update(fake.make_message(GROUP, "thanks", reply_to=fake.bot_message(GROUP, 101)))
    fake.push_update(fake.make_message(GROUP, f"/model@{BOT} fast"))
    fake.push_update(fake.make_message(GROUP, "/status"))
    fake.push_update(fake.make_message(GROUP, f"ask @{BOT.upper()}, please"))
    msgs = await inbox.wait(5)
    await settle(fake, ch)
    assert [m.text for m in msgs] == ["what is 2+2?", "thanks", "/model fast", "/status", "ask please"]
    assert all(m.chat_kind is ChatKind.GROUP for m in msgs)
    assert ch.ignored == 4


async def test_text_mention_addresses_the_bot(fake: FakeTelegram, started) -> None:
    ch, inbox = await started()
    upd = fake.make_message(
        GROUP, "Switchboard help", entities=[{"type": "text_mention", "offset": 0, "length": 11, "user": fake.bot_user}]
    )
    fake.push_update(upd)
    (msg,) = await inbox.wait(1)
    assert msg.text == "Switchboard help"


async def test_forum_topic(fake: FakeTelegram, started) -> None:
    ch, inbox = await started()
    # in a topic every message "replies" to the topic's first message; that is not addressing us
    root = {**fake.bot_message(GROUP, 50), "forum_topic_created": {"name": "t", "icon_color": 1}}
    fake.push_update(fake.make_message(GROUP, "chatter", thread_id=50, is_topic=True, reply_to=root))
    fake.push_update(
        fake.make_message(GROUP, f"@{BOT} in topic", thread_id=50, is_topic=True, reply_to=root, message_id=61)
    )
    (msg,) = await inbox.wait(1)
    await settle(fake, ch)
    assert len(inbox.messages) == 1
    assert msg.text == "in topic"
    assert msg.conversation == f"telegram:{GROUP}:50"
    assert msg.chat_kind is ChatKind.THREAD
    assert msg.thread_id == "50" and TgContext.of(msg).thread_id == 50


async def test_command_in_private_is_normalised(fake: FakeTelegram, started) -> None:
    ch, inbox = await started()
    fake.push_update(fake.make_message(USER, f"/start@{BOT}"))
    fake.push_update(fake.make_message(USER, "/model gpt"))
    msgs = await inbox.wait(2)
    assert [m.text for m in msgs] == ["/start", "/model gpt"]


async def test_messages_from_bots_and_without_text_are_ignored(fake: FakeTelegram, started) -> None:
    ch, inbox = await started()
    bot_msg = fake.make_message(USER, "I am a bot")
    bot_msg["message"]["from"]["is_bot"] = True
    fake.push_update(bot_msg)
    sticker = fake.make_message(USER, "x")
    del sticker["message"]["text"]
    fake.push_update(sticker)
    fake.push_update(fake.make_message(USER, "real"))
    msgs = await inbox.wait(1)
    await settle(fake, ch)
    assert [m.text for m in msgs] == ["real"]


async def test_a_redelivered_update_keeps_its_message_id(fake: FakeTelegram, started) -> None:
    """The adapter keeps no duplicate check of its own: a redelivery carries the same message id,
    which the core's one check (Dispatcher.is_duplicate) drops; tested end to end in test_e2e."""
    ch, inbox = await started()
    upd = fake.push_update(fake.make_message(USER, "once"))
    await inbox.wait(1)
    fake.push_update(upd, redeliver=True)  # the same update_id handed out again
    fake.push_update(fake.make_message(USER, "next"))
    await inbox.wait(3)
    await settle(fake, ch)
    assert [m.text for m in inbox.messages] == ["once", "once", "next"]
    assert inbox.messages[0].message_id == inbox.messages[1].message_id != inbox.messages[2].message_id


async def test_access_policy_is_declared_from_the_config(make_channel) -> None:
    """The allow-lists are the core's AccessPolicy (applied by the intake, tested in test_e2e)."""
    ch = make_channel(allow_users=[1, "@Carol"], allow_chats=[-500])
    pol = ch.access_policy()
    assert pol.restricted and pol.user_ids == {"1"} and pol.usernames == {"carol"} and pol.chat_ids == {"-500"}
    assert pol.refusal_text == ch.cfg.refusal_text
    assert not make_channel().access_policy().restricted


async def test_capabilities_per_chat(make_channel) -> None:
    from bot.types import InboundMessage

    def msg(chat_id: int, kind: str) -> InboundMessage:
        chat_kind = ChatKind.PRIVATE if kind == "private" else ChatKind.GROUP
        return InboundMessage("telegram", "c", "1", "t", "1", chat_kind, chat_id=str(chat_id))

    ch = make_channel(typing_refresh=0.2)
    priv, grp = ch.capabilities(msg(1, "private")), ch.capabilities(msg(-1, "supergroup"))
    assert priv.streaming is Streaming.DRAFT and priv.min_edit_interval == 0.3
    assert grp.streaming is Streaming.EDIT and grp.min_edit_interval == 1.0
    assert priv.max_chars == grp.max_chars == 4096
    assert priv.typing_refresh == 0.2
    assert priv.latency_class.value == grp.latency_class.value == "semi_sync"
    ch2 = make_channel(private_streaming="none", group_streaming="none")
    assert ch2.capabilities(msg(1, "private")).streaming is Streaming.NONE
    assert ch2.capabilities(msg(-1, "group")).streaming is Streaming.NONE
    ch3 = make_channel(private_streaming="edit")
    assert ch3.capabilities(msg(1, "private")).streaming is Streaming.EDIT
    assert ch3.capabilities(msg(1, "private")).min_edit_interval == 1.0


# --- start-up errors ---------------------------------------------------------------------------


async def test_bad_token_401(fake: FakeTelegram) -> None:
    ch = TelegramChannel(tg_config(fake, token="999:wrong"))
    with pytest.raises(ConfigError, match=r"channels\.telegram\.token: Telegram refused the bot token"):
        await ch.start(RecordingInbox())
    await ch.stop()


async def test_malformed_token_404(fake: FakeTelegram) -> None:
    ch = TelegramChannel(tg_config(fake, token="nocolon"))
    with pytest.raises(ConfigError, match="refused the bot token"):
        await ch.start(RecordingInbox())
    await ch.stop()


async def test_another_poller_409(fake: FakeTelegram, make_channel) -> None:
    fake.fail(
        "getUpdates",
        status=409,
        description="Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    )
    ch = make_channel()
    with pytest.raises(PlatformError, match="another process is already receiving updates"):
        await ch.start(RecordingInbox())
    await ch.stop()


async def test_unreachable_api(make_channel) -> None:
    ch = make_channel(base_url="http://127.0.0.1:9/bot", connect_timeout=0.5)
    with pytest.raises(PlatformError, match="cannot reach the Bot API"):
        await ch.start(RecordingInbox())
    await ch.stop()


async def test_poll_loop_survives_conflict_and_errors(fake: FakeTelegram, started) -> None:
    ch, inbox = await started()
    fake.fail("getUpdates", status=409, description="Conflict: terminated by other getUpdates request")
    fake.fail("getUpdates", status=502, description="Bad Gateway")
    fake.push_update(fake.make_message(USER, "still here"))
    assert [m.text for m in await inbox.wait(1)] == ["still here"]


async def test_stop_confirms_offset(fake: FakeTelegram, make_channel) -> None:
    ch = make_channel()
    inbox = RecordingInbox()
    await ch.start(inbox)
    upd = fake.push_update(fake.make_message(USER, "x"))
    await inbox.wait(1)
    await ch.stop()
    last = fake.calls_of("getUpdates")[-1]
    assert last.params.get("offset") == upd["update_id"] + 1 and last.params.get("timeout") == 0
    assert not fake._pending


def test_build_validates_table() -> None:
    with pytest.raises(ConfigError, match=r"channels\.telegram\.bogus: unknown key"):
        build(None, {"token": "1:a", "bogus": 1})
    with pytest.raises(ConfigError, match=r"channels\.telegram\.token"):
        build(None, {})
    with pytest.raises(ConfigError, match=r"channels\.telegram\.webhook_url"):
        build(None, {"token": "1:a", "mode": "webhook"})
    with pytest.raises(ConfigError, match=r"channels\.telegram\.private_streaming"):
        build(None, {"token": "1:a", "private_streaming": "fast"})
    with pytest.raises(ConfigError, match=r"channels\.telegram\.group_streaming"):
        build(None, {"token": "1:a", "group_streaming": "draft"})  # drafts exist only in private chats
    ch = build(None, {"token": "1:a"})
    assert ch.cfg.mode == "polling" and ch.http_routes() == []


# --- webhook -----------------------------------------------------------------------------------


@pytest.fixture
async def webhook_channel(fake: FakeTelegram):
    ch = TelegramChannel(
        tg_config(
            fake,
            mode="webhook",
            webhook_url="https://bot.example.com/telegram/webhook",
            webhook_secret="s3cret-Token_1",
        )
    )
    app = web.Application()
    app.add_routes(ch.http_routes())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    inbox = RecordingInbox()
    await ch.start(inbox)
    async with aiohttp.ClientSession() as http:
        yield ch, inbox, f"http://127.0.0.1:{port}/telegram/webhook", http
    await ch.stop()
    await runner.cleanup()


async def test_webhook_secret(fake: FakeTelegram, webhook_channel) -> None:
    ch, inbox, url, http = webhook_channel
    assert fake.webhook == {
        "url": "https://bot.example.com/telegram/webhook",
        "secret_token": "s3cret-Token_1",
        "allowed_updates": ["message", "edited_message"],
        "drop_pending_updates": False,
    }
    assert not fake.calls_of("getUpdates")
    upd = fake.make_message(USER, "via webhook", update_id=70)
    async with http.post(url, json=upd) as r:
        assert r.status == 401
    async with http.post(url, json=upd, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as r:
        assert r.status == 401
    assert inbox.messages == []
    for _ in range(2):  # Telegram retrying the same update: answered once
        async with http.post(url, json=upd, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-Token_1"}) as r:
            assert r.status == 200
    assert [m.text for m in inbox.messages] == ["via webhook", "via webhook"]  # the core drops the second
    assert inbox.messages[0].message_id == inbox.messages[1].message_id


async def test_webhook_url_rejected(fake: FakeTelegram) -> None:
    ch = TelegramChannel(tg_config(fake, mode="webhook", webhook_url="http://example.com/hook"))
    with pytest.raises(ConfigError, match=r"channels\.telegram\.webhook_url: Telegram rejected .*(?i:https url)"):
        await ch.start(RecordingInbox())
    await ch.stop()


def test_random_secret_when_not_configured(fake: FakeTelegram) -> None:
    a = TelegramChannel(tg_config(fake, mode="webhook", webhook_url="https://x/y"))
    b = TelegramChannel(tg_config(fake, mode="webhook", webhook_url="https://x/y"))
    assert a.webhook_secret != b.webhook_secret and len(a.webhook_secret) >= 32


async def test_second_instance_on_one_token_fails_to_start(fake: FakeTelegram, started, make_channel) -> None:
    first, inbox = await started()
    await fake.wait_for(lambda f: len(f.calls_of("getUpdates")) >= 2)  # first one is long-polling
    second = make_channel(conflict_probe=2)
    with pytest.raises(PlatformError, match="another process is already receiving updates"):
        await second.start(RecordingInbox())
    await second.stop()
    # the first instance keeps going
    fake.push_update(fake.make_message(USER, "still mine"))
    assert [m.text for m in await inbox.wait(1)] == ["still mine"]


async def test_keeps_a_connection_warm(fake: FakeTelegram, started) -> None:
    ch, _ = await started(warm_interval=0.1)
    n = len(fake.calls_of("getMe"))
    await fake.wait_for(lambda f: len(f.calls_of("getMe")) >= n + 2, timeout=2)


async def test_restart_after_stop(fake: FakeTelegram, make_channel) -> None:
    ch = make_channel()
    inbox = RecordingInbox()
    await ch.start(inbox)
    await ch.stop()
    inbox2 = RecordingInbox()
    await ch.start(inbox2)
    try:
        fake.push_update(fake.make_message(USER, "again"))
        assert [m.text for m in await inbox2.wait(1)] == ["again"]
        assert inbox.messages == []
    finally:
        await ch.stop()
    await ch.stop()  # twice is harmless


async def test_a_reply_gets_going_before_the_next_long_poll(fake: FakeTelegram, make_channel, monkeypatch) -> None:
    """The next getUpdates is built only after the reply just handed over has reached its first
    real wait (lane task -> reply task -> typing task: three turns of the event loop)."""
    import asyncio

    events: list[str] = []

    from bot.dispatcher import SETTLE_TURNS

    class Inbox(RecordingInbox):
        async def settle(self) -> None:  # the dispatcher's own settle(): the core knows its turns
            for _ in range(SETTLE_TURNS):
                await asyncio.sleep(0)

        async def submit(self, msg) -> bool:
            async def reply() -> None:  # the dispatcher's lane, the reply, its typing call
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                events.append("reply started")

            asyncio.get_running_loop().create_task(reply())
            events.append("submitted")
            return await super().submit(msg)

    from telegram import Bot

    real = Bot.get_updates

    async def get_updates(self, *a, **kw):
        events.append("poll")
        return await real(self, *a, **kw)

    monkeypatch.setattr(Bot, "get_updates", get_updates)
    ch = make_channel()
    inbox = Inbox()
    await ch.start(inbox)
    try:
        fake.push_update(fake.make_message(USER, "hello", message_id=10))
        await inbox.wait(1)
        await settle(fake, ch)
        i = events.index("submitted")
        assert events[i : i + 3] == ["submitted", "reply started", "poll"]
    finally:
        await ch.stop()


@pytest.mark.parametrize("text", [5, ["a"], {"b": 1}])
async def test_webhook_update_with_text_of_the_wrong_type_is_ignored_not_a_500(
    fake: FakeTelegram, webhook_channel, text
) -> None:
    ch, inbox, url, http = webhook_channel
    upd = fake.make_message(USER, "x", update_id=90)
    upd["message"]["text"] = text
    upd["message"].pop("entities", None)
    async with http.post(url, json=upd, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-Token_1"}) as r:
        assert r.status in (200, 400)
    assert inbox.messages == []


async def test_a_refused_token_is_never_shown(fake: FakeTelegram) -> None:
    token = "987654321:" + "S" * 35
    ch = TelegramChannel(tg_config(fake, token=token))
    with pytest.raises(ConfigError) as err:
        await ch.start(RecordingInbox())
    await ch.stop()
    await ch.aclose()
    assert "refused the bot token" in str(err.value) and "SSSS" not in str(err.value)
