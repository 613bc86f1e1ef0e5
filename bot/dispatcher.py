"""The dispatcher: every inbound message goes through here on its way to a reply.

It drops repeated deliveries of the same platform message, keeps each conversation strictly in
order (one lane per conversation, one worker per busy lane), runs many conversations at once under
a global limit, and decides what happens to messages that arrive while a reply is being written:

- ``followup`` (default): answered in turn, one reply each;
- ``collect``: everything that queued up is merged into one next turn;
- ``interrupt``: the running reply is cancelled and only the newest message is answered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import structlog

from bot.commands import parse_command
from bot.state import MemorySeenDeliveries, SeenDeliveries
from bot.types import InboundMessage

QueueMode = Literal["followup", "collect", "interrupt"]

log = structlog.get_logger("switchboard.dispatcher")

SETTLE_TURNS = 4  # event-loop turns from submit() to a reply's first real wait (measured: bench/telegram_latency.py)


@dataclass(frozen=True, slots=True)
class Turn:
    """One reply to write: the message to answer and every delivery folded into it."""

    msg: InboundMessage
    merged: tuple[InboundMessage, ...] = ()


Handler = Callable[[Turn], Coroutine[Any, Any, None]]


@dataclass(slots=True)
class _Lane:
    pending: deque[InboundMessage] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None
    current: asyncio.Task[None] | None = None
    replying: bool = False  # a reply is being written in the worker task itself
    stopping: bool = False  # stop_reply() cancelled that reply (not a shutdown)


class Dispatcher:
    def __init__(
        self,
        handler: Handler,
        *,
        on_duplicate: Callable[[InboundMessage], None] | None = None,
        max_concurrent: int = 256,
        queue_mode: QueueMode = "followup",
        dedupe_window: int = 10_000,
        seen: SeenDeliveries | None = None,
    ) -> None:
        self._handler = handler
        self._on_duplicate = on_duplicate
        self.max_concurrent = max_concurrent
        self._limit = asyncio.Semaphore(max_concurrent)
        self.queue_mode: QueueMode = queue_mode
        self._seen = seen if seen is not None else MemorySeenDeliveries(dedupe_window)
        self._lanes: dict[str, _Lane] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self.active = 0  # replies being written right now
        self.duplicates = 0

    # --- intake ------------------------------------------------------------------------------

    def is_duplicate(self, msg: InboundMessage) -> bool:
        """Remember this delivery; True when the same platform message was already taken.

        The one duplicate check of the runtime: adapters do not keep their own.
        """
        return not self._seen.first_time(msg.channel, msg.message_id)

    async def submit(self, msg: InboundMessage) -> bool:
        """Queue a message for its conversation; False when it was a repeated delivery.

        Returns at once: the reply is written by the conversation's worker task.
        """
        if self.is_duplicate(msg):
            self.duplicates += 1
            if self._on_duplicate is not None:
                self._on_duplicate(msg)
            log.debug("duplicate_dropped", channel=msg.channel, message_id=msg.message_id)
            return False
        lane = self._lanes.get(msg.conversation)
        if lane is None:
            lane = self._lanes[msg.conversation] = _Lane()
        if self.queue_mode == "interrupt":
            lane.pending.clear()
            if lane.current is not None and not lane.current.done():
                lane.current.cancel()
        lane.pending.append(msg)
        if lane.worker is None:
            self._idle.clear()
            lane.worker = asyncio.create_task(self._run_lane(msg.conversation, lane), name=f"lane:{msg.conversation}")
        return True

    # --- lanes -------------------------------------------------------------------------------

    def _next_turn(self, lane: _Lane) -> Turn:
        if self.queue_mode == "collect" and len(lane.pending) > 1:
            msgs = tuple(lane.pending)
            lane.pending.clear()
            text = "\n\n".join(m.text for m in msgs)
            return Turn(replace(msgs[-1], text=text, command=parse_command(text)), msgs)
        msg = lane.pending.popleft()
        return Turn(msg, (msg,))

    async def _run_lane(self, key: str, lane: _Lane) -> None:
        try:
            while lane.pending:
                turn = self._next_turn(lane)
                async with self._limit:
                    self.active += 1
                    try:
                        if self.queue_mode == "interrupt":
                            await self._run_cancellable(key, lane, turn)
                        else:  # the reply runs in the lane's own task (one hop less); stop_reply() cancels it
                            await self._run_inline(lane, turn)
                    except Exception as exc:
                        log.error("reply_failed", conversation=key, error=repr(exc), exc_info=exc)
                    finally:
                        self.active -= 1
        finally:
            lane.worker = None
            if self._lanes.get(key) is lane:
                del self._lanes[key]
            if not self._lanes:
                self._idle.set()

    async def _run_inline(self, lane: _Lane, turn: Turn) -> None:
        lane.replying = True
        try:
            await self._handler(turn)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not lane.stopping or task is None:
                raise  # shutdown
            task.uncancel()  # only the reply was stopped: the lane goes on with its next message
        finally:
            lane.replying = lane.stopping = False

    def stop_reply(self, conversation: str) -> bool:
        """Stop the reply being written in `conversation` (a person pressed "stop"): what was shown
        stays, marked as cut; queued messages are still answered. False when nothing was running."""
        lane = self._lanes.get(conversation)
        if lane is None:
            return False
        if lane.current is not None and not lane.current.done():
            lane.current.cancel()
            return True
        if lane.replying and lane.worker is not None and not lane.stopping:
            lane.stopping = True
            lane.worker.cancel()
            return True
        return False

    async def _run_cancellable(self, key: str, lane: _Lane, turn: Turn) -> None:
        """The reply in a task of its own, so a newer message can cancel it and not the lane."""
        lane.current = asyncio.create_task(self._handler(turn), name=f"reply:{key}")
        try:
            await asyncio.wait((lane.current,))
        finally:
            current, lane.current = lane.current, None
        error = None if current.cancelled() else current.exception()
        if error is not None:
            raise error

    # --- lifecycle ---------------------------------------------------------------------------

    async def settle(self) -> None:
        """Let the replies just submitted get going before the caller does more work.

        From submit() a reply needs SETTLE_TURNS turns of the loop to reach its first real wait
        (lane task, reply start, typing scheduled, model request on the wire).
        """
        for _ in range(SETTLE_TURNS):
            await asyncio.sleep(0)

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until every queued message has been answered; False if `timeout` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> list[InboundMessage]:
        """Cancel every reply in progress (shutdown); the messages still queued are returned, not
        answered, so the caller can tell their senders."""
        workers = [lane.worker for lane in self._lanes.values() if lane.worker]
        dropped: list[InboundMessage] = []
        for lane in self._lanes.values():
            dropped += lane.pending
            lane.pending.clear()
            if lane.current is not None:
                lane.current.cancel()
        for w in workers:
            w.cancel()
        for w in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await w
        return dropped
