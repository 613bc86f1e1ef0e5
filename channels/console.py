"""The console channel: `switchboard chat`, a terminal conversation that streams as it is written."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any, TextIO

from bot.config import Config
from bot.types import Capabilities, ChatKind, InboundMessage, LatencyClass, Markup, MessageRef, Streaming
from channels.base import Inbox

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


class ConsoleChannel:
    name = "console"

    def __init__(self, out: TextIO | None = None, conversation: str = "console:local") -> None:
        self._out = out or sys.stdout
        self.conversation = conversation
        self._inbox: Inbox | None = None
        self._count = 0

    async def start(self, inbox: Inbox) -> None:
        self._inbox = inbox

    async def stop(self) -> None:
        return None

    def capabilities(self, msg: InboundMessage) -> Capabilities:
        return CAPABILITIES

    def surface(self, msg: InboundMessage) -> ConsoleSurface:
        return ConsoleSurface(self._out)

    async def say(self, text: str) -> bool:
        """Hand one line typed by the person to the dispatcher."""
        if self._inbox is None:
            raise RuntimeError("console channel not started")
        self._count += 1
        msg = InboundMessage(self.name, self.conversation, "local", text, str(self._count), ChatKind.PRIVATE)
        return await self._inbox.submit(msg)


async def read_line(prompt: str = "> ") -> str | None:
    """One line from stdin without blocking the event loop; None at end of input.

    A daemon thread per line, not the loop's executor: on Ctrl-C the process exits at once
    instead of waiting for the executor's thread to return from input().
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str | None] = loop.create_future()

    def deliver(line: str | None) -> None:
        if not done.done():
            done.set_result(line)

    def read() -> None:
        try:
            line: str | None = input(prompt)
        except (EOFError, KeyboardInterrupt):
            line = None
        try:
            loop.call_soon_threadsafe(deliver, line)
        except RuntimeError:  # the loop is already closed: nobody is waiting
            pass

    threading.Thread(target=read, name="console-input", daemon=True).start()
    return await done


def build(cfg: Config, table: dict[str, Any]) -> ConsoleChannel:
    return ConsoleChannel()
