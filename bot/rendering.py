"""Rendering: from the model's Markdown to what a channel shows, and the rule that keeps it safe.

The core splits the reply's *source* text (Markdown) into parts of at most `Capabilities.max_chars`
while it streams; the adapter's surface renders each part into the channel's markup
(`Capabilities.markup`) as it sends it. Splitting before rendering is safe only because every
renderer keeps one rule:

    len(renderer.visible(renderer.render(source))) <= len(source)

where `visible` is the text the platform counts against its length limit (Telegram counts the
text left after parsing its HTML entities). A part that fits as Markdown therefore still fits once
rendered, and a rendered prefix never outgrows the prefix it came from, so streaming previews fit
too. tests/contract/test_rendering.py checks the rule for the renderer of every registered channel,
on a corpus of answers and on every prefix of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.types import Markup

__all__ = ["Passthrough", "Renderer", "fits_where_source_fits"]


class Renderer(Protocol):
    """Markdown source -> the channel's markup; pure functions, no I/O."""

    @property
    def markup(self) -> Markup: ...

    def render(self, source: str) -> str: ...

    def visible(self, rendered: str) -> str:
        """The text a person sees (and the platform counts) once `rendered` is shown."""
        ...


@dataclass(frozen=True, slots=True)
class Passthrough:
    """The source is what is shown: plain text, or Markdown the client renders (webchat, console)."""

    markup: Markup = Markup.PLAIN

    def render(self, source: str) -> str:
        return source

    def visible(self, rendered: str) -> str:
        return rendered


def fits_where_source_fits(renderer: Renderer, source: str) -> bool:
    """The rule above, for one source text."""
    return len(renderer.visible(renderer.render(source))) <= len(source)
