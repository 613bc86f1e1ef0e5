"""Fixtures for the webchat page tests: a headless Chromium and a screenshot taker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

from tests.channels.webchat.helpers import ARGS, CHROMIUM, Shots


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
def shots(tmp_path, request) -> Shots:
    return Shots(tmp_path, request.node.name.removeprefix("test_"))
