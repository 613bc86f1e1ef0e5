"""Measure the local model on this machine: load time, time to first token, tokens per second.

    python -m bot.providers.local.measure [--engine auto|llama_cpp|mlx] [--runs 3] [--tokens 64]
        [--model-path FILE] [--threads N]

TTFT "cold" is a prompt that shares nothing with the one before; "warm" shares its system prompt
with the request before (the usual case in a chat: the engine reuses the cached prefix). Tokens/s counts decoding only:
(completion_tokens - 1) / (total - ttft). Medians over --runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from bot.config import BotConfig, ProviderConfig
from bot.providers.local.provider import LocalProvider
from bot.types import ChatTurn, Delta, GenerationRequest

QUESTIONS = [
    "What is the capital of France?",
    "Name three colours.",
    "What is two plus two?",
    "Who wrote Romeo and Juliet?",
    "What is the largest ocean?",
]


async def measure(engine: str, runs: int, tokens: int, model_path: str | None, threads: int | None) -> dict[str, Any]:
    cfg = ProviderConfig.model_validate(
        {"kind": "local", "engine": engine, "model_path": model_path, "n_threads": threads}
    )
    p = LocalProvider("local", cfg)
    t0 = time.perf_counter()
    await p.start()
    load = time.perf_counter() - t0
    system = BotConfig().system_prompt

    async def one(
        messages: tuple[ChatTurn, ...], max_tokens: int, temperature: float = 0.0
    ) -> tuple[float, int, float, str]:
        """(TTFT, completion tokens, total seconds, text) of one request."""
        req = GenerationRequest(model="smollm2-135m", messages=messages, max_tokens=max_tokens, temperature=temperature)
        t = time.perf_counter()
        final: Delta | None = None
        text = []
        async for d in p.stream(req):
            if d.text:
                text.append(d.text)
            if d.usage is not None:
                final = d
        total = time.perf_counter() - t
        assert final is not None and final.usage is not None and final.ttft is not None, "no usage reported"
        return final.ttft, final.usage.completion_tokens, total, "".join(text)

    cold, warm, tps = [], [], []
    first = None
    for i in range(runs):
        sys_i = f"[run {i}, {time.time()}] {system}"  # a system prompt never seen before
        ttft, _, _, text = await one((ChatTurn("system", sys_i), ChatTurn("user", QUESTIONS[0])), 16)
        cold.append(ttft)
        first = first if first is not None else text
        ttft, _, _, _ = await one((ChatTurn("system", sys_i), ChatTurn("user", QUESTIONS[1 + i % 4])), 16)
        warm.append(ttft)
        ttft, completion, total, _ = await one(
            (ChatTurn("system", sys_i), ChatTurn("user", "Write a short story about a lighthouse keeper.")),
            tokens,
            temperature=0.2,
        )
        if completion > 1:
            tps.append((completion - 1) / (total - ttft))
    await p.aclose()
    return {
        "engine": p.engine_name,
        "load_s": load,
        "ttft_cold_s": statistics.median(cold),
        "ttft_warm_s": statistics.median(warm),
        "tokens_per_s": statistics.median(tps) if tps else float("nan"),
        "answer": first,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", default="auto", choices=["auto", "llama_cpp", "mlx"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--model-path")
    ap.add_argument("--threads", type=int)
    a = ap.parse_args()
    r = asyncio.run(measure(a.engine, a.runs, a.tokens, a.model_path, a.threads))
    print(
        f"engine={r['engine']} load={r['load_s']:.2f}s ttft_cold={r['ttft_cold_s'] * 1000:.0f}ms "
        f"ttft_warm={r['ttft_warm_s'] * 1000:.0f}ms decode={r['tokens_per_s']:.1f} tok/s "
        f"answer={r['answer']!r}"
    )


if __name__ == "__main__":
    main()
