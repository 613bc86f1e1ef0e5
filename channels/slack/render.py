"""The model's Markdown as Slack shows it.

Native streams take standard Markdown (`markdown_text`) and Slack renders it: the text passes
through. Messages sent with `chat.postMessage` / `chat.update` (the fallback, edited answers,
commands) carry Slack's own mrkdwn, converted here: `**bold**` → `*bold*`, `*italic*` → `_italic_`,
`~~struck~~` → `~struck~`, `[text](url)` → `<url|text>`, `# Heading` → `*Heading*`, `- item` →
`• item`, code kept (a fence's language dropped), and `&`, `<`, `>` escaped everywhere except the
`>` that starts a quote.

The rule of `bot.rendering` holds: the text a person sees (`visible`: links read as their text,
entities as their character) is never longer than the source, because every conversion keeps or
shortens what is seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.types import Markup

_FENCE = re.compile(r"^(\s*)(```|~~~)[^\n`]*$")
_INLINE = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![*\w])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+")
_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!~>|])")
_LITERAL = {"*": "\u2217", "~": "\u223c"}  # mrkdwn has no escapes: a look-alike that formats nothing
_SLACK_LINK = re.compile(r"<([^<>|]+)\|([^<>]*)>|<([^<>|]+)>")


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _inline(text: str) -> str:
    """One line of prose (no code fences): escape, then convert the inline Markdown."""
    out: list[str] = []
    pos = 0
    for m in _INLINE.finditer(text):
        out.append(_prose(text[pos : m.start()]))
        out.append(f"`{escape(m.group(2))}`")
        pos = m.end()
    out.append(_prose(text[pos:]))
    return "".join(out)


def _prose(text: str) -> str:
    if not text:
        return text
    links: list[str] = []

    def keep_link(m: re.Match[str]) -> str:
        label, url = m.group(1), m.group(2)
        links.append(f"<{escape(url).replace('|', '%7C')}|{escape(label).replace('|', '¦')}>")
        return f"\x00{len(links) - 1}\x00"

    text = _LINK.sub(keep_link, text)
    literal: list[str] = []

    def keep_literal(m: re.Match[str]) -> str:  # a backslash-escaped character: never formatting
        literal.append(_LITERAL.get(m.group(1), escape(m.group(1))))
        return f"\x01{len(literal) - 1}\x01"

    text = _ESCAPED.sub(keep_literal, text)
    text = escape(text)
    text = _BOLD.sub(lambda m: f"\x02{m.group(2)}\x02", text)
    text = _ITALIC.sub(r"_\1_", text)
    text = _STRIKE.sub(r"~\1~", text)
    text = text.replace("\x02", "*")
    text = re.sub("\x01(\\d+)\x01", lambda m: literal[int(m.group(1))], text)
    return re.sub("\x00(\\d+)\x00", lambda m: links[int(m.group(1))], text)


def to_mrkdwn(source: str) -> str:
    """Markdown → Slack mrkdwn (see the module's docstring)."""
    lines = source.split("\n")
    out: list[str] = []
    in_code = False
    for line in lines:
        fence = _FENCE.match(line)
        if fence:
            out.append(fence.group(1) + "```")
            in_code = not in_code
            continue
        if in_code:
            out.append(escape(line))
            continue
        quote = ""
        stripped = line.lstrip(" ")
        if stripped.startswith(">"):
            indent = line[: len(line) - len(stripped)]
            rest = stripped[1:]
            quote, line = indent + ">", rest
        heading = _HEADING.match(line)
        if heading:
            out.append(quote + f"*{_inline(heading.group(2)).replace('*', '')}*")
            continue
        bullet = _BULLET.match(line)
        if bullet:
            line = bullet.group(1) + "• " + line[bullet.end() :]
        out.append(quote + _inline(line))
    return "\n".join(out)


def visible(rendered: str) -> str:
    """What a person reads (and Slack counts) of mrkdwn: links as their text, entities read."""

    def link(m: re.Match[str]) -> str:
        return m.group(2) if m.group(1) is not None else m.group(3)

    text = _SLACK_LINK.sub(link, rendered)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@dataclass(frozen=True, slots=True)
class SlackRenderer:
    markup: Markup = Markup.SLACK_MRKDWN

    def render(self, source: str) -> str:
        return to_mrkdwn(source)

    def visible(self, rendered: str) -> str:
        return visible(rendered)


RENDERER = SlackRenderer()
