"""`python -m bot.providers.local.smoke`: load the bundled model and generate one token.

Run by scripts/install.sh after installing: a llama.cpp build that crashes on this CPU shows up
here (as a non-zero exit) instead of on a person's first message.
"""

from __future__ import annotations

import asyncio

from bot.config import ProviderConfig
from bot.providers.local.provider import LocalProvider
from bot.types import ChatTurn, GenerationRequest


async def smoke() -> str:
    provider = LocalProvider("local", ProviderConfig(kind="local"))
    try:
        await provider.start()
        req = GenerationRequest("smollm2-135m", (ChatTurn("user", "Say hi."),), max_tokens=2, temperature=0.0)
        return "".join([d.text async for d in provider.stream(req)])
    finally:
        await provider.aclose()


if __name__ == "__main__":
    print(repr(asyncio.run(smoke())))
