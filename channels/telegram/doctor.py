"""Checks for `switchboard doctor`: is the Telegram channel ready? One result per check, with a fix.

`await check(table)` takes the raw `[channels.telegram]` table and returns `(name, ok, detail, fix)`
tuples; it only reads (getMe, getWebhookInfo), never changes the bot's webhook or its updates.
"""

from __future__ import annotations

from typing import Any

from telegram.error import InvalidToken, TelegramError

from bot.errors import ConfigError
from channels.telegram.adapter import make_bot
from channels.telegram.config import parse_config

Result = tuple[str, bool, str, str]


async def check(table: dict[str, Any] | None) -> list[Result]:
    try:
        cfg = parse_config(table)
    except ConfigError as e:
        return [("telegram config", False, str(e).replace("\n", " "), "fix the keys named above")]
    out: list[Result] = [("telegram config", True, f"mode {cfg.mode}", "")]
    bot = make_bot(cfg)
    try:
        try:
            await bot.initialize()
        except InvalidToken:
            return [*out, ("telegram token", False, "refused by Telegram (401/404)",
                           "copy the token from @BotFather into TELEGRAM_BOT_TOKEN")]
        except TelegramError as e:
            return [*out, ("telegram Bot API", False, f"cannot reach {cfg.base_url}: {e}",
                           "check the network / proxy, or channels.telegram.base_url")]
        me = bot.bot
        out.append(("telegram token", True, f"@{me.username} (id {me.id})", ""))
        if not me.can_read_all_group_messages:
            out.append(("telegram groups", True, "privacy mode on: in groups the bot sees mentions, replies "
                        "and commands only (all it needs)", ""))
        try:
            info = await bot.get_webhook_info()
        except TelegramError as e:
            out.append(("telegram webhook", False, str(e), ""))
            return out
        if cfg.mode == "polling":
            if info.url:
                out.append(("telegram webhook", True, f"a webhook is set ({info.url}); polling will remove it "
                            "at start", "if another deployment uses that webhook, give each its own bot token"))
            else:
                out.append(("telegram updates", True, f"polling; {info.pending_update_count} update(s) waiting", ""))
        else:
            ok = info.url == cfg.webhook_url
            detail = f"registered: {info.url or '(none)'}; {info.pending_update_count} update(s) waiting"
            if info.last_error_message:
                ok = False
                detail += f"; last delivery error: {info.last_error_message}"
            out.append(("telegram webhook", ok, detail,
                        "" if ok else "start switchboard to register channels.telegram.webhook_url; make sure "
                        "Telegram can reach it over HTTPS"))
        return out
    finally:
        try:
            await bot.shutdown()
        except Exception:  # noqa: BLE001
            pass
