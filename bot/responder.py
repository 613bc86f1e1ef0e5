"""The reply pipeline for one turn: commands, routing, the model call with fallbacks, delivery.

The typing indicator goes out before anything else is looked at; the prompt is assembled
static-first (system prompt, history, new message) so provider prefix caches hit; a provider
failure before the first token moves down the chain, a failure after it ends in a visible notice;
every reply is logged and kept with its timings and cost.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from typing import Mapping

import structlog

from bot.budget import Budget
from bot.commands import Commands, parse_command
from bot.config import Config
from bot.dispatcher import Turn
from bot.errors import PlatformError, ProviderError, ProviderUnavailable
from bot.metrics import Metrics
from bot.providers.base import Provider
from bot.reply_stream import ReplyStream
from bot.store.base import ReplyRecord, Store
from bot.types import ChatTurn, Delta, GenerationRequest, InboundMessage, Usage
from channels.base import Channel
from routing.catalog import Catalog
from routing.decision import ConversationState, RouteDecision
from routing.router import Router

log = structlog.get_logger("switchboard.reply")

TOO_LONG = "Sorry, that message is too long for me ({n:,} characters; the limit is {limit:,}). Could you shorten it?"
ALL_FAILED = "Sorry, I couldn't get an answer from any model right now ({error}). Please try again in a moment."
CUT_OFF = "\n\n[answer cut off: {error}]"
INTERRUPTED = " […]"
CRASHED = "Sorry, something went wrong on my side while answering. Please try again."


@dataclass(slots=True)
class _Reply:
    """What one reply has gathered so far; concluded once, however it ended."""

    msg: InboundMessage
    stream: ReplyStream
    text: str = ""
    kind: str = "model"  # model | command | refusal
    decision: RouteDecision | None = None
    model: str = ""
    pieces: list[str] = field(default_factory=list)
    final: Delta | None = None
    prompt_chars: int = 0
    outcome: str = "ok"  # ok | fallback | cut_off | failed | interrupted | undelivered


class Responder:
    def __init__(
        self,
        cfg: Config,
        *,
        channels: Mapping[str, Channel],
        providers: Mapping[str, Provider],
        catalog: Catalog,
        router: Router,
        store: Store,
        metrics: Metrics,
    ) -> None:
        self.cfg = cfg
        self.channels = channels
        self.providers = providers
        self.catalog = catalog
        self.router = router
        self.store = store
        self.metrics = metrics
        self.commands = Commands(catalog, router, store)
        self.budget = Budget(cfg.budget.monthly_usd, store)
        self._system = ChatTurn("system", cfg.bot.system_prompt)
        self._background: set[asyncio.Task[None]] = set()

    async def __call__(self, turn: Turn) -> None:
        msg = turn.msg
        channel = self.channels[msg.channel]
        caps = channel.capabilities(msg)
        reply = _Reply(msg, ReplyStream(channel.surface(msg), caps, log=log))
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

    async def _generate(self, reply: _Reply, caps) -> None:
        """Commands, refusals, or routing and the model call with fallbacks; text goes to the stream."""
        msg, stream = reply.msg, reply.stream
        text = reply.text = msg.text.strip()
        cmd = parse_command(text)
        if cmd is not None:
            reply.kind = "command"
            stream.push(await self.commands.answer(msg, cmd))
            return
        if len(text) > self.cfg.bot.max_input_chars:
            reply.kind = "refusal"
            stream.push(TOO_LONG.format(n=len(text), limit=self.cfg.bot.max_input_chars))
            return
        conv = await self.store.conversation(msg.conversation)
        history = await self.store.history(msg.conversation, self.cfg.store.history_turns)
        history_chars = sum(len(t.content) for t in history)
        state = ConversationState(sticky_model=conv.sticky_model, turns=len(history), history_chars=history_chars)
        decision = await self.router.adecide(msg, caps, state)
        if self.budget.exhausted:
            decision = self._within_budget(decision)
        reply.decision = decision
        reply.model = decision.model
        messages = (self._system, *history, ChatTurn("user", text))
        reply.prompt_chars = len(self._system.content) + history_chars + len(text)

        errors: list[ProviderError] = []
        for i, ref in enumerate(decision.chain):
            model = self.catalog.resolve(ref)
            provider = self.providers.get(model.provider)
            if provider is None:
                continue
            params = dict(decision.params if i == 0 else model.params)
            max_tokens = params.pop("max_tokens", self.cfg.bot.max_tokens)
            temperature = params.pop("temperature", None)
            req = GenerationRequest(model.id, messages, max_tokens=max_tokens, temperature=temperature, extra=params)
            reply.model = ref
            try:
                async for delta in provider.stream(req):
                    if delta.text:
                        reply.pieces.append(delta.text)
                        stream.push(delta.text)
                    elif delta.usage is not None or delta.ttft is not None:
                        reply.final = delta
                if not reply.pieces:
                    finish = reply.final.finish_reason if reply.final else None
                    raise ProviderUnavailable(f"{ref}: empty answer (finish_reason={finish})", provider=model.provider)
            except ProviderError as e:
                errors.append(e)
                log.warning("provider_failed", model=ref, error=str(e), status=e.status, after_text=bool(reply.pieces))
                if reply.pieces:  # text is already visible: end with a notice, never a silently cut reply
                    reply.outcome = "cut_off"
                    stream.push(CUT_OFF.format(error=_short(e)))
                    return
                continue
            if i:
                reply.outcome = "fallback"
            return
        reply.outcome = "failed"
        stream.push(ALL_FAILED.format(error="; ".join(_short(e) for e in errors) or "no model available"))

    async def _conclude(self, reply: _Reply, notice: str | None = None) -> None:
        """Deliver (or end with `notice`), then log, count, charge and keep the reply."""
        msg, stream = reply.msg, reply.stream
        try:
            result = await (stream.close() if notice is None else stream.abort(notice))
            delivered = result.error is None
        except PlatformError as e:
            log.error("delivery_failed", channel=msg.channel, conversation=msg.conversation, error=str(e))
            result, delivered = None, False
        if reply.kind != "model" or (reply.decision is None and reply.outcome == "interrupted"):
            return  # nothing was asked of a model: nothing to log, charge or keep
        if not delivered and reply.outcome in ("ok", "fallback"):
            reply.outcome = "undelivered"
        record = self._record(reply, result)
        self._observe(record)
        self.budget.add(record.cost_usd, record.at)
        # written before the lane takes this conversation's next message (so it sees this turn),
        # after the reply is delivered (so the write costs this reply nothing); a reply the person
        # never saw is not written into the history the model sees next time
        reply_text = "".join(reply.pieces)
        keep = reply_text and delivered and reply.outcome in ("ok", "fallback", "cut_off", "interrupted")
        turns = [ChatTurn("user", reply.text), ChatTurn("assistant", reply_text)] if keep else []
        await self.store.save_reply(msg.conversation, turns, record)

    def _record(self, reply: _Reply, result) -> ReplyRecord:
        msg, final = reply.msg, reply.final
        if final is not None and final.usage is not None:
            usage = final.usage
        else:  # cut or interrupted before the provider reported usage: estimate, so spend is not missed
            usage = Usage(reply.prompt_chars // 4, sum(len(p) for p in reply.pieces) // 4, 0)
        model_info = self.catalog.get(reply.model)
        cost = model_info.cost(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) if model_info else 0.0
        first = result.first_visible_at if result is not None else reply.stream.first_visible_at
        return ReplyRecord(
            at=time.time(),
            channel=msg.channel,
            conversation=msg.conversation,
            model=reply.model,
            route_reason=reply.decision.reason if reply.decision else "",
            ttft=final.ttft if final else None,
            first_visible=(first - msg.received_at) if first else None,
            total=time.perf_counter() - msg.received_at,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            cost_usd=cost,
            outcome=reply.outcome,
        )

    def _within_budget(self, decision: RouteDecision) -> RouteDecision:
        """The month's budget is spent: keep only free models (the local one is always last)."""
        free = tuple(ref for ref in decision.chain if (m := self.catalog.get(ref)) and m.price_input == 0 and m.price_output == 0)
        chain = free or decision.chain[-1:]
        note = f"monthly budget ${self.budget.monthly_usd:g} reached (${self.budget.spent:.2f} spent): free models only"
        first = self.catalog.get(chain[0])
        return replace(decision, chain=chain, reason=f"{note}; {decision.reason}", params=dict(first.params) if first else {})

    def _spawn(self, coro) -> asyncio.Task[None]:
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
