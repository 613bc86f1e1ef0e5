"""`[channels.discord]`: the Discord channel's own config table, validated here.

Errors name the key as `channels.discord.<key>`; unknown keys are refused.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, SecretStr, model_validator

from bot.access import WorkspaceAccessConfig
from bot.config import parse_channel_table

DEFAULT_API = "https://discord.com/api/v10"


class DiscordConfig(WorkspaceAccessConfig):
    """The table; `allow_users` (user ids or usernames), `allow_chats` (channel ids),
    `allow_workspaces` (guild ids) and `refusal_text` come from the core's access config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    token: SecretStr = Field(description="the bot token from the developer portal (use ${DISCORD_BOT_TOKEN})")
    base_url: str = Field(DEFAULT_API, description="REST API base (a rate-limit proxy, or a test fake)")
    gateway_url: str | None = Field(None, description="gateway WebSocket URL; default: Discord's")
    shard_count: int | None = Field(None, ge=1, description="total shards across processes; unset: one, unsharded")
    shard_ids: list[int] | None = Field(None, description="the shards this process runs; default: all of them")
    guild_id: int | None = Field(None, description="sync slash commands to this guild only (instantly available)")
    sync_commands: bool = Field(True, description="register /ask, /model and /reset at start")
    answer_channels: list[int] = Field(
        default_factory=list, description="channel ids where every message is answered, without a mention"
    )
    notify_after: float = Field(
        15.0,
        ge=0,
        description="an answer that took longer ends as a new message (edits notify nobody), the preview deleted",
    )
    edit_interval: float = Field(1.2, gt=0, description="seconds between edits of one message")
    streaming_marker: str = Field(" ▌", max_length=8, description="shown at the end while an answer is written")
    channel_messages: int = Field(5, ge=1, description="sends + edits per channel per channel_seconds, all replies")
    channel_seconds: float = Field(5.0, gt=0)
    typing_refresh: float = Field(8.0, gt=0, description="seconds between typing requests while nothing shows")
    connect_timeout: float = Field(30.0, gt=0, description="seconds to wait for the gateway's READY at start")
    guild_ready_timeout: float = Field(
        2.0, gt=0, description="seconds discord.py waits after the last GUILD_CREATE before it is ready"
    )
    request_timeout: float = Field(15.0, gt=0, description="seconds one reply request may take")

    @model_validator(mode="after")
    def _check(self) -> DiscordConfig:
        if not self.token.get_secret_value().strip():
            raise ValueError("token: is empty")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("base_url: must start with http:// or https://")
        if self.gateway_url is not None and not self.gateway_url.startswith(("ws://", "wss://")):
            raise ValueError("gateway_url: must start with ws:// or wss://")
        if self.shard_ids is not None:
            if self.shard_count is None:
                raise ValueError("shard_ids: needs shard_count (the total number of shards)")
            bad = [i for i in self.shard_ids if not 0 <= i < self.shard_count]
            if bad or not self.shard_ids:
                raise ValueError(f"shard_ids: each must be in 0..{self.shard_count - 1}")
        return self


def parse_config(table: dict[str, Any] | None) -> DiscordConfig:
    """Validate the raw `[channels.discord]` table; ConfigError names `channels.discord.<key>`."""
    return parse_channel_table(DiscordConfig, table, "discord", secret_hint=("token", "DISCORD_BOT_TOKEN"))
