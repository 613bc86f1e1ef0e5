"""What the runtime keeps: conversation history, per-conversation state, and a reply ledger."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.types import ChatTurn


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    sticky_model: str | None = None


@dataclass(frozen=True, slots=True)
class ReplyRecord:
    """One delivered reply, with where its time and money went (kept and logged)."""

    at: float  # unix time
    channel: str
    conversation: str
    model: str
    route_reason: str
    ttft: float | None  # provider's time to first token, seconds
    first_visible: float | None  # message received -> first text visible on the platform, seconds
    total: float  # message received -> final text delivered, seconds
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_usd: float
    outcome: str = "ok"  # ok | fallback | failed | interrupted


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def history(self, conversation: str, limit: int) -> list[ChatTurn]: ...

    async def save_reply(
        self, conversation: str, turns: Sequence[ChatTurn], record: ReplyRecord, *, replace_last: int = 0
    ) -> None:
        """A delivered reply's turns (may be empty) and its ledger record, written together;
        `replace_last` turns at the end of the history are dropped first (an edited question)."""
        ...

    async def reset(self, conversation: str) -> None: ...

    async def conversation(self, conversation: str) -> ConversationRecord: ...

    async def set_sticky_model(self, conversation: str, model: str | None) -> None: ...

    async def last_reply(self, conversation: str) -> ReplyRecord | None: ...

    async def spend_since(self, since: float) -> float: ...

    async def remember_seen(self, deliveries: Sequence[tuple[str, str, float]]) -> None:
        """(channel, message_id, unix time) of deliveries taken, so a restart still drops repeats."""
        ...

    async def seen_since(self, since: float) -> list[tuple[str, str]]:
        """Deliveries taken since `since` (older ones may be forgotten)."""
        ...
