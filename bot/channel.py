"""The seams between a platform adapter and the runtime, owned by the core.

An adapter (under `channels/`) implements `Channel` and hands every message it should answer to
`Inbox.submit`. For each reply the core asks it for a `ReplySurface`: the primitive moves of its
platform (typing, send, edit, draft, finish), each one platform call that succeeds or raises one of
`bot.errors`. Pacing, the per-chat budget, coalescing, retry-after, splitting, plain-text fallback
and typing lifetime live once, in `bot.reply_stream.ReplyStream`; access policy, duplicate
deliveries, command parsing and graceful shutdown live once, in the core (`bot.intake`,
`bot.dispatcher`, `bot.app`).

Subclass `Channel` to inherit the optional hooks' defaults; the app calls every hook the same way
for every channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from bot.access import AccessPolicy
from bot.rendering import Passthrough, Renderer
from bot.types import Capabilities, ChatKind, ChatTurn, InboundMessage, MessageRef

if TYPE_CHECKING:
    from aiohttp.web import AbstractRouteDef

__all__ = ["Channel", "Check", "DeletingSurface", "Inbox", "ReplySurface"]


@dataclass(frozen=True, slots=True)
class Check:
    """One line of `switchboard doctor`: what was checked, whether it is fine, and how to fix it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


class Inbox(Protocol):
    """Where an adapter hands messages (the core's intake)."""

    async def submit(self, msg: InboundMessage) -> bool:
        """Take one message; False when it was not taken (a repeated delivery, or refused)."""
        ...

    async def stop_reply(self, conversation: str) -> bool:
        """Stop the reply being written in a conversation (a stop button); False if none was."""
        ...

    async def history(self, conversation: str, limit: int) -> list[ChatTurn]:
        """The conversation so far, oldest first (a page restoring a chat after a reload)."""
        ...

    async def settle(self) -> None:
        """Let the replies just submitted reach their first wait (typing sent, model asked).

        A polling adapter awaits this before building its next poll, so that request's CPU does
        not sit in front of those replies; how many loop turns that takes is the core's business.
        """
        ...


@runtime_checkable
class ReplySurface(Protocol):
    """Primitive moves on one reply. No pacing, budget or retry inside: raise `bot.errors` instead.

    `plain=True` asks for the text without markup (after MarkupRejected). The text handed to
    `send` / `edit` / `finish` is the source (Markdown); the surface renders it to the channel's
    `Capabilities.markup` (see `bot.rendering` for the rule a renderer keeps).
    """

    async def typing(self) -> None: ...

    async def send(self, text: str, *, plain: bool = False) -> MessageRef: ...

    async def edit(self, ref: MessageRef, text: str, *, plain: bool = False) -> None: ...

    async def draft(self, text: str) -> None:
        """Show `text` (the whole part so far) in a draft / native stream."""
        ...

    async def finish(self, text: str, *, plain: bool = False) -> MessageRef | None:
        """Close a draft / native stream with the final `text` (the whole part); send it if none was open."""
        ...


@runtime_checkable
class DeletingSurface(ReplySurface, Protocol):
    """A surface that can also delete a message of its reply (for `Capabilities.renotify_after`)."""

    async def delete(self, ref: MessageRef) -> None: ...


class Channel(Protocol):
    """One platform. Required: `name`, `start`, `stop`, `capabilities`, `surface`.

    The hooks below have defaults; override what the platform has.
    """

    name: ClassVar[str]
    renderer: ClassVar[Renderer] = Passthrough()  # what its surfaces render with (bot.rendering)

    async def start(self, inbox: Inbox) -> None:
        """Connect and begin handing messages to `inbox`; raise ConfigError / PlatformError clearly."""
        ...

    async def stop(self) -> None:
        """Stop taking messages. Replies in flight keep their connections until `aclose()`."""
        ...

    def capabilities(self, msg: InboundMessage) -> Capabilities:
        """What this conversation can do (they may differ inside one platform)."""
        ...

    def surface(self, msg: InboundMessage) -> ReplySurface:
        """A new surface for one reply to `msg`."""
        ...

    # --- optional hooks, with defaults ----------------------------------------------------------

    @classmethod
    def declared_capabilities(cls, chat_kind: ChatKind) -> Capabilities:
        """Capabilities for a chat kind on a default-configured channel (`switchboard route`)."""
        raise NotImplementedError(f"{cls.__name__} declares no capabilities")

    def access_policy(self) -> AccessPolicy:
        """Who may reach a model here; the core applies it (default: everyone)."""
        return AccessPolicy()

    def http_routes(self) -> list[AbstractRouteDef]:
        """Routes for the shared aiohttp server (webhooks, pages)."""
        return []

    async def aclose(self) -> None:
        """Close platform connections; called after the replies in flight have ended."""
        return None

    async def doctor_checks(self, *, deep: bool = False) -> list[Check]:
        """Read-only checks for `switchboard doctor` (token valid, platform reachable); `deep`
        (doctor --deep) allows the slower calls to the platform."""
        return [Check(f"channel {self.name}", True, "configured")]
