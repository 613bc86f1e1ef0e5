"""Telegram channel (python-telegram-bot 22): long polling or webhook, drafts in private chats,
paced edits in groups, Markdown rendered as Telegram HTML.

The app calls `build(cfg, table)` when `[channels.telegram]` exists; `CHANNEL` is the class.
"""

from __future__ import annotations

from typing import Any

from channels.telegram.adapter import TelegramChannel
from channels.telegram.config import TelegramConfig, parse_config
from channels.telegram.surface import TelegramSurface, TgContext
from channels.telegram.transport import make_bot

__all__ = [
    "CHANNEL",
    "TelegramChannel",
    "TelegramConfig",
    "TelegramSurface",
    "TgContext",
    "build",
    "make_bot",
    "parse_config",
]

CHANNEL = TelegramChannel


def build(cfg: Any, table: dict[str, Any] | None) -> TelegramChannel:
    """The Telegram channel from its raw `[channels.telegram]` table."""
    return TelegramChannel(parse_config(table))
