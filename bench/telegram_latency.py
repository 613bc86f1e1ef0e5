"""Telegram: time from an update leaving the Bot API to the typing action and to first visible text.

The fake Bot API (tests/fakes/telegram_server.py) runs in its own process on 127.0.0.1 and stamps,
with the shared monotonic clock, when getUpdates hands each update out and when every call
arrives. The real runtime runs here: python-telegram-bot long-polling the fake → TelegramChannel →
dispatcher → responder → ReplyStream → an in-process provider with a fixed TTFT. Per message:

    typing = sendChatAction arrives - update handed out
    added  = first sendMessageDraft / sendMessage arrives - update handed out - provider TTFT

and, inside the runtime (no HTTP on either side), from the update read to the Bot API call started.
Both ends are in the "at the Bot API" figures: the fake's own Python (about 0.3 ms per call, on
the same two cores) and PTB reading the getUpdates answer.

The provider's first token is released by a timer thread at exactly TTFT after the request, the
way a socket read would wake the event loop (an `asyncio.sleep(ttft)` wakes up to 1 ms late: the
loop's timeouts are whole milliseconds). How late it reached the runtime is printed too.

Two ways the messages arrive (--arrivals, both by default):

- spread: closed loop, the budget's scenario. Every chat is open at once; each one writes, waits
  for the whole answer, reads for a think time (uniform --think LO HI seconds) and writes again.
  The fake drives the arrivals itself, so this process only answers. With one chat the think time
  is short and there are 10x the rounds (one person: load does not matter, samples do).
- wave: a stress test. All N chats write at the same instant; the next wave starts when every
  chat has its answer. With N = 100 this is 100 replies' worth of CPU queued at once on two cores
  (the fake's included), and the late tail is that queue, not per-message cost.

    python bench/telegram_latency.py --conversations 1 100 --rounds 5
    python bench/telegram_latency.py --conversations 1 100 --rounds 5 --group
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._stats import summary  # noqa: E402
from bot.app import App  # noqa: E402
from bot.config import parse  # noqa: E402
from bot.dispatcher import Dispatcher, Turn  # noqa: E402
from bot.types import Delta, GenerationRequest, Usage  # noqa: E402
from channels.telegram import TelegramChannel, parse_config  # noqa: E402

TOKEN = "123456:TEST-token"
PIECES = ["Hello there, this is", " the answer", " to your", " question."]
FINAL = "".join(PIECES)  # what the chat shows when the answer is complete (no markup in it)


def start_fake() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.telegram_server", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"fake Bot API did not start: {line!r}")
    return proc, int(line.split()[1])


def control(port: int, path: str, body: object | None = None, timeout: float = 30) -> dict:
    url = f"http://127.0.0.1:{port}/_control/{path}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


# --- the provider ------------------------------------------------------------------------------


class _Timer(threading.Thread):
    """Sets asyncio futures at given perf_counter() times, from a thread (no 1 ms loop granularity)."""

    def __init__(self) -> None:
        super().__init__(name="bench-ttft", daemon=True)
        self._cv = threading.Condition()
        self._heap: list[tuple[float, int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def at(self, when: float, fut: asyncio.Future[None]) -> None:
        with self._cv:
            heapq.heappush(self._heap, (when, next(self._seq), fut.get_loop(), fut))
            self._cv.notify()

    def run(self) -> None:
        while True:
            with self._cv:
                while True:
                    now = time.perf_counter()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    self._cv.wait(None if not self._heap else self._heap[0][0] - now)
                _, _, loop, fut = heapq.heappop(self._heap)
            try:
                loop.call_soon_threadsafe(_release, fut)
            except RuntimeError:  # that loop is closed
                pass


def _release(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


_TIMER = _Timer()


class BenchProvider:
    """Streams PIECES: the first one exactly `ttft` after the request, then one every `interval`."""

    def __init__(self, ttft: float, interval: float, name: str = "local") -> None:
        self.name = name
        self.ttft = ttft
        self.interval = interval
        self.late: list[float] = []  # first token reached the runtime this long after the nominal TTFT

    async def start(self) -> None:
        if not _TIMER.is_alive():
            _TIMER.start()

    async def aclose(self) -> None:
        return None

    async def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        t0 = time.perf_counter()
        first = asyncio.get_running_loop().create_future()
        _TIMER.at(t0 + self.ttft, first)
        await first
        ttft = time.perf_counter() - t0
        self.late.append(ttft - self.ttft)
        for i, piece in enumerate(PIECES):
            if i and self.interval:
                await asyncio.sleep(self.interval)
            yield Delta(piece)
        yield Delta(usage=Usage(10, len(PIECES), 0), ttft=ttft, finish_reason="stop")


# --- one run -----------------------------------------------------------------------------------


@dataclass
class Samples:
    typing: list[float] = field(default_factory=list)  # at the Bot API
    added: list[float] = field(default_factory=list)
    c_typing: list[float] = field(default_factory=list)  # inside the runtime
    c_visible: list[float] = field(default_factory=list)
    late: list[float] = field(default_factory=list)  # the provider's first token, after nominal TTFT
    cpu: float = 0.0  # CPU seconds of this process per reply
    replies: int = 0


def at_the_api(state: dict[str, Any], sent: dict[int, list[int]], ttft: float, out: Samples) -> None:
    """typing / added per sent update, from the fake's own stamps."""
    delivered = {int(k): v for k, v in state["delivered"].items()}
    per_chat: dict[int, list[list[Any]]] = {}
    for c in state["calls"]:
        per_chat.setdefault(c[3], []).append(c)
    for chat, ids in sent.items():
        calls = sorted(per_chat.get(chat, []), key=lambda c: c[1])
        starts = [delivered[u] for u in ids]
        for k, t0 in enumerate(starts):
            t1 = starts[k + 1] if k + 1 < len(starts) else float("inf")
            mine = [c for c in calls if t0 <= c[1] < t1]
            ty = next((c[1] for c in mine if c[0] == "sendChatAction"), None)
            vis = next((c[1] for c in mine if c[0] in ("sendMessageDraft", "sendMessage") and c[2] == 200), None)
            if ty is not None:
                out.typing.append(ty - t0)
            if vis is not None:
                out.added.append(vis - t0 - ttft)


async def run(
    n: int,
    rounds: int,
    ttft: float,
    interval: float,
    group: bool,
    port: int,
    arrivals: str,
    think: tuple[float, float],
) -> Samples:
    cfg = parse(
        {
            "store": {"kind": "memory"},
            "logging": {"level": "error"},
            "channels": {"webchat": {"enabled": False}},
            "dispatcher": {"max_concurrent": max(256, n)},
        }
    )
    tg = parse_config(
        {
            "token": TOKEN,
            "base_url": f"http://127.0.0.1:{port}/bot",
            "conflict_probe": 0,
            "poll_timeout": 10,
            "warm_interval": 0,
        }
    )
    provider = BenchProvider(ttft, interval)
    channel = TelegramChannel(tg)
    app = App(cfg, providers={"local": provider}, channels=[channel], serve_http=False)
    finished = 0
    wave_done: asyncio.Event = asyncio.Event()
    wave_size = n

    async def handler(turn: Turn) -> None:  # the app's own responder, plus "this reply is over"
        nonlocal finished
        try:
            await app.responder(turn)
        finally:
            finished += 1
            if finished >= wave_size:
                wave_done.set()

    app.dispatcher = app.intake.dispatcher = Dispatcher(
        handler,
        max_concurrent=cfg.dispatcher.max_concurrent,
        seen=app.seen,  # the app's own stages
    )
    await app.start()
    out = Samples()

    # inside the runtime: when the Bot API call starts, from when the update was read
    from channels.telegram import surface as surface_mod

    issued: dict[tuple[str, int, int], float] = {}
    orig = {k: getattr(surface_mod.TelegramSurface, k) for k in ("typing", "draft", "send")}

    def stamp(kind: str):
        f = orig[kind]

        async def wrapper(self, *a, **kw):
            key = ("typing" if kind == "typing" else "visible", self.ctx.chat_id, self.ctx.message_id)
            if key not in issued:
                issued[key] = time.perf_counter()
            return await f(self, *a, **kw)

        return wrapper

    for k in orig:
        setattr(surface_mod.TelegramSurface, k, stamp(k))
    received: dict[tuple[int, int], float] = {}
    orig_handle = channel.to_inbound

    def to_inbound(msg, rec=None, **kw):
        inbound = orig_handle(msg, rec, **kw)
        if inbound is not None:
            received[(msg.chat.id, msg.message_id)] = inbound.received_mono
        return inbound

    channel.to_inbound = to_inbound  # type: ignore[method-assign]
    chats = [(-1_000_000_000 - i) if group else (10_000 + i) for i in range(n)]
    text = "@switchboard_bot hi" if group else "hi"
    try:
        since = time.monotonic()
        cpu0 = time.process_time()
        sent: dict[int, list[int]] = {c: [] for c in chats}
        if arrivals == "wave":
            for _ in range(rounds):
                finished, wave_done = 0, asyncio.Event()
                first = await asyncio.to_thread(
                    control,
                    port,
                    "push",
                    [{"chat_id": c, "text": text, "user_id": 10_000 + i} for i, c in enumerate(chats)],
                )
                last_id = first["last_update_id"]
                for i, c in enumerate(chats):
                    sent[c].append(last_id - n + 1 + i)
                await asyncio.wait_for(wave_done.wait(), 120)
                await asyncio.sleep(1.1)  # let per-chat pacing settle between waves
        else:
            wave_size = n * rounds
            body = {"chats": chats, "rounds": rounds, "final": FINAL, "text": text, "think": list(think), "seed": n}
            await asyncio.to_thread(control, port, "converse", body)
            got = await asyncio.to_thread(control, port, "converse", None, 120 + rounds * think[1])
            for c, ids in got["updates"].items():
                sent[int(c)] = ids
            await asyncio.wait_for(wave_done.wait(), 30)
        out.replies = sum(len(v) for v in sent.values())
        out.cpu = (time.process_time() - cpu0) / max(1, out.replies)
        await app.dispatcher.drain()
        state = await asyncio.to_thread(
            control, port, f"state?since={since}&first={min(min(v) for v in sent.values())}"
        )
        at_the_api(state, sent, ttft, out)
        for (kind, chat, mid), t in issued.items():
            r = received.get((chat, mid))
            if r is None:
                continue
            (out.c_typing if kind == "typing" else out.c_visible).append(t - r - (0 if kind == "typing" else ttft))
        out.late = provider.late
    finally:
        await app.stop()
        for k, f in orig.items():
            setattr(surface_mod.TelegramSurface, k, f)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conversations", type=int, nargs="+", default=[1, 100])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--arrivals", choices=["spread", "wave"], nargs="+", default=["spread", "wave"])
    ap.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=[1.0, 3.0],
        metavar=("LO", "HI"),
        help="seconds a person reads an answer before writing again (spread), uniform",
    )
    ap.add_argument("--ttft", type=float, default=0.05, help="the provider's TTFT, seconds")
    ap.add_argument("--token-interval", type=float, default=0.01)
    ap.add_argument("--group", action="store_true", help="group chats (edits) instead of private chats (drafts)")
    args = ap.parse_args()
    from bot.logs import configure

    configure("error")
    proc, port = start_fake()
    kind = "group" if args.group else "private"
    try:
        for arrivals in args.arrivals:
            for n in args.conversations:
                rounds, think = args.rounds, tuple(args.think)
                if arrivals == "spread" and n == 1:
                    # one person: load does not matter, the number of samples does (groups: stay
                    # inside the group's 20 messages a minute, or that limit is what gets measured)
                    rounds, think = (
                        (args.rounds * 10, (0.1, 0.3)) if not args.group else (min(args.rounds * 2, 10), think)
                    )
                s = asyncio.run(run(n, rounds, args.ttft, args.token_interval, args.group, port, arrivals, think))
                tag = f"{kind} {arrivals:6s} n={n:4d}"
                print(f"{tag} at the Bot API   typing: {summary(s.typing)}")
                print(f"{tag} at the Bot API   added to first visible: {summary(s.added)}")
                print(f"{tag} inside runtime   typing call starts: {summary(s.c_typing)}")
                print(f"{tag} inside runtime   first text call starts (- TTFT): {summary(s.c_visible)}")
                print(
                    f"{tag} provider's first token, after its TTFT: {summary(s.late)};"
                    f" runtime CPU {s.cpu * 1000:.2f} ms per reply",
                    flush=True,
                )
    finally:
        proc.terminate()
        proc.wait(5)
    extra = " --group" if args.group else ""
    print(
        f"reproduce: python bench/telegram_latency.py --conversations {' '.join(map(str, args.conversations))}"
        f" --rounds {args.rounds} --arrivals {' '.join(args.arrivals)}{extra}"
    )


if __name__ == "__main__":
    main()
