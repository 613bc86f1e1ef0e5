"""Telegram: time from an update leaving the Bot API to the typing action and to first visible text.

The fake Bot API (tests/fakes/telegram_server.py) runs in its own process on 127.0.0.1 and stamps,
with the shared monotonic clock, when getUpdates hands each update out and when every call
arrives. The real runtime runs here: python-telegram-bot long-polling the fake → TelegramChannel →
dispatcher → responder → ReplyStream → a scripted in-process provider with a fixed TTFT. Per message:

    typing = sendChatAction arrives - update handed out
    added  = first sendMessageDraft / sendMessage arrives - update handed out - provider TTFT

and, inside the runtime (no HTTP on either side), from the update read to the Bot API call started.
The fake's own per-request cost (about 0.7 ms of Python per call) is part of the first two numbers
when many chats burst at once.

Waves: each of N private chats (or groups, --group) sends one message at once; the next wave
starts when every chat has its final answer.

    python bench/telegram_latency.py --conversations 1 25 200 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._stats import summary  # noqa: E402
from bot.app import App  # noqa: E402
from bot.config import parse  # noqa: E402
from channels.telegram import TelegramChannel, parse_config  # noqa: E402
from tests.fakes.scripted_provider import ScriptedProvider  # noqa: E402

TOKEN = "123456:TEST-token"


def start_fake() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.telegram_server", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"fake Bot API did not start: {line!r}")
    return proc, int(line.split()[1])


def control(port: int, path: str, body: object | None = None) -> dict:
    url = f"http://127.0.0.1:{port}/_control/{path}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


async def run(n: int, rounds: int, ttft: float, interval: float, group: bool, port: int) -> tuple[list[float], list[float]]:
    cfg = parse({"store": {"kind": "memory"}, "logging": {"level": "error"}, "channels": {"webchat": {"enabled": False}},
                 "dispatcher": {"max_concurrent": max(256, n)}})
    tg = parse_config({"token": TOKEN, "base_url": f"http://127.0.0.1:{port}/bot", "conflict_probe": 0,
                       "poll_timeout": 10, "warm_interval": 0})
    pieces = ["Hello there, this is", " the answer", " to your", " question."]
    provider = ScriptedProvider(pieces, ttft=ttft, interval=interval)
    channel = TelegramChannel(tg)
    app = App(cfg, providers={"local": provider}, channels=[channel], serve_http=False)
    await app.start()
    typing: list[float] = []
    added: list[float] = []
    # client side: when the runtime starts the Bot API call, from when the update was read
    from channels.telegram import surface as surface_mod

    issued: dict[tuple[str, int], float] = {}
    orig = {k: getattr(surface_mod.TelegramSurface, k) for k in ("typing", "draft", "send")}

    def stamp(kind: str):
        f = orig[kind]

        async def wrapper(self, *a, **kw):
            key = ("typing" if kind == "typing" else "visible", self.ctx.chat_id)
            if key not in issued:
                issued[key] = time.perf_counter()
            return await f(self, *a, **kw)

        return wrapper

    for k in orig:
        setattr(surface_mod.TelegramSurface, k, stamp(k))
    received: dict[int, float] = {}
    orig_handle = channel.to_inbound

    def to_inbound(msg, rec=None):
        out = orig_handle(msg, rec)
        if out is not None:
            received[msg.chat.id] = out.received_at
        return out

    channel.to_inbound = to_inbound  # type: ignore[method-assign]
    c_typing: list[float] = []
    c_visible: list[float] = []
    chats = [(-1_000_000_000 - i) if group else (10_000 + i) for i in range(n)]
    try:
        for r in range(rounds):
            since = time.monotonic()
            text = "@switchboard_bot hi" if group else "hi"
            first = await asyncio.to_thread(
                control, port, "push", [{"chat_id": c, "text": text, "user_id": 10_000 + i} for i, c in enumerate(chats)]
            )
            last_id = first["last_update_id"]
            ids = {chats[i]: last_id - n + 1 + i for i in range(n)}
            while True:
                await asyncio.sleep(0.2)
                state = await asyncio.to_thread(control, port, f"state?since={since}&first={last_id - n + 1}", None)
                finals = {c[3] for c in state["calls"] if c[0] == "sendMessage" and c[1] >= since and c[2] == 200}
                if len(finals & set(chats)) == n:
                    break
            await asyncio.sleep(1.1)  # let per-chat pacing settle between waves
            for chat in chats:
                if ("typing", chat) in issued:
                    c_typing.append(issued.pop(("typing", chat)) - received[chat])
                if ("visible", chat) in issued:
                    c_visible.append(issued.pop(("visible", chat)) - received[chat] - ttft)
            delivered = {int(k): v for k, v in state["delivered"].items()}
            for chat in chats:
                t0 = delivered[ids[chat]]
                mine = [c for c in state["calls"] if c[3] == chat and c[1] >= t0]
                ty = next((c[1] for c in mine if c[0] == "sendChatAction"), None)
                vis = next((c[1] for c in mine if c[0] in ("sendMessageDraft", "sendMessage") and c[2] == 200), None)
                if ty is not None:
                    typing.append(ty - t0)
                if vis is not None:
                    added.append(vis - t0 - ttft)
    finally:
        await app.stop()
        for k, f in orig.items():
            setattr(surface_mod.TelegramSurface, k, f)
    return typing, added, c_typing, c_visible


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conversations", type=int, nargs="+", default=[1, 25, 200])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--ttft", type=float, default=0.05, help="the scripted provider's TTFT, seconds")
    ap.add_argument("--token-interval", type=float, default=0.01)
    ap.add_argument("--group", action="store_true", help="group chats (edits) instead of private chats (drafts)")
    args = ap.parse_args()
    from bot.logs import configure

    configure("error")
    proc, port = start_fake()
    try:
        for n in args.conversations:
            typing, added, c_typing, c_visible = asyncio.run(
                run(n, args.rounds, args.ttft, args.token_interval, args.group, port)
            )
            kind = "group" if args.group else "private"
            print(f"{kind} n={n:4d} at the Bot API   typing: {summary(typing)}")
            print(f"{kind} n={n:4d} at the Bot API   added to first visible: {summary(added)}")
            print(f"{kind} n={n:4d} inside runtime   typing call starts: {summary(c_typing)}")
            print(f"{kind} n={n:4d} inside runtime   first text call starts (- TTFT): {summary(c_visible)}")
    finally:
        proc.terminate()
        proc.wait(5)


if __name__ == "__main__":
    main()
