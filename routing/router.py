"""The router: which model answers this message, and why.

Order of decision (each step can only narrow the next):

1. An explicit directive: the conversation's sticky `/model NAME` (set by the `/model` command, bot.commands), kept
   until `/model default`. Honoured when the model is known, available and holds the prompt;
   otherwise the reason says why it was passed over.
2. Hard constraints: the prompt (history + message, ~4 chars a token, plus the reply's
   `bot.max_tokens`) must fit the model's context window. When the table's models are too small,
   the long-context list (Gemini 2.5 Flash's 1M first) goes in front.
3. The routing table: latency class (from the channel's Capabilities) x complexity tier (from the
   scorer) -> a list of models, primary first. Shipped default: `DEFAULT_TABLE`; config
   `[routing.classes.<class>]` overrides single cells.
4. Availability: only models whose provider is configured with its key. After the cell come the
   configured default and fallbacks, the everyday chain, and last the bundled local model (always
   available), so with no keys at all everything goes to the local model.

The decision carries the chain (primary, then fallbacks), tier, score and a reason a person can
read. Nothing here does I/O; a decision takes microseconds on the heuristic path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import replace

from bot.config import LOCAL_DEFAULT_MODEL, Config
from bot.route import ConversationState, ModelSpec, RouteDecision, Spend
from bot.types import Capabilities, InboundMessage, LatencyClass
from routing.catalog import Catalog, ModelInfo
from routing.complexity import (
    CombinedScorer,
    Complexity,
    EmbeddingScorer,
    HeuristicScorer,
    Scorer,
    tier_for,
)

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4
DEFAULT_OUTPUT_RESERVE = 1024

# latency class -> tier -> models, primary first. The research stack: llama-3.3-70b everyday;
# llama3.1-8b / gpt-oss-120b for simple messages where the answer must start at once; qwen-3-32b
# for complex ones on fast channels, qwen-3-235b where the channel can wait. gpt-oss-120b is in
# every chain: it is the Cerebras model still served if the older ids are gone.
DEFAULT_TABLE: dict[str, dict[str, list[str]]] = {
    "sync": {
        "simple": ["cerebras/llama3.1-8b", "cerebras/gpt-oss-120b"],
        "standard": ["cerebras/llama-3.3-70b", "cerebras/gpt-oss-120b"],
        "complex": ["cerebras/qwen-3-32b", "cerebras/llama-3.3-70b", "cerebras/gpt-oss-120b"],
    },
    "semi_sync": {
        "simple": ["cerebras/llama-3.3-70b", "cerebras/llama3.1-8b", "cerebras/gpt-oss-120b"],
        "standard": ["cerebras/llama-3.3-70b", "cerebras/gpt-oss-120b"],
        "complex": ["cerebras/qwen-3-235b", "cerebras/qwen-3-32b", "cerebras/gpt-oss-120b"],
    },
    "async": {
        "simple": ["cerebras/llama-3.3-70b", "cerebras/gpt-oss-120b"],
        "standard": ["cerebras/llama-3.3-70b", "cerebras/gpt-oss-120b"],
        "complex": ["cerebras/qwen-3-235b", "cerebras/gpt-oss-120b", "anthropic/claude-sonnet-5-5"],
    },
    "batch": {
        "simple": ["cerebras/llama-3.3-70b", "cerebras/gpt-oss-120b"],
        "standard": ["cerebras/gpt-oss-120b", "cerebras/llama-3.3-70b"],
        "complex": ["cerebras/qwen-3-235b", "anthropic/claude-sonnet-5-5", "gemini/gemini-2.5-pro"],
    },
}
DEFAULT_LONG_CONTEXT = ["gemini/gemini-2.5-flash", "gemini/gemini-2.5-pro", "anthropic/claude-sonnet-5-5"]
EVERYDAY = ["cerebras/llama-3.3-70b", "cerebras/gpt-oss-120b", "gemini/gemini-2.5-flash", "anthropic/claude-sonnet-5-5"]


def build_scorer(cfg: Config) -> tuple[Scorer, str]:
    """The scorer the config asks for, and a note when it had to fall back to the heuristic."""
    rc = cfg.routing
    heuristic = HeuristicScorer()
    if rc.scorer == "heuristic":
        return heuristic, ""
    from routing import embedding
    from routing.examples import DEFAULT_EXAMPLES

    if not embedding.available():
        return heuristic, f"{rc.scorer} scorer asked for but the encoder is not installed: heuristic only"
    examples = {**DEFAULT_EXAMPLES, **rc.examples}
    try:
        emb = EmbeddingScorer(examples)
    except Exception as e:  # a broken install must not stop the bot: the heuristic still routes
        log.warning("embedding scorer unavailable: %s", e)
        return heuristic, f"embedding scorer failed to load ({e}): heuristic only"
    if rc.scorer == "embedding":
        return emb, ""
    return CombinedScorer(heuristic, emb, rc.embedding_weight), ""


class Router:
    def __init__(self, cfg: Config, catalog: Catalog, scorer: Scorer | None = None) -> None:
        self._cfg = cfg
        self.catalog = catalog
        if scorer is None:
            scorer, self.scorer_note = build_scorer(cfg)
        else:
            self.scorer_note = ""
        self.scorer = scorer
        rc = cfg.routing
        self.thresholds = {"standard": 0.35, "complex": 0.65, **rc.thresholds}
        self.output_reserve = cfg.bot.max_tokens or DEFAULT_OUTPUT_RESERVE
        self.max_chain = rc.max_chain
        self.local = catalog.get(LOCAL_DEFAULT_MODEL)
        # everything that depends only on the config is resolved once, here
        self.table = _merge_table(DEFAULT_TABLE, rc.classes)
        self._after_cell = self._resolve_all(([rc.default] if rc.default else []) + list(rc.fallbacks) + EVERYDAY)
        self._long = self._resolve_all(rc.long_context if rc.long_context is not None else DEFAULT_LONG_CONTEXT)
        self._cells: dict[tuple[str, str], list[ModelInfo]] = {}
        self._cell_notes: dict[tuple[str, str], str] = {}
        self._cell_first_skipped: dict[tuple[str, str], str] = {}  # the table's first choice, when unusable
        for lc in LatencyClass:
            for tier in ("simple", "standard", "complex"):
                refs = self.table.get(lc.value, {}).get(tier, []) if rc.use_table else []
                avail, skipped = self._available(refs)
                self._cells[(lc.value, tier)] = avail
                self._cell_notes[(lc.value, tier)] = skipped
                if refs and skipped and (not avail or self.catalog.get(refs[0]) is not avail[0]):
                    self._cell_first_skipped[(lc.value, tier)] = skipped.split("; ")[0]
        # outside the table, prefer models that start within the class's target (not for batch)
        self._after_by_lc = {
            lc: self._after_cell if lc is LatencyClass.BATCH else _prefer_fast(self._after_cell, lc)
            for lc in LatencyClass
        }
        self._long_by_lc = {
            lc: self._long if lc is LatencyClass.BATCH else _prefer_fast(self._long, lc) for lc in LatencyClass
        }

    @property
    def blocking(self) -> bool:
        """True when a decision runs the encoder (milliseconds of CPU): call `adecide` from async code."""
        return not isinstance(self.scorer, HeuristicScorer)

    async def adecide(
        self, msg: InboundMessage, caps: Capabilities, conv: ConversationState, spend: Spend | None = None
    ) -> RouteDecision:
        """`decide` for the event loop: inline on the heuristic path (microseconds), in a worker
        thread on the embedding path (onnxruntime releases the GIL while it computes)."""
        if not self.blocking:
            return self.decide(msg, caps, conv, spend)
        return await asyncio.to_thread(self.decide, msg, caps, conv, spend)

    # --- catalog lookups the runtime needs (bot.route.Router) ---------------------------------

    def model(self, ref: str) -> ModelInfo | None:
        return self.catalog.get(ref)

    def resolve(self, name: str) -> ModelInfo:
        return self.catalog.resolve(name)

    def aliases(self) -> list[str]:
        return sorted(self.catalog.aliases)

    @classmethod
    def from_config(cls, cfg: Config) -> Router:
        return cls(cfg, Catalog.from_config(cfg))

    def problems(self) -> list[str]:
        """Model names in the routing config that the catalog does not know (for `doctor`)."""
        rc = self._cfg.routing
        named: list[tuple[str, str]] = [("routing.default", rc.default)] if rc.default else []
        named += [(f"routing.fallbacks[{i}]", r) for i, r in enumerate(rc.fallbacks)]
        named += [(f"routing.long_context[{i}]", r) for i, r in enumerate(rc.long_context or [])]
        named += [(f"routing.aliases.{a}", r) for a, r in rc.aliases.items()]
        for lc, tiers in rc.classes.items():
            if lc not in {c.value for c in LatencyClass}:
                named.append((f"routing.classes.{lc}", "(unknown latency class)"))
                continue
            for tier, v in tiers.items():
                for r in [v] if isinstance(v, str) else v:
                    named.append((f"routing.classes.{lc}.{tier}", r))
        return [f"{key}: unknown model '{ref}'" for key, ref in named if self.catalog.get(ref) is None]

    # --- availability ---------------------------------------------------------------------

    def is_available(self, model: ModelSpec) -> bool:
        prov = self._cfg.providers.get(model.provider)
        return prov is not None and prov.has_key

    def why_unavailable(self, model: ModelSpec) -> str:
        prov = self._cfg.providers.get(model.provider)
        if prov is None:
            return f"provider '{model.provider}' not configured"
        if not prov.has_key:
            return f"no API key for '{model.provider}'"
        return ""

    def _resolve_all(self, refs: Iterable[str]) -> list[ModelInfo]:
        out: list[ModelInfo] = []
        for r in refs:
            m = self.catalog.get(r)
            if m is not None and self.is_available(m) and all(o.ref != m.ref for o in out):
                out.append(m)
        return out

    def _available(self, refs: list[str]) -> tuple[list[ModelInfo], str]:
        avail: list[ModelInfo] = []
        skipped: list[str] = []
        for r in refs:
            m = self.catalog.get(r)
            if m is None:
                skipped.append(f"{r} unknown")
            elif not self.is_available(m):
                skipped.append(f"{m.ref}: {self.why_unavailable(m)}")
            elif all(a.ref != m.ref for a in avail):
                avail.append(m)
        return avail, "; ".join(skipped)

    # --- the decision -----------------------------------------------------------------------

    def prompt_tokens(self, msg: InboundMessage, conv: ConversationState) -> int:
        """Cheap estimate: (history + message + system prompt) chars / 4."""
        chars = conv.history_chars + len(msg.text) + len(self._cfg.bot.system_prompt)
        return chars // CHARS_PER_TOKEN + 1

    def score(self, text: str, turns: int = 0) -> tuple[Complexity, str]:
        c = self.scorer.score(text, turns)
        return c, tier_for(c.score, self.thresholds)

    def decide(
        self, msg: InboundMessage, caps: Capabilities, conv: ConversationState, spend: Spend | None = None
    ) -> RouteDecision:
        """The decision; with the month's budget spent (`spend.exhausted`), free models only."""
        decision = self._decide(msg, caps, conv)
        if spend is not None and spend.exhausted:
            return self._within_budget(decision, spend)
        return decision

    def _within_budget(self, decision: RouteDecision, spend: Spend) -> RouteDecision:
        """Keep only free models (the bundled local one is always last in a chain)."""
        free = tuple(
            ref for ref in decision.chain if (m := self.catalog.get(ref)) and m.price_input == 0 and m.price_output == 0
        )
        chain = free or decision.chain[-1:]
        note = f"monthly budget ${spend.monthly_usd:g} reached (${spend.spent_usd:.2f} spent): free models only"
        first = self.catalog.get(chain[0])
        params = dict(first.params) if first else {}
        return replace(decision, chain=chain, reason=f"{note}; {decision.reason}", params=params)

    def _decide(self, msg: InboundMessage, caps: Capabilities, conv: ConversationState) -> RouteDecision:
        lc = caps.latency_class
        tokens = self.prompt_tokens(msg, conv)
        need = tokens + self.output_reserve
        complexity, tier = self.score(msg.text, conv.turns)

        def fits(m: ModelInfo) -> bool:
            return need <= m.context_window

        notes: list[str] = []
        chain: list[ModelInfo] = []
        why = ""

        # 1. the directive
        if conv.sticky_model:
            m = self.catalog.get(conv.sticky_model)
            if m is None:
                notes.append(f"/model {conv.sticky_model} is not in the catalog: ignored")
            elif not self.is_available(m):
                notes.append(f"/model {conv.sticky_model} unavailable ({self.why_unavailable(m)}): ignored")
            elif not fits(m):
                notes.append(
                    f"/model {conv.sticky_model} holds {_k(m.context_window)} tokens, this prompt needs "
                    f"~{_k(need)}: passed over"
                )
            else:
                chain.append(m)
                why = f"/model {conv.sticky_model} chosen in this conversation (sticky until /model default)"

        # 2-4. constraints, table, availability
        cell = self._cells[(lc.value, tier)]
        after, long_list = self._after_by_lc[lc], self._long_by_lc[lc]
        candidates = cell + after
        cell_fits = [m for m in cell if fits(m)]
        long_first = (cell and not fits(cell[0])) or (not cell and not any(fits(m) for m in self._after_cell))
        if long_first:
            candidates = long_list + candidates
        seen = {m.ref for m in chain}
        for m in candidates:
            if m.ref not in seen and fits(m):
                chain.append(m)
                seen.add(m.ref)

        if not why:
            if chain and cell and chain[0] is cell[0]:
                why = f"table {lc.value}.{tier}"
            elif chain and long_first and any(chain[0].ref == m.ref for m in long_list):
                first = cell[0] if cell else None
                too_small = f"{first.ref}'s {_k(first.context_window)} context" if first else "the table's models"
                why = (
                    f"long prompt: ~{_k(need)} tokens with the reply exceed {too_small}; "
                    f"first long-context model ({_k(chain[0].context_window)} context)"
                )
            elif chain and cell_fits and chain[0] is cell_fits[0]:
                why = f"table {lc.value}.{tier}"
            elif chain:
                why = "first available after the table"
                if self._cell_notes.get((lc.value, tier)):
                    why += f" ({self._cell_notes[(lc.value, tier)]})"
        first_skipped = self._cell_first_skipped.get((lc.value, tier))
        if first_skipped and why.startswith(("table", "long prompt")):
            notes.append(f"table's first choice skipped ({first_skipped})")

        chain = chain[: self.max_chain - 1] if self.local is not None else chain[: self.max_chain]
        if self.local is not None and all(m.ref != self.local.ref for m in chain):
            chain.append(self.local)
        if chain[0] is self.local and not why:
            why = "no hosted model available (no provider keys): bundled local model"
        if chain[0] is self.local and not fits(self.local):
            notes.append(
                f"~{_k(need)} tokens exceed the local model's {_k(self.local.context_window)}: "
                "the oldest turns are left out, then the message is cut to fit"
            )
        primary = chain[0]
        if primary.ttft_ms is not None and primary.ttft_ms > lc.target_seconds * 1000:
            notes.append(
                f"expected TTFT ~{primary.ttft_ms:.0f} ms > {lc.value} target {lc.target_seconds * 1000:.0f} ms"
            )
        if self.scorer_note:
            notes.append(self.scorer_note)

        reason = (
            f"{_tier_text(tier, complexity, self.thresholds)}; {lc.value} channel -> {primary.ref}: {why}; "
            f"~{_k(tokens)} prompt tokens"
        )
        if len(chain) > 1:
            reason += "; then " + ", ".join(m.ref for m in chain[1:])
        if notes:
            reason += "; " + "; ".join(notes)
        return RouteDecision(
            chain=tuple(m.ref for m in chain),
            tier=tier,
            latency_class=lc,
            score=complexity.score,
            reason=reason,
            params=_params_for(primary, tier, lc),
            prompt_tokens=tokens,
        )


def _prefer_fast(models: list[ModelInfo], lc: LatencyClass) -> list[ModelInfo]:
    """Stable: models whose expected TTFT meets the class's target first, the rest after."""
    target = lc.target_seconds * 1000
    fast = [m for m in models if m.ttft_ms is None or m.ttft_ms <= target]
    return fast + [m for m in models if not (m.ttft_ms is None or m.ttft_ms <= target)]


def _merge_table(
    base: dict[str, dict[str, list[str]]], over: dict[str, dict[str, str | list[str]]]
) -> dict[str, dict[str, list[str]]]:
    out = {lc: {t: list(v) for t, v in tiers.items()} for lc, tiers in base.items()}
    for lc, tiers in over.items():
        row = out.setdefault(lc, {})
        for tier, v in tiers.items():
            row[tier] = [v] if isinstance(v, str) else list(v)
    return out


def _params_for(m: ModelInfo, tier: str, lc: LatencyClass) -> dict[str, object]:
    """The model's own params, with reasoning effort raised only for complex work that can wait."""
    params = dict(m.params)
    if "reasoning_effort" in params and tier == "complex" and lc in (LatencyClass.ASYNC, LatencyClass.BATCH):
        params["reasoning_effort"] = (
            "medium" if params["reasoning_effort"] in ("low", "none") else params["reasoning_effort"]
        )
    return params


def _tier_text(tier: str, c: Complexity, th: dict[str, float]) -> str:
    s = c.score
    if tier == "complex":
        bound = f"score {s:.2f} >= {th['complex']:.2f}"
    elif tier == "standard":
        bound = f"{th['standard']:.2f} <= score {s:.2f} < {th['complex']:.2f}"
    else:
        bound = f"score {s:.2f} < {th['standard']:.2f}"
    return f"{tier} ({bound}, {c.method}: {c.explain()})"


def _k(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M".replace(".0M", "M")
    if n >= 10_000:
        return f"{n // 1000}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return str(n)
