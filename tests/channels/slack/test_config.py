from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.types import ChatKind, LatencyClass, Markup, Streaming
from channels.slack import SlackChannel, parse_config


def test_socket_mode_needs_the_app_token() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"bot_token": "xoxb-1"})
    assert "channels.slack.app_token: Socket Mode needs the app-level token" in str(e.value)


def test_http_mode_needs_the_signing_secret() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"bot_token": "xoxb-1", "mode": "http"})
    assert "channels.slack.signing_secret:" in str(e.value)
    assert parse_config({"bot_token": "xoxb-1", "mode": "http", "signing_secret": "s"}).mode == "http"


def test_missing_token_and_unknown_keys() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"app_token": "xapp-1", "tokn": "x"})
    text = str(e.value)
    assert "channels.slack.bot_token: is required" in text and "channels.slack.tokn: unknown key" in text


def test_allow_lists_include_workspaces() -> None:
    cfg = parse_config({"bot_token": "xoxb-1", "app_token": "xapp-1", "allow_workspaces": ["T0001"]})
    assert cfg.access_policy().workspace_ids == frozenset({"T0001"})


def test_declared_capabilities() -> None:
    dm = SlackChannel.declared_capabilities(ChatKind.DM)
    thread = SlackChannel.declared_capabilities(ChatKind.THREAD)
    assert dm.streaming is Streaming.NATIVE and dm.latency_class is LatencyClass.SEMI_SYNC
    assert thread.latency_class is LatencyClass.ASYNC and thread.max_chars == 12_000
    assert dm.markup is Markup.SLACK_MRKDWN and dm.chat_budget is not None
    assert SlackChannel.declared_capabilities(ChatKind.COMMAND).latency_class is LatencyClass.SYNC
