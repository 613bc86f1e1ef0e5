"""The reply pipeline for one turn: commands, routing, the model call with fallbacks, delivery.

The typing indicator goes out before anything else is looked at; the prompt is assembled
static-first (system prompt, history, new message) so provider prefix caches hit; a provider
failure before the first token moves down the chain, a failure after it ends in a visible notice;
every reply is logged and kept with its timings and cost.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Mapping

import structlog

from bot.budget import Budget
from bot.commands import Commands, parse_command
from bot.config import Config
from bot.dispatcher import Turn
from bot.errors import PlatformError, ProviderError
from bot.metrics import Metrics
from bot.providers.base import Provider
from bot.reply_stream import ReplyStream
from bot.store.base import ReplyRecord, Store
from bot.types import ChatTurn, Delta, GenerationRequest, InboundMessage, Usage
from channels.base import Channel
from routing.catalog import Catalog
from routing.decision import ConversationState
from routing.router import Router

log = structlog.get_logger("switchboard.reply")

TOO_LONG = "Sorry, that message is too long for me ({n:,} characters; the limit is {limit:,}). Could you shorten it?"
ALL_FAILED = "Sorry, I couldn't get an answer from any model right now ({error}). Please try again in a moment."
CUT_OFF = "\n\n[answer cut off: {error}]"
INTERRUPTED = " […]"


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
        stream = ReplyStream(channel.surface(msg), caps, log=log)
        await stream.start()
        text = msg.text.strip()
        cmd = parse_command(text)
        if cmd is not None:
            stream.push(await self.commands.answer(msg, cmd))
            await self._finish(stream, msg)
            return
        if len(text) > self.cfg.bot.max_input_chars:
            stream.push(TOO_LONG.format(n=len(text), limit=self.cfg.bot.max_input_chars))
            await self._finish(stream, msg)
            return
        await self._answer(msg, text, caps, stream)

    async def _answer(self, msg: InboundMessage, text: str, caps, stream: ReplyStream) -> None:
        conv = await self.store.conversation(msg.conversation)
        history = await self.store.history(msg.conversation, self.cfg.store.history_turns)
        state = ConversationState(
            sticky_model=conv.sticky_model, turns=len(history), history_chars=sum(len(t.content) for t in history)
        )
        decision = await self.router.adecide(msg, caps, state)
        if self.budget.exhausted:
            decision = self._within_budget(decision)
        messages = (self._system, *history, ChatTurn("user", text))

        pieces: list[str] = []
        final: Delta | None = None
        used_model = decision.model
        outcome = "ok"
        error: ProviderError | None = None
        errors: list[ProviderError] = []
        try:
            for i, ref in enumerate(decision.chain):
                model = self.catalog.resolve(ref)
                provider = self.providers.get(model.provider)
                if provider is None:
                    continue
                params = dict(decision.params if i == 0 else model.params)
                max_tokens = params.pop("max_tokens", self.cfg.bot.max_tokens)
                temperature = params.pop("temperature", None)
                req = GenerationRequest(model.id, messages, max_tokens=max_tokens, temperature=temperature, extra=params)
                used_model = ref
                try:
                    async for delta in provider.stream(req):
                        if delta.text:
                            pieces.append(delta.text)
                            stream.push(delta.text)
                        elif delta.usage is not None or delta.ttft is not None:
                            final = delta
                    error = None
                    if i:
                        outcome = "fallback"
                    break
                except ProviderError as e:
                    error = e
                    errors.append(e)
                    log.warning("provider_failed", model=ref, error=str(e), status=e.status, after_text=bool(pieces))
                    if pieces:  # text is already visible: end with a notice, never a silently cut reply
                        break
        except asyncio.CancelledError:
            # interrupted by a newer message (queue mode "interrupt") or shutdown: leave a visible mark
            closing = asyncio.ensure_future(self._close_interrupted(stream, msg, decision, used_model, pieces))
            self._background.add(closing)
            closing.add_done_callback(self._background.discard)
            await asyncio.shield(closing)
            raise

        if error is not None and not pieces:
            outcome = "failed"
            stream.push(ALL_FAILED.format(error="; ".join(_short(e) for e in errors)))
        elif error is not None:
            outcome = "cut_off"
            stream.push(CUT_OFF.format(error=_short(error)))
        result = await self._finish(stream, msg)
        reply_text = "".join(pieces)
        usage = final.usage if final and final.usage else Usage()
        model_info = self.catalog.get(used_model)
        cost = model_info.cost(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) if model_info else 0.0
        now = time.perf_counter()
        record = ReplyRecord(
            at=time.time(),
            channel=msg.channel,
            conversation=msg.conversation,
            model=used_model,
            route_reason=decision.reason,
            ttft=final.ttft if final else None,
            first_visible=(result.first_visible_at - msg.received_at) if result and result.first_visible_at else None,
            total=now - msg.received_at,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            cost_usd=cost,
            outcome=outcome,
        )
        self._observe(record)
        self.budget.add(cost, record.at)
        # written before the lane takes this conversation's next message (so it sees this turn),
        # after the reply is delivered (so the write costs this reply nothing)
        turns = [ChatTurn("user", text), ChatTurn("assistant", reply_text)] if reply_text and outcome != "failed" else []
        await self.store.save_reply(msg.conversation, turns, record)

    def _within_budget(self, decision):
        """The month's budget is spent: keep only free models (the local one is always last)."""
        free = tuple(ref for ref in decision.chain if (m := self.catalog.get(ref)) and m.price_input == 0 and m.price_output == 0)
        note = f"monthly budget ${self.budget.monthly_usd:g} reached (${self.budget.spent:.2f} spent): free models only"
        return replace(decision, chain=free or decision.chain[-1:], reason=f"{note}; {decision.reason}", params={})

    async def _close_interrupted(self, stream: ReplyStream, msg: InboundMessage, decision, used_model: str, pieces: list[str]) -> None:
        try:
            await stream.abort(INTERRUPTED if pieces else "")
        except Exception as e:  # noqa: BLE001 - shutdown path: log, never raise
            log.warning("interrupt_close_failed", error=repr(e))
        log.info("reply_interrupted", channel=msg.channel, model=used_model, route=decision.reason)

    async def _finish(self, stream: ReplyStream, msg: InboundMessage):
        try:
            return await stream.close()
        except PlatformError as e:
            log.error("delivery_failed", channel=msg.channel, conversation=msg.conversation, error=str(e))
            return None

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
        """Wait for interrupted replies to finish posting their closing mark (shutdown, tests)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 2)


def _short(e: ProviderError) -> str:
    kind = type(e).__name__.removeprefix("Provider")
    return f"{e.provider or 'provider'}: {kind}" + (f" {e.status}" if e.status else "")
