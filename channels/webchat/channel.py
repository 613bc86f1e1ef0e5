"""The webchat channel: one WebSocket per browser tab, one conversation per browser session.

Protocol (JSON text frames). Browser -> server: {"type": "message", "id": "<client id>",
"text": "..."}. Server -> browser: {"type": "typing"}; {"type": "start", "reply": n};
{"type": "delta", "reply": n, "text": "..."} (append); {"type": "replace", "reply": n, "text": "..."};
{"type": "end", "reply": n, "text": "<final part>"}.
"""

from __future__ import annotations

import itertools
import json
import uuid
from importlib import resources
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from bot.config import Config, WebchatConfig
from bot.errors import MessageGone
from bot.types import Capabilities, ChatKind, InboundMessage, LatencyClass, Markup, MessageRef, Streaming
from channels.base import Inbox

log = structlog.get_logger("switchboard.webchat")

CAPABILITIES = Capabilities(
    streaming=Streaming.NATIVE,
    latency_class=LatencyClass.SEMI_SYNC,  # a person typing in a chat page, as routing/cli.py maps it
    max_chars=100_000,
    min_edit_interval=0.0,  # our own socket: show every token as it comes
    typing_refresh=60.0,
    markup=Markup.MARKDOWN,
    first_chunk_chars=1,
)

MAX_FRAME = 1_000_000


class WebchatSurface:
    """Primitive moves on one reply, over the browser's WebSocket."""

    _ids = itertools.count(1)

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws
        self._reply: int | None = None
        self._shown = ""

    async def _send(self, payload: dict[str, Any]) -> None:
        if self._ws.closed:
            raise MessageGone("browser went away")
        await self._ws.send_str(json.dumps(payload))

    async def typing(self) -> None:
        await self._send({"type": "typing"})

    def _open(self) -> int:
        if self._reply is None:
            self._reply = next(self._ids)
            self._shown = ""
        return self._reply

    async def send(self, text: str, *, plain: bool = False) -> MessageRef:
        self._reply = None
        reply = self._open()
        await self._send({"type": "start", "reply": reply})
        await self._update(reply, text)
        return MessageRef(str(reply))

    async def edit(self, ref: MessageRef, text: str, *, plain: bool = False) -> None:
        await self._update(int(ref.id), text)

    async def draft(self, text: str) -> None:
        new = self._reply is None
        reply = self._open()
        if new:
            await self._send({"type": "start", "reply": reply})
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


class WebchatChannel:
    name = "webchat"

    def __init__(self, cfg: WebchatConfig, *, max_input_chars: int) -> None:
        self.cfg = cfg
        self._max_frame = min(max_input_chars * 4 + 1024, MAX_FRAME)
        self._inbox: Inbox | None = None
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._page = resources.files("channels.webchat").joinpath("index.html").read_text(encoding="utf-8")
        self._page = self._page.replace("{{title}}", cfg.title)

    def http_routes(self) -> list[web.RouteDef]:
        return [web.get("/", self._index), web.get("/ws", self._socket)]

    async def start(self, inbox: Inbox) -> None:
        self._inbox = inbox

    async def stop(self) -> None:
        for ws in list(self._sockets.values()):
            await ws.close()

    def capabilities(self, msg: InboundMessage) -> Capabilities:
        return CAPABILITIES

    def surface(self, msg: InboundMessage) -> WebchatSurface:
        return WebchatSurface(msg.platform)

    async def _index(self, _: web.Request) -> web.Response:
        return web.Response(text=self._page, content_type="text/html")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=self._max_frame)
        await ws.prepare(request)
        session = request.query.get("session") or uuid.uuid4().hex
        conversation = f"webchat:{session[:64]}"
        self._sockets[conversation] = ws
        try:
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                await self._receive(ws, conversation, frame.data)
        finally:
            self._sockets.pop(conversation, None)
        return ws

    async def _receive(self, ws: web.WebSocketResponse, conversation: str, data: str) -> None:
        try:
            payload = json.loads(data)
            text = payload["text"]
            if not isinstance(text, str):
                raise TypeError("text must be a string")
        except (ValueError, KeyError, TypeError) as e:
            await ws.send_str(json.dumps({"type": "error", "text": f"malformed message: {e}"}))
            return
        if not text.strip() or self._inbox is None:
            return
        msg = InboundMessage(
            channel=self.name,
            conversation=conversation,
            sender_id=conversation,
            text=text,
            message_id=f"{conversation}:{payload.get('id') or uuid.uuid4().hex}",
            chat_kind=ChatKind.PRIVATE,
            platform=ws,
        )
        await self._inbox.submit(msg)


def build(cfg: Config, table: dict[str, Any]) -> WebchatChannel:
    return WebchatChannel(WebchatConfig.model_validate(table), max_input_chars=cfg.bot.max_input_chars)
