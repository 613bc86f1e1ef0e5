"""The Telegram LLM bot most people write first: python-telegram-bot's Application + the openai SDK.

Used by bench/telegram_vs_naive.py, in a process of its own. Long polling through PTB's Updater
(its default httpx client), a MessageHandler that answers private chats and group messages that
mention the bot, and `AsyncOpenAI(...).chat.completions.create(stream=True)`: the first token goes
out with `reply_text`, the message is edited at most once a second with the text so far, and a
final edit carries the whole answer. No handling of 429 beyond what PTB does by default (none: the
handler raises and PTB logs it), no typing indicator, no history.

One deliberate kindness: updates are handled concurrently (`concurrent_updates(True)`); with PTB's
default of one update at a time, every chat would wait for the replies of all the chats before it.
`--sequential` gives PTB's default.

    python bench/naive_telegram_bot.py --base-url http://127.0.0.1:PORT/bot --token T \\
        --openai-url http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._botproc import bot_args, serve_commands


async def run(base_url: str, token: str, openai_url: str, model: str, sequential: bool) -> None:
    from openai import AsyncOpenAI
    from telegram import Update
    from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

    client = AsyncOpenAI(base_url=openai_url, api_key="bench")
    builder = ApplicationBuilder().token(token).base_url(base_url).base_file_url(base_url.replace("/bot", "/file/bot"))
    app: Application = builder.concurrent_updates(not sequential).build()

    async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg = update.effective_message
        if msg is None or not msg.text:
            return
        text = msg.text
        if msg.chat.type != "private":
            mention = f"@{context.bot.username}"
            if mention.lower() not in text.lower():
                return
            text = text.replace(mention, "").strip()
        stream = await client.chat.completions.create(
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
                sent = await msg.reply_text(reply)
                shown, last_edit = reply, time.monotonic()
            elif time.monotonic() - last_edit >= 1.0:
                await sent.edit_text(reply)
                shown, last_edit = reply, time.monotonic()
        if sent is not None and reply != shown:
            await sent.edit_text(reply)

    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, answer))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(allowed_updates=Update.ALL_TYPES)

    async def stop() -> None:
        assert app.updater is not None
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
        await client.close()

    await serve_commands(stop)


def main() -> None:
    ap = bot_args(__doc__ or "")
    ap.add_argument("--sequential", action="store_true", help="PTB's default: one update at a time")
    a = ap.parse_args()
    asyncio.run(run(a.base_url, a.token, a.openai_url, a.model, a.sequential))


if __name__ == "__main__":
    main()
