"""Discord reads Markdown itself: the text passes through, with every mention made inert."""

from __future__ import annotations

import pytest

from bot.rendering import fits_where_source_fits
from bot.types import Markup
from channels.discord.render import FULLWIDTH_AT, RENDERER, neutralise_mentions


@pytest.mark.parametrize(
    "source, shown",
    [
        ("hello @everyone", f"hello {FULLWIDTH_AT}everyone"),
        ("@here: lunch", f"{FULLWIDTH_AT}here: lunch"),
        ("ask <@123> and <@!456>", f"ask <{FULLWIDTH_AT}123> and <{FULLWIDTH_AT}!456>"),
        ("the <@&789> role", f"the <{FULLWIDTH_AT}&789> role"),
        ("mail me at a@b.c, see <#42>", "mail me at a@b.c, see <#42>"),  # not mentions
        ("**bold** and `code`", "**bold** and `code`"),
    ],
)
def test_mentions_are_neutralised_and_markdown_passes(source: str, shown: str) -> None:
    assert RENDERER.render(source) == shown
    assert len(shown) == len(source)  # one character for one: the rendering rule holds


def test_rule_holds_on_every_prefix() -> None:
    text = "Hi @everyone <@12> <@&3> **b** ```py\nx = '@here'\n```"
    for i in range(len(text) + 1):
        assert fits_where_source_fits(RENDERER, text[:i])


def test_markup_is_markdown() -> None:
    assert RENDERER.markup is Markup.MARKDOWN
    assert neutralise_mentions("no at sign") == "no at sign"
