"""Test helpers for the webchat page: providers the test steers, and a watched browser page."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Browser, Dialog, Page

from bot.app import App
from bot.types import Delta, GenerationRequest, Usage
from tests.conftest import make_config

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-smooth-scrolling",  # a wheel turn scrolls at once: the test reads the position right after
]
WAIT = 15_000  # ms, for any DOM condition


class GatedProvider:
    """A provider the test feeds: each push() is the next piece of the answer being written, end()
    ends it. Whatever request is streaming takes the pieces, so replies are as slow as the test."""

    def __init__(self, name: str = "local") -> None:
        self.name = name
        self.requests: list[GenerationRequest] = []
        self.cancelled = 0
        self.asked = asyncio.Event()  # set on the first request
        self._pieces: asyncio.Queue[str | None] = asyncio.Queue()

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def push(self, *pieces: str) -> None:
        for p in pieces:
            self._pieces.put_nowait(p)

    def end(self) -> None:
        self._pieces.put_nowait(None)

    async def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        self.requests.append(req)
        self.asked.set()
        try:
            while (piece := await self._pieces.get()) is not None:
                yield Delta(piece)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        yield Delta(usage=Usage(10, 1, 0), ttft=0.0, finish_reason="stop")


class EchoProvider:
    """Answers "Answer to: <question>" word by word, `ttft` after the request, `interval` apart;
    with `gated`, not before the test opens the gate (`gate.set()`)."""

    def __init__(self, *, ttft: float = 0.0, interval: float = 0.0, gated: bool = False, name: str = "local") -> None:
        self.name = name
        self.ttft = ttft
        self.interval = interval
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()
        self.requests: list[GenerationRequest] = []

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    @staticmethod
    def answer(question: str) -> str:
        return f"Answer to: **{question}**"

    async def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        self.requests.append(req)
        await self.gate.wait()
        await asyncio.sleep(self.ttft)
        words = self.answer(req.messages[-1].content).split(" ")
        for i, w in enumerate(words):
            if i:
                await asyncio.sleep(self.interval)
            yield Delta(w if i == 0 else " " + w)
        yield Delta(usage=Usage(10, len(words), 0), ttft=self.ttft, finish_reason="stop")


@contextlib.asynccontextmanager
async def running_app(provider: Any, **cfg: Any) -> AsyncIterator[App]:
    app = App(make_config(**cfg), providers={"local": provider})
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@dataclass
class Watched:
    """A page and what went wrong on it: console errors, uncaught exceptions, dialogs."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.dialogs, self.dialogs
        assert not self.page_errors, self.page_errors
        assert not self.console_errors, self.console_errors


async def open_page(
    browser: Browser,
    url: str,
    *,
    expect_offline: bool = False,
    before: Callable[[Page], Awaitable[None]] | None = None,
    **context: Any,
) -> Watched:
    """A new context's page at `url`, online; `before(page)` runs before it loads (routes, clock)."""
    ctx = await browser.new_context(**context)
    page = await ctx.new_page()
    w = Watched(page)

    def on_console(msg: Any) -> None:
        if msg.type == "error":
            text = msg.text
            # a socket refused while the server is down is the browser's own log line, expected then
            if expect_offline and ("WebSocket" in text or "ERR_CONNECTION_REFUSED" in text):
                return
            w.console_errors.append(text)

    async def on_dialog(d: Dialog) -> None:
        w.dialogs.append(f"{d.type}: {d.message}")
        await d.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda e: w.page_errors.append(str(e)))
    page.on("dialog", on_dialog)
    if before is not None:
        await before(page)
    await page.goto(url)
    await page.wait_for_selector("#conn[data-state='online']", timeout=WAIT)
    return w


async def send(page: Page, text: str) -> None:
    """Type a question into the page and press Enter."""
    await page.fill("#text", text)
    await page.press("#text", "Enter")


async def wait_done(page: Page, count: int = 1) -> None:
    await page.wait_for_function(
        "n => document.querySelectorAll('.msg.bot[data-done=\"1\"]').length >= n", arg=count, timeout=WAIT
    )


class Shots:
    """One screenshot per state, into $WEBCHAT_SCREENSHOTS (when set) or pytest's tmp_path."""

    def __init__(self, tmp_path: Path, test: str) -> None:
        base = os.environ.get("WEBCHAT_SCREENSHOTS")
        self.dir = Path(base) if base else tmp_path
        self.dir.mkdir(parents=True, exist_ok=True)
        self.test = test
        self.taken: list[Path] = []

    async def __call__(self, page: Page, state: str) -> Path:
        path = self.dir / f"{self.test}--{state}.png"
        await page.screenshot(path=str(path))
        self.taken.append(path)
        return path


async def ws_frames_until(
    ws: aiohttp.ClientWebSocketResponse, kinds: Sequence[str], timeout: float = 10.0
) -> list[dict[str, Any]]:
    """Frames read until one of `kinds` arrives (that one included)."""
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        async for frame in ws:
            m = json.loads(frame.data)
            out.append(m)
            if m["type"] in kinds:
                return out
    return out
