"""The router: which model answers this message, and why.

Order: an explicit directive (sticky `/model`), then the configured default and fallbacks,
keeping only available models (provider configured and its key present); the bundled local
model is the last resort. Complexity tiers and the latency-class table extend this (issue 4).
"""

from __future__ import annotations

from bot.config import LOCAL_DEFAULT_MODEL, Config
from bot.types import Capabilities, InboundMessage
from routing.catalog import Catalog, ModelInfo
from routing.decision import ConversationState, RouteDecision


class Router:
    def __init__(self, cfg: Config, catalog: Catalog) -> None:
        self._cfg = cfg
        self.catalog = catalog

    def is_available(self, model: ModelInfo) -> bool:
        prov = self._cfg.providers.get(model.provider)
        return prov is not None and prov.has_key

    def decide(self, msg: InboundMessage, caps: Capabilities, conv: ConversationState) -> RouteDecision:
        chain: list[str] = []
        reason = ""
        if conv.sticky_model:
            m = self.catalog.get(conv.sticky_model)
            if m is not None and self.is_available(m):
                chain.append(m.ref)
                reason = f"/model {conv.sticky_model} chosen in this conversation"
        default = self._cfg.routing.default
        if default:
            m = self.catalog.get(default)
            if m is not None and self.is_available(m) and m.ref not in chain:
                chain.append(m.ref)
                reason = reason or "configured default"
        for fb in self._cfg.routing.fallbacks:
            m = self.catalog.get(fb)
            if m is not None and self.is_available(m) and m.ref not in chain:
                chain.append(m.ref)
        if LOCAL_DEFAULT_MODEL not in chain:
            chain.append(LOCAL_DEFAULT_MODEL)
        if not reason:
            reason = "no hosted model available: bundled local model"
        return RouteDecision(tuple(chain), "standard", caps.latency_class, 0.0, reason)
