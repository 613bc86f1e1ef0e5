"""The model catalog: built-in entries merged with the config's, aliases, and availability."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from bot.config import LOCAL_DEFAULT_MODEL, Config, ModelConfig


@dataclass(frozen=True, slots=True)
class ModelInfo:
    ref: str  # "provider/model" as users write it
    provider: str
    id: str  # the provider's own model id
    context_window: int = 8192
    max_output: int | None = None
    price_input: float = 0.0  # USD per million tokens
    price_output: float = 0.0
    price_cached_input: float | None = None
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    aliases: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    reasoning: str | None = None  # how reasoning is controlled, for humans

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        cached_price = self.price_input if self.price_cached_input is None else self.price_cached_input
        uncached = max(prompt_tokens - cached_tokens, 0)
        return (uncached * self.price_input + cached_tokens * cached_price + completion_tokens * self.price_output) / 1e6


BUILTIN: tuple[ModelInfo, ...] = (
    ModelInfo(
        ref=LOCAL_DEFAULT_MODEL,
        provider="local",
        id="smollm2-135m",
        context_window=8192,
        max_output=2048,
        aliases=("local",),
        ttft_ms=100,
        tokens_per_s=110,
    ),
)


class UnknownModel(KeyError):
    pass


class Catalog:
    def __init__(self, models: dict[str, ModelInfo], aliases: dict[str, str]) -> None:
        self._models = models
        self._aliases = aliases

    @classmethod
    def from_config(cls, cfg: Config, builtin: tuple[ModelInfo, ...] = BUILTIN) -> "Catalog":
        models = {m.ref: m for m in builtin}
        for ref, mc in cfg.models.items():
            models[ref] = _merge(models.get(ref), ref, mc)
        aliases: dict[str, str] = {}
        for m in models.values():
            for a in m.aliases:
                aliases[a] = m.ref
        aliases.update(cfg.routing.aliases)
        return cls(models, aliases)

    def resolve(self, name: str) -> ModelInfo:
        """A model by ref or alias; raises UnknownModel."""
        ref = self._aliases.get(name, name)
        try:
            return self._models[ref]
        except KeyError:
            raise UnknownModel(name) from None

    def get(self, name: str) -> ModelInfo | None:
        try:
            return self.resolve(name)
        except UnknownModel:
            return None

    def __iter__(self):
        return iter(self._models.values())

    @property
    def aliases(self) -> dict[str, str]:
        return dict(self._aliases)


def _merge(base: ModelInfo | None, ref: str, mc: ModelConfig) -> ModelInfo:
    provider, _, mid = ref.partition("/")
    info = base or ModelInfo(ref=ref, provider=provider, id=mid or ref)
    changes: dict[str, Any] = {}
    if mc.id:
        changes["id"] = mc.id
    if mc.context_window:
        changes["context_window"] = mc.context_window
    if mc.max_output:
        changes["max_output"] = mc.max_output
    if mc.price:
        changes.update(price_input=mc.price.input, price_output=mc.price.output, price_cached_input=mc.price.cached_input)
    if mc.ttft_ms is not None:
        changes["ttft_ms"] = mc.ttft_ms
    if mc.tokens_per_s is not None:
        changes["tokens_per_s"] = mc.tokens_per_s
    if mc.alias:
        extra = (mc.alias,) if isinstance(mc.alias, str) else tuple(mc.alias)
        changes["aliases"] = tuple(dict.fromkeys(info.aliases + extra))
    if mc.params:
        changes["params"] = {**info.params, **mc.params}
    return replace(info, **changes)
