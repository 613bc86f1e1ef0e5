"""The floor: the least a Telegram LLM bot can do between an update and its first visible text.

Used by bench/telegram_vs_naive.py, in a process of its own. No framework, no store, no routing:
one aiohttp session long-polls getUpdates; for each message (private chats, and group messages
that mention the bot) a task POSTs the question to the OpenAI-compatible `/chat/completions` with
`stream: true` on a second aiohttp session, parses the Server-Sent Events with `json.loads`, and
sends the first delta with sendMessage the moment it arrives. The rest of the answer is collected
and goes out in one final editMessageText — no earlier than 1 s after the sendMessage (Telegram's
pace for edits of one message; it costs the first text nothing), and a 429 is waited out and
retried, so that the floor's replies are correct too. Requests are JSON bodies (the Bot API takes
them, and they are the cheapest to build).

    python bench/floor_telegram_bot.py --base-url http://127.0.0.1:PORT/bot --token T \\
        --openai-url http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._botproc import bot_args, serve_commands

EDIT_INTERVAL = 1.0
POLL_TIMEOUT = 10
REF = re.compile(r"\(ref (\d+\.\d+\.\d+)\)")  # the benchmark's question ids (--trace)


async def run(base_url: str, token: str, openai_url: str, model: str, trace: bool = False) -> None:
    api = f"{base_url}{token}/"
    tg = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=30))
    llm = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=60))
    loads = json.loads
    tasks: set[asyncio.Task[None]] = set()
    # --trace: perf_counter stamps, as bench/telegram_vs_naive.py keeps them for Switchboard
    tr: dict[str, Any] = {"recv": {}, "llm_req": {}, "llm_first": {}, "text": defaultdict(list)}

    def stamp(kind: str, text: str) -> None:
        if trace and (m := REF.search(text)):
            tr[kind][m.group(1)] = time.perf_counter()

    async def call(method: str, params: dict[str, Any]) -> Any:
        for _ in range(5):
            async with tg.post(api + method, json=params) as r:
                body = await r.json()
            if body.get("ok"):
                return body["result"]
            retry = (body.get("parameters") or {}).get("retry_after")
            if not retry:
                raise RuntimeError(f"{method}: {body.get('description')}")
            await asyncio.sleep(float(retry))
        raise RuntimeError(f"{method}: still rate limited")

    me = await call("getMe", {})
    mention = f"@{me['username']}".lower()

    async def answer(m: dict[str, Any]) -> None:
        chat = m["chat"]["id"]
        text: str = m["text"]
        if m["chat"]["type"] != "private":
            if mention not in text.lower():
                return
            text = text.replace(f"@{me['username']}", "").strip()
        body = {"model": model, "messages": [{"role": "user", "content": text}], "stream": True}
        parts: list[str] = []
        mid = None
        sent_at = 0.0
        if trace:
            stamp("llm_req", text)
        async with llm.post(f"{openai_url}/chat/completions", json=body) as r:
            async for line in r.content:
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    break
                choices = loads(data).get("choices")
                delta = (choices[0].get("delta") or {}).get("content") if choices else None
                if not delta:
                    continue
                parts.append(delta)
                if mid is None:
                    if trace:
                        stamp("llm_first", text)
                        tr["text"][str(chat)].append(time.perf_counter())
                    mid = (await call("sendMessage", {"chat_id": chat, "text": delta}))["message_id"]
                    sent_at = time.monotonic()
        full = "".join(parts)
        if mid is not None and full != parts[0]:
            await asyncio.sleep(max(0.0, sent_at + EDIT_INTERVAL - time.monotonic()))
            await call("editMessageText", {"chat_id": chat, "message_id": mid, "text": full})

    def done(t: asyncio.Task[None]) -> None:
        tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            print(f"floor: reply failed: {t.exception()!r}", file=sys.stderr)

    def spawn(m: dict[str, Any]) -> None:
        t = asyncio.create_task(answer(m))
        tasks.add(t)
        t.add_done_callback(done)

    offset = 0
    stopping = asyncio.Event()

    async def poll() -> None:
        nonlocal offset
        while not stopping.is_set():
            try:
                updates = await call("getUpdates", {"offset": offset, "timeout": POLL_TIMEOUT})
            except (aiohttp.ClientError, TimeoutError, RuntimeError) as e:
                print(f"floor: getUpdates failed: {e}", file=sys.stderr)
                await asyncio.sleep(0.5)
                continue
            for u in updates:
                offset = max(offset, u["update_id"] + 1)
                m = u.get("message")
                if m and m.get("text"):
                    if trace:
                        stamp("recv", m["text"])
                    spawn(m)

    poller = asyncio.create_task(poll())

    async def stop() -> None:
        stopping.set()
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
        if tasks:
            await asyncio.wait(list(tasks), timeout=10)
        try:
            await call("getUpdates", {"offset": offset, "timeout": 0})  # confirm what was taken
        finally:
            await tg.close()
            await llm.close()

    await serve_commands(stop, (lambda: tr) if trace else None)


def main() -> None:
    ap = bot_args(__doc__ or "")
    ap.add_argument("--trace", action="store_true", help="keep time stamps for the benchmark's breakdown")
    a = ap.parse_args()
    asyncio.run(run(a.base_url, a.token, a.openai_url, a.model, a.trace))


if __name__ == "__main__":
    main()
