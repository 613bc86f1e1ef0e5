"""`switchboard doctor` for Discord: the token and the Message Content Intent, read from the API."""

from __future__ import annotations

from channels.discord.doctor import checks
from tests.fakes.discord_server import FakeDiscord

from .conftest import dc_config


async def test_doctor_ok(fake: FakeDiscord) -> None:
    got = await checks(dc_config(fake))
    assert [c.name for c in got] == ["discord config", "discord token", "discord intents"]
    assert all(c.ok for c in got), got
    assert "switchboard" in got[1].detail
    assert [r.route for r in fake.requests] == ["me", "application"]  # read only


async def test_doctor_bad_token(fake: FakeDiscord) -> None:
    got = await checks(dc_config(fake, token="wrong"))
    assert not got[-1].ok and got[-1].name == "discord token" and "Reset Token" in got[-1].fix


async def test_doctor_intent_off(fake: FakeDiscord) -> None:
    fake.application_flags = 0
    got = await checks(dc_config(fake))
    assert got[-1].name == "discord intents" and not got[-1].ok
    assert "Message Content Intent" in got[-1].fix


async def test_doctor_unreachable() -> None:
    from channels.discord.config import parse_config

    got = await checks(parse_config({"token": "t", "base_url": "http://127.0.0.1:9/api/v10", "request_timeout": 2}))
    assert got[-1].name == "discord API" and not got[-1].ok


async def test_doctor_calls_discord_only_with_deep(fake: FakeDiscord) -> None:
    from channels.discord import DiscordChannel

    channel = DiscordChannel(dc_config(fake, token="wrong"))
    shallow = await channel.doctor_checks()
    assert all(c.ok for c in shallow) and fake.requests == []  # nothing asked of Discord
    deep = await channel.doctor_checks(deep=True)
    assert not deep[-1].ok and deep[-1].name == "discord token"
