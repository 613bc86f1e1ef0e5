"""`[channels.slack]`: the Slack channel's own config table, validated here.

Errors name the key as `channels.slack.<key>`; unknown keys are refused.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, SecretStr, model_validator

from bot.access import WorkspaceAccessConfig
from bot.config import parse_channel_table

DEFAULT_API = "https://slack.com/api/"


class SlackConfig(WorkspaceAccessConfig):
    """The table; `allow_users` (user ids), `allow_chats` (channel ids), `allow_workspaces` (team
    ids) and `refusal_text` come from the core's access config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    bot_token: SecretStr = Field(description="the bot token, xoxb-… (use ${SLACK_BOT_TOKEN})")
    mode: Literal["socket", "http"] = Field("socket", description="Socket Mode (app token) or the HTTP Events API")
    app_token: SecretStr | None = Field(None, description="the app-level token, xapp-… (Socket Mode)")
    signing_secret: SecretStr | None = Field(None, description="the app's signing secret (HTTP mode)")
    events_path: str = Field("/slack/events", description="the path of the HTTP Events API on the shared server")
    base_url: str = Field(DEFAULT_API, description="Web API base (a test fake)")
    stream_interval: float = Field(0.5, gt=0, description="seconds between two appends to a native stream")
    edit_interval: float = Field(1.0, gt=0, description="seconds between updates of a message (the fallback)")
    channel_messages: int = Field(1, ge=1, description="messages + updates per channel per channel_seconds")
    channel_seconds: float = Field(1.0, gt=0)
    status_text: str = Field("is thinking…", description="the assistant thread's status while the model thinks")
    status_refresh: float = Field(60.0, gt=0, description="seconds between two status requests while nothing shows")
    reaction: str = Field("eyes", description="the reaction on a question while it is being answered ('' : none)")
    suggested_prompts: list[str] = Field(
        default_factory=lambda: ["Summarise this channel", "Explain a concept", "Help me write a message"],
        description="offered when an assistant thread starts",
    )
    slash_command: str = Field("/switchboard", description="the slash command's name (model, reset, status)")
    request_timeout: float = Field(15.0, gt=0, description="seconds one Web API request may take")

    @model_validator(mode="after")
    def _check(self) -> SlackConfig:
        if not self.bot_token.get_secret_value().strip():
            raise ValueError("bot_token: is empty")
        if self.bot_token.get_secret_value().startswith("xapp-"):
            raise ValueError(
                "bot_token: is an app-level token (xapp-…), which belongs in app_token; the bot token is xoxb-…"
            )
        if self.app_token is not None and self.app_token.get_secret_value().startswith("xoxb-"):
            raise ValueError("app_token: is a bot token (xoxb-…), which belongs in bot_token; the app token is xapp-…")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("base_url: must start with http:// or https://")
        if self.mode == "socket" and (self.app_token is None or not self.app_token.get_secret_value().strip()):
            raise ValueError(
                'app_token: Socket Mode needs the app-level token (app_token = "${SLACK_APP_TOKEN}", an xapp-… '
                'token from Basic Information → App-Level Tokens), or mode = "http" with signing_secret'
            )
        if self.mode == "http" and (self.signing_secret is None or not self.signing_secret.get_secret_value().strip()):
            raise ValueError(
                'signing_secret: the HTTP Events API needs the signing secret (signing_secret = "${SLACK_SIGNING_SECRET}", '
                "from Basic Information → App Credentials)"
            )
        if not self.events_path.startswith("/"):
            raise ValueError("events_path: must start with /")
        if not self.slash_command.startswith("/"):
            raise ValueError("slash_command: must start with /")
        return self

    @property
    def api_base(self) -> str:
        return self.base_url if self.base_url.endswith("/") else self.base_url + "/"


def parse_config(table: dict[str, Any] | None) -> SlackConfig:
    """Validate the raw `[channels.slack]` table; ConfigError names `channels.slack.<key>`."""
    return parse_channel_table(SlackConfig, table, "slack", secret_hint=("bot_token", "SLACK_BOT_TOKEN"))
