"""What the router answers, and what it knows of a conversation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.types import LatencyClass


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
