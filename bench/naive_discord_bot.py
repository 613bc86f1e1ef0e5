"""The Discord LLM bot most people write first: discord.py's `Client` + the openai SDK.

Used by bench/discord_vs_naive.py, in a process of its own. A `discord.Client` with the message
content intent, an `on_message` that answers DMs and guild messages that mention the bot, and
`AsyncOpenAI(...).chat.completions.create(stream=True)`: the first token goes out with
`message.reply(...)`, the reply is edited (`msg.edit(content=...)`) at most once a second with the
text so far, and a final edit carries the whole answer. Rate limits are whatever discord.py does
by itself (it sleeps through a 429 and sends the same request again); no typing indicator, no
history. discord.py runs every `on_message` in a task of its own, so messages are answered
concurrently.

    python bench/naive_discord_bot.py --base-url http://127.0.0.1:PORT/api/v10 \\
        --gateway-url ws://127.0.0.1:PORT/gateway --token T --openai-url http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._botproc import bot_args, serve_commands

EDIT_INTERVAL = 1.0


async def run(base_url: str, gateway_url: str, token: str, openai_url: str, model: str) -> None:
    import discord
    import yarl
    from discord.gateway import DiscordWebSocket
    from discord.http import Route
    from openai import AsyncOpenAI

    # pointing discord.py at the fake (on Discord itself these two lines are not there)
    Route.BASE = base_url
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)

    intents = discord.Intents.default()
    intents.message_content = True
    # guild_ready_timeout only shortens the start-up wait for GUILD_CREATEs (not on the reply path)
    client = discord.Client(intents=intents, guild_ready_timeout=0.05)
    openai = AsyncOpenAI(base_url=openai_url, api_key="bench")
    ready = asyncio.Event()

    @client.event
    async def on_ready() -> None:
        ready.set()

    @client.event
    async def on_message(message: discord.Message) -> None:
        if message.author.bot or client.user is None:
            return
        text = message.content
        if message.guild is not None:
            if not client.user.mentioned_in(message):
                return
            text = text.replace(client.user.mention, "").replace(f"<@!{client.user.id}>", "").strip()
        stream = await openai.chat.completions.create(
            model=model, messages=[{"role": "user", "content": text}], stream=True
        )
        sent = None
        shown = ""
        reply = ""
        last_edit = 0.0
        async for chunk in stream:
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta.content
            if not delta:
                continue
            reply += delta
            if sent is None:
                sent = await message.reply(reply)
                shown, last_edit = reply, time.monotonic()
            elif time.monotonic() - last_edit >= EDIT_INTERVAL:
                sent = await sent.edit(content=reply)
                shown, last_edit = reply, time.monotonic()
        if sent is not None and reply != shown:
            await sent.edit(content=reply)

    task = asyncio.create_task(client.start(token))
    done, _ = await asyncio.wait({task, asyncio.create_task(ready.wait())}, return_when="FIRST_COMPLETED")
    if task in done:
        task.result()  # start-up failed: raise it

    async def stop() -> None:
        await client.close()
        await asyncio.gather(task, return_exceptions=True)
        await openai.close()

    await serve_commands(stop)


def main() -> None:
    ap = bot_args(__doc__ or "")
    ap.add_argument("--gateway-url", required=True, help="gateway WebSocket URL, e.g. ws://127.0.0.1:PORT/gateway")
    a = ap.parse_args()
    asyncio.run(run(a.base_url, a.gateway_url, a.token, a.openai_url, a.model))


if __name__ == "__main__":
    main()
