"""The webchat channel: one WebSocket per browser tab, one conversation per browser session.

Protocol (JSON text frames; the page is the one client, see index.html).

Browser -> server:
- {"type": "message", "id": "<client id>", "text": "..."}: a question. The client id is unique in
  the tab (the message is `webchat:<session>:<client id>`, so a message sent again after a
  reconnect with the same id is a repeated delivery and answered once). A frame without "type" is
  a message too.
- {"type": "history"}: the conversation so far, answered with a "history" frame (the page asks
  once per load, to show the chat again after a reload).
- {"type": "stop"}: stop the reply being written in this conversation (the stop button); what was
  shown stays and ends with the runtime's mark "[…]" in its "end" frame. Answered with "stopped".
- {"type": "ping"}: answered with {"type": "pong"} (the page's liveness check).

Server -> browser:
- {"type": "typing", "to": "<client id>"}: an answer to that question is being prepared.
- {"type": "start", "reply": n, "to": "<client id>"}: reply n (one bubble; a long answer may come
  in several parts, each its own reply) answers the question with that client id (the page shows
  an answer to a question it doesn't know, e.g. one asked in another tab, at the end). Reply numbers
  are unique within one server process; a new "start" always opens a new bubble.
- {"type": "delta", "reply": n, "text": "..."} (append); {"type": "replace", "reply": n, "text": "..."};
  {"type": "end", "reply": n, "text": "<final part>"}. Text is Markdown, rendered by the page.
- {"type": "error", "text": "..."}: a notice. For a message refused because the server is
  shutting down it also has "to": "<client id>" and "retry": true (send it again after reconnecting).
- {"type": "history", "turns": [{"role": "user" | "assistant", "text": "..."}, ...], "truncated": bool}:
  oldest first; at most HISTORY_TURNS turns and about HISTORY_CHARS characters (the newest kept).
- {"type": "stopped", "stopped": bool}: whether a reply was running to stop.
- {"type": "pong"}.

Limits and safety:
- Frames up to HARD_CAP bytes (4 MiB, more when `bot.max_input_chars` needs it) are read, so text
  over `bot.max_input_chars` reaches the runtime and gets its polite "too long" refusal. A frame
  over the cap is refused by aiohttp from the frame header, before its payload is read; the stream
  can't be resynchronised after that, so the socket closes with 1009 (message too big). The page
  knows the cap (MAX_FRAME) and refuses such input itself with a notice, so only other clients
  ever see the 1009.
- A WebSocket upgrade carrying an `Origin` header is accepted only when that origin's host:port is
  the request's `Host` (or `X-Forwarded-Host`, which a web page can't set): any other page the
  operator visits gets 403 and can't drive the bot or spend its API keys. Requests without an
  Origin (non-browser clients) are accepted. Behind a reverse proxy, pass the public Host on
  (nginx: `proxy_set_header Host $host;`) or set X-Forwarded-Host.
- The page renders model text by building DOM nodes (never HTML from the model), and is served
  with a Content-Security-Policy that runs only its own inline script and style (by hash): no
  inline event handler, remote script or frame can run even if markup ever slipped through.
- Shutdown: `stop()` only stops taking messages (new ones get an error frame, new sockets 503);
  the replies in flight still end on the open sockets with their closing mark, and `aclose()`,
  which the App calls after them, closes the sockets (1001 going away).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import itertools
import json
import re
import uuid
from importlib import resources
from typing import Any, ClassVar

import structlog
from aiohttp import WSCloseCode, WSMsgType, hdrs, web
from yarl import URL

from bot.channel import Channel, Inbox
from bot.config import Config, WebchatConfig
from bot.errors import ClientGone
from bot.rendering import Passthrough, Renderer
from bot.types import Capabilities, ChatKind, InboundMessage, LatencyClass, Markup, MessageRef, Streaming

log = structlog.get_logger("switchboard.webchat")

CAPABILITIES = Capabilities(
    streaming=Streaming.NATIVE,
    latency_class=LatencyClass.SEMI_SYNC,  # a person typing in a chat page
    max_chars=100_000,
    min_edit_interval=0.0,  # our own socket: show every token as it comes
    typing_refresh=60.0,
    markup=Markup.MARKDOWN,
    first_chunk_chars=1,
)

HARD_CAP = 4 * 1024 * 1024  # bytes per frame; text past bot.max_input_chars is refused by the runtime
SHUTTING_DOWN = "The bot is shutting down; please send that again in a moment."
HISTORY_TURNS = 200  # turns a "history" frame restores at most (the store keeps this many in memory)
HISTORY_CHARS = 2_000_000  # and about this much text: the newest turns, so a reload stays quick


class WebchatSurface:
    """Primitive moves on one reply, over the browser's WebSocket."""

    _ids = itertools.count(1)

    def __init__(self, ws: web.WebSocketResponse | None, to: str | None = None) -> None:
        self._ws = ws
        self._to = to  # the client id of the question this answers (the page places the answer under it)
        self._reply: int | None = None
        self._shown = ""

    async def _send(self, payload: dict[str, Any]) -> None:
        if self._ws is None or self._ws.closed:
            raise ClientGone("browser went away")
        await self._ws.send_str(json.dumps(payload))

    async def typing(self) -> None:
        await self._send(self._addressed({"type": "typing"}))

    def _addressed(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self._to is not None:
            payload["to"] = self._to
        return payload

    def _open(self) -> int:
        if self._reply is None:
            self._reply = next(self._ids)
            self._shown = ""
        return self._reply

    async def send(self, text: str, *, plain: bool = False) -> MessageRef:
        self._reply = None
        reply = self._open()
        await self._send(self._addressed({"type": "start", "reply": reply}))
        await self._update(reply, text)
        return MessageRef(str(reply))

    async def edit(self, ref: MessageRef, text: str, *, plain: bool = False) -> None:
        await self._update(int(ref.id), text)

    async def draft(self, text: str) -> None:
        new = self._reply is None
        reply = self._open()
        if new:
            await self._send(self._addressed({"type": "start", "reply": reply}))
        await self._update(reply, text)

    async def finish(self, text: str, *, plain: bool = False) -> MessageRef | None:
        reply = self._open()
        if self._shown != text:
            await self._update(reply, text)
        await self._send({"type": "end", "reply": reply, "text": text})
        self._reply = None
        return MessageRef(str(reply))

    async def _update(self, reply: int, text: str) -> None:
        if text.startswith(self._shown):
            suffix = text[len(self._shown) :]
            if suffix:
                await self._send({"type": "delta", "reply": reply, "text": suffix})
        else:
            await self._send({"type": "replace", "reply": reply, "text": text})
        self._shown = text


class WebchatChannel(Channel):
    name: ClassVar[str] = "webchat"
    renderer: ClassVar[Renderer] = Passthrough(Markup.MARKDOWN)  # the page renders the Markdown

    def __init__(self, cfg: WebchatConfig, *, max_input_chars: int) -> None:
        self.cfg = cfg
        # room for max_input_chars of any text, JSON-escaped (\uXXXX is 6 bytes), never under the cap
        self._max_frame = max(HARD_CAP, max_input_chars * 6 + 4096)
        self._inbox: Inbox | None = None
        self._accepting = False
        self._sockets: set[web.WebSocketResponse] = set()  # one per connection: two tabs of one session are two
        self._origin: dict[str, web.WebSocketResponse] = {}  # message id -> the socket it came on (replies go there)
        page = resources.files("channels.webchat").joinpath("index.html").read_text(encoding="utf-8")
        self._page = page.replace("{{title}}", html.escape(cfg.title)).replace("{{max_frame}}", str(self._max_frame))
        self._headers = page_headers(self._page)

    def http_routes(self) -> list[web.AbstractRouteDef]:
        return [web.get("/", self._index), web.get("/ws", self._socket)]

    async def start(self, inbox: Inbox) -> None:
        self._inbox = inbox
        self._accepting = True

    async def stop(self) -> None:
        """Stop taking messages; the sockets stay open for the replies still in flight (see aclose)."""
        self._accepting = False

    async def aclose(self) -> None:
        """Close every browser socket (the App calls this once the replies in flight have ended)."""
        self._accepting = False
        sockets = list(self._sockets)
        self._sockets.clear()
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down") for ws in sockets),
            return_exceptions=True,
        )

    @classmethod
    def declared_capabilities(cls, chat_kind: ChatKind) -> Capabilities:
        return CAPABILITIES

    def capabilities(self, msg: InboundMessage) -> Capabilities:
        return CAPABILITIES

    def surface(self, msg: InboundMessage) -> WebchatSurface:
        prefix = f"{msg.conversation}:"
        to = msg.message_id.removeprefix(prefix) if msg.message_id.startswith(prefix) else None
        return WebchatSurface(self._origin.pop(msg.message_id, None), to)  # None: the socket closed already

    async def _index(self, request: web.Request) -> web.Response:
        headers = dict(self._headers)
        # 'self' covers the page's own ws:// in current browsers; older Safari needs it spelled out
        hosts = [request.host, request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()]
        sockets = [f"{scheme}://{h}" for h in dict.fromkeys(hosts) if _HOST.fullmatch(h) for scheme in ("ws", "wss")]
        if sockets:
            headers["Content-Security-Policy"] = headers["Content-Security-Policy"].replace(
                "connect-src 'self'", "connect-src 'self' " + " ".join(sockets)
            )
        return web.Response(text=self._page, content_type="text/html", headers=headers)

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        if not _same_origin(request):
            log.warning(
                "webchat.cross_origin_refused",
                origin=request.headers.get(hdrs.ORIGIN, "")[:200],
                host=request.host[:200],
            )
            return web.Response(status=403, text="cross-origin WebSocket refused")
        if not self._accepting:
            return web.Response(status=503, text="shutting down")
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=self._max_frame)
        await ws.prepare(request)
        session = request.query.get("session") or uuid.uuid4().hex
        conversation = f"webchat:{session[:64]}"
        self._sockets.add(ws)
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    await self._receive(ws, conversation, frame.data)
                elif frame.type == WSMsgType.ERROR:  # e.g. a frame over the cap: aiohttp closes with 1009
                    log.info("webchat.socket_error", error=str(frame.data)[:200], close_code=ws.close_code)
        finally:
            self._sockets.discard(ws)
            for mid in [m for m, w in self._origin.items() if w is ws]:
                del self._origin[mid]
        return ws

    async def _receive(self, ws: web.WebSocketResponse, conversation: str, data: str) -> None:
        try:
            payload = json.loads(data)
            if not isinstance(payload, dict):
                raise TypeError("a frame must be a JSON object")
            kind = payload.get("type", "message")
            if kind == "message":
                text = payload["text"]
                if not isinstance(text, str):
                    raise TypeError("text must be a string")
            elif kind not in ("history", "stop", "ping"):
                raise ValueError(f"unknown frame type {str(kind)[:40]!r}")
        except (ValueError, KeyError, TypeError) as e:
            await _send(ws, {"type": "error", "text": f"malformed message: {str(e)[:200]}"})
            return
        if kind == "ping":
            await _send(ws, {"type": "pong"})
        elif kind == "history":
            await _send(ws, await self._history(conversation))
        elif kind == "stop":
            stopped = self._inbox is not None and await self._inbox.stop_reply(conversation)
            await _send(ws, {"type": "stopped", "stopped": stopped})
        else:
            await self._message(ws, conversation, payload, text)

    async def _message(self, ws: web.WebSocketResponse, conversation: str, payload: dict[str, Any], text: str) -> None:
        if not text.strip():
            return
        client_id = str(payload.get("id") or uuid.uuid4().hex)
        if not self._accepting or self._inbox is None:
            await _send(ws, {"type": "error", "text": SHUTTING_DOWN, "to": client_id, "retry": True})
            return
        msg = InboundMessage(
            channel=self.name,
            conversation=conversation,
            sender_id=conversation,
            text=text,
            message_id=f"{conversation}:{client_id}",
            chat_kind=ChatKind.PRIVATE,
            chat_id=conversation,
        )
        self._origin.setdefault(msg.message_id, ws)
        await self._inbox.submit(msg)

    async def _history(self, conversation: str) -> dict[str, Any]:
        """The "history" frame: the newest turns, oldest first, within HISTORY_CHARS."""
        turns = [] if self._inbox is None else await self._inbox.history(conversation, HISTORY_TURNS)
        kept: list[dict[str, str]] = []
        total = 0
        shown = [t for t in turns if t.role in ("user", "assistant")]
        for turn in reversed(shown):
            total += len(turn.content)
            if total > HISTORY_CHARS and kept:
                break
            kept.append({"role": turn.role, "text": turn.content})
        kept.reverse()
        return {"type": "history", "turns": kept, "truncated": len(kept) < len(shown)}


async def _send(ws: web.WebSocketResponse, payload: dict[str, Any]) -> None:
    await ws.send_str(json.dumps(payload))


_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)
_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")  # host[:port], nothing else


def page_headers(page: str) -> dict[str, str]:
    """Security headers for the page: its own inline script and style run (by hash), nothing else
    does (no inline event handlers, no remote code); it talks only to its own server."""
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for kind, body in _INLINE.findall(page):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
        hashes[kind].append(f"'sha256-{digest}'")
    script = " ".join(hashes["script"]) or "'none'"
    style = " ".join(hashes["style"]) or "'none'"
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src {script}",
            f"style-src {style}",
            "connect-src 'self'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


def _same_origin(request: web.Request) -> bool:
    """No Origin (not a browser), or an Origin whose host:port is the one this request was sent to."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return True
    try:
        o = URL(origin)
        if o.scheme not in ("http", "https") or not o.host:
            return False  # "null" (sandboxed frames, file: pages) and anything odd
        want = (o.host.lower(), o.port)
        hosts = [request.host]
        forwarded = request.headers.get("X-Forwarded-Host")
        if forwarded:
            hosts.append(forwarded.split(",")[0].strip())
        for host in hosts:
            h = URL(f"{o.scheme}://{host}")  # a Host without a port means the origin scheme's default
            if h.host and (h.host.lower(), h.port) == want:
                return True
    except ValueError:
        return False
    return False


CHANNEL = WebchatChannel


def build(cfg: Config, table: dict[str, Any]) -> WebchatChannel:
    return WebchatChannel(WebchatConfig.model_validate(table), max_input_chars=cfg.bot.max_input_chars)
