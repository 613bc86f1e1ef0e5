from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app import App
from bot.types import InboundMessage
from channels.discord import DiscordChannel, parse_config
from tests.conftest import make_config
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.scripted_provider import ScriptedProvider

GUILD = 100
CHANNEL = 101  # a text channel of GUILD
DM = 555  # a DM channel with the person


class RecordingInbox:
    """A stand-in for the core's intake: records what the channel hands over."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.event = asyncio.Event()

    async def submit(self, msg: InboundMessage) -> bool:
        self.messages.append(msg)
        self.event.set()
        return True

    async def stop_reply(self, conversation: str) -> bool:
        return False

    async def history(self, conversation: str, limit: int) -> list[Any]:
        return []

    async def settle(self) -> None:
        await asyncio.sleep(0)

    async def wait(self, n: int = 1, timeout: float = 5.0) -> list[InboundMessage]:
        async def _w() -> None:
            while len(self.messages) < n:
                self.event.clear()
                await self.event.wait()

        await asyncio.wait_for(_w(), timeout)
        return self.messages


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    f = FakeDiscord()
    await f.start()
    yield f
    await f.stop()


def dc_config(fake: FakeDiscord, **over: Any):
    table: dict[str, Any] = {
        "token": fake.token,
        "base_url": fake.api_base,
        "gateway_url": fake.gateway_url,
        "connect_timeout": 10,
        "guild_ready_timeout": 0.05,
    }
    table.update(over)
    return parse_config(table)


@pytest.fixture
async def started(fake: FakeDiscord) -> AsyncIterator[Any]:
    """Start a channel against the fake with a recording inbox; closed at the end."""
    running: list[DiscordChannel] = []

    async def _start(**over: Any) -> tuple[DiscordChannel, RecordingInbox]:
        aliases = over.pop("aliases", None)
        ch = DiscordChannel(dc_config(fake, **over), aliases=aliases)
        inbox = RecordingInbox()
        running.append(ch)
        await ch.start(inbox)
        return ch, inbox

    yield _start
    for ch in running:
        await ch.stop()
        await ch.aclose()


@pytest.fixture
async def run_app(fake: FakeDiscord) -> AsyncIterator[Any]:
    """The whole runtime (intake, dispatcher, responder, ReplyStream) with the Discord channel."""
    apps: list[App] = []

    async def _run(provider: ScriptedProvider, *, config: dict[str, Any] | None = None, **dc: Any):
        channel = DiscordChannel(dc_config(fake, **dc))
        app = App(
            make_config(channels={"webchat": {"enabled": False}}, **(config or {})),
            providers={"local": provider},
            channels=[channel],
            serve_http=False,
        )
        await app.start()
        apps.append(app)
        return app, channel

    yield _run
    for app in apps:
        await app.stop()
