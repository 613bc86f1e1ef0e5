"""Shared state behind small interfaces, with the in-memory implementations one process uses.

Several processes serving one bot would share these (a Redis implementation of each, later)
without touching the dispatcher or the adapters: deliveries already taken, per-chat send budgets,
when a chat was last refused, and the month's spend.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from aiolimiter import AsyncLimiter

from bot.route import Spend
from bot.types import MessageRef, RateBudget

__all__ = [
    "Answered",
    "AnsweredMessages",
    "ChatBudgets",
    "MemoryAnsweredMessages",
    "MemoryChatBudgets",
    "MemoryModelHealth",
    "MemoryRefusalLog",
    "MemorySeenDeliveries",
    "MemorySpendLedger",
    "ModelHealth",
    "RateGate",
    "RefusalLog",
    "SeenDeliveries",
    "SpendLedger",
    "StoredSeenDeliveries",
    "month_start",
]


class SeenDeliveries(Protocol):
    """Which (channel, message id) deliveries were already taken."""

    def first_time(self, channel: str, message_id: str) -> bool:
        """Remember this delivery; False when it was taken before."""
        ...


class RateGate(Protocol):
    """One chat's budget: `acquire()` returns when one more send or edit fits in it."""

    async def acquire(self) -> None: ...


class ChatBudgets(Protocol):
    """The send/edit budget of every chat, shared by all the replies in it."""

    def gate(self, channel: str, chat_id: str, budget: RateBudget) -> RateGate: ...


class RefusalLog(Protocol):
    """When each chat was last refused, so a refusal goes out at most once per interval."""

    def should_refuse(self, channel: str, chat_id: str, every: float) -> bool:
        """True (and remembered) when no refusal went to this chat in the last `every` seconds."""
        ...


class SpendLedger(Protocol):
    """The month's spend on model calls, read on every routing decision."""

    def spend(self) -> Spend: ...

    def add(self, cost_usd: float, at: float | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class Answered:
    """The last message the bot answered in a conversation, and where its answer is."""

    message_id: str
    refs: tuple[MessageRef, ...]  # the reply's messages, to replace in place
    at: float  # unix time of the answer
    in_history: bool  # its exchange was written into the history (and is replaced with it)


class AnsweredMessages(Protocol):
    """Per conversation, the last answered message (so an edit of it can be answered again)."""

    def last(self, conversation: str) -> Answered | None: ...

    def remember(self, conversation: str, answered: Answered) -> None: ...


class MemoryAnsweredMessages:
    def __init__(self, max_conversations: int = 10_000) -> None:
        self._last: OrderedDict[str, Answered] = OrderedDict()
        self._max = max_conversations

    def last(self, conversation: str) -> Answered | None:
        return self._last.get(conversation)

    def remember(self, conversation: str, answered: Answered) -> None:
        self._last[conversation] = answered
        self._last.move_to_end(conversation)
        if len(self._last) > self._max:
            self._last.popitem(last=False)


class MemorySeenDeliveries:
    """The last `window` deliveries, oldest forgotten first."""

    def __init__(self, window: int = 10_000) -> None:
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._window = window

    def first_time(self, channel: str, message_id: str) -> bool:
        key = (channel, message_id)
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        if len(self._seen) > self._window:
            self._seen.popitem(last=False)
        return True


class StoredSeenDeliveries(MemorySeenDeliveries):
    """The in-memory window, written through to the store off the message path (batched on the
    next loop turn) and loaded back at start, so a platform redelivering after a restart (an
    unconfirmed Telegram offset, a Slack retry) is still dropped."""

    def __init__(self, store: SeenStore, *, window: int = 10_000, keep_seconds: float = 86_400.0) -> None:
        super().__init__(window)
        self._store = store
        self._keep = keep_seconds
        self._pending: list[tuple[str, str, float]] = []
        self._flush: asyncio.Task[None] | None = None

    async def load(self) -> None:
        for channel, message_id in await self._store.seen_since(time.time() - self._keep):
            super().first_time(channel, message_id)

    def first_time(self, channel: str, message_id: str) -> bool:
        if not super().first_time(channel, message_id):
            return False
        self._pending.append((channel, message_id, time.time()))
        if self._flush is None:
            self._flush = asyncio.get_running_loop().create_task(self._write())
        return True

    async def _write(self) -> None:
        await asyncio.sleep(0)  # one write for everything taken in this loop turn
        batch, self._pending, self._flush = self._pending, [], None
        await self._store.remember_seen(batch)

    async def aclose(self) -> None:
        """Write what is still pending (shutdown)."""
        if self._flush is not None:
            await asyncio.gather(self._flush, return_exceptions=True)
        if self._pending:
            batch, self._pending = self._pending, []
            await self._store.remember_seen(batch)


class SeenStore(Protocol):
    async def remember_seen(self, deliveries: Sequence[tuple[str, str, float]]) -> None: ...

    async def seen_since(self, since: float) -> list[tuple[str, str]]: ...


class MemoryChatBudgets:
    """An aiolimiter leaky bucket per chat; at most `max_chats` kept (the idle ones are cheap to rebuild)."""

    def __init__(self, max_chats: int = 10_000) -> None:
        self._gates: dict[tuple[str, str, RateBudget], AsyncLimiter] = {}
        self._max = max_chats

    def gate(self, channel: str, chat_id: str, budget: RateBudget) -> AsyncLimiter:
        key = (channel, chat_id, budget)
        lim = self._gates.get(key)
        if lim is None:
            if len(self._gates) >= self._max:
                self._gates = {k: v for k, v in self._gates.items() if not v.has_capacity(v.max_rate)}
            lim = self._gates[key] = AsyncLimiter(budget.requests, budget.per_seconds)
        return lim


class MemoryRefusalLog:
    def __init__(self, max_chats: int = 10_000) -> None:
        self._at: dict[tuple[str, str], float] = {}
        self._max = max_chats

    def should_refuse(self, channel: str, chat_id: str, every: float) -> bool:
        now = time.monotonic()
        key = (channel, chat_id)
        last = self._at.get(key)
        if last is not None and now - last < every:
            return False
        self._at[key] = now
        if len(self._at) > self._max:
            self._at = {k: v for k, v in self._at.items() if now - v < every}
        return True


class ModelHealth(Protocol):
    """Which models are worth asking right now: a circuit breaker per model, shared by every
    conversation, so one failing provider is not paid again by each of them."""

    def usable(self, ref: str) -> bool:
        """Not in cooldown (or its cooldown is over: one probe may go)."""
        ...

    def failed(self, ref: str, *, retry_after: float | None = None, disable: bool = False) -> None:
        """A call failed before its first token; `retry_after` from the provider sets the
        cooldown directly; `disable` (a refused key) keeps it out until the process restarts."""
        ...

    def succeeded(self, ref: str) -> None: ...


@dataclass(slots=True)
class _Breaker:
    failures: int = 0  # consecutive
    open_until: float = 0.0
    opened: int = 0  # times opened in a row (the cooldown doubles)
    probing: bool = False  # the cooldown is over and one call is on its way


class MemoryModelHealth:
    """`threshold` consecutive failures open a model for `cooldown` seconds, doubling each time it
    opens again up to `max_cooldown`; a retry-after opens it for exactly that long; after the
    cooldown one call probes it: success closes the breaker, failure opens it again."""

    def __init__(self, *, threshold: int = 3, cooldown: float = 30.0, max_cooldown: float = 300.0) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._breakers: dict[str, _Breaker] = {}

    def usable(self, ref: str) -> bool:
        b = self._breakers.get(ref)
        if b is None or b.open_until == 0.0:
            return True
        if time.monotonic() < b.open_until or b.probing:
            return False
        b.probing = True  # half-open: this caller is the probe
        return True

    def failed(self, ref: str, *, retry_after: float | None = None, disable: bool = False) -> None:
        b = self._breakers.setdefault(ref, _Breaker())
        b.failures += 1
        was_probe, b.probing = b.probing, False
        now = time.monotonic()
        if disable:
            b.open_until = float("inf")
        elif retry_after is not None and retry_after > 0:
            b.open_until = now + retry_after
        elif was_probe or b.failures >= self.threshold:
            b.opened += 1
            b.open_until = now + min(self.cooldown * 2 ** (b.opened - 1), self.max_cooldown)

    def succeeded(self, ref: str) -> None:
        b = self._breakers.get(ref)
        if b is not None:
            b.failures, b.open_until, b.opened, b.probing = 0, 0.0, 0, False

    def open_models(self) -> dict[str, float]:
        """Models in cooldown and the seconds left (`inf`: disabled)."""
        now = time.monotonic()
        return {ref: b.open_until - now for ref, b in self._breakers.items() if b.open_until > now}


def month_start(now: float | None = None) -> float:
    t = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC)
    return t.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


class MemorySpendLedger:
    """The month's spend in memory (loaded from the reply ledger at start), so routing reads it for free."""

    def __init__(self, monthly_usd: float | None, spent_usd: float = 0.0, now: float | None = None) -> None:
        self.monthly_usd = monthly_usd
        self._month = month_start(now)
        self.spent = spent_usd

    def spend(self) -> Spend:
        if month_start() != self._month:  # a new month began
            self._month, self.spent = month_start(), 0.0
        return Spend(self.monthly_usd, self.spent)

    @property
    def month(self) -> float:
        """When the month being counted began (unix time)."""
        return self._month

    def add(self, cost_usd: float, at: float | None = None) -> None:
        m = month_start(at)
        if m != self._month:
            self._month, self.spent = m, 0.0
        self.spent += cost_usd

    @property
    def exhausted(self) -> bool:
        return self.spend().exhausted
