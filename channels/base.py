"""The seams between a platform adapter and the shared runtime.

An adapter offers only the primitive moves of its platform (`ReplySurface`); pacing, coalescing,
retry-after, splitting and typing lifetime live once, in `bot.reply_stream.ReplyStream`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bot.types import Capabilities, InboundMessage, MessageRef


class Inbox(Protocol):
    """Where an adapter hands messages: the dispatcher. Returns False for a dropped duplicate."""

    async def submit(self, msg: InboundMessage) -> bool: ...


@runtime_checkable
class ReplySurface(Protocol):
    """Primitive moves on one reply. No pacing or retry inside: raise bot.errors instead.

    `plain=True` asks for the text without markup (after MarkupRejected).
    """

    async def typing(self) -> None: ...

    async def send(self, text: str, *, plain: bool = False) -> MessageRef: ...

    async def edit(self, ref: MessageRef, text: str, *, plain: bool = False) -> None: ...

    async def draft(self, text: str) -> None:
        """Show `text` (the whole reply so far) in a draft / native stream."""
        ...

    async def finish(self, text: str, *, plain: bool = False) -> MessageRef | None:
        """Close a draft / native stream with the final `text` (the whole last part)."""
        ...


@runtime_checkable
class Channel(Protocol):
    name: str

    async def start(self, inbox: Inbox) -> None: ...

    async def stop(self) -> None: ...

    def capabilities(self, msg: InboundMessage) -> Capabilities: ...

    def surface(self, msg: InboundMessage) -> ReplySurface: ...
