"""The model call: a router's decision in, one stream of text out.

    run = chain.run(decision, messages)
    async for text in run:        # the answer's text, from whichever model gave it
        ...
    run.outcome                   # ok | fallback | cut_off | failed
    usage, cost = run.charge()    # what it cost, estimated when the provider never said

What it owns, so the responder (which keeps the conversation) does not:

- a prompt that fits each model it goes to (`bot.prompt.fit_prompt`: oldest history first, then
  the new message cut, with a note for the person);
- fallback before the first text: a provider error, an empty or malformed stream moves down the
  chain; the errors are kept for the notice;
- after the first text a failure cannot be hidden: the run ends with outcome `cut_off` and the
  error, and the caller shows that the answer was cut;
- usage and cost: from the provider's final delta, or estimated (characters / 4) when the stream
  was cut or cancelled before it said.

- a circuit breaker per model shared by every conversation (`bot.state.ModelHealth`): a model
  in cooldown is skipped while another candidate remains; a retry-after sets the cooldown; a
  refused key disables the model.

Later resilience work (hedged requests, budget reservations) belongs here too: each is a policy
on the order and timing of the attempts.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import structlog

from bot.errors import ProviderAuthError, ProviderBadRequest, ProviderError, ProviderRateLimited, ProviderUnavailable
from bot.prompt import fit_prompt
from bot.providers.base import Provider
from bot.route import ModelSpec, RouteDecision, Router
from bot.state import MemoryModelHealth, ModelHealth
from bot.types import ChatTurn, Delta, GenerationRequest, Usage

log = structlog.get_logger("switchboard.model_chain")

Outcome = Literal["ok", "fallback", "cut_off", "failed"]
CHARS_PER_TOKEN = 4


@dataclass(slots=True)
class ChainRun:
    """One model call across the chain; iterate it for text. Its fields tell how it went."""

    _chain: ModelChain
    decision: RouteDecision
    messages: tuple[ChatTurn, ...]
    model: str = ""  # the model answering (or tried last)
    outcome: Outcome = "ok"
    final: Delta | None = None  # the provider's last delta: usage, TTFT, finish reason
    errors: list[ProviderError] = field(default_factory=list)
    chars: int = 0  # characters of answer text so far
    note: str = ""  # for the person, when their message had to be cut to fit the model
    _spec: ModelSpec | None = None

    _gen: AsyncGenerator[str, None] | None = None

    def __post_init__(self) -> None:
        self.model = self.decision.model

    def __aiter__(self) -> AsyncIterator[str]:
        if self._gen is None:
            self._gen = self._stream()
        return self._gen

    async def aclose(self) -> None:
        """Stop early (nobody will see the rest): the provider's stream is closed, generation stops."""
        if self._gen is not None:
            await self._gen.aclose()

    async def _stream(self) -> AsyncGenerator[str, None]:
        chain = self._chain
        candidates = chain.candidates(self.decision)
        tried = 0
        for i, (spec, provider) in enumerate(candidates):
            last_resort = i == len(candidates) - 1 and not tried
            if not chain.health.usable(spec.ref) and not last_resort:
                log.debug("model_in_cooldown", model=spec.ref)
                continue  # its breaker is open: the next model, unless none is left
            tried += 1
            self.model, self._spec = spec.ref, spec
            fitted = fit_prompt(self.messages, spec.context_window, chain.max_tokens, model=spec.ref)
            if fitted.dropped_turns or fitted.note:
                log.info("prompt_fitted", model=spec.ref, dropped_turns=fitted.dropped_turns, cut=bool(fitted.note))
            self.note = fitted.note
            try:
                async for delta in provider.stream(chain.request(spec, self.decision, fitted.messages, first=i == 0)):
                    if delta.text:
                        self.chars += len(delta.text)
                        yield delta.text
                    elif delta.usage is not None or delta.ttft is not None:
                        self.final = delta
                if not self.chars:
                    finish = self.final.finish_reason if self.final else None
                    raise ProviderUnavailable(
                        f"{spec.ref}: empty answer (finish_reason={finish})", provider=spec.provider
                    )
            except ProviderError as e:
                self.errors.append(e)
                log.warning(
                    "provider_failed", model=spec.ref, error=str(e), status=e.status, after_text=bool(self.chars)
                )
                chain.record_failure(spec, e)
                if self.chars:  # text is already visible: the caller must say the answer was cut
                    self.outcome = "cut_off"
                    return
                continue
            chain.health.succeeded(spec.ref)
            self.outcome = "fallback" if i else "ok"
            return
        self.outcome = "failed"

    def charge(self, prompt_chars: int) -> tuple[Usage, float]:
        """Tokens used and their cost; estimated when the provider did not report usage."""
        if self.final is not None and self.final.usage is not None:
            usage = self.final.usage
        else:  # cut or cancelled before the provider reported usage: estimate, so spend is not missed
            usage = Usage(prompt_chars // CHARS_PER_TOKEN, self.chars // CHARS_PER_TOKEN, 0)
        spec = self._spec or self._chain.router.model(self.model)
        cost = spec.cost(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) if spec else 0.0
        return usage, cost


class ModelChain:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        router: Router,
        *,
        max_tokens: int | None,
        health: ModelHealth | None = None,
    ) -> None:
        self.providers = providers
        self.router = router
        self.max_tokens = max_tokens
        self.health = health if health is not None else MemoryModelHealth()

    def record_failure(self, spec: ModelSpec, e: ProviderError) -> None:
        """Tell the model's breaker: a refused key disables it, a retry-after sets its cooldown,
        a request the provider found bad (too long, a bad parameter) says nothing of its health."""
        if isinstance(e, ProviderBadRequest):
            return
        if isinstance(e, ProviderAuthError):
            log.error("provider_key_refused", model=spec.ref, provider=spec.provider, hint="fix its api_key; restart")
            self.health.failed(spec.ref, disable=True)
            return
        retry_after = e.retry_after if isinstance(e, ProviderRateLimited) else None
        self.health.failed(spec.ref, retry_after=retry_after)

    def run(self, decision: RouteDecision, messages: Sequence[ChatTurn]) -> ChainRun:
        return ChainRun(self, decision, tuple(messages))

    def candidates(self, decision: RouteDecision) -> list[tuple[ModelSpec, Provider]]:
        """The chain's models that have a running provider, in order."""
        out = []
        for ref in decision.chain:
            spec = self.router.model(ref)
            provider = self.providers.get(spec.provider) if spec is not None else None
            if spec is not None and provider is not None:
                out.append((spec, provider))
        return out

    def request(
        self, spec: ModelSpec, decision: RouteDecision, messages: tuple[ChatTurn, ...], *, first: bool
    ) -> GenerationRequest:
        """The primary gets the decision's parameters; a fallback its own."""
        params = dict(decision.params if first else spec.params)
        max_tokens = params.pop("max_tokens", self.max_tokens)
        temperature = params.pop("temperature", None)
        return GenerationRequest(spec.id, messages, max_tokens=max_tokens, temperature=temperature, extra=params)
