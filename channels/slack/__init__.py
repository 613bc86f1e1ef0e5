"""Slack channel (slack-bolt's AsyncApp + slack_sdk's AsyncWebClient): Socket Mode or the HTTP
Events API, DMs, mentions answered in threads, thread follow-ups, the assistant panel, answers
streamed with Slack's native streams (falling back to a message and updates).

The app calls `build(cfg, table)` when `[channels.slack]` exists; `CHANNEL` is the class.
"""

from __future__ import annotations

from typing import Any

from channels.slack.adapter import SlackChannel
from channels.slack.config import SlackConfig, parse_config
from channels.slack.render import RENDERER, to_mrkdwn
from channels.slack.surface import ReplyTarget, SlackApi, SlackSurface

__all__ = [
    "CHANNEL",
    "RENDERER",
    "ReplyTarget",
    "SlackApi",
    "SlackChannel",
    "SlackConfig",
    "SlackSurface",
    "build",
    "parse_config",
    "to_mrkdwn",
]

CHANNEL = SlackChannel


def build(cfg: Any, table: dict[str, Any] | None) -> SlackChannel:
    """The Slack channel from its raw `[channels.slack]` table."""
    return SlackChannel(parse_config(table))
