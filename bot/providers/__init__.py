"""Model backends: each streams text deltas, then usage and TTFT (`bot.providers.base.Provider`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import ProviderConfig
    from bot.providers.base import Provider
    from bot.providers.openai_compat import OpenAICompatProvider

GEMINI_OPENAI_URL = "https://generativelanguage.googleapis.com/v1beta/openai/"


def openai_compat(name: str, pc: ProviderConfig) -> OpenAICompatProvider:
    """An OpenAI-compatible provider; Gemini is reached through its OpenAI-compatible endpoint."""
    from bot.providers.openai_compat import OpenAICompatProvider

    if pc.kind == "gemini" and not pc.base_url:
        pc = pc.model_copy(update={"base_url": GEMINI_OPENAI_URL})
    return OpenAICompatProvider(name, pc)


def build_provider(name: str, pc: ProviderConfig) -> Provider:
    """The provider for a `[providers.NAME]` table; its module is imported only when used."""
    if pc.kind == "local":
        from bot.providers.local import LocalProvider

        return LocalProvider(name, pc)
    return openai_compat(name, pc)
