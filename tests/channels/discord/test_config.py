"""The channel's config table: defaults, validation messages, the README listing every key, and
the channel built the way the app builds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import build_channel
from bot.errors import ConfigError
from bot.types import ChatKind, LatencyClass, RateBudget, Streaming
from channels.discord import DiscordChannel
from channels.discord.config import DiscordConfig, parse_config
from tests.conftest import make_config


def test_defaults() -> None:
    cfg = parse_config({"token": "abc.def"})
    assert cfg.base_url == "https://discord.com/api/v10" and cfg.gateway_url is None
    assert cfg.shard_count is None and cfg.shard_ids is None and cfg.guild_id is None
    assert cfg.notify_after == 15.0 and cfg.edit_interval == 1.2 and cfg.typing_refresh == 8.0
    assert (cfg.channel_messages, cfg.channel_seconds) == (5, 5.0)
    assert not cfg.access_policy().restricted


def test_token_is_secret() -> None:
    cfg = parse_config({"token": "very-secret-token"})
    assert "very-secret-token" not in repr(cfg) and "very-secret-token" not in str(cfg)


@pytest.mark.parametrize(
    "table, key",
    [
        ({}, "token"),
        ({"token": None}, "token"),  # ${DISCORD_BOT_TOKEN} unset
        ({"token": "  "}, "token"),
        ({"token": "t", "base_url": "discord.com"}, "base_url"),
        ({"token": "t", "gateway_url": "http://x"}, "gateway_url"),
        ({"token": "t", "shard_ids": [0]}, "shard_ids"),
        ({"token": "t", "shard_count": 2, "shard_ids": [2]}, "shard_ids"),
        ({"token": "t", "shard_count": 0}, "shard_count"),
        ({"token": "t", "edit_interval": 0}, "edit_interval"),
        ({"token": "t", "answer_channels": ["general"]}, "answer_channels"),
        ({"token": "t", "nope": 1}, "nope"),
    ],
)
def test_errors_name_the_key(table: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"channels\.discord\.{key}"):
        parse_config(table)


def test_allow_lists() -> None:
    cfg = parse_config({"token": "t", "allow_users": [5, "Bob"], "allow_chats": [101], "allow_workspaces": ["100"]})
    pol = cfg.access_policy()
    assert pol.user_ids == {"5", "Bob"} and pol.usernames == {"bob"}  # a bare word may be either
    assert pol.chat_ids == {"101"} and pol.workspace_ids == {"100"}


def test_capabilities() -> None:
    chat = DiscordChannel.declared_capabilities(ChatKind.GROUP)
    assert chat.streaming is Streaming.EDIT and chat.latency_class is LatencyClass.SEMI_SYNC
    assert chat.max_chars == 2000 and chat.min_edit_interval == 1.2 and chat.typing_refresh == 8.0
    assert chat.chat_budget == RateBudget(5, 5.0)
    ask = DiscordChannel.declared_capabilities(ChatKind.COMMAND)
    assert ask.latency_class is LatencyClass.SYNC and ask.typing_refresh is None
    assert DiscordChannel.declared_capabilities(ChatKind.DM) == chat


def test_built_by_the_app_with_the_config_aliases() -> None:
    cfg = make_config(
        models={"openai/gpt-4o-mini": {"alias": ["mini", "cheap"]}}, routing={"aliases": {"smart": "openai/gpt-4o"}}
    )
    ch = build_channel(cfg, "discord", {"token": "t"})
    assert isinstance(ch, DiscordChannel)
    assert ch.aliases == ["cheap", "mini", "smart"]


def test_readme_lists_every_key() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme.split("## Discord", 1)[1].split("\n## ", 1)[0]
    for key in DiscordConfig.model_fields:
        assert f"`{key}`" in section, key
