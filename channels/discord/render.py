"""The model's Markdown as Discord shows it: Discord reads Markdown itself, so the text passes
through, except that nothing in it can mention anyone.

`allowed_mentions` (nothing) on every request already keeps a mention from pinging; the renderer
also makes `@everyone`, `@here`, `<@user>`, `<@!user>` and `<@&role>` read as plain text, by
swapping the `@` for a full-width `＠` (one character for one, so the rendered text is exactly as
long as its source: the rule in `bot.rendering` holds).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.types import Markup

FULLWIDTH_AT = "\uff20"
_MENTION = re.compile(r"@(?=everyone|here)|(?<=<)@(?=[!&]?\d+>)")


def neutralise_mentions(text: str) -> str:
    """`text` with every mass, user and role mention made inert (same length)."""
    if "@" not in text:
        return text
    return _MENTION.sub(FULLWIDTH_AT, text)


@dataclass(frozen=True, slots=True)
class DiscordRenderer:
    markup: Markup = Markup.MARKDOWN

    def render(self, source: str) -> str:
        return neutralise_mentions(source)

    def visible(self, rendered: str) -> str:
        return rendered  # Discord counts the content as sent, Markdown included


RENDERER = DiscordRenderer()
