"""An in-process provider that streams given text pieces with given delays (no HTTP).

For channel tests that care about delivery, not about the provider protocol (that one is tested
against tests/fakes/openai_server.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

from bot.errors import ProviderError
from bot.types import Delta, GenerationRequest, Usage


class ScriptedProvider:
    def __init__(
        self,
        pieces: Sequence[str] | str = ("Hello", " there", "!"),
        *,
        name: str = "local",
        ttft: float = 0.0,
        interval: float = 0.0,
        fail_before: ProviderError | None = None,
        fail_after: int | None = None,
    ) -> None:
        self.name = name
        self.pieces = [pieces] if isinstance(pieces, str) else list(pieces)
        self.ttft = ttft
        self.interval = interval
        self.fail_before = fail_before
        self.fail_after = fail_after  # raise ProviderError after this many pieces
        self.requests: list[GenerationRequest] = []

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        self.requests.append(req)
        t0 = time.perf_counter()
        if self.fail_before is not None:
            raise self.fail_before
        if self.ttft:
            await asyncio.sleep(self.ttft)
        ttft = time.perf_counter() - t0
        for i, piece in enumerate(self.pieces):
            if self.fail_after is not None and i >= self.fail_after:
                raise ProviderError("scripted failure mid-stream", provider=self.name)
            if i and self.interval:
                await asyncio.sleep(self.interval)
            yield Delta(piece)
        yield Delta(usage=Usage(10, len(self.pieces), 0), ttft=ttft, finish_reason="stop")
