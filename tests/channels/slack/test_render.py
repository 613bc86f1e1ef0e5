from __future__ import annotations

import pytest

from bot.rendering import fits_where_source_fits
from channels.slack.render import RENDERER, to_mrkdwn


@pytest.mark.parametrize(
    ("source", "mrkdwn"),
    [
        ("**bold** and *italic* and ~~gone~~", "*bold* and _italic_ and ~gone~"),
        ("[docs](https://x.org/a?b=1&c=2)", "<https://x.org/a?b=1&amp;c=2|docs>"),
        ("a < b & c > d", "a &lt; b &amp; c &gt; d"),
        ("# Title\n- one\n- two", "*Title*\n• one\n• two"),
        ("```python\nif a < b:\n    **x**\n```", "```\nif a &lt; b:\n    **x**\n```"),
        ("use `a<b` here", "use `a&lt;b` here"),
        ("> quoted **text**", "> quoted *text*"),
        (r"not \*bold\*", "not \u2217bold\u2217"),
    ],
)
def test_markdown_to_mrkdwn(source: str, mrkdwn: str) -> None:
    assert to_mrkdwn(source) == mrkdwn


def test_visible_text_reads_links_and_entities() -> None:
    assert RENDERER.visible("<https://x.org|docs> &amp; &lt;b&gt;") == "docs & <b>"


def test_rule_holds_on_every_prefix() -> None:
    text = "# H\n**bold** [l](http://e.com/?a=1&b=2) <tag> & `c<d` ~~s~~\n```js\nx < 1 && y > 2\n```\n- item"
    for end in range(1, len(text) + 1):
        assert fits_where_source_fits(RENDERER, text[:end]), text[:end]
