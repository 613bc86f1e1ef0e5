"""What the router answers, and what it knows of a conversation."""

from __future__ import annotations

from dataclasses import dataclass

from bot.types import LatencyClass


@dataclass(frozen=True, slots=True)
class RouteDecision:
    chain: tuple[str, ...]  # model refs "provider/model", primary first, then fallbacks
    tier: str  # "simple" | "standard" | "complex"
    latency_class: LatencyClass
    score: float  # complexity in [0, 1]
    reason: str  # human-readable: why this model

    @property
    def model(self) -> str:
        return self.chain[0]


@dataclass(frozen=True, slots=True)
class ConversationState:
    """What routing may know of a conversation: a sticky `/model` choice and its depth."""

    sticky_model: str | None = None
    turns: int = 0
    history_chars: int = 0
