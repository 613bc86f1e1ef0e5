"""Markdown → Telegram HTML: valid for Telegram whatever the input, visible text as expected."""

from __future__ import annotations

import random

import pytest

from channels.telegram.render import escape, markdown_to_html
from tests.fakes.telegram_server import TelegramHTMLError, parse_telegram_html


def visible(md: str) -> str:
    return parse_telegram_html(markdown_to_html(md))


@pytest.mark.parametrize(
    "md, html",
    [
        ("plain text", "plain text"),
        ("**bold** and __bold__", "<b>bold</b> and <b>bold</b>"),
        ("*it* and _it_", "<i>it</i> and <i>it</i>"),
        ("~~gone~~", "<s>gone</s>"),
        ("`a < b`", "<code>a &lt; b</code>"),
        ("a < b & c > d", "a &lt; b &amp; c &gt; d"),
        ("[site](https://example.com/?a=1&b=2)", '<a href="https://example.com/?a=1&amp;b=2">site</a>'),
        ("# Title", "<b>Title</b>"),
        ("- one\n- two", "• one\n• two"),
        ("1. one\n2. two", "1. one\n2. two"),
        ("3. three\n4. four", "3. three\n4. four"),
        ("> quoted", "<blockquote>quoted</blockquote>"),
        ("<b>not markup</b>", "&lt;b&gt;not markup&lt;/b&gt;"),
        ("line one\nline two", "line one\nline two"),
        ("para one\n\npara two", "para one\n\npara two"),
    ],
)
def test_render_cases(md: str, html: str) -> None:
    assert markdown_to_html(md) == html
    parse_telegram_html(html)


def test_code_block_with_language() -> None:
    md = '```python\nif a < b and c & d:\n    print("<x>")\n```'
    html = markdown_to_html(md)
    assert html == (
        '<pre><code class="language-python">if a &lt; b and c &amp; d:\n    print("&lt;x&gt;")</code></pre>'
    )
    assert visible(md) == 'if a < b and c & d:\n    print("<x>")'


def test_code_block_without_language_and_odd_language() -> None:
    assert markdown_to_html("```\nx\n```") == "<pre>x</pre>"
    assert markdown_to_html('```"><script>\nx\n```') == "<pre>x</pre>"


def test_nested_list_is_indented() -> None:
    assert markdown_to_html("- a\n  - b\n- c") == "• a\n  • b\n• c"


def test_bad_link_scheme_keeps_text_only() -> None:
    assert markdown_to_html("[x](ftp2://nope)") == "x"


def test_nested_blockquote_is_flattened() -> None:
    html = markdown_to_html("> a\n> > b")
    assert html.count("<blockquote>") == 1
    parse_telegram_html(html)


def test_table_becomes_pre() -> None:
    html = markdown_to_html("| a | b |\n|---|---|\n| 1 | <2> |")
    assert html == "<pre>a | b\n1 | &lt;2&gt;</pre>"


@pytest.mark.parametrize(
    "partial",
    ["**bol", "```py\nunfinished", "[link](http://exa", "> quote\n- list *it", "`code", "***", "<", "&", "1."],
)
def test_half_written_markdown_is_still_valid(partial: str) -> None:
    parse_telegram_html(markdown_to_html(partial))


def test_every_prefix_of_a_rich_answer_renders_valid() -> None:
    answer = (
        "# Plan\n\nHere is **bold**, *italic*, `code <tag>` and a [link](https://e.com/a?b=1&c=2).\n\n"
        "- first item with ~~strike~~\n  - nested & escaped <angle>\n- second\n\n"
        "1. one\n2. two\n\n```python\nfor i in range(3):\n    print(i < 2 and '&')\n```\n\n> a quote\n\n"
        "| col | val |\n|---|---|\n| x | 1 |\n"
    )
    for i in range(len(answer) + 1):
        part = answer[:i]
        html = markdown_to_html(part)
        try:
            shown = parse_telegram_html(html) if html else ""
        except TelegramHTMLError as e:  # pragma: no cover - shows the failing prefix
            raise AssertionError(f"prefix {i} {part!r} -> {html!r}: {e}") from None
        assert len(shown) <= max(len(part), 0) + 1


def test_random_garbage_always_valid() -> None:
    rng = random.Random(7)
    alphabet = "ab *_`~[]()<>&#>-1.\n|!\\:/h"
    for _ in range(2000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        parse_telegram_html(markdown_to_html(s))


def test_visible_text_not_longer_than_source() -> None:
    md = "**a** *b* `c` [d](https://x.y) # e\n\n- f\n- g\n\n1. h\n\n> i\n\n---\n"
    assert len(visible(md)) <= len(md)


def test_escape() -> None:
    assert escape('<a href="x">&</a>') == '&lt;a href="x"&gt;&amp;&lt;/a&gt;'


def test_plain_shortcut_matches_the_parser() -> None:
    """Text without Markdown syntax skips the parser; the result must be what the parser gives."""
    from channels.telegram import render

    parse = render._parser()

    def full(md: str) -> str:
        from markdown_it.tree import SyntaxTreeNode

        return render._blocks(SyntaxTreeNode(parse.parse(md)).children, quoted=False).strip("\n")

    rng = random.Random(11)
    alphabet = "ab cd.,:;?'\"()%$@/\n1290-+=)"
    checked = 0
    for _ in range(5000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        if render.is_plain(s):
            checked += 1
            assert markdown_to_html(s) == full(s), repr(s)
    assert checked > 500
    assert render.is_plain("Hello there, this is the answer.")
    assert not render.is_plain("1. item") and not render.is_plain("a\n- b") and not render.is_plain("x  \ny")
