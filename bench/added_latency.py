"""Added latency to first visible text, over the provider's own TTFT.

A fake OpenAI-compatible provider runs in its own process on 127.0.0.1 (fixed TTFT, fixed token
rate); the real runtime (dispatcher, router, responder, ReplyStream, the openai SDK provider with
warm connections) answers on a fake editing channel whose calls complete at once. For each reply:

    added = (first visible text on the channel - message received) - the provider's own TTFT

where the provider's own TTFT is what the fake server took for that request (handler entered to
first chunk written, stamped on the machine-wide monotonic clock): the fixed TTFT plus its timer's
lateness, which is the provider's time, not ours. Everything else counts against the runtime: the
HTTP request and response, SSE parsing, dispatcher, routing, history and ReplyStream.

Conversations run closed-loop, all at once: each person sends the next message a think time
(uniform 0.5x-1.5x of --think) after the previous reply was complete.

    python bench/added_latency.py --conversations 1 200 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._stats import summary  # noqa: E402
from bot.channel import Channel  # noqa: E402
from bot.types import (  # noqa: E402
    Capabilities,
    ChatKind,
    InboundMessage,
    LatencyClass,
    Markup,
    MessageRef,
    Streaming,
)

EDITING = Capabilities(
    Streaming.EDIT,
    LatencyClass.SEMI_SYNC,
    max_chars=4096,
    min_edit_interval=0.25,
    typing_refresh=4.0,
    markup=Markup.PLAIN,
)


class InstantSurface:
    """An editing channel whose calls complete at once; records when text first became visible."""

    def __init__(self, channel: BenchChannel, msg: InboundMessage) -> None:
        self._channel = channel
        self._msg = msg

    async def typing(self) -> None:
        return None

    async def send(self, text: str, *, plain: bool = False) -> MessageRef:
        self._channel.visible(self._msg.message_id)
        return MessageRef("1")

    async def edit(self, ref: MessageRef, text: str, *, plain: bool = False) -> None:
        return None

    async def draft(self, text: str) -> None:
        self._channel.visible(self._msg.message_id)

    async def finish(self, text: str, *, plain: bool = False) -> MessageRef | None:
        return MessageRef("1")


class BenchChannel(Channel):
    name = "bench"

    def __init__(self) -> None:
        self.first_visible: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.inbox = None

    def visible(self, mid: str) -> None:
        if mid not in self.first_visible:
            t = self.first_visible[mid] = time.perf_counter()
            fut = self.waiters.pop(mid, None)
            if fut is not None and not fut.done():
                fut.set_result(t)

    async def start(self, inbox) -> None:
        self.inbox = inbox

    async def stop(self) -> None:
        return None

    def capabilities(self, msg: InboundMessage) -> Capabilities:
        return EDITING

    def surface(self, msg: InboundMessage) -> InstantSurface:
        return InstantSurface(self, msg)


async def run(
    conversations: int, rounds: int, base_url: str, ttft: float, think: float
) -> tuple[list[float], float, int]:
    from bot import config
    from bot.app import App
    from bot.dispatcher import Dispatcher, Turn

    cfg = config.parse(
        {
            "providers": {
                "fake": {
                    "kind": "openai",
                    "base_url": base_url,
                    "api_key": "bench",
                    "keepalive_expiry": 300,
                    "warm_connections": 32,
                }
            },
            "models": {"fake/bench": {"context_window": 128000, "price": {"input": 0.1, "output": 0.1}}},
            "routing": {"default": "fake/bench"},
            "store": {"kind": "memory", "history_turns": 6},
            "dispatcher": {"max_concurrent": 512},
            "logging": {"level": "error"},
        }
    )
    from bot import logs

    logs.configure(os.environ.get("BENCH_LOG", "error"), "json")
    channel = BenchChannel()
    from bot.providers.openai_compat import OpenAICompatProvider

    # only the provider under test: the bundled local model would load (and idle) in this process
    providers = {"fake": OpenAICompatProvider("fake", cfg.providers["fake"])}
    app = App(cfg, channels=[channel], providers=providers, serve_http=False)
    done: dict[str, asyncio.Future[None]] = {}

    async def handler(turn: Turn) -> None:  # the app's own responder, plus a "reply finished" signal
        try:
            await app.responder(turn)
        finally:
            done.pop(turn.msg.message_id).set_result(None)

    app.dispatcher = app.intake.dispatcher = Dispatcher(
        handler,
        max_concurrent=cfg.dispatcher.max_concurrent,
        seen=app.seen,  # the app's own stages
    )
    await app.start()
    received: dict[str, float] = {}
    added: list[float] = []
    visible_after: dict[str, float] = {}  # message id -> first visible - received
    counter = 0

    async def conversation(i: int) -> None:
        nonlocal counter
        await asyncio.sleep(random.random() * think)  # arrivals spread, not in lock-step
        for r in range(rounds):
            counter += 1
            mid = f"{i}-{r}"
            msg = InboundMessage(
                "bench", f"bench:{i}", "u", f"question {r} from conversation {i}", mid, ChatKind.PRIVATE
            )
            received[mid] = msg.received_mono
            loop = asyncio.get_running_loop()
            seen = channel.waiters[mid] = loop.create_future()
            finished = done[mid] = loop.create_future()
            await app.intake.submit(msg)  # the path every adapter takes: intake, then dispatcher
            visible_after[mid] = await seen - received[mid]
            await finished
            await asyncio.sleep(think * (0.5 + random.random()))  # the person reads, then writes again

    # warm-up round, not measured
    await asyncio.gather(*(conversation(10_000 + i) for i in range(min(conversations, 20))))
    await app.dispatcher.drain()
    visible_after.clear()
    cpu0 = time.process_time()
    await asyncio.gather(*(conversation(i) for i in range(conversations)))
    await app.dispatcher.drain()
    await app.responder.flush()
    cpu = time.process_time() - cpu0
    replies = conversations * rounds
    await app.stop()
    # the provider's own TTFT for each message, as the fake server saw it (handler entered -> first
    # chunk written; same monotonic clock): its timer's lateness is the provider's, not ours
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(base_url.removesuffix("/v1") + "/_ttft") as resp:
        stamps = await resp.json()
    own_ttft = {}
    for text, entered, first in stamps:
        q, _, c = text.removeprefix("question ").partition(" from conversation ")
        own_ttft[f"{c}-{q}"] = first - entered
    added = [v - own_ttft.get(mid, ttft) for mid, v in visible_after.items()]
    lateness = [own_ttft[mid] - ttft for mid in visible_after if mid in own_ttft]
    return added, cpu / replies, replies, lateness


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conversations", type=int, nargs="+", default=[1, 200])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--ttft", type=float, default=0.05, help="the fake provider's fixed TTFT, seconds")
    ap.add_argument("--token-interval", type=float, default=0.002, help="seconds between SSE chunks")
    ap.add_argument(
        "--chunk-words",
        type=int,
        default=3,
        help="words per SSE chunk (hosted providers send several tokens per chunk)",
    )
    ap.add_argument(
        "--think", type=float, default=2.0, help="mean seconds a person waits after a reply before the next message"
    )
    ap.add_argument("--port", type=int, default=18099)
    args = ap.parse_args()

    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.openai_server",
            str(args.port),
            str(args.ttft),
            str(args.token_interval),
            str(args.chunk_words),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        line = server.stdout.readline()  # "ready <url>"
        base_url = line.split()[1]
        print(
            f"fake provider (own process): TTFT {args.ttft * 1000:.0f} ms, a chunk of {args.chunk_words} words"
            f" every {args.token_interval * 1000:.0f} ms"
        )
        for n in args.conversations:
            rounds = args.rounds * 20 if n == 1 else args.rounds
            think = min(args.think, 0.1) if n == 1 else args.think  # one person: load does not matter
            added, cpu, replies, lateness = asyncio.run(run(n, rounds, base_url, args.ttft, think))
            print(
                f"{n:>4} conversations, {replies} replies: added to first visible text {summary(added)};"
                f" CPU {cpu * 1000:.2f} ms per reply"
            )
            print(
                f"      (the fake's own TTFT ran over its {args.ttft * 1000:.0f} ms by {summary(lateness)}; subtracted)"
            )
    finally:
        server.terminate()
        server.wait()
    print(
        f"reproduce: python bench/added_latency.py --conversations {' '.join(map(str, args.conversations))} --rounds {args.rounds}"
    )


if __name__ == "__main__":
    main()
