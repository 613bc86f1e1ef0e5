"""Checks for `switchboard doctor`: is the Telegram channel ready? One result per check, with a fix.

`await checks(cfg)` only reads (getMe, getWebhookInfo), never changes the bot's webhook or its
updates. The app reaches it through `TelegramChannel.doctor_checks()`.
"""

from __future__ import annotations

from telegram.error import InvalidToken, TelegramError

from bot.channel import Check
from channels.telegram.config import TelegramConfig
from channels.telegram.transport import make_bot


async def checks(cfg: TelegramConfig) -> list[Check]:
    return [Check(*r) for r in await _results(cfg)]


async def _results(cfg: TelegramConfig) -> list[tuple[str, bool, str, str]]:
    out: list[tuple[str, bool, str, str]] = [("telegram config", True, f"mode {cfg.mode}", "")]
    bot = make_bot(cfg)
    try:
        try:
            await bot.initialize()
        except InvalidToken:
            return [
                *out,
                (
                    "telegram token",
                    False,
                    "refused by Telegram (401/404)",
                    "copy the token from @BotFather into TELEGRAM_BOT_TOKEN",
                ),
            ]
        except TelegramError as e:
            return [
                *out,
                (
                    "telegram Bot API",
                    False,
                    f"cannot reach {cfg.base_url}: {e}",
                    "check the network / proxy, or channels.telegram.base_url",
                ),
            ]
        me = bot.bot
        out.append(("telegram token", True, f"@{me.username} (id {me.id})", ""))
        if not me.can_read_all_group_messages:
            out.append(
                (
                    "telegram groups",
                    True,
                    "privacy mode on: in groups the bot sees mentions, replies and commands only (all it needs)",
                    "",
                )
            )
        try:
            info = await bot.get_webhook_info()
        except TelegramError as e:
            out.append(("telegram webhook", False, str(e), ""))
            return out
        if cfg.mode == "polling":
            if info.url:
                out.append(
                    (
                        "telegram webhook",
                        True,
                        f"a webhook is set ({info.url}); polling will remove it at start",
                        "if another deployment uses that webhook, give each its own bot token",
                    )
                )
            else:
                out.append(("telegram updates", True, f"polling; {info.pending_update_count} update(s) waiting", ""))
        else:
            ok = info.url == cfg.webhook_url
            detail = f"registered: {info.url or '(none)'}; {info.pending_update_count} update(s) waiting"
            if info.last_error_message:
                ok = False
                detail += f"; last delivery error: {info.last_error_message}"
            out.append(
                (
                    "telegram webhook",
                    ok,
                    detail,
                    ""
                    if ok
                    else "start switchboard to register channels.telegram.webhook_url; make sure "
                    "Telegram can reach it over HTTPS",
                )
            )
        return out
    finally:
        try:
            await bot.shutdown()
        except Exception:
            pass
