from __future__ import annotations

from typing import Any

from bot.config import Config, parse
from bot.route import ConversationState
from bot.types import Capabilities, ChatKind, InboundMessage, LatencyClass, Streaming
from routing.catalog import Catalog
from routing.complexity import HeuristicScorer
from routing.router import Router

ALL_KEYS: dict[str, Any] = {
    "providers": {
        "cerebras": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"},
        "gemini": {"kind": "gemini", "api_key": "k"},
        "anthropic": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"},
    }
}


def make_cfg(data: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> Config:
    return parse(data or {}, env=env or {})


def keyed(**routing: Any) -> Config:
    data: dict[str, Any] = {**ALL_KEYS}
    if routing:
        data["routing"] = routing
    return make_cfg(data)


def make_router(cfg: Config) -> Router:
    return Router(cfg, Catalog.from_config(cfg), scorer=HeuristicScorer())


def caps(lc: LatencyClass | str) -> Capabilities:
    return Capabilities(streaming=Streaming.EDIT, latency_class=LatencyClass(lc), max_chars=4096)


def msg(text: str, kind: ChatKind = ChatKind.PRIVATE) -> InboundMessage:
    return InboundMessage(
        channel="test", conversation="test:1", sender_id="u", text=text, message_id="1", chat_kind=kind
    )


def conv(**kw: Any) -> ConversationState:
    return ConversationState(**kw)


CHITCHAT = "hey, how's it going?"
CODING = "How do I write a Python function that merges two sorted lists in O(n)?"
ANALYSIS = (
    "Analyze our Q3 churn: first compare the retention curves of the two pricing cohorts, then estimate "
    "how much of the difference is explained by the onboarding change, and finally recommend a strategy "
    "for Q4 with trade-offs. What data would you need? What are the risks?"
)
LONG_DOC = "Summarize the key risks in this annual report:\n" + ("revenue fell in the third quarter. " * 34_300)
