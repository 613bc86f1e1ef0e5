"""Checks for `switchboard doctor`: is the Discord channel ready? One result per check, with a fix.

`await checks(cfg)` (doctor --deep) only reads: `GET /users/@me` (the token) and `GET /oauth2/applications/@me`
(whether the Message Content Intent is switched on for the application).
"""

from __future__ import annotations

from typing import Any

from bot.channel import Check
from bot.errors import PlatformError
from channels.discord.adapter import INTENT_FIX, TOKEN_FIX
from channels.discord.config import DiscordConfig
from channels.discord.surface import DiscordRest

GATEWAY_MESSAGE_CONTENT = 1 << 18
GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19


def offline_checks(cfg: DiscordConfig) -> list[Check]:
    """Without --deep: the config only; the token and intents are checked against Discord with --deep."""
    return [
        Check("discord config", True, _describe(cfg)),
        Check("discord token", True, "present (doctor --deep checks it and the Message Content Intent with Discord)"),
    ]


async def checks(cfg: DiscordConfig) -> list[Check]:
    out = [Check("discord config", True, _describe(cfg))]
    rest = DiscordRest(cfg.base_url, cfg.token.get_secret_value(), timeout=cfg.request_timeout)
    try:
        try:
            me: Any = await rest.call("GET", "/users/@me")
        except PlatformError as e:
            if "401" in str(e):
                return [*out, Check("discord token", False, "refused by Discord (401)", TOKEN_FIX)]
            return [
                *out,
                Check(
                    "discord API", False, f"cannot reach {cfg.base_url}: {e}", "check the network / proxy, or base_url"
                ),
            ]
        out.append(Check("discord token", True, f"{me.get('username')} (id {me.get('id')})"))
        try:
            app: Any = await rest.call("GET", "/oauth2/applications/@me")
        except PlatformError as e:
            out.append(Check("discord intents", False, f"could not read the application: {e}"))
            return out
        flags = int(app.get("flags") or 0)
        if flags & (GATEWAY_MESSAGE_CONTENT | GATEWAY_MESSAGE_CONTENT_LIMITED):
            out.append(Check("discord intents", True, "Message Content Intent enabled"))
        else:
            out.append(Check("discord intents", False, "the Message Content Intent is off", INTENT_FIX))
        return out
    finally:
        await rest.close()


def _describe(cfg: DiscordConfig) -> str:
    parts = [f"api {cfg.base_url}"]
    if cfg.shard_count is not None:
        parts.append(f"shards {cfg.shard_ids or 'all'} of {cfg.shard_count}")
    parts.append(f"commands synced to guild {cfg.guild_id}" if cfg.guild_id else "global commands")
    return ", ".join(parts)
