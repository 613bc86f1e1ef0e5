from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app import App
from bot.types import InboundMessage
from channels.slack import SlackChannel, SlackConfig, parse_config
from tests.conftest import make_config
from tests.fakes.scripted_provider import ScriptedProvider
from tests.fakes.slack_server import FakeSlack

DM = "D0042"
CHANNEL = "C0100"


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
async def fake() -> AsyncIterator[FakeSlack]:
    f = await FakeSlack().start()
    yield f
    await f.stop()


def sl_config(fake: FakeSlack, **over: Any) -> SlackConfig:
    table: dict[str, Any] = {
        "bot_token": fake.bot_token,
        "app_token": fake.app_token,
        "base_url": fake.api_base,
        "stream_interval": 0.05,
        "edit_interval": 0.1,
        "channel_messages": 1000,
        "channel_seconds": 1.0,
    }
    table.update(over)
    return parse_config(table)


@pytest.fixture
async def started(fake: FakeSlack) -> AsyncIterator[Any]:
    """Start a channel against the fake with a recording inbox; closed at the end."""
    running: list[SlackChannel] = []

    async def _start(**over: Any) -> tuple[SlackChannel, RecordingInbox]:
        ch = SlackChannel(sl_config(fake, **over))
        inbox = RecordingInbox()
        running.append(ch)
        await ch.start(inbox)
        return ch, inbox

    yield _start
    for ch in running:
        await ch.stop()
        await ch.aclose()


@pytest.fixture
async def run_app(fake: FakeSlack) -> AsyncIterator[Any]:
    """The whole runtime (intake, dispatcher, responder, ReplyStream) with the Slack channel."""
    apps: list[App] = []

    async def _run(
        provider: ScriptedProvider, *, config: dict[str, Any] | None = None, serve_http: bool = False, **sl: Any
    ) -> tuple[App, SlackChannel]:
        channel = SlackChannel(sl_config(fake, **sl))
        app = App(
            make_config(channels={"webchat": {"enabled": False}}, **(config or {})),
            providers={"local": provider},
            channels=[channel],
            serve_http=serve_http,
        )
        await app.start()
        apps.append(app)
        return app, channel

    yield _run
    for app in apps:
        await app.stop()


async def settled(app: App, n: int = 1) -> None:
    """Until `n` replies have ended (the App's metrics) and their delivery is flushed."""

    def done() -> int:
        total = 0.0
        for family in app.metrics.replies.collect():
            for s in family.samples:
                if s.name.endswith("_total"):
                    total += s.value
        return int(total)

    for _ in range(2000):
        if done() >= n:
            break
        await asyncio.sleep(0.01)
    await app.responder.flush()
