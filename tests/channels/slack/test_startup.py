"""Start-up against the fake: the bot's ids learned at start, one clear line per problem."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError, PlatformError, StartupError
from channels.slack import SlackChannel
from tests.fakes.slack_server import FakeSlack

from .conftest import RecordingInbox, sl_config


async def test_the_bots_own_id_is_learned_at_start(fake: FakeSlack, started) -> None:
    ch, inbox = await started()
    assert ch.me == fake.bot_user_id and ch.team_id == fake.team_id
    assert [c.method for c in fake.calls] == ["auth.test", "apps.connections.open"]
    await fake.dm("hello")
    [msg] = await inbox.wait(1)
    assert msg.text == "hello" and msg.chat_kind.value == "dm"
    assert [c.method for c in fake.calls] == ["auth.test", "apps.connections.open"]  # no lazy auth.test
    assert fake.connections == 1


async def start(fake: FakeSlack, **over) -> SlackChannel:
    ch = SlackChannel(sl_config(fake, **over))
    try:
        await ch.start(RecordingInbox())
    finally:
        await ch.aclose()
    return ch


async def test_invalid_bot_token(fake: FakeSlack) -> None:
    with pytest.raises(ConfigError) as e:
        await start(fake, bot_token="xoxb-wrong")
    assert str(e.value).startswith("channels.slack.bot_token: Slack refused the bot token (invalid_auth)")
    assert "OAuth & Permissions" in str(e.value) and "\n" not in str(e.value)


async def test_a_token_of_the_wrong_type(fake: FakeSlack) -> None:
    fake.app_token = "xoxp-a-user-token"  # Slack answers a token of the wrong kind: not_allowed_token_type
    with pytest.raises(ConfigError) as e:
        await start(fake, bot_token="xoxp-a-user-token", app_token="xapp-1")
    assert str(e.value).startswith("channels.slack.bot_token: not a bot token (not_allowed_token_type")
    with pytest.raises(ConfigError) as e:
        sl_config(fake, bot_token="xapp-1-swapped")
    assert "channels.slack.bot_token: is an app-level token (xapp-…), which belongs in app_token" in str(e.value)


async def test_bad_app_tokens(fake: FakeSlack) -> None:
    with pytest.raises(ConfigError) as e:
        await start(fake, app_token="xapp-wrong")
    assert str(e.value).startswith("channels.slack.app_token: Slack refused the app-level token (invalid_auth)")
    fake.bot_token = "tok-bot"
    with pytest.raises(ConfigError) as e:
        await start(fake, bot_token="tok-bot", app_token="tok-bot")
    assert "channels.slack.app_token: not an app-level token (not_allowed_token_type)" in str(e.value)


async def test_socket_mode_not_enabled(fake: FakeSlack) -> None:
    fake.socket_mode_enabled = False
    with pytest.raises(StartupError) as e:
        await start(fake)
    assert "Socket Mode" in str(e.value) and 'mode = "http"' in str(e.value)


async def test_each_missing_scope_is_named(fake: FakeSlack) -> None:
    fake.scopes = "chat:write,im:history"
    with pytest.raises(StartupError) as e:
        await start(fake)
    lines = str(e.value).splitlines()
    assert [line.split(" scope")[0].rsplit(" ", 1)[-1] for line in lines] == [
        "app_mentions:read",
        "channels:history",
        "reactions:write",
    ]
    assert all("OAuth & Permissions" in line for line in lines)


async def test_unreachable_slack() -> None:
    f = await FakeSlack().start()
    cfg_fake = f
    await f.stop()
    with pytest.raises(PlatformError) as e:
        await start(cfg_fake)
    assert "cannot reach Slack" in str(e.value)
