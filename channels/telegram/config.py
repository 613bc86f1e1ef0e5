"""`[channels.telegram]`: the Telegram channel's own config table, validated here.

Errors name the key as `channels.telegram.<key>`; unknown keys are refused.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, SecretStr, model_validator

from bot.access import AccessConfig
from bot.config import parse_channel_table


class TelegramConfig(AccessConfig):
    """The table; `allow_users`, `allow_chats`, `refusal_text` come from the core's AccessConfig."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    token: SecretStr = Field(description="the bot token from @BotFather (use ${TELEGRAM_BOT_TOKEN})")
    base_url: str = Field("https://api.telegram.org/bot", description="Bot API base; the token is appended")
    base_file_url: str = Field("https://api.telegram.org/file/bot")
    local_mode: bool = Field(False, description="talking to a self-hosted Bot API server in --local mode")

    # how updates arrive
    mode: Literal["polling", "webhook"] = "polling"
    poll_timeout: int = Field(30, ge=0, le=50, description="seconds one getUpdates long poll is held")
    conflict_probe: int = Field(
        1,
        ge=0,
        le=10,
        description="seconds the first getUpdates is held at start so another poller on the token shows as 409",
    )
    drop_pending_updates: bool = Field(False, description="skip updates that queued while the bot was down")
    webhook_url: str | None = Field(None, description="public HTTPS URL Telegram posts to (webhook mode)")
    webhook_path: str = Field("/telegram/webhook", description="path on the shared HTTP server")
    webhook_secret: SecretStr | None = Field(
        None, description="X-Telegram-Bot-Api-Secret-Token; default: a random one per start"
    )

    # how replies look
    private_streaming: Literal["draft", "edit", "none"] = "draft"
    group_streaming: Literal["edit", "none"] = "edit"
    draft_interval: float = Field(0.3, gt=0, description="seconds between draft updates in private chats")
    edit_interval: float = Field(1.0, gt=0, description="seconds between edits of one message")
    group_messages_per_minute: int = Field(
        20, ge=1, description="sends + edits per minute in one group, across all replies"
    )
    typing_refresh: float = Field(4.0, gt=0, description="seconds between typing actions while nothing shows")
    quote_in_groups: bool = Field(True, description="group replies quote the message they answer")
    link_previews: bool = False

    # the Bot API HTTP client
    http_client: Literal["aiohttp", "httpx"] = Field(
        "aiohttp", description="aiohttp: about half the CPU per call of PTB's default httpx client"
    )
    fast_calls: bool = Field(
        True, description="send typing / drafts / messages / edits without PTB objects (aiohttp client only)"
    )
    connection_pool_size: int = Field(256, ge=1)
    keepalive_expiry: float = Field(300.0, gt=0, description="seconds an idle connection to the Bot API is kept")
    warm_interval: float = Field(
        30.0, ge=0, description="seconds between getMe calls that keep a reply connection warm; 0: off"
    )
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(10.0, gt=0)
    write_timeout: float = Field(10.0, gt=0)
    pool_timeout: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> TelegramConfig:
        if not self.token.get_secret_value().strip():
            raise ValueError("token: is empty")
        if self.mode == "webhook" and not self.webhook_url:
            raise ValueError('webhook_url: required when mode = "webhook"')
        if not self.webhook_path.startswith("/"):
            raise ValueError("webhook_path: must start with '/'")
        if self.webhook_secret is not None:
            s = self.webhook_secret.get_secret_value()
            if not (1 <= len(s) <= 256) or any(not (c.isascii() and (c.isalnum() or c in "_-")) for c in s):
                raise ValueError("webhook_secret: 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return self


def parse_config(table: dict[str, Any] | None) -> TelegramConfig:
    """Validate the raw `[channels.telegram]` table; ConfigError names `channels.telegram.<key>`."""
    return parse_channel_table(TelegramConfig, table, "telegram", secret_hint=("token", "TELEGRAM_BOT_TOKEN"))
