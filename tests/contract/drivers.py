"""One driver per adapter behind one small interface, for the contract tests (see __init__.py).

A driver starts a real `App` with one channel and a scripted model, lets a person write through
the platform itself (a Bot API update, a WebSocket frame, a console line), and reads back what the
person sees and what the platform was asked, with the platform's own arrival timestamps
(`time.monotonic()` everywhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import aiohttp

from bot.app import App
from bot.channel import Channel
from bot.types import Capabilities, ChatKind, Delta, GenerationRequest, InboundMessage, RateBudget
from channels.console import ConsoleChannel
from channels.telegram import TelegramChannel
from tests.channels.telegram.conftest import tg_config
from tests.conftest import make_config
from tests.fakes.scripted_provider import ScriptedProvider
from tests.fakes.telegram_server import FakeTelegram, TelegramHTMLError, parse_telegram_html

TEXT_KINDS = frozenset({"send", "edit", "draft", "start", "delta", "replace", "end", "write"})
"""Request kinds that show text (typing aside). Telegram: send / edit / draft; webchat: its frames;
console: writes."""

CREATES_MESSAGE = frozenset({"send"})


@dataclass(frozen=True, slots=True)
class Request:
    """One platform request made for a reply, as the platform recorded it."""

    t: float  # time.monotonic() when the platform got it
    kind: str  # "typing", or one of TEXT_KINDS
    text: str | None = None  # the visible text it carried (None for typing)
    ok: bool = True
    error: str | None = None
    thread: str | None = None  # the thread / topic it went to, where the platform has them
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_text(self) -> bool:
        return self.kind in TEXT_KINDS


class TimedProvider(ScriptedProvider):
    """A ScriptedProvider that remembers when it produced its first text (time.monotonic())."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.first_piece_at: float | None = None

    async def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        async for d in super().stream(req):
            if d.text and self.first_piece_at is None:
                self.first_piece_at = time.monotonic()
            yield d


class Driver:
    """The common interface. Subclasses set the flags and implement the platform side."""

    name: ClassVar[str]
    # --- what the platform can exhibit (tests are generated only where their needs are True) --
    shows_typing: ClassVar[bool] = False  # a typing indicator goes out before the text
    paces_requests: ClassVar[bool] = False  # min_edit_interval > 0 and configurable
    edits_messages: ClassVar[bool] = False  # a reply's message is edited as text arrives
    has_chat_budget: ClassVar[bool] = False  # sends + edits share a per-chat budget; say_concurrently()
    can_inject_errors: ClassVar[bool] = False  # inject_rate_limit(), reject_markup()
    renders_markup: ClassVar[bool] = False  # Markdown is rendered: the visible text drops **
    can_delete_messages: ClassVar[bool] = False  # delete_last_message()
    drops_connections: ClassVar[bool] = False  # drop_connection(): the person's client goes away

    serve_http: ClassVar[bool] = False  # the App's HTTP server runs (the channel is reached through it)

    def __init__(self) -> None:
        self.app: App | None = None
        self.channel: Channel | None = None
        self.provider: ScriptedProvider | None = None
        self.said = 0  # messages the person wrote that expect a model reply
        self.closed_at: float | None = None  # when the App called channel.aclose()
        self.stopped = False
        self.loop_errors: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._old_handler: Any = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(
        self,
        provider: ScriptedProvider,
        *,
        interval: float | None = None,
        send_interval: float | None = None,
        typing_refresh: float | None = None,
        **cfg: Any,
    ) -> App:
        """Start the App with this channel and `provider`. `interval` / `send_interval` /
        `typing_refresh` tune the channel where it can be tuned (see `caps` for what it got);
        `cfg` are make_config() sections (e.g. dispatcher={"shutdown_grace": 1.0})."""
        self._loop = asyncio.get_running_loop()
        self._old_handler = self._loop.get_exception_handler()
        self._loop.set_exception_handler(self._on_loop_error)
        self.provider = provider
        channel, cfg = await self._build(
            interval=interval, send_interval=send_interval, typing_refresh=typing_refresh, cfg=cfg
        )
        self.channel = channel
        self._watch_aclose(channel)
        self.app = App(
            make_config(**cfg), providers={"local": provider}, channels=[channel], serve_http=self.serve_http
        )
        await self.app.start()
        await self._started()
        return self.app

    async def _build(
        self,
        *,
        interval: float | None,
        send_interval: float | None,
        typing_refresh: float | None,
        cfg: dict[str, Any],
    ) -> tuple[Channel, dict[str, Any]]:
        raise NotImplementedError

    async def _started(self) -> None:
        return None

    async def stop(self, grace: float | None = None) -> None:
        """App.stop(grace): None means the configured dispatcher.shutdown_grace."""
        assert self.app is not None
        self.stopped = True
        await self.app.stop(grace)

    async def aclose(self) -> None:
        """Tear everything down (the fixture calls this); safe to call twice."""
        if self.app is not None and not self.stopped:
            self.stopped = True
            await self.app.stop(grace=0)
        await self._close_platform()

    def release_loop(self) -> None:
        """Give the event loop its exception handler back (after the last check of loop_errors)."""
        if self._loop is not None:
            self._loop.set_exception_handler(self._old_handler)
            self._loop = None

    async def _close_platform(self) -> None:
        return None

    def _watch_aclose(self, channel: Channel) -> None:
        """Record when the App closes the channel's connections (an instance-level wrapper)."""
        original = channel.aclose

        async def aclose() -> None:
            if self.closed_at is None:
                self.closed_at = time.monotonic()
            await original()

        channel.aclose = aclose  # type: ignore[method-assign]

    def closed_seen_at(self) -> float | None:
        """When the person's side saw the connections close, on the clock of `requests()`
        (default: when the App called channel.aclose(), after which nothing more can go out)."""
        return self.closed_at

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.loop_errors.append(context)
        loop.default_exception_handler(context)

    # --- the person ----------------------------------------------------------------------------

    async def say(self, text: str) -> None:
        """The person writes `text` through the platform."""
        raise NotImplementedError

    async def final_texts(self, timeout: float = 15.0) -> list[str]:
        """Wait until every reply asked for has ended, then the messages the person sees, in order."""
        await self.wait_replies(timeout)
        await self._sync()
        return self._visible_messages()

    def _visible_messages(self) -> list[str]:
        raise NotImplementedError

    async def _sync(self) -> None:
        """Wait until what the platform sent has reached the person's client."""
        return None

    def requests(self) -> list[Request]:
        """The platform requests made for replies (typing and text), in arrival order."""
        raise NotImplementedError

    def text_requests(self) -> list[Request]:
        return [r for r in self.requests() if r.is_text]

    @property
    def caps(self) -> Capabilities:
        """What the channel declares for the conversation this driver writes in."""
        assert self.channel is not None
        return self.channel.capabilities(self._probe)

    _probe: ClassVar[InboundMessage]

    # --- waiting -------------------------------------------------------------------------------

    def replies_done(self) -> int:
        """Model replies the App has concluded (delivered, failed or cut), from its metrics."""
        assert self.app is not None
        total = 0.0
        for family in self.app.metrics.replies.collect():
            for s in family.samples:
                if s.name.endswith("_total"):
                    total += s.value
        return int(total)

    def outcomes(self) -> dict[str, int]:
        assert self.app is not None
        out: dict[str, int] = {}
        for family in self.app.metrics.replies.collect():
            for s in family.samples:
                if s.name.endswith("_total") and s.value:
                    out[s.labels["outcome"]] = out.get(s.labels["outcome"], 0) + int(s.value)
        return out

    async def wait_replies(self, timeout: float = 15.0) -> None:
        await self.wait_until(lambda: self.replies_done() >= self.said, timeout, "replies to end")
        assert self.app is not None
        await self.app.responder.flush()

    async def wait_for_text(self, timeout: float = 10.0) -> Request:
        """Wait until the platform got the reply's first text request; return it."""
        await self.wait_until(lambda: any(r.ok for r in self.text_requests()), timeout, "a text request")
        return next(r for r in self.text_requests() if r.ok)

    async def wait_until(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: timed out after {timeout}s waiting for {what}; "
                    f"requests: {[(r.kind, r.ok) for r in self.requests()]}"
                )
            await asyncio.sleep(0.005)

    # --- platform-specific hooks (only on drivers whose flag says so) -------------------------

    async def say_concurrently(self, texts: list[str]) -> None:
        """has_chat_budget: several people write at once in one chat, so their replies run at once."""
        raise NotImplementedError

    def set_chat_budget(self, budget: RateBudget) -> None:
        raise NotImplementedError

    def inject_rate_limit(self, retry_after: float) -> None:
        """can_inject_errors: the reply's first text request is answered "too many requests"."""
        raise NotImplementedError

    def inject_not_modified(self, text: str) -> None:
        """can_inject_errors + edits_messages: the edit carrying `text` takes effect and answers
        "not modified" (as if an earlier attempt had got through)."""
        raise NotImplementedError

    def reject_markup(self) -> None:
        """can_inject_errors: every send / edit with markup is refused ("can't parse")."""
        raise NotImplementedError

    def delete_last_message(self) -> None:
        """can_delete_messages: the person deletes the newest message of the reply."""
        raise NotImplementedError

    async def drop_connection(self) -> None:
        """drops_connections: the person's client goes away mid-reply (the next say() reconnects)."""
        raise NotImplementedError


# --- Telegram ---------------------------------------------------------------------------------

BOT = "switchboard_bot"
_TG_METHODS = {
    "sendChatAction": "typing",
    "sendMessage": "send",
    "editMessageText": "edit",
    "sendMessageDraft": "draft",
}


def _tg_visible(params: dict[str, Any]) -> str:
    text = str(params.get("text", ""))
    if str(params.get("parse_mode", "")).upper() == "HTML":
        try:
            return parse_telegram_html(text)
        except TelegramHTMLError:
            return text
    return text


class _TelegramDriver(Driver):
    """python-telegram-bot polling the fake Bot API server (tests/fakes/telegram_server.py)."""

    chat_id: ClassVar[int]
    shows_typing = True
    paces_requests = True
    can_inject_errors = True
    renders_markup = True

    def __init__(self) -> None:
        super().__init__()
        self.fake: FakeTelegram | None = None
        self._users = itertools.count(4242)

    async def _build(
        self,
        *,
        interval: float | None,
        send_interval: float | None,
        typing_refresh: float | None,
        cfg: dict[str, Any],
    ) -> tuple[Channel, dict[str, Any]]:
        self.fake = await FakeTelegram().start()
        table = self._table(interval, send_interval)
        if typing_refresh is not None:
            table["typing_refresh"] = typing_refresh
        channel = TelegramChannel(tg_config(self.fake, **table))
        cfg = {**cfg, "channels": {"webchat": {"enabled": False}, **cfg.get("channels", {})}}
        return channel, cfg

    def _table(self, interval: float | None, send_interval: float | None) -> dict[str, Any]:
        raise NotImplementedError

    async def _close_platform(self) -> None:
        if self.fake is not None:
            await self.fake.stop()
            self.fake = None

    @property
    def _fake(self) -> FakeTelegram:
        assert self.fake is not None
        return self.fake

    def _message(self, text: str, **kw: Any) -> dict[str, Any]:
        raise NotImplementedError

    async def say(self, text: str) -> None:
        self.said += 1
        self._fake.push_update(self._message(text, user_id=next(self._users)))

    def _visible_messages(self) -> list[str]:
        return self._fake.texts(self.chat_id)

    def requests(self) -> list[Request]:
        topics = {m.message_id: m.thread_id for m in self._fake.sent.get(self.chat_id, [])}
        out = []
        for c in self._fake.calls:
            kind = _TG_METHODS.get(c.method)
            if kind is None or c.params.get("chat_id") != self.chat_id:
                continue
            text = None if kind == "typing" else _tg_visible(c.params)
            thread = c.params.get("message_thread_id")
            if kind == "edit":
                thread = topics.get(c.params.get("message_id"))
            out.append(
                Request(c.t, kind, text, c.status == 200, c.error, None if thread is None else str(thread), c.params)
            )
        return out

    # --- failure injection (the fake answers as Telegram would) --------------------------------

    _first_text_method: ClassVar[str]

    def inject_rate_limit(self, retry_after: float) -> None:
        self._fake.flood(self._first_text_method, retry_after, when=self._here)

    def inject_not_modified(self, text: str) -> None:
        self._fake.not_modified(when=lambda p: self._here(p) and _tg_visible(p) == text)

    def reject_markup(self) -> None:
        for method in ("sendMessage", "editMessageText"):
            self._fake.fail(
                method,
                description='Bad Request: can\'t parse entities: Unsupported start tag "b" at byte offset 5',
                when=lambda p: self._here(p) and str(p.get("parse_mode", "")).upper() == "HTML",
                times=1000,
            )

    def delete_last_message(self) -> None:
        sent = self._fake.sent.get(self.chat_id, [])
        assert sent, "no message to delete"
        sent.pop()  # gone from the chat: Telegram answers an edit of it with "message to edit not found"

    def _here(self, params: dict[str, Any]) -> bool:
        return params.get("chat_id") == self.chat_id


class TelegramPrivateDriver(_TelegramDriver):
    """A private chat: drafts (sendMessageDraft) while writing, one sendMessage per part."""

    name = "telegram-private"
    chat_id = 4242
    _first_text_method = "sendMessageDraft"
    _probe = InboundMessage("telegram", "telegram:4242", "4242", "", "probe", ChatKind.PRIVATE, chat_id="4242")

    def _table(self, interval: float | None, send_interval: float | None) -> dict[str, Any]:
        return {
            "private_streaming": "draft",
            "draft_interval": 0.05 if interval is None else interval,  # min_edit_interval
            "edit_interval": 0.1 if send_interval is None else send_interval,  # min_send_interval
        }

    def _message(self, text: str, **kw: Any) -> dict[str, Any]:
        kw.pop("user_id", None)  # one person in a private chat
        return self._fake.make_message(self.chat_id, text, **kw)


class TelegramGroupDriver(_TelegramDriver):
    """A supergroup: the bot is mentioned; it sends one message per part and edits it; every send
    and edit in the group shares the group's budget."""

    name = "telegram-group"
    chat_id = -1001234
    edits_messages = True
    has_chat_budget = True
    can_delete_messages = True
    _first_text_method = "sendMessage"
    _probe = InboundMessage("telegram", "telegram:-1001234", "1", "", "probe", ChatKind.GROUP, chat_id="-1001234")

    def _table(self, interval: float | None, send_interval: float | None) -> dict[str, Any]:
        # sends and edits share edit_interval here; the group budget is out of the way unless a
        # test sets one (set_chat_budget)
        return {
            "group_streaming": "edit",
            "edit_interval": 0.1 if interval is None else interval,
            "group_messages_per_minute": 100_000,
        }

    def _message(self, text: str, **kw: Any) -> dict[str, Any]:
        return self._fake.make_message(self.chat_id, f"@{BOT} {text}", **kw)

    async def say_concurrently(self, texts: list[str]) -> None:
        """One message per forum topic of the group: one conversation each (so the replies run at
        once), one chat (so they share its budget)."""
        for i, text in enumerate(texts):
            self.said += 1
            self._fake.push_update(
                self._message(text, user_id=next(self._users), thread_id=50 + i, is_topic=True),
            )

    def set_chat_budget(self, budget: RateBudget) -> None:
        # group_messages_per_minute can only say "per minute": scale the budget down in place
        assert isinstance(self.channel, TelegramChannel)
        self.channel._caps["group"] = replace(self.channel._caps["group"], chat_budget=budget)


# --- webchat ----------------------------------------------------------------------------------


class WebchatDriver(Driver):
    """A browser tab on the webchat page: a real WebSocket client; the visible text is what the
    page's script would show (one bubble per reply id: delta appends, replace / end set)."""

    name = "webchat"
    serve_http = True
    shows_typing = True
    drops_connections = True
    _probe = InboundMessage("webchat", "webchat:contract", "webchat:contract", "", "probe", chat_id="webchat:contract")

    def __init__(self) -> None:
        super().__init__()
        self.session_id = "contract"
        self.frames: list[tuple[float, dict[str, Any]]] = []  # (arrival, frame), every socket
        self.closes: list[tuple[float, int, int | None]] = []  # (arrival, frames before it, close code)
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pongs: set[bytes] = set()
        self._pong = asyncio.Event()
        self._ids = itertools.count(1)
        self.reader_errors: list[BaseException] = []

    async def _build(
        self,
        *,
        interval: float | None,
        send_interval: float | None,
        typing_refresh: float | None,
        cfg: dict[str, Any],
    ) -> tuple[Channel, dict[str, Any]]:
        from bot.config import WebchatConfig
        from channels.webchat import WebchatChannel

        full = make_config(**cfg)
        channel = WebchatChannel(WebchatConfig(), max_input_chars=full.bot.max_input_chars)
        return channel, cfg

    async def _started(self) -> None:
        self._http = aiohttp.ClientSession()
        await self._connect()

    async def _connect(self) -> None:
        assert self._http is not None and self.app is not None
        # autoping off: the reader sees the PONG of its own pings (the barrier in _sync)
        self._ws = await self._http.ws_connect(
            f"{self.app.base_url}/ws?session={self.session_id}", autoping=False, max_msg_size=16 * 1024 * 1024
        )
        self._reader = asyncio.create_task(self._read(self._ws))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            while True:
                msg = await ws.receive()
                now = time.monotonic()
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.frames.append((now, json.loads(msg.data)))
                elif msg.type == aiohttp.WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type == aiohttp.WSMsgType.PONG:
                    self._pongs.add(bytes(msg.data))
                    self._pong.set()
                else:  # CLOSE / CLOSING / CLOSED / ERROR
                    self.closes.append((now, len(self.frames), ws.close_code))
                    return
        except Exception as e:  # recorded, asserted on by the tests that care
            self.reader_errors.append(e)

    async def say(self, text: str) -> None:
        if self._ws is None or self._ws.closed:
            await self._connect()
        assert self._ws is not None
        self.said += 1
        await self._ws.send_json({"type": "message", "id": str(next(self._ids)), "text": text})

    async def _sync(self) -> None:
        """A ping answered after every frame the server wrote before it: all of them are here."""
        ws = self._ws
        if ws is None or ws.closed:
            if self._reader is not None:
                await asyncio.wait_for(asyncio.shield(self._reader), 5.0)
            return
        token = f"sync-{time.monotonic_ns()}".encode()
        await ws.ping(token)
        async with asyncio.timeout(5.0):
            while token not in self._pongs:
                self._pong.clear()
                await self._pong.wait()

    def _visible_messages(self) -> list[str]:
        bubbles: dict[int, str] = {}
        for _, m in self.frames:
            if m["type"] in ("typing", "error"):
                continue
            rid = m["reply"]
            shown = bubbles.setdefault(rid, "")
            if m["type"] == "delta":
                bubbles[rid] = shown + m["text"]
            elif m["type"] in ("replace", "end"):
                bubbles[rid] = m["text"]
        return list(bubbles.values())

    def requests(self) -> list[Request]:
        return [(Request(t, m["type"], m.get("text"), raw=m)) for t, m in self.frames if m["type"] != "error"]

    def closed_seen_at(self) -> float | None:
        """When the client got the server's close (frames are in order: every frame before it)."""
        return self.closes[-1][0] if self.closes and self.stopped else None

    async def drop_connection(self) -> None:
        ws = self._ws
        assert ws is not None
        await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"tab closed")
        if self._reader is not None:
            await asyncio.wait_for(asyncio.shield(self._reader), 5.0)

    async def _close_platform(self) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._http is not None:
            await self._http.close()
            self._http = None


# --- console ----------------------------------------------------------------------------------


class TranscriptIO(io.StringIO):
    """A terminal: keeps every write with its time."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[float, str]] = []

    def write(self, s: str) -> int:
        self.writes.append((time.monotonic(), s))
        return super().write(s)


class ConsoleDriver(Driver):
    """`switchboard chat`: lines typed into ConsoleChannel.say, the reply written to a terminal.

    The console streams each part as it grows and ends it with a newline written on its own; the
    visible messages are the transcript cut at those newlines.
    """

    name = "console"
    _probe = InboundMessage("console", "console:local", "local", "", "probe", chat_id="console:local")

    def __init__(self) -> None:
        super().__init__()
        self.out = TranscriptIO()

    async def _build(
        self,
        *,
        interval: float | None,
        send_interval: float | None,
        typing_refresh: float | None,
        cfg: dict[str, Any],
    ) -> tuple[Channel, dict[str, Any]]:
        cfg = {**cfg, "channels": {"webchat": {"enabled": False}, **cfg.get("channels", {})}}
        return ConsoleChannel(out=self.out), cfg

    @property
    def console(self) -> ConsoleChannel:
        assert isinstance(self.channel, ConsoleChannel)
        return self.channel

    async def say(self, text: str) -> None:
        self.said += 1
        assert await self.console.say(text)

    def _visible_messages(self) -> list[str]:
        parts: list[str] = []
        cur: str | None = None
        for _, s in self.out.writes:
            if s == "\n" and cur is not None:
                parts.append(cur)
                cur = None
            else:
                cur = (cur or "") + s
        if cur is not None:
            parts.append(cur)  # a part never ended: shown as it is
        return parts

    def requests(self) -> list[Request]:
        return [Request(t, "write", s) for t, s in self.out.writes]


# --- Discord ----------------------------------------------------------------------------------


class DiscordGuildDriver(Driver):
    """A guild text channel: discord.py on the fake gateway, people mention the bot; one message per
    part, edited as the answer grows, every send and edit in the channel sharing its budget.

    Discord has no "not modified" answer (an edit with unchanged content simply succeeds) and
    words a deleted message as "Unknown Message", so the two contract tests written around
    Telegram's answers (not-modified, message-to-edit-not-found) are not generated for it: hence
    `edits_messages` and `can_delete_messages` are False although the channel edits and handles
    deleted messages (tests/channels/discord/test_e2e.py covers both).
    """

    name = "discord-guild"
    guild_id = 100
    channel_id = 101
    shows_typing = True
    paces_requests = True
    has_chat_budget = True
    can_inject_errors = True
    _probe = InboundMessage("discord", "discord:101:user-1", "1", "", "probe", ChatKind.GROUP, chat_id="101")

    def __init__(self) -> None:
        super().__init__()
        from tests.fakes.discord_server import FakeDiscord

        self.fake: FakeDiscord | None = None
        self._users = itertools.count(4242)

    async def _build(
        self,
        *,
        interval: float | None,
        send_interval: float | None,
        typing_refresh: float | None,
        cfg: dict[str, Any],
    ) -> tuple[Channel, dict[str, Any]]:
        from channels.discord import DiscordChannel
        from tests.channels.discord.conftest import dc_config
        from tests.fakes.discord_server import FakeDiscord

        self.fake = await FakeDiscord(guilds=[self.guild_id]).start()
        table: dict[str, Any] = {
            "edit_interval": 0.1 if interval is None else interval,
            "channel_messages": 100_000,  # out of the way unless a test sets one (set_chat_budget)
            "channel_seconds": 1.0,
            "sync_commands": False,
        }
        if typing_refresh is not None:
            table["typing_refresh"] = typing_refresh
        channel = DiscordChannel(dc_config(self.fake, **table))
        cfg = {**cfg, "channels": {"webchat": {"enabled": False}, **cfg.get("channels", {})}}
        return channel, cfg

    async def _close_platform(self) -> None:
        if self.fake is not None:
            await self.fake.stop()
            self.fake = None

    @property
    def _fake(self) -> Any:
        assert self.fake is not None
        return self.fake

    async def say(self, text: str) -> None:
        self.said += 1
        fake = self._fake
        await fake.message_create(
            self.channel_id, f"<@{fake.bot_id}> {text}", guild_id=self.guild_id, user_id=next(self._users)
        )

    async def say_concurrently(self, texts: list[str]) -> None:
        """Different people in one channel: one conversation each, one channel budget."""
        for text in texts:
            await self.say(text)

    def set_chat_budget(self, budget: RateBudget) -> None:
        from channels.discord import DiscordChannel

        assert isinstance(self.channel, DiscordChannel)
        self.channel._caps["chat"] = replace(self.channel._caps["chat"], chat_budget=budget)

    def _visible_messages(self) -> list[str]:
        return list(self._fake.texts(self.channel_id))

    def requests(self) -> list[Request]:
        fake = self._fake
        kinds = {"typing": "typing", "send": "send", "edit": "edit"}
        question: dict[str, str] = {}  # bot message id -> the question it answers (one reply each)
        for m in fake.messages.values():
            if m.reference is not None:
                question[str(m.id)] = str(m.reference)
        prefix = f"/channels/{self.channel_id}/"
        out = []
        for r in fake.requests:
            kind = kinds.get(r.route)
            if kind is None or not r.path.startswith(prefix):
                continue
            body = r.body if isinstance(r.body, dict) else {}
            thread = None
            if kind == "send":
                ref = body.get("message_reference") or {}
                thread = ref.get("message_id") or (
                    question.get(str((r.answer or {}).get("id"))) if r.status < 300 else None
                )
            elif kind == "edit":
                thread = question.get(r.path.rsplit("/", 1)[-1])
            error = r.error
            if r.status == 429:
                error = f"{r.error} (retry after {r.answer['retry_after']})"
            text = None if kind == "typing" else str(body.get("content", ""))
            out.append(Request(r.t, kind, text, r.status < 300, error, thread, body))
        return out

    def inject_rate_limit(self, retry_after: float) -> None:
        self._fake.rate_limit("send", retry_after)


class DiscordDMDriver(DiscordGuildDriver):
    """A DM with the bot: every message is answered, no mention; one person, one conversation."""

    name = "discord-dm"
    channel_id = 555
    has_chat_budget = False
    _probe = InboundMessage("discord", "discord:555", "4242", "", "probe", ChatKind.DM, chat_id="555")

    async def say(self, text: str) -> None:
        self.said += 1
        await self._fake.message_create(self.channel_id, text)


DRIVERS: list[type[Driver]] = [
    TelegramPrivateDriver,
    TelegramGroupDriver,
    WebchatDriver,
    ConsoleDriver,
    DiscordGuildDriver,
    DiscordDMDriver,
]
"""Every adapter in the suite; a new one is one line here (see tests/contract/__init__.py)."""


# --- Slack ------------------------------------------------------------------------------------

_SLACK_KINDS = {
    "chat.startStream": "send",  # a native stream is a new message when it starts ...
    "chat.appendStream": "draft",
    "chat.stopStream": "draft",  # ... and only closed when it is stopped (the core's finish)
    "chat.postMessage": "send",
    "chat.update": "edit",
}


class _SlackDriver(Driver):
    """slack-bolt over Socket Mode on the fake Slack (tests/fakes/slack_server.py); answers stream
    through Slack's native streams (`chat.startStream` / `appendStream` / `stopStream`).

    Slack reads the Markdown of a stream itself (like Discord's messages), so `renders_markup` is
    False and the visible text of a streamed message is the Markdown it was given. Slack has no
    "not modified" answer and a stream cannot be edited while it runs, hence `edits_messages` and
    `can_delete_messages` are False (tests/channels/slack covers the fallback to updates, edited
    questions and expired streams). The per-channel budget meters only whole messages here (a
    stream's appends are drafts to the core), so `has_chat_budget` is False too.
    """

    channel_id: ClassVar[str]
    paces_requests = True
    can_inject_errors = True

    def __init__(self) -> None:
        super().__init__()
        from tests.fakes.slack_server import FakeSlack

        self.fake: FakeSlack | None = None
        self._users = itertools.count(4242)

    async def _build(
        self,
        *,
        interval: float | None,
        send_interval: float | None,
        typing_refresh: float | None,
        cfg: dict[str, Any],
    ) -> tuple[Channel, dict[str, Any]]:
        from channels.slack import SlackChannel
        from tests.channels.slack.conftest import sl_config
        from tests.fakes.slack_server import FakeSlack

        self.fake = await FakeSlack().start()
        table: dict[str, Any] = {
            "stream_interval": 0.05 if interval is None else interval,
            "edit_interval": 0.1 if send_interval is None else send_interval,
            "channel_messages": 100_000,
            "channel_seconds": 1.0,
        }
        if typing_refresh is not None:
            table["status_refresh"] = typing_refresh
        channel = SlackChannel(sl_config(self.fake, **table))
        cfg = {**cfg, "channels": {"webchat": {"enabled": False}, **cfg.get("channels", {})}}
        return channel, cfg

    async def _close_platform(self) -> None:
        if self.fake is not None:
            await self.fake.stop()
            self.fake = None

    @property
    def _fake(self) -> Any:
        assert self.fake is not None
        return self.fake

    def _visible_messages(self) -> list[str]:
        return [m.text if m.markdown else self._fake.shown(m) for m in self._fake.bot_messages(self.channel_id)]

    def requests(self) -> list[Request]:
        fake = self._fake
        shown: dict[str, str] = {}  # stream ts -> its text so far
        thread_of: dict[str, str] = {}  # bot message ts -> its thread
        out = []
        for c in fake.calls:
            p = c.params
            if p.get("channel", p.get("channel_id")) != self.channel_id:
                continue
            error = c.error
            if c.status == 429:
                error = f"{c.error} (retry after {c.retry_after:g})"
            ok = c.status == 200 and c.error is None
            if c.method in ("reactions.add", "reactions.remove", "assistant.threads.setStatus"):
                on = c.method == "reactions.add" or (c.method.endswith("setStatus") and bool(p.get("status")))
                thread = str(p.get("thread_ts") or p.get("timestamp"))
                out.append(Request(c.t, "typing" if on else "clear", None, ok, error, thread, p))
                continue
            kind = _SLACK_KINDS.get(c.method)
            if kind is None:
                continue
            ts = str(p.get("ts") or (c.answer or {}).get("ts") or "")
            if "thread_ts" in p and ts:
                thread_of[ts] = str(p["thread_ts"])
            added = str(p.get("markdown_text") or "")
            if c.method == "chat.startStream":
                text = added
            elif c.method in ("chat.appendStream", "chat.stopStream"):
                text = shown.get(ts, "") + added
            else:
                text = str(p.get("text") or "")
            if ok and c.method in ("chat.startStream", "chat.appendStream", "chat.stopStream"):
                shown[ts] = text
            out.append(Request(c.t, kind, text, ok, error, thread_of.get(ts, p.get("thread_ts")), p))
        return out

    def inject_rate_limit(self, retry_after: float) -> None:
        self._fake.rate_limit("chat.startStream", retry_after, when=lambda p: p.get("channel") == self.channel_id)


class SlackAssistantDriver(_SlackDriver):
    """The assistant panel: one assistant thread in the person's DM with the bot; the status
    ("is thinking…") is the typing indicator, refreshed while the model thinks."""

    name = "slack-assistant"
    channel_id = "D0042"
    shows_typing = True
    _probe = InboundMessage("slack", "slack:D0042:1.0", "U0042", "", "probe", ChatKind.DM, chat_id="D0042")

    def __init__(self) -> None:
        super().__init__()
        self.thread_ts: str | None = None

    async def _started(self) -> None:
        fake = self._fake
        self.thread_ts, env = await fake.assistant_thread_started(channel=self.channel_id)
        await fake.wait_ack(env)
        await self.wait_until(lambda: bool(fake.of("assistant.threads.setSuggestedPrompts")), 5.0, "prompts")

    async def say(self, text: str) -> None:
        self.said += 1
        await self._fake.dm(text, channel=self.channel_id, thread_ts=self.thread_ts)


class SlackThreadDriver(_SlackDriver):
    """A channel: people mention the bot, each answered in a thread under the mention (a stream
    with its recipient); an eyes reaction on the question while the model thinks."""

    name = "slack-thread"
    channel_id = "C0100"
    _probe = InboundMessage("slack", "slack:C0100:1.0", "U0042", "", "probe", ChatKind.THREAD, chat_id="C0100")

    async def say(self, text: str) -> None:
        self.said += 1
        await self._fake.mention(text, channel=self.channel_id, user=f"U{next(self._users)}")


DRIVERS += [SlackAssistantDriver, SlackThreadDriver]
