"""Discord channel (discord.py 2.x): the gateway (optionally sharded), DMs, mentions, threads and
slash commands, answers streamed by editing one message within the channel's rate budget.

The app calls `build(cfg, table)` when `[channels.discord]` exists; `CHANNEL` is the class.
"""

from __future__ import annotations

from typing import Any

from channels.discord.adapter import DiscordChannel
from channels.discord.config import DiscordConfig, parse_config
from channels.discord.render import RENDERER, neutralise_mentions
from channels.discord.surface import DiscordRest, DiscordSurface, ReplyTarget

__all__ = [
    "CHANNEL",
    "RENDERER",
    "DiscordChannel",
    "DiscordConfig",
    "DiscordRest",
    "DiscordSurface",
    "ReplyTarget",
    "build",
    "neutralise_mentions",
    "parse_config",
]

CHANNEL = DiscordChannel


def build(cfg: Any, table: dict[str, Any] | None) -> DiscordChannel:
    """The Discord channel from its raw `[channels.discord]` table; /model completes the aliases
    named in the config (`[models.*].alias`, `[routing.aliases]`)."""
    return DiscordChannel(parse_config(table), aliases=_aliases(cfg))


def _aliases(cfg: Any) -> list[str]:
    out: list[str] = []
    for model in (getattr(cfg, "models", None) or {}).values():
        alias = getattr(model, "alias", None)
        out += [alias] if isinstance(alias, str) else list(alias or [])
    routing = getattr(cfg, "routing", None)
    out += list(getattr(routing, "aliases", None) or {})
    return out
