"""A fake Telegram Bot API on 127.0.0.1 that records every call.

Point python-telegram-bot at it with `base_url=fake.base_url`. Routes `/bot{token}/{method}`;
requests are form-encoded with JSON-encoded non-string values (as PTB sends them). It keeps the
messages the bot sent per chat (visible text after HTML parsing, edit history), long-polls
`getUpdates` with offsets, checks `parse_mode="HTML"` the way Telegram does (unknown or unclosed
tags, bare `<` / `&` → "can't parse entities"), refuses texts over 4096 characters, answers an
edit with unchanged text with "message is not modified", and can be scripted to fail any method
(429 with retry_after, 400, 401, 409, ...).
"""

from __future__ import annotations

import asyncio
import html
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

MAX_TEXT = 4096
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
_STRING_FIELDS = {"text", "parse_mode", "url", "secret_token", "action", "caption", "description", "username"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    t: float  # time.monotonic() when the request arrived
    status: int = 200
    error: str | None = None
    result: Any = None  # the answer's `result` when the call succeeded


@dataclass
class SentMessage:
    chat_id: int
    message_id: int
    text: str  # visible text
    raw: str  # as sent (HTML or plain)
    parse_mode: str | None
    thread_id: int | None = None
    reply_to: int | None = None
    edits: list[tuple[float, str]] = field(default_factory=list)  # (t, visible text) per edit


@dataclass
class _Failure:
    method: str
    status: int
    description: str
    retry_after: float | None
    times: int
    when: Callable[[dict[str, Any]], bool] | None
    apply: bool = False  # carry the call out first, then answer with the error (a lost answer)


class TelegramHTMLError(ValueError):
    pass


_ALLOWED = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "tg-emoji",
    "code",
    "pre",
    "blockquote",
}
_BAD_AMP = re.compile(r"&(?!(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)")


class _TgHTML(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.out: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _ALLOWED:
            raise TelegramHTMLError(f'Unsupported start tag "{tag}"')
        if any(t in ("pre", "code") for t in self.stack) and not (tag == "code" and self.stack[-1:] == ["pre"]):
            raise TelegramHTMLError(f'Can\'t nest "{tag}" inside pre/code')
        if tag == "blockquote" and "blockquote" in self.stack:
            raise TelegramHTMLError("Blockquote entities can't be nested")
        if tag == "a":
            href = dict(attrs).get("href") or ""
            if not re.match(r"^(https?|tg|mailto|ftp)://?", href):
                raise TelegramHTMLError(f'Wrong URL "{href}"')
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            raise TelegramHTMLError(f'Unmatched end tag "{tag}"')
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if "<" in data:
            raise TelegramHTMLError("Unexpected '<'")
        self.out.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in ("lt", "gt", "amp", "quot"):
            raise TelegramHTMLError(f'Unsupported HTML entity "&{name};"')
        self.out.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.out.append(html.unescape(f"&#{name};"))

    def unknown_decl(self, data: str) -> None:
        raise TelegramHTMLError("Unexpected declaration")

    def handle_comment(self, data: str) -> None:
        raise TelegramHTMLError("Unexpected comment")


def parse_telegram_html(text: str) -> str:
    """The visible text of `text` sent with parse_mode=HTML; TelegramHTMLError when Telegram would refuse it."""
    if _BAD_AMP.search(text):
        raise TelegramHTMLError("Unexpected '&'")
    p = _TgHTML()
    p.feed(text)
    p.close()
    if p.rawdata:  # an unfinished tag left in the buffer
        raise TelegramHTMLError("Unexpected end of tag")
    if p.stack:
        raise TelegramHTMLError(f'Can\'t find end tag corresponding to start tag "{p.stack[-1]}"')
    return "".join(p.out)


class FakeTelegram:
    def __init__(
        self,
        token: str = "123456:TEST-token",
        *,
        bot_id: int = 777000,
        username: str = "switchboard_bot",
        control: bool = False,
        port: int = 0,
        group_per_minute: int | None = None,
    ) -> None:
        self.token = token
        # Telegram's documented flood limit for groups: at most this many sendMessage +
        # editMessageText per group in any 60 s, else 429 with retry_after (None: no limit)
        self.group_per_minute = group_per_minute
        self._group_window: dict[int, list[float]] = {}
        self.control = control  # /_control/push and /_control/state, for driving it from another process
        self.bot_user = {"id": bot_id, "is_bot": True, "first_name": "Switchboard", "username": username}
        self.calls: list[Call] = []
        self.sent: dict[int, list[SentMessage]] = {}  # chat id -> messages the bot sent, in order
        self.drafts: list[tuple[float, int, int, str]] = []  # (t, chat_id, draft_id, visible text)
        self.webhook: dict[str, Any] | None = None
        self.chat_types: dict[int, str] = {}
        self._pending: list[dict[str, Any]] = []
        self._forced: list[dict[str, Any]] = []  # delivered once whatever the offset (a re-delivery)
        self._next_update = 1
        self._next_msg: dict[int, int] = {}
        self._incoming_id = 5000
        self._failures: list[_Failure] = []
        self._poll_gen = 0
        self.delivered_at: dict[int, float] = {}  # update_id -> when getUpdates first handed it out
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = port
        self.delay: dict[str, float] = {}  # method -> seconds to wait before answering
        self._finals: dict[int, tuple[str, asyncio.Future[None]]] = {}  # chat -> (final text, waiter)
        self._converse: asyncio.Task[dict[str, Any]] | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> FakeTelegram:
        app = web.Application()
        if self.control:
            app.router.add_post("/_control/push", self._control_push)
            app.router.add_get("/_control/state", self._control_state)
            app.router.add_post("/_control/converse", self._control_converse)
            app.router.add_get("/_control/converse", self._control_converse_wait)
            app.router.add_post("/_control/wave", self._control_wave)
            app.router.add_post("/_control/fail", self._control_fail)
            app.router.add_post("/_control/limits", self._control_limits)
            app.router.add_get("/_control/calls", self._control_calls)
            app.router.add_get("/_control/messages", self._control_messages)
        app.router.add_post("/bot{token}/{method}", self._handle)
        app.router.add_get("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        async with self._changed:
            self._changed.notify_all()
        if self._runner:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # --- scripting -------------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        status: int = 400,
        description: str = "Bad Request",
        retry_after: float | None = None,
        times: int = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
        apply: bool = False,
    ) -> None:
        """The next `times` calls of `method` (matching `when`) fail with this answer.

        `apply=True`: the call takes effect first and only its answer is the error.
        """
        self._failures.append(_Failure(method, status, description, retry_after, times, when, apply))

    def not_modified(self, **kw: Any) -> None:
        """The next matching edit takes effect and then answers "message is not modified" (as if an
        earlier attempt had already got through)."""
        self.fail("editMessageText", description=NOT_MODIFIED, apply=True, **kw)

    def flood(self, method: str, retry_after: float, **kw: Any) -> None:
        self.fail(
            method,
            status=429,
            description=f"Too Many Requests: retry after {retry_after}",
            retry_after=retry_after,
            **kw,
        )

    def push_update(self, update: dict[str, Any], *, redeliver: bool = False) -> dict[str, Any]:
        """Queue an update for getUpdates; `redeliver=True` hands it out once more even if confirmed."""
        if "update_id" not in update:
            update = {"update_id": self._next_update, **update}
        self._next_update = max(self._next_update, update["update_id"] + 1)
        (self._forced if redeliver else self._pending).append(update)
        asyncio.get_running_loop().create_task(self._notify())
        return update

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def make_message(
        self,
        chat_id: int,
        text: str,
        *,
        chat_type: str | None = None,
        user_id: int = 4242,
        username: str | None = "alice",
        first_name: str = "Alice",
        message_id: int | None = None,
        thread_id: int | None = None,
        is_topic: bool = False,
        reply_to: dict[str, Any] | None = None,
        entities: list[dict[str, Any]] | None = None,
        update_id: int | None = None,
    ) -> dict[str, Any]:
        """An Update with a text message from a person; bot_command / mention entities are added."""
        if chat_type is None:
            chat_type = "private" if chat_id > 0 else "supergroup"
        self.chat_types[chat_id] = chat_type
        if message_id is None:
            self._incoming_id += 1
            message_id = self._incoming_id
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name
        else:
            chat["title"] = "Test group"
            if is_topic:
                chat["is_forum"] = True
        sender: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            sender["username"] = username
        msg: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": sender,
            "text": text,
        }
        if entities is None:
            entities = _auto_entities(text)
        if entities:
            msg["entities"] = entities
        if thread_id is not None:
            msg["message_thread_id"] = thread_id
            if is_topic:
                msg["is_topic_message"] = True
        if reply_to is not None:
            msg["reply_to_message"] = reply_to
        upd: dict[str, Any] = {"message": msg}
        if update_id is not None:
            upd["update_id"] = update_id
        return upd

    def make_edit(self, update: dict[str, Any], text: str, *, edit_date: int | None = None) -> dict[str, Any]:
        """An `edited_message` Update: the person changed the text of the message in `update`."""
        msg = {**update["message"], "text": text, "edit_date": edit_date or int(time.time())}
        msg.pop("entities", None)
        entities = _auto_entities(text)
        if entities:
            msg["entities"] = entities
        return {"edited_message": msg}

    def bot_message(self, chat_id: int, message_id: int = 1, text: str = "earlier answer") -> dict[str, Any]:
        """A message written by the bot (to reply to)."""
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": self.chat_types.get(chat_id, "supergroup")},
            "from": dict(self.bot_user),
            "text": text,
        }

    # --- inspection ------------------------------------------------------------------------------

    @property
    def last_update_id(self) -> int:
        return self._next_update - 1

    def calls_of(self, *methods: str) -> list[Call]:
        return [c for c in self.calls if c.method in methods]

    def texts(self, chat_id: int) -> list[str]:
        """Visible text of every message the bot has in the chat, in order (after edits)."""
        return [m.text for m in self.sent.get(chat_id, [])]

    async def wait_for(self, pred: Callable[[FakeTelegram], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting; calls: {[c.method for c in self.calls]}")
            await asyncio.sleep(0.005)

    # --- control (another process drives the fake: benchmarks) -----------------------------------

    async def _control_push(self, request: web.Request) -> web.Response:
        body = await request.json()
        for item in body if isinstance(body, list) else [body]:
            args = dict(item)
            chat_id, text = args.pop("chat_id"), args.pop("text")
            self.push_update(self.make_message(chat_id, text, **args))
        return web.json_response({"ok": True, "last_update_id": self.last_update_id})

    async def _control_state(self, request: web.Request) -> web.Response:
        since = float(request.query.get("since", "0"))
        calls = [
            [c.method, c.t, c.status, c.params.get("chat_id")]
            for c in self.calls
            if c.t >= since and c.method not in ("getUpdates", "getMe")
        ]
        first = int(request.query.get("first", "0"))
        delivered = {k: v for k, v in self.delivered_at.items() if k >= first}
        return web.json_response({"calls": calls, "delivered": delivered})

    async def _control_converse(self, request: web.Request) -> web.Response:
        """Start closed-loop conversations: each chat writes, waits until the bot's message in it
        shows `final`, reads for a think time (uniform in `think`), writes again; `rounds` times.
        Arrivals come from here, so the process under test spends nothing on driving them."""
        body = await request.json()
        if self._converse is not None and not self._converse.done():
            return web.json_response({"ok": False, "description": "already running"}, status=409)
        self._converse = asyncio.get_running_loop().create_task(self.converse(**body))
        return web.json_response({"ok": True})

    async def _control_converse_wait(self, request: web.Request) -> web.Response:
        """Long-polls until the conversations started by POST /_control/converse are over."""
        if self._converse is None:
            return web.json_response({"ok": False, "description": "nothing running"}, status=404)
        return web.json_response({"ok": True, "updates": await asyncio.shield(self._converse)})

    async def converse(
        self,
        chats: list[int],
        rounds: int,
        final: str,
        text: str = "hi",
        think: tuple[float, float] = (1.0, 3.0),
        first_within: float | None = None,
        timeout: float = 60.0,
        seed: int | None = None,
    ) -> dict[str, list[int]]:
        """Run the conversations here; chat id -> the update ids it sent, in order."""
        rng = random.Random(seed)
        lo, hi = think
        sent: dict[str, list[int]] = {str(c): [] for c in chats}
        loop = asyncio.get_running_loop()

        async def one(i: int, chat: int) -> None:
            await asyncio.sleep(rng.uniform(0, hi if first_within is None else first_within))
            for r in range(rounds):
                done = loop.create_future()
                self._finals[chat] = (final, done)
                upd = self.push_update(self.make_message(chat, text, user_id=10_000 + i))
                sent[str(chat)].append(upd["update_id"])
                try:
                    await asyncio.wait_for(done, timeout)
                finally:
                    self._finals.pop(chat, None)
                if r < rounds - 1:
                    await asyncio.sleep(rng.uniform(lo, hi))

        await asyncio.gather(*(one(i, c) for i, c in enumerate(chats)))
        return sent

    async def _control_wave(self, request: web.Request) -> web.Response:
        """Push `messages` (each {"chat_id", "text", ...make_message keywords}) `gap` seconds apart,
        then wait until every chat given in `finals` ({chat id: text}) shows that text in a message
        of the bot, at most `timeout` seconds after the last push. Answers the update id of each
        message (in order) and the chats whose final text never showed."""
        body = await request.json()
        return web.json_response(await self.wave(**body))

    async def wave(
        self,
        messages: list[dict[str, Any]],
        gap: float = 0.1,
        finals: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        waiters: dict[int, asyncio.Future[None]] = {}
        for chat, text in (finals or {}).items():
            fut = loop.create_future()
            self._finals[int(chat)] = (text, fut)
            waiters[int(chat)] = fut
        ids: list[int] = []
        try:
            start = time.monotonic()
            for i, item in enumerate(messages):
                delay = start + i * gap - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                args = dict(item)
                chat_id, text = args.pop("chat_id"), args.pop("text")
                ids.append(self.push_update(self.make_message(chat_id, text, **args))["update_id"])
            if waiters:
                await asyncio.wait(list(waiters.values()), timeout=timeout)
        finally:
            for chat in waiters:
                self._finals.pop(chat, None)
        incomplete = [chat for chat, fut in waiters.items() if not fut.done()]
        return {"ok": True, "updates": ids, "incomplete": incomplete}

    async def _control_fail(self, request: web.Request) -> web.Response:
        """Script a failure from another process: {"method", "status", "description", "retry_after",
        "times", "chat_id", "with_text"}; `chat_id` and `with_text` (non-empty text) narrow which calls.
        {"clear": true} drops every scripted failure not used up yet."""
        body = dict(await request.json())
        if body.get("clear"):
            self._failures.clear()
            return web.json_response({"ok": True})
        chat = body.pop("chat_id", None)
        with_text = bool(body.pop("with_text", False))

        def when(p: dict[str, Any]) -> bool:
            if chat is not None and str(p.get("chat_id")) != str(chat):
                return False
            return not with_text or bool(str(p.get("text") or "").strip())

        method = body.pop("method")
        self.fail(method, when=when, **body)
        return web.json_response({"ok": True})

    async def _control_limits(self, request: web.Request) -> web.Response:
        """{"group_per_minute": N or null}: turn the group flood limit on or off."""
        body = await request.json()
        self.group_per_minute = body.get("group_per_minute")
        self._group_window.clear()
        return web.json_response({"ok": True})

    async def _control_calls(self, request: web.Request) -> web.Response:
        """Every call since `since` (getUpdates / getMe left out), with what benchmarks need to judge
        a reply: [method, t, status, chat_id, message_id, text, draft_id, error], where message_id
        is the edited message's, or the one a successful sendMessage created."""
        since = float(request.query.get("since", "0"))
        out = []
        for c in self.calls:
            if c.t < since or c.method in ("getUpdates", "getMe"):
                continue
            mid = c.params.get("message_id")
            if c.method == "sendMessage" and isinstance(c.result, dict):
                mid = c.result.get("message_id")
            text = c.params.get("text")
            out.append(
                [
                    c.method,
                    c.t,
                    c.status,
                    c.params.get("chat_id"),
                    mid,
                    None if text is None else str(text),
                    c.params.get("draft_id"),
                    c.error,
                ]
            )
        return web.json_response({"calls": out})

    async def _control_messages(self, _: web.Request) -> web.Response:
        """Every message the bot has in every chat: {chat id: [[message_id, visible text], ...]}."""
        return web.json_response(
            {str(chat): [[m.message_id, m.text] for m in msgs] for chat, msgs in self.sent.items()}
        )

    def _shown(self, chat_id: int, visible: str) -> None:
        waiter = self._finals.get(chat_id)
        if waiter is not None and waiter[0] == visible and not waiter[1].done():
            waiter[1].set_result(None)

    # --- the API ---------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        t = time.monotonic()
        token = request.match_info["token"]
        method = request.match_info["method"]
        params = await _read_params(request)
        call = Call(method, params, t)
        self.calls.append(call)
        if ":" not in token:
            return self._error(call, 404, "Not Found")
        if token != self.token:
            return self._error(call, 401, "Unauthorized")
        for f in self._failures:
            if f.method == method and f.times > 0 and (f.when is None or f.when(params)):
                f.times -= 1
                if f.apply and (h := getattr(self, f"_m_{method}", None)) is not None:
                    try:
                        await h(params)
                    except _ApiError:
                        pass
                return self._error(call, f.status, f.description, f.retry_after)
        if self.group_per_minute is not None and method in ("sendMessage", "editMessageText"):
            wait = self._group_flood(params, t)
            if wait is not None:
                return self._error(call, 429, f"Too Many Requests: retry after {wait}", wait)
        if self.delay.get(method):
            await asyncio.sleep(self.delay[method])
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return self._error(call, 404, "Not Found: method not found")
        try:
            result = await handler(params)
        except _ApiError as e:
            return self._error(call, e.status, e.description)
        call.result = result
        return web.json_response({"ok": True, "result": result})

    def _group_flood(self, params: dict[str, Any], t: float) -> int | None:
        """Seconds to wait when this send / edit would exceed the group's per-minute limit, else None
        (and the call is counted)."""
        try:
            chat_id = int(params.get("chat_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        if self._chat_type(chat_id) == "private":
            return None
        window = [x for x in self._group_window.get(chat_id, []) if x > t - 60.0]
        self._group_window[chat_id] = window
        if self.group_per_minute is not None and len(window) >= self.group_per_minute:
            return max(1, int(window[0] + 60.0 - t + 0.999))
        window.append(t)
        return None

    def _error(self, call: Call, status: int, description: str, retry_after: float | None = None) -> web.Response:
        call.status, call.error = status, description
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return web.json_response(body, status=status)

    async def _m_getMe(self, p: dict[str, Any]) -> Any:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_deleteWebhook(self, p: dict[str, Any]) -> Any:
        self.webhook = None
        if p.get("drop_pending_updates"):
            self._pending.clear()
        return True

    async def _m_setWebhook(self, p: dict[str, Any]) -> Any:
        url = str(p.get("url", ""))
        if url and not url.startswith("https://") and not url.startswith("http://127.0.0.1"):
            raise _ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook = dict(p)
        return True

    async def _m_getWebhookInfo(self, p: dict[str, Any]) -> Any:
        return {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }

    async def _m_getUpdates(self, p: dict[str, Any]) -> Any:
        if self.webhook:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(p.get("offset") or 0)
        timeout = float(p.get("timeout") or 0)
        limit = int(p.get("limit") or 100)
        deadline = time.monotonic() + timeout
        self._poll_gen += 1
        gen = self._poll_gen
        async with self._changed:
            self._changed.notify_all()  # a poll still held is terminated by this one (as Telegram does)
            while True:
                if gen != self._poll_gen:
                    raise _ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; "
                        "make sure that only one bot instance is running",
                    )
                if offset:
                    self._pending = [u for u in self._pending if u["update_id"] >= offset]
                if self._forced:
                    out, self._forced = self._forced[:limit], self._forced[limit:]
                    return self._handed(out)
                if self._pending:
                    return self._handed(self._pending[:limit])
                left = deadline - time.monotonic()
                if left <= 0 or self._runner is None:
                    return []
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except TimeoutError:
                    return []

    def _handed(self, updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
        now = time.monotonic()
        for u in updates:
            self.delivered_at.setdefault(u["update_id"], now)
        return updates

    def _chat_type(self, chat_id: int) -> str:
        return self.chat_types.get(chat_id, "private" if chat_id > 0 else "supergroup")

    def _visible(self, p: dict[str, Any]) -> str:
        text = p.get("text")
        if text is None or str(text) == "":
            raise _ApiError(400, "Bad Request: message text is empty")
        text = str(text)
        if str(p.get("parse_mode", "")).upper() == "HTML":
            try:
                visible = parse_telegram_html(text)
            except TelegramHTMLError as e:
                raise _ApiError(400, f"Bad Request: can't parse entities: {e}") from None
        else:
            visible = text
        if not visible.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(visible) > MAX_TEXT:  # Unicode code points, as the Bot API server (TDLib) counts them
            raise _ApiError(400, "Bad Request: message is too long")
        return visible

    def _message_json(self, m: SentMessage, edited: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "message_id": m.message_id,
            "date": int(time.time()),
            "chat": {"id": m.chat_id, "type": self._chat_type(m.chat_id)},
            "from": dict(self.bot_user),
            "text": m.text,
        }
        if m.thread_id is not None:
            out["message_thread_id"] = m.thread_id
        if edited:
            out["edit_date"] = int(time.time())
        return out

    async def _m_sendMessage(self, p: dict[str, Any]) -> Any:
        chat_id = int(p["chat_id"])
        visible = self._visible(p)
        mid = self._next_msg.get(chat_id, 100) + 1
        self._next_msg[chat_id] = mid
        reply = p.get("reply_parameters")
        reply_to = reply.get("message_id") if isinstance(reply, dict) else p.get("reply_to_message_id")
        m = SentMessage(
            chat_id,
            mid,
            visible,
            str(p["text"]),
            p.get("parse_mode"),
            thread_id=p.get("message_thread_id"),
            reply_to=reply_to,
        )
        self.sent.setdefault(chat_id, []).append(m)
        if self._finals:
            self._shown(chat_id, visible)
        return self._message_json(m)

    async def _m_editMessageText(self, p: dict[str, Any]) -> Any:
        chat_id = int(p["chat_id"])
        mid = int(p["message_id"])
        m = next((x for x in self.sent.get(chat_id, []) if x.message_id == mid), None)
        if m is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        visible = self._visible(p)
        if visible == m.text and str(p["text"]) == m.raw:
            raise _ApiError(400, NOT_MODIFIED)
        m.text, m.raw, m.parse_mode = visible, str(p["text"]), p.get("parse_mode")
        m.edits.append((time.monotonic(), visible))
        if self._finals:
            self._shown(chat_id, visible)
        return self._message_json(m, edited=True)

    async def _m_sendMessageDraft(self, p: dict[str, Any]) -> Any:
        chat_id = int(p["chat_id"])
        if self._chat_type(chat_id) != "private":
            raise _ApiError(400, "Bad Request: TEXTDRAFT_PEER_INVALID")
        if not int(p.get("draft_id") or 0):
            raise _ApiError(400, "Bad Request: draft_id must be non-zero")
        visible = self._visible(p) if p.get("text") else ""
        self.drafts.append((time.monotonic(), chat_id, int(p["draft_id"]), visible))
        return True

    async def _m_sendChatAction(self, p: dict[str, Any]) -> Any:
        return True


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status, self.description = status, description


async def _read_params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        try:
            data = await request.json()
            return dict(data) if isinstance(data, dict) else {}
        except ValueError:
            return {}
    form = await request.post()
    out: dict[str, Any] = {}
    for k, v in form.items():
        if not isinstance(v, str):
            out[k] = v  # a file field
            continue
        if k in _STRING_FIELDS:
            out[k] = v
            continue
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


def _auto_entities(text: str) -> list[dict[str, Any]]:
    """bot_command at the start and @mentions, as Telegram's clients mark them."""
    ents: list[dict[str, Any]] = []
    m = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
    if m:
        ents.append({"type": "bot_command", "offset": 0, "length": _u16(m.group(0))})
    for m in re.finditer(r"(?<![A-Za-z0-9_/])@[A-Za-z0-9_]{5,32}", text):
        if ents and m.start() < ents[0]["length"] and ents[0]["type"] == "bot_command":
            continue
        ents.append({"type": "mention", "offset": _u16(text[: m.start()]), "length": _u16(m.group(0))})
    return ents


def _u16(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


async def _serve(port: int) -> None:
    fake = FakeTelegram(control=True, port=port)
    await fake.start()
    print(f"PORT {fake.port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":  # python -m tests.fakes.telegram_server [PORT]: a fake for another process
    import sys

    try:
        asyncio.run(_serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    except KeyboardInterrupt:
        pass
