"""The Slack LLM bot most people write first: slack-bolt's AsyncApp in Socket Mode + the openai SDK.

Used by bench/slack_vs_naive.py, in a process of its own. An `AsyncApp` with an `app_mention`
handler (mentions in channels, answered in the thread) and a `message` handler (DMs),
`AsyncSocketModeHandler` for the events, and `AsyncOpenAI(...).chat.completions.create(stream=True)`:
the first token goes out with `chat.postMessage` in the thread, the message is updated
(`chat.update`) at most once a second with the text so far, and a final update carries the whole
answer. Rate limits: slack_sdk's defaults (no retry on 429: the call raises, bolt logs it and the
reply stops there); no status, no reaction, no history.

    python bench/naive_slack_bot.py --base-url http://127.0.0.1:PORT/api/ --token xoxb-... \\
        --app-token xapp-... --openai-url http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._botproc import bot_args, serve_commands

UPDATE_INTERVAL = 1.0
MENTION = re.compile(r"<@[UW][A-Z0-9]+>")


async def run(base_url: str, token: str, app_token: str, openai_url: str, model: str) -> None:
    from openai import AsyncOpenAI
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
    from slack_bolt.app.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    # pointing slack_sdk at the fake (on Slack itself: AsyncApp(token=...), no client)
    app = AsyncApp(client=AsyncWebClient(token=token, base_url=base_url))
    openai = AsyncOpenAI(base_url=openai_url, api_key="bench")

    async def answer(client: Any, channel: str, thread_ts: str, text: str) -> None:
        stream = await openai.chat.completions.create(
            model=model, messages=[{"role": "user", "content": text}], stream=True
        )
        ts = None
        shown = ""
        reply = ""
        last_update = 0.0
        async for chunk in stream:
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta.content
            if not delta:
                continue
            reply += delta
            if ts is None:
                sent = await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=reply)
                ts = sent["ts"]
                shown, last_update = reply, time.monotonic()
            elif time.monotonic() - last_update >= UPDATE_INTERVAL:
                await client.chat_update(channel=channel, ts=ts, text=reply)
                shown, last_update = reply, time.monotonic()
        if ts is not None and reply != shown:
            await client.chat_update(channel=channel, ts=ts, text=reply)

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], client: Any) -> None:
        text = MENTION.sub("", event.get("text") or "").strip()
        await answer(client, event["channel"], event.get("thread_ts") or event["ts"], text)

    @app.event("message")
    async def on_message(event: dict[str, Any], client: Any) -> None:
        if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
            return  # channel messages come as app_mention too
        await answer(client, event["channel"], event.get("thread_ts") or event["ts"], event.get("text") or "")

    handler = AsyncSocketModeHandler(app, app_token)
    await handler.connect_async()  # type: ignore[no-untyped-call]

    async def stop() -> None:
        await handler.close_async()  # type: ignore[no-untyped-call]
        await openai.close()

    await serve_commands(stop)


def main() -> None:
    ap = bot_args(__doc__ or "")
    ap.add_argument("--app-token", required=True, help="the app-level token (xapp-...), Socket Mode")
    a = ap.parse_args()
    asyncio.run(run(a.base_url, a.token, a.app_token, a.openai_url, a.model))


if __name__ == "__main__":
    main()
