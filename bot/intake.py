"""The intake: the `Inbox` every adapter hands its messages to, and the per-chat policy applied there.

For every platform alike, in this order:

1. access: the channel's `AccessPolicy`; a refused person in a private chat gets one polite
   refusal per interval (`RefusalLog`), groups get silence;
2. commands: parsed once from the text unless the adapter already set `msg.command` (a slash
   command arrives exactly like `/model x` typed as text);
3. the dispatcher: the one duplicate check, then the conversation's lane.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping

import structlog

from bot.access import AccessPolicy
from bot.channel import Channel
from bot.commands import parse_command
from bot.dispatcher import Dispatcher
from bot.errors import PlatformError
from bot.metrics import Metrics
from bot.state import MemoryRefusalLog, RefusalLog
from bot.types import ChatTurn, InboundMessage

log = structlog.get_logger("switchboard.intake")

NOT_ANSWERED = "I'm restarting and could not answer your last message; please send it again in a moment."


class Intake:
    def __init__(
        self,
        dispatcher: Dispatcher,
        channels: Mapping[str, Channel],
        *,
        metrics: Metrics | None = None,
        refusals: RefusalLog | None = None,
        history: Callable[[str, int], Awaitable[list[ChatTurn]]] | None = None,
    ) -> None:
        """`history(conversation, limit)`: the store's read, for adapters that show a chat again."""
        self._history = history
        self.dispatcher = dispatcher
        self.channels = channels
        self.metrics = metrics
        self.refusals = refusals if refusals is not None else MemoryRefusalLog()
        self._policies: dict[str, AccessPolicy] = {}
        self._accepting = True
        self._background: set[asyncio.Task[None]] = set()
        self.refused = 0

    def policy(self, channel: str) -> AccessPolicy:
        pol = self._policies.get(channel)
        if pol is None:
            pol = self._policies[channel] = self.channels[channel].access_policy()
        return pol

    # --- Inbox ---------------------------------------------------------------------------------

    async def submit(self, msg: InboundMessage) -> bool:
        if not self._accepting:
            return False
        policy = self.policy(msg.channel)
        if not policy.allows(msg):
            self._refuse(msg, policy)
            return False
        if msg.command is None and msg.text.startswith("/"):
            cmd = parse_command(msg.text)
            if cmd is not None:
                msg = dataclasses.replace(msg, command=cmd)
        return await self.dispatcher.submit(msg)

    async def settle(self) -> None:
        await self.dispatcher.settle()

    async def stop_reply(self, conversation: str) -> bool:
        return self.dispatcher.stop_reply(conversation)

    async def history(self, conversation: str, limit: int) -> list[ChatTurn]:
        if self._history is None:
            return []
        return await self._history(conversation, limit)

    # --- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Take no more messages (shutdown)."""
        self._accepting = False

    def open(self) -> None:
        self._accepting = True

    async def tell_dropped(self, messages: list[InboundMessage]) -> None:
        """Messages taken but not answered before shutdown: each sender is told to send it again
        (rather than silence); the platform connections are still open when this runs."""
        if messages:
            log.warning("shutdown_dropped_queued", count=len(messages))
            await asyncio.gather(*(self._send(m, NOT_ANSWERED) for m in messages), return_exceptions=True)

    async def flush(self) -> None:
        """Wait for refusals still being sent."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    # --- refusals ------------------------------------------------------------------------------

    def _refuse(self, msg: InboundMessage, policy: AccessPolicy) -> None:
        self.refused += 1
        if self.metrics is not None:
            self.metrics.refused.labels(msg.channel).inc()
        log.info("refused", channel=msg.channel, chat=msg.chat_id, sender=msg.sender_id)
        if not policy.answers_refusal(msg) or not policy.refusal_text:
            return
        if not self.refusals.should_refuse(msg.channel, msg.chat_id or msg.conversation, policy.refusal_every):
            return
        task = asyncio.create_task(self._send_refusal(msg, policy.refusal_text))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send_refusal(self, msg: InboundMessage, text: str) -> None:
        await self._send(msg, text)

    async def _send(self, msg: InboundMessage, text: str) -> None:
        try:
            await self.channels[msg.channel].surface(msg).send(text, plain=True)
        except PlatformError as e:
            log.warning("notice_failed", channel=msg.channel, chat=msg.chat_id, error=str(e))
