"""The surface: one Bot API call per move, Telegram errors translated, against the recording fake."""

from __future__ import annotations

import time

import pytest

from bot.errors import MarkupRejected, MessageGone, NotModified, PlatformError, RateLimited
from bot.types import MessageRef
from channels.telegram import TelegramChannel
from channels.telegram.surface import TelegramSurface
from tests.fakes.telegram_server import FakeTelegram

PRIVATE = 4242
GROUP = -1001234


CLIENTS = {
    "fast": {},  # the default: the four reply calls straight over aiohttp
    "ptb-aiohttp": {"fast_calls": False},  # PTB's typed methods over our aiohttp request class
    "ptb-httpx": {"http_client": "httpx"},  # PTB's typed methods over its own HTTPXRequest
}


@pytest.fixture(params=list(CLIENTS))
async def channel(request, fake: FakeTelegram, make_channel) -> TelegramChannel:
    ch = make_channel(**CLIENTS[request.param])
    await ch.bot.initialize()
    yield ch
    await ch.bot.shutdown()


def surface(ch: TelegramChannel, chat_id: int, *, thread: int | None = None, message_id: int = 55) -> TelegramSurface:
    from bot.types import ChatKind, InboundMessage

    msg = InboundMessage(
        "telegram",
        f"telegram:{chat_id}",
        str(PRIVATE),
        "hi",
        f"{chat_id}:{message_id}",
        ChatKind.PRIVATE if chat_id > 0 else ChatKind.GROUP,
        chat_id=str(chat_id),
        thread_id=None if thread is None else str(thread),
        reply_to=str(message_id),
    )
    return ch.surface(msg)


async def test_send_renders_html_and_returns_ref(fake: FakeTelegram, channel) -> None:
    s = surface(channel, PRIVATE)
    ref = await s.send("Hello **world** <3")
    call = fake.calls_of("sendMessage")[-1]
    assert call.params["parse_mode"] == "HTML"
    assert call.params["text"] == "Hello <b>world</b> &lt;3"
    assert call.params["link_preview_options"] == {"is_disabled": True}
    assert "reply_parameters" not in call.params  # private chats are not quoted
    assert fake.texts(PRIVATE) == ["Hello world <3"]
    assert ref.id == str(fake.sent[PRIVATE][0].message_id)


async def test_plain_send_has_no_parse_mode(fake: FakeTelegram, channel) -> None:
    await surface(channel, PRIVATE).send("**raw**", plain=True)
    call = fake.calls_of("sendMessage")[-1]
    assert "parse_mode" not in call.params
    assert fake.texts(PRIVATE) == ["**raw**"]


async def test_group_reply_quotes_first_message_only_and_keeps_topic(fake: FakeTelegram, channel) -> None:
    s = surface(channel, GROUP, thread=77, message_id=900)
    await s.send("part one")
    await s.send("part two")
    first, second = fake.calls_of("sendMessage")
    assert first.params["reply_parameters"] == {"message_id": 900, "allow_sending_without_reply": True}
    assert "reply_parameters" not in second.params
    assert first.params["message_thread_id"] == 77 and second.params["message_thread_id"] == 77


async def test_edit(fake: FakeTelegram, channel) -> None:
    s = surface(channel, GROUP)
    ref = await s.send("one")
    await s.edit(ref, "one *two*")
    assert fake.texts(GROUP) == ["one two"]
    call = fake.calls_of("editMessageText")[-1]
    assert call.params["message_id"] == int(ref.id) and call.params["text"] == "one <i>two</i>"


async def test_not_modified(fake: FakeTelegram, channel) -> None:
    s = surface(channel, GROUP)
    ref = await s.send("same")
    with pytest.raises(NotModified):
        await s.edit(ref, "same")


async def test_edit_of_missing_message_is_gone(channel) -> None:
    with pytest.raises(MessageGone):
        await surface(channel, GROUP).edit(MessageRef("999999"), "x")


async def test_flood_control_becomes_rate_limited(fake: FakeTelegram, channel) -> None:
    fake.flood("sendMessage", 7)
    with pytest.raises(RateLimited) as e:
        await surface(channel, PRIVATE).send("hi")
    assert e.value.retry_after == 7.0
    assert fake.texts(PRIVATE) == []


async def test_parse_error_becomes_markup_rejected(fake: FakeTelegram, channel) -> None:
    fake.fail(
        "sendMessage", description='Bad Request: can\'t parse entities: Unsupported start tag "x" at byte offset 3'
    )
    s = surface(channel, PRIVATE)
    with pytest.raises(MarkupRejected):
        await s.send("hi **there**")
    await s.send("hi **there**", plain=True)
    assert fake.texts(PRIVATE) == ["hi **there**"]


async def test_other_errors_are_platform_errors(fake: FakeTelegram, channel) -> None:
    fake.fail("sendMessage", status=403, description="Forbidden: bot was blocked by the user")
    with pytest.raises(PlatformError) as e:
        await surface(channel, PRIVATE).send("hi")
    assert type(e.value) is PlatformError and "blocked" in str(e.value)


async def test_draft_same_id_never_empty(fake: FakeTelegram, channel) -> None:
    s = surface(channel, PRIVATE)
    await s.draft("")
    await s.draft("   ")
    await s.draft("Hel")
    await s.draft("Hello **wor")
    await s.finish("Hello **world**")
    drafts = fake.calls_of("sendMessageDraft")
    assert [c.params["text"] for c in drafts] == ["Hel", "Hello **wor"]
    assert len({c.params["draft_id"] for c in drafts}) == 1 and drafts[0].params["draft_id"] != 0
    assert fake.texts(PRIVATE) == ["Hello world"]


async def test_two_replies_get_different_draft_ids(channel) -> None:
    assert surface(channel, PRIVATE).draft_id != surface(channel, PRIVATE).draft_id


async def test_typing_goes_to_the_topic(fake: FakeTelegram, channel) -> None:
    await surface(channel, GROUP, thread=12).typing()
    call = fake.calls_of("sendChatAction")[-1]
    assert call.params == {"chat_id": GROUP, "action": "typing", "message_thread_id": 12}


async def test_group_budget_is_declared_not_applied_by_the_surface(fake: FakeTelegram, make_channel) -> None:
    """The group budget is a capability the core applies (ReplyStream); surfaces never wait."""
    from bot.types import ChatKind, InboundMessage, RateBudget

    ch = make_channel(group_messages_per_minute=3)

    def caps(chat: int, kind: ChatKind):
        return ch.capabilities(InboundMessage("telegram", "c", "1", "t", "1", kind, chat_id=str(chat)))

    assert caps(GROUP, ChatKind.GROUP).chat_budget == RateBudget(3, 60.0)
    assert caps(GROUP, ChatKind.THREAD).chat_budget == RateBudget(3, 60.0)
    assert caps(PRIVATE, ChatKind.PRIVATE).chat_budget is None
    await ch.bot.initialize()
    try:
        s = surface(ch, GROUP)
        t0 = time.monotonic()
        for i in range(5):  # more than the budget: the surface itself does not pace
            await s.send(str(i))
        assert time.monotonic() - t0 < 0.5
    finally:
        await ch.bot.shutdown()


async def test_keepalive_is_minutes_with_httpx(make_channel) -> None:
    ch = make_channel(http_client="httpx")
    await ch.bot.initialize()
    try:
        pool = ch.bot.request._client._transport._pool  # type: ignore[attr-defined]
        assert pool._keepalive_expiry == 300.0
        assert pool._max_connections == 256
    finally:
        await ch.bot.shutdown()


async def test_keepalive_is_minutes_with_aiohttp(make_channel) -> None:
    from channels.telegram.transport import AiohttpRequest

    ch = make_channel()
    await ch.bot.initialize()
    try:
        req = ch.bot.request
        assert isinstance(req, AiohttpRequest) and ch._fast is not None
        conn = req.session.connector
        assert conn._keepalive_timeout == 300.0 and conn.limit == 256
    finally:
        await ch.bot.shutdown()


async def test_fast_calls_send_what_ptb_sends(fake: FakeTelegram, make_channel) -> None:
    """The direct calls put the same form fields on the wire as PTB's typed methods."""
    seen = {}
    for name, over in (("fast", {}), ("ptb", {"fast_calls": False})):
        ch = make_channel(**over)
        await ch.bot.initialize()
        try:
            start = len(fake.calls)
            s = surface(ch, GROUP, thread=9, message_id=5)
            await s.typing()
            ref = await s.send("a *b*")
            await s.edit(ref, "a *c*")
            ps = surface(ch, PRIVATE)
            await ps.draft("d **e**")
            seen[name] = [
                (c.method, {k: v for k, v in c.params.items() if k not in ("message_id", "draft_id")})
                for c in fake.calls[start:]
            ]
        finally:
            await ch.bot.shutdown()
    assert seen["fast"] == seen["ptb"]


@pytest.mark.parametrize("client", ["httpx", "aiohttp"])
async def test_both_clients_speak_to_the_api(fake: FakeTelegram, make_channel, client: str) -> None:
    ch = make_channel(http_client=client)
    await ch.bot.initialize()
    try:
        s = surface(ch, PRIVATE)
        ref = await s.send("x & y")
        await s.edit(ref, "x & z")
        fake.flood("sendChatAction", 3)
        with pytest.raises(RateLimited):
            await s.typing()
        assert fake.texts(PRIVATE) == ["x & z"]
    finally:
        await ch.bot.shutdown()


def test_token_is_scrubbed_from_error_text() -> None:
    from channels.telegram.transport import scrub

    msg = "400, message='Bad', url='https://api.telegram.org/bot123456:AAE-secret_x/sendMessage'"
    assert "secret" not in scrub(msg) and "/bot<token>/sendMessage" in scrub(msg)


def test_form_body_encodes_like_ptb_and_aiohttp() -> None:
    """Strings as they are, everything else JSON, urlencoded (what aiohttp's FormData made of it)."""
    import json
    from urllib.parse import parse_qsl

    import aiohttp

    from channels.telegram.api import form_body

    params = {
        "chat_id": -1001234,
        "text": "a & b = <b>ç</b> + 😀\nnext",
        "parse_mode": "HTML",
        "draft_id": 7,
        "link_preview_options": {"is_disabled": True},
        "disable_notification": False,
        "reply_parameters": {"message_id": 5, "allow_sending_without_reply": True, "quote": "é"},
    }
    body = form_body(params)
    legacy = aiohttp.FormData(
        {k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for k, v in params.items()}
    )()
    assert body == legacy._value
    fields = dict(parse_qsl(body.decode(), keep_blank_values=True))
    assert fields["text"] == params["text"] and fields["chat_id"] == "-1001234"
    assert fields["disable_notification"] == "false"
    assert json.loads(fields["reply_parameters"]) == params["reply_parameters"]
