"""Prometheus metrics for the runtime, one registry per App (so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.replies = Counter("switchboard_replies", "Replies written", ["channel", "model", "outcome"], registry=r)
        self.ttft = Histogram(
            "switchboard_ttft_seconds", "Provider time to first token", ["model"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.first_visible = Histogram(
            "switchboard_first_visible_seconds",
            "Message received to first visible text",
            ["channel"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("switchboard_tokens", "Tokens used", ["model", "kind"], registry=r)
        self.cost = Counter("switchboard_cost_usd", "Spend in USD", ["model"], registry=r)
        self.duplicates = Counter(
            "switchboard_duplicates_dropped", "Repeated deliveries dropped", ["channel"], registry=r
        )
        self.refused = Counter(
            "switchboard_refused", "Messages refused by a channel's access policy", ["channel"], registry=r
        )
        self.active = Gauge("switchboard_active_replies", "Replies being written", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
