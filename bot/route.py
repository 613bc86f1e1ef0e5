"""The routing seam, owned by the core: what the runtime asks of a router and what it gets back.

`routing/` implements `Router`; the app hands it to the responder. The core never imports
`routing`: it sees models only as `ModelSpec` and decisions only as `RouteDecision`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.types import Capabilities, InboundMessage, LatencyClass


@dataclass(frozen=True, slots=True)
class RouteDecision:
    chain: tuple[str, ...]  # model refs "provider/model", primary first, then fallbacks
    tier: str  # "simple" | "standard" | "complex"
    latency_class: LatencyClass
    score: float  # complexity in [0, 1]
    reason: str  # human-readable: why this model
    params: dict[str, Any] = field(default_factory=dict)  # generation parameters for the primary
    prompt_tokens: int = 0  # the router's estimate (chars / 4)

    @property
    def model(self) -> str:
        return self.chain[0]

    @property
    def fallbacks(self) -> tuple[str, ...]:
        return self.chain[1:]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "chain": list(self.chain),
            "tier": self.tier,
            "latency_class": self.latency_class.value,
            "score": self.score,
            "reason": self.reason,
            "params": dict(self.params),
            "prompt_tokens": self.prompt_tokens,
        }


@dataclass(frozen=True, slots=True)
class ConversationState:
    """What routing may know of a conversation: a sticky `/model` choice and its depth."""

    sticky_model: str | None = None
    turns: int = 0
    history_chars: int = 0


@dataclass(frozen=True, slots=True)
class Spend:
    """The month's spend against the budget: an input to routing (what is affordable)."""

    monthly_usd: float | None
    spent_usd: float = 0.0

    @property
    def exhausted(self) -> bool:
        return self.monthly_usd is not None and self.spent_usd >= self.monthly_usd


class ModelSpec(Protocol):
    """What the runtime needs to know of one model (routing's catalog entries satisfy it)."""

    @property
    def ref(self) -> str: ...  # "provider/model" as users write it
    @property
    def provider(self) -> str: ...
    @property
    def id(self) -> str: ...  # the provider's own model id
    @property
    def params(self) -> Mapping[str, Any]: ...
    @property
    def context_window(self) -> int: ...  # tokens of prompt and answer together
    @property
    def price_input(self) -> float: ...
    @property
    def price_output(self) -> float: ...

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float: ...


class Router(Protocol):
    """Which model answers a message, and the catalog lookups the runtime needs."""

    async def adecide(
        self, msg: InboundMessage, caps: Capabilities, conv: ConversationState, spend: Spend | None = None
    ) -> RouteDecision:
        """The chain to try for `msg`; with the budget spent, only free models."""
        ...

    def model(self, ref: str) -> ModelSpec | None:
        """The model named by `ref` (a "provider/model" ref or an alias), or None."""
        ...

    def resolve(self, name: str) -> ModelSpec:
        """Like `model`, but raises bot.errors.UnknownModel."""
        ...

    def is_available(self, model: ModelSpec) -> bool:
        """Its provider is configured, with a key where one is needed."""
        ...

    def aliases(self) -> Iterable[str]: ...
