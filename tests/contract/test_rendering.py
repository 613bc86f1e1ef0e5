"""The rendering rule (bot.rendering), checked for the renderer of every registered channel:
a part that fits as Markdown still fits once rendered, prefixes included (streaming shows them)."""

from __future__ import annotations

import pytest

from bot.app import CHANNEL_MODULES, channel_module
from bot.channel import Channel
from bot.rendering import fits_where_source_fits
from bot.types import ChatKind

ANSWERS = [
    "Plain text, nothing to render.",
    "**Bold**, *italic*, ~~struck~~ and `code`, with a [link](https://example.com/a?b=1&c=2).",
    "# Heading\n\nA paragraph with <angle brackets> & ampersands.\n\n> a quote\n> on two lines\n",
    "1. first\n2. second\n   - nested *item*\n   - another\n\n- [ ] task\n",
    "```python\ndef f(x):\n    return x < 3 and x > 1\n```\nAfter the code.",
    "| a | b |\n|---|---|\n| 1 | **2** |\n| <3 | & |\n",
    "Unclosed **bold and `code and [link](http://x",
    "Emoji 😀 and accents ünïcödé, __underscores__ and \\*escaped\\* stars.",
    "Line one  \nline two (hard break)\n\n***\n\nthe end",
]


def channel_classes() -> list[type[Channel]]:
    return [channel_module(name).CHANNEL for name in CHANNEL_MODULES]


@pytest.mark.parametrize("cls", channel_classes(), ids=lambda c: c.name)
def test_renderer_matches_the_declared_markup(cls: type[Channel]) -> None:
    for kind in ChatKind:
        assert cls.declared_capabilities(kind).markup is cls.renderer.markup


@pytest.mark.parametrize("cls", channel_classes(), ids=lambda c: c.name)
@pytest.mark.parametrize("answer", ANSWERS, ids=range(len(ANSWERS)))
def test_rendered_text_fits_where_its_source_fit(cls: type[Channel], answer: str) -> None:
    renderer = cls.renderer
    for end in range(1, len(answer) + 1):
        prefix = answer[:end]
        assert fits_where_source_fits(renderer, prefix), (prefix, renderer.render(prefix))


def test_the_rule_can_fail() -> None:
    """A renderer that adds visible text breaks the rule, and the check says so."""
    from dataclasses import dataclass

    from bot.types import Markup

    @dataclass(frozen=True)
    class Decorating:
        markup: Markup = Markup.PLAIN

        def render(self, source: str) -> str:
            return f"» {source}"

        def visible(self, rendered: str) -> str:
            return rendered

    assert not fits_where_source_fits(Decorating(), "hi")
