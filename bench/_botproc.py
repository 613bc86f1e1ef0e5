"""The small protocol between bench/telegram_vs_naive.py and each bot process it runs.

A bot process prints `READY` once it is polling, then reads commands on stdin, one a line:

    cpu      -> prints `CPU <seconds of CPU this process has used>`
    trace    -> prints `TRACE <json>` (only bots that keep a trace)
    stop     -> (or end of input) stops the bot, prints `STOPPED` and exits

End of input also stops it, so a bot never outlives the benchmark that started it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any


def bot_args(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--base-url", required=True, help="Bot API base, e.g. http://127.0.0.1:PORT/bot")
    ap.add_argument("--token", required=True)
    ap.add_argument("--openai-url", required=True, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:PORT/v1")
    ap.add_argument("--model", default="bench")
    return ap


async def serve_commands(stop: Callable[[], Awaitable[None]], trace: Callable[[], Any] | None = None) -> None:
    """Answer the driver's commands until `stop` or end of input (the driver gone: its pipe closed)."""
    print("READY", flush=True)
    try:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            cmd = line.strip()
            if not line or cmd == "stop":
                break
            if cmd == "cpu":
                print(f"CPU {time.process_time()}", flush=True)
            elif cmd == "trace":
                print(f"TRACE {json.dumps(trace() if trace is not None else None)}", flush=True)
    finally:
        await stop()
        print("STOPPED", flush=True)
