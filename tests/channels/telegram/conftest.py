from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.types import InboundMessage
from channels.telegram import TelegramChannel, parse_config
from tests.fakes.telegram_server import FakeTelegram


class RecordingInbox:
    """A stand-in for the dispatcher: records what the channel hands over."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.event = asyncio.Event()

    async def submit(self, msg: InboundMessage) -> bool:
        self.messages.append(msg)
        self.event.set()
        return True

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
async def fake() -> AsyncIterator[FakeTelegram]:
    f = FakeTelegram()
    await f.start()
    yield f
    await f.stop()


def tg_config(fake: FakeTelegram, **over: Any):
    table: dict[str, Any] = {
        "token": fake.token,
        "base_url": fake.base_url,
        "base_file_url": fake.base_file_url,
        "poll_timeout": 1,
        "conflict_probe": 0,
        "warm_interval": 0,
        "read_timeout": 5,
    }
    table.update(over)
    return parse_config(table)


@pytest.fixture
def make_channel(fake: FakeTelegram):
    made: list[TelegramChannel] = []

    def _make(**over: Any) -> TelegramChannel:
        ch = TelegramChannel(tg_config(fake, **over))
        made.append(ch)
        return ch

    yield _make


@pytest.fixture
async def started(fake: FakeTelegram, make_channel) -> AsyncIterator[Any]:
    """Start a channel (polling the fake) with a recording inbox; stopped at the end."""
    running: list[TelegramChannel] = []

    async def _start(**over: Any) -> tuple[TelegramChannel, RecordingInbox]:
        ch = make_channel(**over)
        inbox = RecordingInbox()
        await ch.start(inbox)
        running.append(ch)
        return ch, inbox

    yield _start
    for ch in running:
        await ch.stop()
