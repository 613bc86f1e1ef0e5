"""`switchboard route` and `switchboard models list`, without calling any model.

Wiring (bot/cli.py, the composition root):

    from routing.cli import add_route_parser, run_route, add_models_parser, run_models
    add_route_parser(subparsers)                  # the "route" sub-command's arguments
    run_route(args, capabilities=lookup)          # lookup(channel, chat kind) -> Capabilities
    add_models_parser(subparsers)                 # "models list" -> run_models

A channel's latency class comes only from the capabilities its adapter declares: the caller hands
in `capabilities` (the app asks the adapter class); routing never imports a channel and keeps no
table of its own. `--latency` overrides the class.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bot.config import Config, load
from bot.errors import ConfigError
from bot.route import ConversationState
from bot.types import Capabilities, ChatKind, InboundMessage, LatencyClass
from routing.catalog import PRICES_CHECKED, Catalog
from routing.router import Router

CapabilitiesLookup = Callable[[str, ChatKind | None], Capabilities]


def add_route_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "route",
        help="show which model would answer a message, and why (calls no model)",
        description="Print the router's decision for TEXT without calling any model.",
    )
    p.add_argument("text", help="the message; '-' reads standard input, @PATH reads a file")
    p.add_argument(
        "--channel", default="webchat", help="a channel name: telegram, webchat, console, ... (default webchat)"
    )
    p.add_argument("--chat", choices=[k.value for k in ChatKind], default=None, help="chat kind on that channel")
    p.add_argument("--latency", choices=[c.value for c in LatencyClass], help="override the channel's latency class")
    p.add_argument("--sticky", metavar="MODEL", help="pretend the conversation chose /model MODEL")
    p.add_argument("--history-chars", type=int, default=0, help="characters of history sent with the message")
    p.add_argument("--turns", type=int, default=0, help="messages so far in the conversation")
    p.add_argument("--json", action="store_true", help="print the decision as JSON")
    p.add_argument("--config", default=argparse.SUPPRESS, help="config file (default: the usual lookup)")
    return p


def add_models_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "models", help="the model catalog: ids, prices, aliases, availability"
    )
    sub = p.add_subparsers(dest="models_cmd")
    lp = sub.add_parser("list", help="list the catalog")
    for q in (p, lp):
        q.add_argument("--json", action="store_true")
        q.add_argument("--config", default=argparse.SUPPRESS)
    p.set_defaults(func=run_models)
    lp.set_defaults(func=run_models)
    return p


def _read_text(arg: str) -> str:
    if arg == "-":
        return sys.stdin.read()
    if arg.startswith("@") and len(arg) > 1:
        with open(arg[1:], encoding="utf-8") as f:
            return f.read()
    return arg


def run_route(args: argparse.Namespace, *, capabilities: CapabilitiesLookup) -> int:
    chat = ChatKind(args.chat) if args.chat else None
    try:
        cfg = load(getattr(args, "config", None))
        caps = capabilities(args.channel, chat)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        text = _read_text(args.text)
    except OSError as e:
        print(f"cannot read {args.text[1:]}: {e.strerror}", file=sys.stderr)
        return 2
    if args.latency:
        caps = replace(caps, latency_class=LatencyClass(args.latency))
    lc = caps.latency_class
    msg = InboundMessage(
        channel=args.channel,
        conversation=f"{args.channel}:cli",
        sender_id="cli",
        text=text,
        message_id="cli-1",
        chat_kind=chat or ChatKind.PRIVATE,
    )
    conv = ConversationState(sticky_model=args.sticky, turns=args.turns, history_chars=args.history_chars)
    router = Router.from_config(cfg)
    t0 = time.perf_counter()
    d = router.decide(msg, caps, conv)
    elapsed_ms = (time.perf_counter() - t0) * 1000
    if args.json:
        out = d.as_dict() | {"channel": args.channel, "chat": args.chat, "decision_ms": round(elapsed_ms, 3)}
        print(json.dumps(out, indent=2))
        return 0
    where = f"{args.channel}" + (f"/{args.chat}" if args.chat else "")
    print(f"model:    {d.model}")
    print(f"chain:    {' -> '.join(d.chain)}")
    print(f"tier:     {d.tier} (score {d.score:.2f})")
    print(f"channel:  {where}: {lc.value} (answer should start within {lc.target_seconds * 1000:.0f} ms)")
    print(f"prompt:   ~{d.prompt_tokens} tokens")
    if d.params:
        print(f"params:   {json.dumps(d.params)}")
    print(f"reason:   {d.reason}")
    print(f"decided in {elapsed_ms:.3f} ms")
    return 0


def models_table(cfg: Config) -> list[dict[str, Any]]:
    """One row per catalog model: ref, provider id, limits, prices, speed, aliases, availability."""
    catalog = Catalog.from_config(cfg)
    router = Router(cfg, catalog, scorer=_NullScorer())
    rows = []
    for m in catalog:
        rows.append(
            {
                "ref": m.ref,
                "provider": m.provider,
                "id": m.id,
                "aliases": catalog.aliases_of(m.ref),
                "context_window": m.context_window,
                "max_output": m.max_output,
                "price_input": m.price_input,
                "price_output": m.price_output,
                "price_cached_input": m.price_cached_input,
                "ttft_ms": m.ttft_ms,
                "tokens_per_s": m.tokens_per_s,
                "reasoning": m.reasoning,
                "available": router.is_available(m),
                "unavailable_because": router.why_unavailable(m) or None,
                "notes": m.notes,
            }
        )
    return rows


def format_models_table(rows: list[dict[str, Any]]) -> str:
    head = ("model", "aliases", "context", "in/out/cached $/M", "ttft", "tok/s", "available")
    lines = [head]
    for r in rows:
        cached = "-" if r["price_cached_input"] is None else f"{r['price_cached_input']:g}"
        lines.append(
            (
                r["ref"],
                ",".join(r["aliases"]) or "-",
                _k(r["context_window"]),
                f"{r['price_input']:g}/{r['price_output']:g}/{cached}",
                "-" if r["ttft_ms"] is None else f"{r['ttft_ms']:.0f}ms",
                "-" if r["tokens_per_s"] is None else f"{r['tokens_per_s']:.0f}",
                "yes" if r["available"] else f"no ({r['unavailable_because']})",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)).rstrip() for line in lines]
    out.append(f"prices: USD per million tokens, checked {PRICES_CHECKED}; ttft and tok/s: published figures")
    return "\n".join(out)


def run_models(args: argparse.Namespace) -> int:
    try:
        cfg = load(getattr(args, "config", None))
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    rows = models_table(cfg)
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2))
    else:
        print(format_models_table(rows))
    return 0


class _NullScorer:
    name = "none"

    def score(self, text: str, turns: int = 0) -> Any:  # pragma: no cover - never called
        raise NotImplementedError


def _k(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M".replace(".0M", "M")
    return f"{n // 1000}k" if n >= 1000 else str(n)
