"""The model's Markdown as Telegram HTML (parse_mode="HTML").

Pure functions. Whatever the input — half-written Markdown in the middle of a stream, one part of a
long answer cut on its own, stray `<` and `&` — the output is HTML Telegram accepts: only the tags
it knows (b, i, s, code, pre, a, blockquote), properly nested and closed, text escaped with the
entities it knows (&lt; &gt; &amp; &quot;).

The visible text is never longer than the Markdown it came from (markup characters go away, list
markers keep their width), so a part cut at 4096 characters of Markdown still fits one message.
"""

from __future__ import annotations

import re
from functools import lru_cache
from html.parser import HTMLParser

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from bot.types import Markup

_SAFE_SCHEMES = ("http://", "https://", "tg://", "mailto:", "ftp://")
_LANG_OK = re.compile(r"^[A-Za-z0-9_+#.\-]{1,32}$")
_BULLET = "•"
_INDENT = "  "


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # html off: raw HTML from the model is text to show, never markup to pass through
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
        ["strikethrough", "table"]
    )


def escape(text: str) -> str:
    """Escape text for Telegram HTML (it knows only &lt; &gt; &amp; &quot;)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attr(text: str) -> str:
    return escape(text).replace('"', "&quot;")


# Text with none of Markdown's syntax renders as itself, escaped: skip the parser (about 0.4 ms).
_SYNTAX_CHARS = re.compile(r"[*_`\[\]<>#!~|\\&\t\r]|\n\n\n|[ \n]\n|\n[ \n]|^\s|\s$")
_BLOCK_START = re.compile(r"(?:^|\n)(?:[-+=]|\d{1,9}[.)](?:\s|$))")


def is_plain(md: str) -> bool:
    """True when `md` has no Markdown syntax at all, so its HTML is just the escaped text."""
    return _SYNTAX_CHARS.search(md) is None and _BLOCK_START.search(md) is None


def markdown_to_html(md: str) -> str:
    """Render Markdown to Telegram HTML. Never raises on odd input; empty in, empty out."""
    if not md:
        return ""
    if is_plain(md):
        return escape(md)
    tree = SyntaxTreeNode(_parser().parse(md))
    out = _blocks(tree.children, quoted=False)
    return out.strip("\n")


# --- blocks ----------------------------------------------------------------------------------


def _blocks(nodes: list[SyntaxTreeNode], *, quoted: bool, tight: bool = False) -> str:
    parts = [p for p in (_block(n, quoted=quoted) for n in nodes) if p != ""]
    return ("\n" if tight else "\n\n").join(parts)


def _block(node: SyntaxTreeNode, *, quoted: bool) -> str:
    t = node.type
    if t == "paragraph":
        return _inline_of(node)
    if t == "heading":
        inner = _inline_of(node)
        return f"<b>{inner}</b>" if inner.strip() else inner
    if t in ("fence", "code_block"):
        code = node.content.rstrip("\n")
        if not code.strip():
            return escape(code)
        lang = (node.info or "").strip().split(maxsplit=1)[0] if t == "fence" and node.info else ""
        if lang and _LANG_OK.match(lang):
            return f'<pre><code class="language-{_escape_attr(lang)}">{escape(code)}</code></pre>'
        return f"<pre>{escape(code)}</pre>"
    if t == "blockquote":
        inner = _blocks(node.children, quoted=True)
        if quoted or not inner.strip():  # Telegram does not nest blockquotes
            return inner
        return f"<blockquote>{inner}</blockquote>"
    if t in ("bullet_list", "ordered_list"):
        return _list(node, quoted=quoted, depth=0)
    if t == "hr":
        return "———"
    if t == "table":
        return _table(node)
    if t == "inline":
        return _inline(node.children)
    # html_block (disabled), anything unknown: show its source text
    return escape(node.content) if getattr(node, "content", "") else _blocks(node.children, quoted=quoted)


def _list(node: SyntaxTreeNode, *, quoted: bool, depth: int) -> str:
    ordered = node.type == "ordered_list"
    number = int(node.attrs.get("start", 1)) if ordered else 0
    tight = not any((c.type == "paragraph" and not c.hidden) for item in node.children for c in item.children)
    lines: list[str] = []
    for item in node.children:
        marker = f"{number}." if ordered else _BULLET
        number += 1
        pieces: list[str] = []
        for child in item.children:
            if child.type in ("bullet_list", "ordered_list"):
                pieces.append(_list(child, quoted=quoted, depth=depth + 1))
            else:
                text = _block(child, quoted=quoted)
                if text == "":
                    continue
                # lines after the first stay as they are: a lazy continuation line has no indent in
                # the source, and the visible text must never outgrow its source (bot.rendering)
                if pieces and not text.startswith("<pre"):  # a later paragraph of the item
                    text = _INDENT * (depth + 1) + text
                pieces.append(text)
        body = "\n".join(pieces) if tight else "\n\n".join(pieces)
        if body.startswith(_INDENT * (depth + 1)):  # item starting with a nested list
            body = "\n" + body
        lines.append(f"{_INDENT * depth}{marker} {body}".rstrip())
    return ("\n" if tight else "\n\n").join(lines)


def _table(node: SyntaxTreeNode) -> str:
    rows: list[str] = []
    for section in node.children:  # thead, tbody
        for tr in section.children:
            cells = [_plain_of(cell).strip() for cell in tr.children]
            rows.append(" | ".join(cells))
    return f"<pre>{escape(chr(10).join(rows))}</pre>" if rows else ""


# --- inline ----------------------------------------------------------------------------------


def _inline_of(node: SyntaxTreeNode) -> str:
    return "".join(_inline(c.children) for c in node.children if c.type == "inline")


def _plain_of(node: SyntaxTreeNode) -> str:
    """Visible text of a node's inline content, without markup (for code-like contexts)."""
    out: list[str] = []
    for n in node.walk():
        if n.type in ("text", "code_inline"):
            out.append(n.content)
        elif n.type in ("softbreak", "hardbreak"):
            out.append("\n")
    return "".join(out)


def _inline(nodes: list[SyntaxTreeNode]) -> str:
    out: list[str] = []
    for n in nodes:
        t = n.type
        if t == "text":
            out.append(escape(n.content))
        elif t in ("softbreak", "hardbreak"):
            out.append("\n")
        elif t == "code_inline":
            out.append(f"<code>{escape(n.content)}</code>" if n.content else "")
        elif t == "strong":
            out.append(_wrap("b", _inline(n.children)))
        elif t == "em":
            out.append(_wrap("i", _inline(n.children)))
        elif t == "s":
            out.append(_wrap("s", _inline(n.children)))
        elif t == "link":
            out.append(_link(str(n.attrs.get("href", "")), _inline(n.children)))
        elif t == "image":
            alt = _plain_of(n) or "image"
            out.append(_link(str(n.attrs.get("src", "")), escape(alt)))
        else:  # html_inline (disabled) and anything unknown
            out.append(escape(n.content) if n.content else _inline(n.children))
    return "".join(out)


def _wrap(tag: str, inner: str) -> str:
    return f"<{tag}>{inner}</{tag}>" if inner.strip() else inner


def _link(href: str, inner: str) -> str:
    if not inner.strip():
        inner = escape(href)
    if href.lower().startswith(_SAFE_SCHEMES) and len(href) <= 2048:
        return f'<a href="{_escape_attr(href)}">{inner}</a>'
    return inner  # Telegram refuses odd URLs in links: show the text alone


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(html: str) -> str:
    """What Telegram shows (and counts against its 4096 limit) for an HTML message: tags gone,
    entities decoded."""
    parser = _TextOf()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


class TelegramHtml:
    """The Telegram channel's renderer (bot.rendering.Renderer)."""

    markup = Markup.TELEGRAM_HTML

    def render(self, source: str) -> str:
        return markdown_to_html(source)

    def visible(self, rendered: str) -> str:
        return visible_text(rendered)


RENDERER = TelegramHtml()
