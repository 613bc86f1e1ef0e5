"""A fake Slack on 127.0.0.1: the Web API under /api/ and a Socket Mode WebSocket, recording every
request and frame with `time.monotonic()` timestamps.

Point slack_sdk at it with `AsyncWebClient(token=..., base_url=fake.api_base)`; Socket Mode finds
the WebSocket through `apps.connections.open` (called with the app-level token), which answers
`ws://127.0.0.1:PORT/socket?ticket=N`.

Web API: `auth.test` (with the `X-OAuth-Scopes` header), `apps.connections.open`,
`chat.postMessage` / `chat.update` / `chat.delete`, the native streams (`chat.startStream` /
`appendStream` / `stopStream`, with a streaming state per message: an append to a stopped or
expired stream answers `message_not_in_streaming_state`, a stream in a channel without
`recipient_team_id` / `recipient_user_id` answers `missing_recipient_team_id`, 12,000 characters
per call), `reactions.add` / `remove`, `assistant.threads.setStatus` / `setSuggestedPrompts` /
`setTitle`. Bodies are read as JSON or form-encoded, like Slack. Any call can be failed on request
(`fail`, `rate_limit`: HTTP 429 with `Retry-After`). Messages are kept per channel and thread, so a
test reads what a person would see (`texts`, `visible`).

Socket Mode: `hello` on connect, then the envelopes a test pushes (`events_api`, `slash_commands`)
with an `envelope_id`; the client's acks are recorded (`acks`, `wait_ack`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

STREAM_CALL_LIMIT = 12_000
MESSAGE_LIMIT = 40_000
DEFAULT_SCOPES = (
    "app_mentions:read,channels:history,chat:write,groups:history,im:history,im:read,im:write,"
    "mpim:history,reactions:write,assistant:write,commands"
)
_STREAM_METHODS = ("chat.startStream", "chat.appendStream", "chat.stopStream")


@dataclass
class Call:
    """One Web API request as the fake received it."""

    t: float  # time.monotonic() on arrival
    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    status: int = 200
    error: str | None = None
    answer: Any = None
    retry_after: float | None = None


@dataclass
class Msg:
    """A message in a channel (a person's or the bot's)."""

    ts: str
    channel: str
    user: str
    text: str  # as sent: mrkdwn `text`, or the standard Markdown of a stream / markdown_text
    thread_ts: str | None = None
    markdown: bool = False  # text is standard Markdown (streams, markdown_text)
    mrkdwn: bool = True  # chat.postMessage's `mrkdwn` flag (False: shown as sent)
    bot: bool = False
    streaming: bool = False
    deleted: bool = False
    edits: list[tuple[float, str]] = field(default_factory=list)
    reactions: set[str] = field(default_factory=set)


@dataclass
class _Failure:
    method: str
    error: str
    status: int
    retry_after: float | None
    times: int
    when: Callable[[dict[str, Any]], bool] | None


@dataclass
class Frame:
    t: float
    direction: str  # "in" (client -> fake) | "out"
    payload: dict[str, Any]


def markdown_visible(text: str) -> str:
    """What a person sees of standard Markdown (streams): the formatting marks dropped."""
    text = re.sub(r"\[([^\]]*)\]\(([^)\s]*)\)", r"\1", text)
    text = re.sub(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", r"\2", text)
    text = re.sub(r"(?<![*\w])([*_])(?=\S)([^*_\n]+?)(?<=\S)\1(?![*\w])", r"\2", text)
    text = re.sub(r"~~(?=\S)(.+?)(?<=\S)~~", r"\1", text)
    return text


def mrkdwn_visible(text: str) -> str:
    """What a person sees of Slack mrkdwn: links as their text, marks dropped, entities read."""
    text = re.sub(r"<([^<>|]+)\|([^<>]*)>", r"\2", text)
    text = re.sub(r"<([^<>|]+)>", r"\1", text)
    text = re.sub(r"(?<![*\w])([*_~])(?=\S)([^*_~\n]+?)(?<=\S)\1(?![*\w])", r"\2", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


class FakeSlack:
    def __init__(
        self,
        bot_token: str = "xoxb-fake-bot-token",
        app_token: str = "xapp-fake-app-token",
        *,
        team_id: str = "T0001",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        signing_secret: str = "fake-signing-secret",
        scopes: str = DEFAULT_SCOPES,
        control: bool = False,
    ) -> None:
        """`control`: also serve /_control/* (another process drives the fake: benchmarks)."""
        self.control = control
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.signing_secret = signing_secret
        self.scopes = scopes
        self.socket_mode_enabled = True
        self.calls: list[Call] = []
        self.frames: list[Frame] = []
        self.messages: dict[str, list[Msg]] = {}  # channel -> messages, oldest first
        self.statuses: dict[tuple[str, str], str] = {}  # (channel, thread_ts) -> assistant status
        self.titles: dict[tuple[str, str], str] = {}
        self.prompts: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.acks: dict[str, tuple[float, dict[str, Any]]] = {}  # envelope_id -> (t, frame)
        self.sent_envelopes: dict[str, float] = {}  # envelope_id -> t sent
        self.connections = 0
        self.responses: list[tuple[float, dict[str, Any]]] = []  # slash commands' response_url posts
        self._failures: list[_Failure] = []
        self._ts = itertools.count(1)
        self._env = itertools.count(1)
        self._events = itertools.count(1)
        self._tickets = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_ready = asyncio.Event()
        self._ack_event = asyncio.Event()
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._base = time.time()
        self.port = 0

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/socket", self._socket)
        app.router.add_post("/response", self._response)
        if self.control:
            app.router.add_post("/_control/wave", self._control_wave)
            app.router.add_get("/_control/calls", self._control_calls)
            app.router.add_get("/_control/messages", self._control_messages)
            app.router.add_post("/_control/fail", self._control_fail)
            app.router.add_get("/_control/world", self._control_world)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    # --- the world -------------------------------------------------------------------------------

    def next_ts(self) -> str:
        return f"{int(self._base)}.{next(self._ts):06d}"

    def add_message(self, channel: str, msg: Msg) -> Msg:
        self.messages.setdefault(channel, []).append(msg)
        self._changed.set()
        return msg

    def find(self, channel: str, ts: str) -> Msg | None:
        for m in self.messages.get(channel, []):
            if m.ts == ts and not m.deleted:
                return m
        return None

    def bot_messages(self, channel: str, thread_ts: str | None = None) -> list[Msg]:
        return [
            m
            for m in self.messages.get(channel, [])
            if m.bot and not m.deleted and (thread_ts is None or m.thread_ts == thread_ts)
        ]

    @staticmethod
    def shown(m: Msg) -> str:
        """What a person reads in one message."""
        if m.markdown:
            return markdown_visible(m.text)
        return (
            mrkdwn_visible(m.text)
            if m.mrkdwn
            else m.text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        )

    def texts(self, channel: str, thread_ts: str | None = None) -> list[str]:
        """The bot's messages in a channel (or one thread of it) as a person reads them, in order."""
        return [self.shown(m) for m in self.bot_messages(channel, thread_ts)]

    def delete(self, channel: str, ts: str) -> None:
        m = self.find(channel, ts)
        assert m is not None
        m.deleted = True

    def expire_stream(self, channel: str, ts: str) -> None:
        """The stream behind a message ends on Slack's side (it timed out)."""
        m = self.find(channel, ts)
        assert m is not None
        m.streaming = False

    def of(self, *methods: str) -> list[Call]:
        return [c for c in self.calls if c.method in methods]

    # --- failures --------------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        error: str,
        *,
        status: int = 200,
        times: int = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """The next `times` calls of `method` (matching `when`) answer `{"ok": false, "error": ...}`."""
        self._failures.append(_Failure(method, error, status, None, times, when))

    def rate_limit(
        self,
        method: str,
        retry_after: float,
        *,
        times: int = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """The next `times` calls of `method` get HTTP 429 with `Retry-After`."""
        self._failures.append(_Failure(method, "ratelimited", 429, retry_after, times, when))

    def _scripted(self, method: str, params: dict[str, Any]) -> _Failure | None:
        for f in self._failures:
            if f.times > 0 and f.method == method and (f.when is None or f.when(params)):
                f.times -= 1
                return f
        return None

    # --- Web API ---------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        t = time.monotonic()
        method = request.match_info["method"]
        raw = await request.read()
        params: dict[str, Any] = {}
        ctype = request.headers.get("Content-Type", "")
        if raw:
            if ctype.startswith("application/json"):
                params = json.loads(raw)
            else:
                params = dict(parse_qsl(raw.decode()))
        params.update({k: v for k, v in request.query.items() if k not in params})
        call = Call(t, method, params, dict(request.headers))
        self.calls.append(call)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip() or str(params.get("token", ""))
        headers: dict[str, str] = {}
        failure = self._scripted(method, params)
        if failure is not None:
            call.status, call.error, call.retry_after = failure.status, failure.error, failure.retry_after
            if failure.retry_after is not None:
                headers["Retry-After"] = f"{failure.retry_after:g}"
            body: dict[str, Any] = {"ok": False, "error": failure.error}
        else:
            body = self._handle(method, params, token, headers)
            if not body.get("ok"):
                call.error = str(body.get("error"))
        call.answer = body
        self._changed.set()
        return web.json_response(body, status=call.status, headers=headers)

    def _handle(self, method: str, p: dict[str, Any], token: str, headers: dict[str, str]) -> dict[str, Any]:
        if method == "apps.connections.open":
            if token == self.bot_token:
                return {"ok": False, "error": "not_allowed_token_type"}
            if token != self.app_token:
                return {"ok": False, "error": "invalid_auth"}
            if not self.socket_mode_enabled:
                return {"ok": False, "error": "socket_mode_not_enabled"}
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket?ticket={next(self._tickets)}"}
        if token == self.app_token:
            return {"ok": False, "error": "not_allowed_token_type"}
        if token != self.bot_token:
            return {"ok": False, "error": "invalid_auth" if token else "not_authed"}
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        if method == "auth.test":
            headers["X-OAuth-Scopes"] = self.scopes
        result: dict[str, Any] = handler(p)
        return result

    def _m_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake Team",
            "user": "switchboard",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _bot_message(self, channel: str, text: str, thread_ts: str | None, **kw: Any) -> Msg:
        if thread_ts is not None:
            self.statuses.pop((channel, thread_ts), None)  # Slack clears the status when the app replies
        return self.add_message(
            channel, Msg(self.next_ts(), channel, self.bot_user_id, text, thread_ts=thread_ts, bot=True, **kw)
        )

    def _answer(self, m: Msg) -> dict[str, Any]:
        return {
            "ok": True,
            "channel": m.channel,
            "ts": m.ts,
            "message": {"type": "message", "user": m.user, "bot_id": self.bot_id, "text": m.text, "ts": m.ts},
        }

    def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = str(p.get("channel") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        md = p.get("markdown_text")
        text = str(md if md is not None else p.get("text") or "")
        if not text.strip():
            return {"ok": False, "error": "no_text"}
        if len(text) > MESSAGE_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        mrkdwn = str(p.get("mrkdwn", "true")).lower() not in ("false", "0")
        m = self._bot_message(channel, text, p.get("thread_ts"), markdown=md is not None, mrkdwn=mrkdwn)
        return self._answer(m)

    def _m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        m = self.find(str(p.get("channel")), str(p.get("ts")))
        if m is None:
            return {"ok": False, "error": "message_not_found"}
        if not m.bot:
            return {"ok": False, "error": "cant_update_message"}
        if m.streaming:
            return {"ok": False, "error": "message_is_streaming"}  # updates wait for the stream's end
        md = p.get("markdown_text")
        text = str(md if md is not None else p.get("text") or "")
        if len(text) > MESSAGE_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        m.text, m.markdown = text, md is not None
        m.edits.append((time.monotonic(), text))
        return self._answer(m)

    def _m_chat_delete(self, p: dict[str, Any]) -> dict[str, Any]:
        m = self.find(str(p.get("channel")), str(p.get("ts")))
        if m is None:
            return {"ok": False, "error": "message_not_found"}
        m.deleted = True
        return {"ok": True, "channel": m.channel, "ts": m.ts}

    @staticmethod
    def _stream_text(p: dict[str, Any]) -> str | None:
        if p.get("markdown_text") is not None:
            return str(p["markdown_text"])
        chunks = p.get("chunks")
        if isinstance(chunks, str):
            chunks = json.loads(chunks)
        if chunks:
            return "".join(str(c.get("text", "")) for c in chunks if c.get("type") == "markdown_text")
        return None

    def _m_chat_startStream(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = str(p.get("channel") or "")
        thread_ts = p.get("thread_ts")
        if not channel or not thread_ts:
            return {"ok": False, "error": "invalid_arguments"}
        if not channel.startswith("D"):
            if not p.get("recipient_team_id"):
                return {"ok": False, "error": "missing_recipient_team_id"}
            if not p.get("recipient_user_id"):
                return {"ok": False, "error": "missing_recipient_user_id"}
        text = self._stream_text(p) or ""
        if len(text) > STREAM_CALL_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        m = self._bot_message(channel, text, str(thread_ts), markdown=True, streaming=True)
        return {"ok": True, "channel": channel, "ts": m.ts}

    def _m_chat_appendStream(self, p: dict[str, Any]) -> dict[str, Any]:
        m = self.find(str(p.get("channel")), str(p.get("ts")))
        if m is None:
            return {"ok": False, "error": "message_not_found"}
        if not m.streaming:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        text = self._stream_text(p)
        if not text:
            return {"ok": False, "error": "no_text"}
        if len(text) > STREAM_CALL_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        m.text += text
        m.edits.append((time.monotonic(), m.text))
        return {"ok": True, "channel": m.channel, "ts": m.ts}

    def _m_chat_stopStream(self, p: dict[str, Any]) -> dict[str, Any]:
        m = self.find(str(p.get("channel")), str(p.get("ts")))
        if m is None:
            return {"ok": False, "error": "message_not_found"}
        if not m.streaming:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        text = self._stream_text(p)
        if text is not None and len(text) > STREAM_CALL_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        if text:
            m.text += text
            m.edits.append((time.monotonic(), m.text))
        m.streaming = False
        return {"ok": True, "channel": m.channel, "ts": m.ts, "message": {"text": m.text, "ts": m.ts}}

    def _m_reactions_add(self, p: dict[str, Any]) -> dict[str, Any]:
        m = self.find(str(p.get("channel")), str(p.get("timestamp")))
        if m is None:
            return {"ok": False, "error": "message_not_found"}
        name = str(p.get("name"))
        if name in m.reactions:
            return {"ok": False, "error": "already_reacted"}
        m.reactions.add(name)
        return {"ok": True}

    def _m_reactions_remove(self, p: dict[str, Any]) -> dict[str, Any]:
        m = self.find(str(p.get("channel")), str(p.get("timestamp")))
        if m is None:
            return {"ok": False, "error": "message_not_found"}
        name = str(p.get("name"))
        if name not in m.reactions:
            return {"ok": False, "error": "no_reaction"}
        m.reactions.discard(name)
        return {"ok": True}

    def _m_assistant_threads_setStatus(self, p: dict[str, Any]) -> dict[str, Any]:
        key = (str(p.get("channel_id")), str(p.get("thread_ts")))
        status = str(p.get("status") or "")
        if status:
            self.statuses[key] = status
        else:
            self.statuses.pop(key, None)
        return {"ok": True}

    def _m_assistant_threads_setSuggestedPrompts(self, p: dict[str, Any]) -> dict[str, Any]:
        prompts = p.get("prompts")
        if isinstance(prompts, str):
            prompts = json.loads(prompts)
        self.prompts[(str(p.get("channel_id")), str(p.get("thread_ts")))] = list(prompts or [])
        return {"ok": True}

    def _m_assistant_threads_setTitle(self, p: dict[str, Any]) -> dict[str, Any]:
        self.titles[(str(p.get("channel_id")), str(p.get("thread_ts")))] = str(p.get("title"))
        return {"ok": True}

    async def _response(self, request: web.Request) -> web.Response:
        self.responses.append((time.monotonic(), await request.json()))
        self._changed.set()
        return web.Response(text="ok")

    # --- Socket Mode -----------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections += 1
        self._sockets.append(ws)
        await self._send(ws, {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0001"}})
        self._socket_ready.set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                now = time.monotonic()
                self.frames.append(Frame(now, "in", data))
                env = data.get("envelope_id")
                if env:
                    self.acks.setdefault(str(env), (now, data))
                    self._ack_event.set()
        finally:
            if ws in self._sockets:
                self._sockets.remove(ws)
            if not self._sockets:
                self._socket_ready.clear()
        return ws

    async def _send(self, ws: web.WebSocketResponse, payload: dict[str, Any]) -> None:
        self.frames.append(Frame(time.monotonic(), "out", payload))
        await ws.send_str(json.dumps(payload))

    async def wait_connected(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self._socket_ready.wait(), timeout)

    async def envelope(self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0) -> str:
        """Push one envelope over the (newest) Socket Mode connection; its envelope_id."""
        await self.wait_connected()
        env = f"env-{next(self._env)}"
        frame = {
            "envelope_id": env,
            "type": kind,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
            "payload": payload,
        }
        self.sent_envelopes[env] = time.monotonic()
        await self._send(self._sockets[-1], frame)
        return env

    def event_callback(self, event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
        """The Events API wrapper of one event (the body of an HTTP event, the payload of an envelope)."""
        return {
            "token": "verification-token",
            "team_id": self.team_id,
            "api_app_id": "A0001",
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._events):06d}",
            "event_time": int(time.time()),
            "authorizations": [
                {"team_id": self.team_id, "user_id": self.bot_user_id, "is_bot": True, "is_enterprise_install": False}
            ],
        }

    async def event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry_attempt: int = 0
    ) -> tuple[str, dict[str, Any]]:
        """Push an Events API event over Socket Mode; (envelope_id, event_callback)."""
        body = self.event_callback(event, event_id=event_id)
        return await self.envelope("events_api", body, retry_attempt=retry_attempt), body

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> float:
        """When the client acknowledged the envelope (time.monotonic())."""
        deadline = time.monotonic() + timeout
        while envelope_id not in self.acks:
            if time.monotonic() > deadline:
                raise AssertionError(f"no ack for {envelope_id}")
            self._ack_event.clear()
            try:
                await asyncio.wait_for(self._ack_event.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                pass
        return self.acks[envelope_id][0]

    async def disconnect(self) -> None:
        """Slack asks the client to reconnect (`{"type": "disconnect"}`)."""
        await self.wait_connected()
        await self._send(self._sockets[-1], {"type": "disconnect", "reason": "refresh_requested"})

    # --- what people do --------------------------------------------------------------------------

    def person_message(
        self, channel: str, text: str, *, user: str = "U0042", thread_ts: str | None = None, bot: bool = False
    ) -> Msg:
        return self.add_message(channel, Msg(self.next_ts(), channel, user, text, thread_ts=thread_ts, bot=bot))

    def message_event(self, m: Msg, *, channel_type: str = "im", bot_id: str | None = None) -> dict[str, Any]:
        ev: dict[str, Any] = {
            "type": "message",
            "channel": m.channel,
            "channel_type": channel_type,
            "user": m.user,
            "text": m.text,
            "ts": m.ts,
            "event_ts": m.ts,
            "team": self.team_id,
            "client_msg_id": f"cm-{m.ts}",
        }
        if m.thread_ts is not None:
            ev["thread_ts"] = m.thread_ts
        if bot_id is not None:
            ev["bot_id"] = bot_id
            ev["subtype"] = "bot_message"
            ev.pop("client_msg_id")
        return ev

    async def dm(
        self, text: str, *, channel: str = "D0042", user: str = "U0042", thread_ts: str | None = None
    ) -> tuple[Msg, str]:
        """A person writes in their DM with the bot (message.im); (message, envelope_id)."""
        m = self.person_message(channel, text, user=user, thread_ts=thread_ts)
        env, _ = await self.event(self.message_event(m, channel_type="im"))
        return m, env

    async def mention(
        self, text: str, *, channel: str = "C0100", user: str = "U0042", thread_ts: str | None = None
    ) -> tuple[Msg, str]:
        """A person mentions the bot in a channel: the `message` event and the `app_mention` event,
        as Slack sends both to an app subscribed to both; (message, envelope_id of app_mention)."""
        m = self.person_message(channel, f"<@{self.bot_user_id}> {text}", user=user, thread_ts=thread_ts)
        await self.event(self.message_event(m, channel_type="channel"))
        ev: dict[str, Any] = {
            "type": "app_mention",
            "user": user,
            "text": m.text,
            "ts": m.ts,
            "channel": channel,
            "event_ts": m.ts,
            "team": self.team_id,
            "client_msg_id": f"cm-{m.ts}",
        }
        if thread_ts is not None:
            ev["thread_ts"] = thread_ts
        env, _ = await self.event(ev)
        return m, env

    async def channel_message(
        self, text: str, *, channel: str = "C0100", user: str = "U0042", thread_ts: str | None = None
    ) -> tuple[Msg, str]:
        """A person writes in a channel (or a thread of it) without a mention."""
        m = self.person_message(channel, text, user=user, thread_ts=thread_ts)
        env, _ = await self.event(self.message_event(m, channel_type="channel"))
        return m, env

    async def edit(self, m: Msg, text: str, *, channel_type: str = "im") -> str:
        """The person edits a message: `message` with subtype `message_changed`."""
        edited_ts = self.next_ts()
        previous = {"type": "message", "user": m.user, "text": m.text, "ts": m.ts}
        m.text = text
        message: dict[str, Any] = {
            "type": "message",
            "user": m.user,
            "text": text,
            "ts": m.ts,
            "edited": {"user": m.user, "ts": edited_ts},
            "team": self.team_id,
        }
        if m.thread_ts is not None:
            message["thread_ts"] = m.thread_ts
            previous["thread_ts"] = m.thread_ts
        env, _ = await self.event(
            {
                "type": "message",
                "subtype": "message_changed",
                "hidden": True,
                "channel": m.channel,
                "channel_type": channel_type,
                "message": message,
                "previous_message": previous,
                "event_ts": edited_ts,
                "ts": edited_ts,
            }
        )
        return env

    async def assistant_thread_started(
        self, *, channel: str = "D0042", user: str = "U0042", thread_ts: str | None = None
    ) -> tuple[str, str]:
        """The person opens the assistant panel: a new thread in their DM; (thread_ts, envelope_id)."""
        ts = thread_ts or self.next_ts()
        env, _ = await self.event(
            {
                "type": "assistant_thread_started",
                "assistant_thread": {
                    "user_id": user,
                    "context": {"channel_id": "C0100", "team_id": self.team_id, "enterprise_id": None},
                    "channel_id": channel,
                    "thread_ts": ts,
                },
                "event_ts": ts,
            }
        )
        return ts, env

    async def assistant_context_changed(
        self, thread_ts: str, *, channel: str = "D0042", user: str = "U0042", context_channel: str = "C0200"
    ) -> str:
        env, _ = await self.event(
            {
                "type": "assistant_thread_context_changed",
                "assistant_thread": {
                    "user_id": user,
                    "context": {"channel_id": context_channel, "team_id": self.team_id},
                    "channel_id": channel,
                    "thread_ts": thread_ts,
                },
                "event_ts": self.next_ts(),
            }
        )
        return env

    async def slash_command(self, command: str, text: str = "", *, channel: str = "D0042", user: str = "U0042") -> str:
        return await self.envelope(
            "slash_commands",
            {
                "token": "verification-token",
                "team_id": self.team_id,
                "channel_id": channel,
                "channel_name": "directmessage" if channel.startswith("D") else "general",
                "user_id": user,
                "user_name": "alice",
                "command": command,
                "text": text,
                "api_app_id": "A0001",
                "response_url": f"http://127.0.0.1:{self.port}/response",
                "trigger_id": f"trig-{next(self._env)}",
            },
        )

    # --- signed HTTP events ----------------------------------------------------------------------

    def sign(self, body: str, timestamp: int | None = None, secret: str | None = None) -> dict[str, str]:
        """The headers Slack sends with an HTTP event: timestamp and v0 signature."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        base = f"v0:{ts}:{body}".encode()
        sig = hmac.new((secret or self.signing_secret).encode(), base, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={sig}", "Content-Type": "application/json"}

    # --- control (another process drives the fake: benchmarks) -----------------------------------

    async def _control_wave(self, request: web.Request) -> web.Response:
        """Mentions in channel threads, `gap` seconds apart (`questions`: each {"channel", "text",
        "user", "thread_ts"}; no thread_ts: a person's message opens a new thread first), then wait
        until each thread shows a finished bot message after the question whose visible text is
        `final`, at most `timeout` seconds after the last one. Answers per question its thread_ts,
        ts, and when its `message` and `app_mention` envelopes were sent (time.monotonic()), and the
        indexes of the questions whose answer never showed."""
        body = await request.json()
        return web.json_response(await self.wave(**body))

    async def wave(
        self, questions: list[dict[str, Any]], gap: float = 0.0, final: str | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        out: list[dict[str, Any]] = []
        start = time.monotonic()
        for i, q in enumerate(questions):
            delay = start + i * gap - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            channel, user = str(q["channel"]), str(q.get("user") or "U0042")
            thread_ts = q.get("thread_ts")
            if not thread_ts:
                thread_ts = self.person_message(channel, str(q.get("topic") or "a topic"), user=user).ts
            first = len(self.frames)
            m, env = await self.mention(str(q["text"]), channel=channel, user=user, thread_ts=str(thread_ts))
            sent = [f.t for f in self.frames[first:] if f.direction == "out" and "envelope_id" in f.payload]
            out.append(
                {"channel": channel, "thread_ts": thread_ts, "ts": m.ts, "message_at": sent[0], "mention_at": sent[-1]}
            )
        pending = set(range(len(out))) if final is not None else set()
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for i in list(pending):
                o = out[i]
                for b in self.bot_messages(o["channel"], o["thread_ts"]):
                    if b.ts > o["ts"] and not b.streaming and self.shown(b) == final:
                        pending.discard(i)
                        break
            if pending:
                await asyncio.sleep(0.02)  # polled: the fake's own CPU stays small under a burst
        return {"ok": True, "questions": out, "incomplete": sorted(pending)}

    async def _control_calls(self, request: web.Request) -> web.Response:
        """Every Web API call since `since`: [method, t, status, channel, thread_ts, ts (the
        message it acts on, or the one it created), text (text / markdown_text / chunks), error]."""
        since = float(request.query.get("since", "0"))
        rows = []
        for c in self.calls:
            if c.t < since:
                continue
            p = c.params
            ts = p.get("ts") or p.get("timestamp")
            if ts is None and isinstance(c.answer, dict) and c.answer.get("ok"):
                ts = c.answer.get("ts")
            if c.method in _STREAM_METHODS:
                text = self._stream_text(p)
            else:
                md = p.get("markdown_text")
                text = md if md is not None else p.get("text")
            rows.append(
                [
                    c.method,
                    c.t,
                    c.status,
                    p.get("channel") or p.get("channel_id"),
                    p.get("thread_ts"),
                    ts,
                    text,
                    c.error,
                ]
            )
        return web.json_response({"calls": rows})

    async def _control_messages(self, _: web.Request) -> web.Response:
        """Every bot message: [[channel, ts, thread_ts, visible text, streaming, deleted], ...]."""
        rows = [
            [m.channel, m.ts, m.thread_ts, self.shown(m), m.streaming, m.deleted]
            for msgs in self.messages.values()
            for m in msgs
            if m.bot
        ]
        return web.json_response({"messages": rows})

    async def _control_fail(self, request: web.Request) -> web.Response:
        """{"methods": [...], "error", "status", "retry_after", "times", "channel", "with_text"}: the
        next `times` calls of any of `methods` (in that channel, carrying text) fail; {"clear": true}
        drops every scripted failure."""
        body = dict(await request.json())
        if body.get("clear"):
            self._failures.clear()
            return web.json_response({"ok": True})
        left = [int(body.get("times", 1))]
        channel, with_text = body.get("channel"), bool(body.get("with_text", False))

        def when(p: dict[str, Any]) -> bool:
            if left[0] <= 0 or (channel is not None and str(p.get("channel")) != str(channel)):
                return False
            text = self._stream_text(p) if p.get("markdown_text") is None else p.get("markdown_text")
            if with_text and not str(text or p.get("text") or "").strip():
                return False
            left[0] -= 1
            return True

        status = int(body.get("status", 200))
        retry = None if body.get("retry_after") is None else float(body["retry_after"])
        for method in body["methods"]:
            f = _Failure(method, str(body.get("error", "ratelimited")), status, retry, 1 << 30, when)
            self._failures.append(f)
        return web.json_response({"ok": True})

    async def _control_world(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "api_base": self.api_base,
                "bot_token": self.bot_token,
                "app_token": self.app_token,
                "bot_user_id": self.bot_user_id,
                "team_id": self.team_id,
            }
        )

    # --- waiting ---------------------------------------------------------------------------------

    async def wait_for(self, pred: Callable[[FakeSlack], Any], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; calls: {[(c.method, c.error) for c in self.calls]}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(0.05, max(0.0, deadline - time.monotonic())))
            except TimeoutError:
                pass


async def _serve() -> None:
    fake = FakeSlack(control=True)
    await fake.start()
    print(f"PORT {fake.port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    # python -m tests.fakes.slack_server: a fake for another process, with /_control/* on; it prints
    # `PORT <n>` (an ephemeral port) once it listens
    try:
        asyncio.run(_serve())
    except KeyboardInterrupt:
        pass
