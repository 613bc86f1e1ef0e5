"""The channel's config table: defaults, validation messages, and the README listing every key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from channels.telegram.config import TelegramConfig, parse_config


def test_defaults() -> None:
    cfg = parse_config({"token": "1:a"})
    assert cfg.mode == "polling" and cfg.base_url == "https://api.telegram.org/bot"
    assert cfg.private_streaming == "draft" and cfg.group_streaming == "edit"
    assert cfg.keepalive_expiry == 300.0 and cfg.typing_refresh == 4.0
    assert not cfg.access_policy().restricted


def test_token_is_secret() -> None:
    cfg = parse_config({"token": "123:very-secret"})
    assert "very-secret" not in repr(cfg) and "very-secret" not in str(cfg)


@pytest.mark.parametrize(
    "table, key",
    [
        ({}, "token"),
        ({"token": None}, "token"),  # ${TELEGRAM_BOT_TOKEN} unset
        ({"token": "  "}, "token"),
        ({"token": "1:a", "mode": "hook"}, "mode"),
        ({"token": "1:a", "mode": "webhook"}, "webhook_url"),
        ({"token": "1:a", "webhook_path": "x"}, "webhook_path"),
        ({"token": "1:a", "webhook_secret": "has space"}, "webhook_secret"),
        ({"token": "1:a", "allow_users": [1.5]}, "allow_users"),
        ({"token": "1:a", "edit_interval": 0}, "edit_interval"),
        ({"token": "1:a", "poll_timeout": 100}, "poll_timeout"),
        ({"token": "1:a", "nope": 1}, "nope"),
    ],
)
def test_errors_name_the_key(table: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"channels\.telegram\.{key}"):
        parse_config(table)


def test_allow_lists() -> None:
    cfg = parse_config({"token": "1:a", "allow_users": [5, "@Bob", "carol"], "allow_chats": [-9]})
    pol = cfg.access_policy()
    assert pol.restricted and pol.chat_ids == {"-9"}
    assert pol.user_ids == {"5", "carol"} and pol.usernames == {"bob", "carol"}  # a bare word: either


def test_readme_lists_every_key() -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    readme = readme[readme.index("## Telegram") :]
    missing = [k for k in TelegramConfig.model_fields if f"`{k}`" not in readme]
    assert missing == []


def test_an_unknown_key_gets_a_did_you_mean() -> None:
    with pytest.raises(
        ConfigError, match=r"channels\.telegram\.edit_intervall: unknown key \(did you mean 'edit_interval'\?\)"
    ):
        parse_config({"token": "1:a", "edit_intervall": 2})
