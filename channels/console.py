"""The console channel: `switchboard chat`, a terminal conversation that streams as it is written."""

from __future__ import annotations

import sys
from typing import Any, ClassVar, TextIO

from bot.channel import Channel, Inbox
from bot.config import Config
from bot.rendering import Passthrough, Renderer
from bot.types import Capabilities, ChatKind, InboundMessage, LatencyClass, Markup, MessageRef, Streaming

CAPABILITIES = Capabilities(
    streaming=Streaming.NATIVE,
    latency_class=LatencyClass.SYNC,
    max_chars=1_000_000,
    min_edit_interval=0.0,
    typing_refresh=None,
    markup=Markup.MARKDOWN,
    first_chunk_chars=1,
)


class ConsoleSurface:
    """Writes the reply to a text stream as it grows; a rewrite starts a fresh line."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._shown = ""

    def _write(self, s: str) -> None:
        self._out.write(s)
        self._out.flush()

    async def typing(self) -> None:
        return None

    async def send(self, text: str, *, plain: bool = False) -> MessageRef:
        self._write(text + "\n")
        return MessageRef("console")

    async def edit(self, ref: MessageRef, text: str, *, plain: bool = False) -> None:
        self._write(text + "\n")

    async def draft(self, text: str) -> None:
        if text.startswith(self._shown):
            self._write(text[len(self._shown) :])
        else:
            self._write("\n" + text)
        self._shown = text

    async def finish(self, text: str, *, plain: bool = False) -> MessageRef | None:
        await self.draft(text)
        self._write("\n")
        self._shown = ""
        return MessageRef("console")


class ConsoleChannel(Channel):
    name: ClassVar[str] = "console"
    renderer: ClassVar[Renderer] = Passthrough(Markup.MARKDOWN)  # the terminal shows the Markdown as written

    def __init__(self, out: TextIO | None = None, conversation: str = "console:local") -> None:
        self._out = out or sys.stdout
        self.conversation = conversation
        self._inbox: Inbox | None = None
        self._count = 0

    async def start(self, inbox: Inbox) -> None:
        self._inbox = inbox

    async def stop(self) -> None:
        return None

    @classmethod
    def declared_capabilities(cls, chat_kind: ChatKind) -> Capabilities:
        return CAPABILITIES

    def capabilities(self, msg: InboundMessage) -> Capabilities:
        return CAPABILITIES

    def surface(self, msg: InboundMessage) -> ConsoleSurface:
        return ConsoleSurface(self._out)

    async def say(self, text: str) -> bool:
        """Hand one line typed by the person to the dispatcher."""
        if self._inbox is None:
            raise RuntimeError("console channel not started")
        self._count += 1
        msg = InboundMessage(
            self.name, self.conversation, "local", text, str(self._count), ChatKind.PRIVATE, chat_id=self.conversation
        )
        return await self._inbox.submit(msg)


CHANNEL = ConsoleChannel


def build(cfg: Config, table: dict[str, Any]) -> ConsoleChannel:
    """`conversation` in the table names the conversation (one-shot commands use their own)."""
    return ConsoleChannel(conversation=str(table.get("conversation", "console:local")))
