"""The provider seam: a model backend streams text deltas, then usage and TTFT."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from bot.types import Delta, GenerationRequest


@runtime_checkable
class Provider(Protocol):
    name: str

    def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        """Yield text deltas; the last delta carries `usage` and `ttft`. Raise bot.errors.ProviderError."""
        ...

    async def start(self) -> None:
        """Connect / load ahead of the first message (warm connections, load weights)."""
        ...

    async def aclose(self) -> None: ...
