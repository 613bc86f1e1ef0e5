"""The reply to one turn of a conversation: commands, refusals, history, and delivery.

The typing indicator goes out before anything else is looked at; the prompt is assembled
static-first (system prompt, history, new message) so provider prefix caches hit. The model call
itself (fallbacks, the cut-off path, usage and cost) is the model chain's (`bot.model_chain`);
this module turns its outcome into what the person reads, and logs, charges and keeps every reply.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from bot.channel import Channel
from bot.commands import ASK, Commands
from bot.config import Config
from bot.dispatcher import Turn
from bot.errors import PlatformError, ProviderError
from bot.metrics import Metrics
from bot.model_chain import ChainRun, ModelChain
from bot.reply_stream import ReplyResult, ReplyStream
from bot.route import ConversationState, RouteDecision, Router
from bot.state import (
    Answered,
    AnsweredMessages,
    ChatBudgets,
    MemoryAnsweredMessages,
    MemoryChatBudgets,
    MemorySpendLedger,
    SpendLedger,
)
from bot.store.base import ReplyRecord, Store
from bot.types import Capabilities, ChatTurn, InboundMessage, MessageRef, Streaming

log = structlog.get_logger("switchboard.reply")

TOO_LONG = "Sorry, that message is too long for me ({n:,} characters; the limit is {limit:,}). Could you shorten it?"
ALL_FAILED = (
    "Sorry, I couldn't get an answer from any model right now ({error}). Please try again in a moment; "
    "if this keeps happening, /reset starts this conversation afresh."
)
CUT_OFF = "\n\n[answer cut off: {error}]"
INTERRUPTED = " […]"
CRASHED = "Sorry, something went wrong on my side while answering. Please try again."


@dataclass(slots=True)
class _Reply:
    """What one reply has gathered so far; concluded once, however it ended."""

    msg: InboundMessage
    stream: ReplyStream
    previous: Answered | None = None  # the answer this one replaces (an edited question)
    text: str = ""
    kind: str = "model"  # model | command | refusal
    decision: RouteDecision | None = None
    run: ChainRun | None = None
    pieces: list[str] = field(default_factory=list)
    prompt_chars: int = 0
    outcome: str = "ok"  # ok | fallback | cut_off | failed | interrupted | undelivered | deleted | client_gone


class Responder:
    def __init__(
        self,
        cfg: Config,
        *,
        channels: Mapping[str, Channel],
        chain: ModelChain,
        router: Router,
        store: Store,
        metrics: Metrics,
        spend: SpendLedger | None = None,
        chat_budgets: ChatBudgets | None = None,
        answered: AnsweredMessages | None = None,
    ) -> None:
        self.cfg = cfg
        self.channels = channels
        self.chain = chain
        self.router = router
        self.store = store
        self.metrics = metrics
        self.commands = Commands(router, store)
        self.spend = spend if spend is not None else MemorySpendLedger(cfg.budget.monthly_usd)
        self.chat_budgets = chat_budgets if chat_budgets is not None else MemoryChatBudgets()
        self.answered = answered if answered is not None else MemoryAnsweredMessages()
        self._system = ChatTurn("system", cfg.bot.system_prompt)
        self._background: set[asyncio.Task[None]] = set()

    def reply_stream(
        self, msg: InboundMessage, channel: Channel, caps: Capabilities, previous: Answered | None = None
    ) -> ReplyStream:
        """The stream for one reply, paced by the chat's budget where the platform has one; an
        answer to an edited question edits the earlier answer's messages in place."""
        existing: tuple[MessageRef, ...] = ()
        if previous is not None and previous.refs:
            existing = previous.refs
            if caps.streaming in (Streaming.DRAFT, Streaming.NATIVE):  # a draft cannot replace a message
                interval = max(caps.min_edit_interval, caps.min_send_interval or 0.0)
                caps = dataclasses.replace(caps, streaming=Streaming.EDIT, min_edit_interval=interval)
        budget = caps.chat_budget
        gate = self.chat_budgets.gate(msg.channel, msg.chat_id or msg.conversation, budget) if budget else None
        return ReplyStream(channel.surface(msg), caps, log=log, budget=gate, existing=existing)

    def _edited(self, msg: InboundMessage) -> Answered | None:
        """The earlier answer an edited question replaces, or None when the edit is to be ignored
        (not the last message answered here, or answered too long ago)."""
        previous = self.answered.last(msg.conversation)
        if previous is None or previous.message_id != msg.edit_of:
            return None
        if time.time() - previous.at > self.cfg.bot.edit_window:
            return None
        return previous

    async def __call__(self, turn: Turn) -> None:
        msg = turn.msg
        previous = None
        if msg.edit_of is not None:
            previous = self._edited(msg)
            if previous is None:
                log.debug("edit_ignored", channel=msg.channel, conversation=msg.conversation)
                return
        channel = self.channels[msg.channel]
        caps = channel.capabilities(msg)
        reply = _Reply(msg, self.reply_stream(msg, channel, caps, previous), previous)
        await reply.stream.start()
        try:
            await self._generate(reply, caps)
        except asyncio.CancelledError:
            # interrupted by a newer message (queue mode "interrupt") or shutdown: the reply so far
            # stays, marked as cut, in the background; the lane moves on at once
            reply.outcome = "interrupted"
            self._spawn(self._conclude(reply, notice=INTERRUPTED if reply.pieces else ""))
            raise
        except Exception as e:  # a bug or an unexpected failure: never leave typing on, say so
            log.exception("reply_crashed", channel=msg.channel, conversation=msg.conversation, error=repr(e))
            reply.outcome = "failed"
            await self._conclude(reply, notice=CRASHED)
            return
        # the answer is complete: its delivery must not be cut by a newer message or shutdown
        await asyncio.shield(self._spawn(self._conclude(reply)))

    async def _generate(self, reply: _Reply, caps: Capabilities) -> None:
        """Commands, refusals, or routing and the model chain; text goes to the stream."""
        msg, stream = reply.msg, reply.stream
        text = reply.text = msg.text.strip()
        if msg.command is not None and msg.command.name == ASK:
            text = reply.text = msg.command.args.strip()
        elif msg.command is not None:
            reply.kind = "command"
            stream.push(await self.commands.answer(msg, msg.command))
            return
        if len(text) > self.cfg.bot.max_input_chars:
            reply.kind = "refusal"
            stream.push(TOO_LONG.format(n=len(text), limit=self.cfg.bot.max_input_chars))
            return
        conv = await self.store.conversation(msg.conversation)
        history = await self.store.history(msg.conversation, self.cfg.store.history_turns)
        if reply.previous is not None and reply.previous.in_history:  # the edited exchange is replaced
            replaced = 2
            history = (await self.store.history(msg.conversation, self.cfg.store.history_turns + replaced))[:-replaced]
        history_chars = sum(len(t.content) for t in history)
        state = ConversationState(sticky_model=conv.sticky_model, turns=len(history), history_chars=history_chars)
        decision = reply.decision = await self.router.adecide(msg, caps, state, self.spend.spend())
        messages = (self._system, *history, ChatTurn("user", text))
        reply.prompt_chars = len(self._system.content) + history_chars + len(text)

        run = reply.run = self.chain.run(decision, messages)
        async for piece in run:
            reply.pieces.append(piece)
            stream.push(piece)
            if stream.gone:  # deleted, or nobody is there any more: stop the model, show nothing more
                await run.aclose()
                reply.outcome = stream.gone
                return
        reply.outcome = run.outcome
        if run.note and run.outcome in ("ok", "fallback"):
            stream.push(f"\n\n{run.note}")
        if run.outcome == "cut_off":  # text is already visible: end with a notice, never a silently cut reply
            stream.push(CUT_OFF.format(error=_short(run.errors[-1])))
        elif run.outcome == "failed":
            stream.push(ALL_FAILED.format(error="; ".join(_short(e) for e in run.errors) or "no model available"))

    async def _conclude(self, reply: _Reply, notice: str | None = None) -> None:
        """Deliver (or end with `notice`), then log, count, charge and keep the reply."""
        msg, stream = reply.msg, reply.stream
        result: ReplyResult | None
        try:
            result = await (stream.close() if notice is None else stream.abort(notice))
            delivered = result.error is None
        except PlatformError as e:
            log.error("delivery_failed", channel=msg.channel, conversation=msg.conversation, error=str(e))
            result, delivered = None, False
        if reply.kind != "model" or reply.run is None:
            return  # nothing was asked of a model: nothing to log, charge or keep
        if not delivered and reply.outcome in ("ok", "fallback"):
            reply.outcome = "undelivered"
        record = self._record(reply, reply.run, result)
        self._observe(record)
        self.spend.add(record.cost_usd, record.at)
        # written before the lane takes this conversation's next message (so it sees this turn),
        # after the reply is delivered (so the write costs this reply nothing); a reply the person
        # never saw is not written into the history the model sees next time
        reply_text = "".join(reply.pieces)
        keep = bool(reply_text) and delivered and reply.outcome in ("ok", "fallback", "cut_off", "interrupted")
        turns = [ChatTurn("user", reply.text), ChatTurn("assistant", reply_text)] if keep else []
        previous = reply.previous
        replace_last = 2 if previous is not None and previous.in_history else 0
        await self.store.save_reply(msg.conversation, turns, record, replace_last=replace_last)
        if delivered and result is not None and result.refs:
            # an edited question keeps the original's id: editing it again answers it again
            question = msg.edit_of if msg.edit_of is not None else msg.message_id
            self.answered.remember(msg.conversation, Answered(question, tuple(result.refs), record.at, keep))

    def _record(self, reply: _Reply, run: ChainRun, result: ReplyResult | None) -> ReplyRecord:
        msg, final = reply.msg, run.final
        usage, cost = run.charge(reply.prompt_chars)
        first = result.first_visible_at if result is not None else reply.stream.first_visible_at
        return ReplyRecord(
            at=time.time(),
            channel=msg.channel,
            conversation=msg.conversation,
            model=run.model,
            route_reason=run.decision.reason,
            ttft=final.ttft if final else None,
            first_visible=(first - msg.received_mono) if first else None,
            total=time.perf_counter() - msg.received_mono,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            cost_usd=cost,
            outcome=reply.outcome,
        )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run to the end even if the reply's task is cancelled; flush() waits for these."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _observe(self, r: ReplyRecord) -> None:
        log.info(
            "reply",
            channel=r.channel,
            model=r.model,
            route=r.route_reason,
            outcome=r.outcome,
            ttft_ms=_ms(r.ttft),
            first_visible_ms=_ms(r.first_visible),
            total_ms=_ms(r.total),
            prompt_tokens=r.prompt_tokens,
            completion_tokens=r.completion_tokens,
            cached_tokens=r.cached_tokens,
            cost_usd=round(r.cost_usd, 6),
        )
        m = self.metrics
        m.replies.labels(r.channel, r.model, r.outcome).inc()
        if r.ttft is not None:
            m.ttft.labels(r.model).observe(r.ttft)
        if r.first_visible is not None:
            m.first_visible.labels(r.channel).observe(r.first_visible)
        m.tokens.labels(r.model, "prompt").inc(r.prompt_tokens)
        m.tokens.labels(r.model, "completion").inc(r.completion_tokens)
        m.cost.labels(r.model).inc(r.cost_usd)

    async def flush(self) -> None:
        """Wait for replies still being delivered in the background (shutdown, tests)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 2)


def _short(e: ProviderError) -> str:
    kind = type(e).__name__.removeprefix("Provider")
    return f"{e.provider or 'provider'}: {kind}" + (f" {e.status}" if e.status else "")
