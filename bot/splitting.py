"""Cut a reply into parts that each fit one platform message.

`split_text(text, limit)` is a pure function. Each part has at most `limit` characters. A cut goes
at the best boundary in this order: blank line (paragraph) > line > line inside a code block >
sentence end > word > word inside a code block > hard cut. "Best" only counts for boundaries in the
second half of the part's room, so that a part is never cut far shorter than it could be (a
paragraph break after 30 characters does not beat a line break after 3,000). A fenced code block
(```` ```lang ````) is never left open: when a block has to be cut, the part ends with a closing
fence and the next part starts by reopening it with the same language tag; both added lines count
against the limit.

The whitespace at the cut ("\\n\\n", "\\n" or " ", and whitespace ending the part) is dropped; parts that would hold only
whitespace are left out. Joining each part's own text with the dropped whitespace reproduces the
input exactly, apart from the added fence lines (see `split_parts`, which says where each part
came from).

The splitter is greedy and prefix-stable: where a part ends depends only on the
`limit + LOOKAHEAD` characters from where it starts. `Splitter` exposes that step so `ReplyStream`
can freeze a message while the model is still writing and be sure the final split cuts at the very
same place.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LOOKAHEAD", "Part", "Splitter", "fence_at_end", "split_parts", "split_text"]

LOOKAHEAD = 2  # characters past a part's room the cut decision may read (a "\n\n" boundary)
_FENCE = "```"
_CLOSE = "\n```"  # added at the end of a part cut inside a code block
_SENTENCE_ENDS = (". ", "! ", "? ", "… ")


@dataclass(frozen=True, slots=True)
class Part:
    """One part: `text` is what to show; `source[start:end]` is its content.

    `text == prefix + source[start:end] + suffix`, where prefix / suffix are the fence lines added to
    reopen / close a cut code block. `source[end:next_start]` is the whitespace dropped at the cut.
    `skip` marks a part whose content is only whitespace: it is not shown.
    """

    text: str
    start: int
    end: int
    next_start: int
    prefix: str = ""
    suffix: str = ""
    skip: bool = False


def split_text(text: str, limit: int) -> list[str]:
    """The visible parts of `text`, each at most `limit` characters (see the module doc)."""
    return [p.text for p in split_parts(text, limit) if not p.skip]


def split_parts(text: str, limit: int) -> list[Part]:
    """Like split_text, with where each part came from (skipped whitespace-only parts included)."""
    splitter = Splitter(limit)
    parts: list[Part] = []
    while (part := splitter.next_part(text, final=True)) is not None:
        parts.append(part)
    return parts


class Splitter:
    """The incremental form of split_text over a text that only grows.

    `next_part(text, final=False)` returns the next part once it is certain (the rest no longer fits
    and enough text exists to decide the cut), else None. With `final=True` it always decides,
    ending with the last part; after that it returns None.
    """

    __slots__ = ("_fences", "done", "fence", "limit", "pos")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.pos = 0  # where the next part's content starts in the source text
        self.fence: str | None = None  # the open fence line ("```py") at `pos`, if inside a code block
        self.done = False
        # Fence repair needs room: reopen + close lines must leave at least half the part for text.
        self._fences = limit >= 16

    def prefix(self) -> str:
        """The line that reopens the code block the next part starts in ("" outside code)."""
        if self.fence is None or not self._fences:
            return ""
        line = self.fence
        if len(line) + 1 + len(_CLOSE) > self.limit // 2:
            line = _FENCE
        return line + "\n"

    def room(self) -> int:
        """How many source characters the next part could hold."""
        return self.limit - len(self.prefix())

    def next_part(self, text: str, *, final: bool) -> Part | None:
        if self.done:
            return None
        s = self.pos
        prefix = self.prefix()
        budget = self.limit - len(prefix)
        rem = len(text) - s
        if rem <= budget:
            if not final:
                return None
            self.done = True
            self.pos = len(text)
            content = text[s:]
            return Part(prefix + content, s, len(text), len(text), prefix, "", skip=not content.strip())
        if not final and rem < budget + LOOKAHEAD:
            return None
        end, next_start, fence_after = _choose_cut(text, s, budget, self.fence, self._fences)
        suffix = _CLOSE if (fence_after is not None and self._fences) else ""
        content = text[s:end]
        if stripped := content.rstrip():  # trailing whitespace belongs to the cut
            content = stripped
            end = s + len(content)
        self.pos = next_start
        self.fence = fence_after
        return Part(prefix + content + suffix, s, end, next_start, prefix, suffix, skip=not content.strip())


def _toggle(line: str, state: str | None) -> str | None:
    """The fence state after `line` (a whole line, no newline): None outside code, else the open fence."""
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3 or not stripped.startswith(_FENCE):
        return state
    if state is None:
        info = stripped[3:].strip()
        if "`" in info:
            return None  # inline code such as ```x``` is not a fence
        lang = info.split()[0] if info else ""
        return _FENCE + lang
    if not stripped.rstrip().strip("`"):
        return None  # a line of backticks only closes the block
    return state


def _choose_cut(text: str, s: int, budget: int, fence: str | None, fences: bool) -> tuple[int, int, str | None]:
    """Where the part starting at `s` ends: (end, next_start, fence state at next_start).

    Reads only text[s : s + budget + LOOKAHEAD], which keeps the split prefix-stable.
    """
    w = text[s : s + budget + LOOKAHEAD]
    n = len(w)
    code_cap = budget - len(_CLOSE) if fences else budget  # room when the part ends inside code
    head = w[:budget]
    visible = head.lstrip()
    if not visible:
        # Only whitespace fits: cut it off (the part is skipped, never shown).
        c = code_cap if fence is not None else budget
        return s + c, s + c, fence
    min_end = len(head) - len(visible) + 1  # a part keeps at least one visible character
    good = max(budget // 2, min_end)  # boundaries earlier than this would waste too much room

    # Lines in the window: (start, end, state before, looks like a fence line), and line boundaries.
    segments: list[tuple[int, int, str | None, bool]] = []
    newlines: list[tuple[int, str | None, str | None]] = []  # (index of "\n", state before, after)
    state = fence
    start = 0
    while True:
        nl = w.find("\n", start)
        end = nl if nl != -1 else n
        line = w[start:end]
        segments.append((start, end, state, line.lstrip(" ").startswith(_FENCE)))
        if nl == -1:
            break
        after = _toggle(line, state)
        newlines.append((nl, state, after))
        state = after
        start = nl + 1

    def state_at(c: int) -> str | None:
        st = fence
        for nl, _before, after in newlines:
            if nl >= c:
                break
            st = after
        return st

    # Line boundaries, latest first: paragraph > line > line inside code.
    para = line_cut = None
    code_line: tuple[int, str | None] | None = None
    for nl, before, after in reversed(newlines):
        if nl < good:
            break
        if after is None:
            if nl <= budget:
                if para is None and nl + 1 < n and w[nl + 1] == "\n":
                    para = nl
                if line_cut is None:
                    line_cut = nl
        elif before is not None and nl <= code_cap and code_line is None:
            code_line = (nl, after)  # inside code, and not right after the opening fence line
    if para is not None:
        return s + para, s + para + 2, None
    if line_cut is not None:
        return s + line_cut, s + line_cut + 1, None
    if code_line is not None:
        return s + code_line[0], s + code_line[0] + 1, code_line[1]

    # Inside lines: sentence ends, then spaces, then spaces inside code. The cut drops the space.
    def last_space(needles: tuple[str, ...], in_code: bool, cap: int) -> int | None:
        for ls, le, before, is_fence in reversed(segments):
            if le <= good:
                return None
            if is_fence or (before is not None) != in_code:
                continue
            hi = min(le, cap + 1)
            best = -1
            for x in needles:
                i = w.rfind(x, ls, hi)
                if i != -1:
                    best = max(best, i + len(x) - 1)  # the index of the space
            if best != -1:
                return best if best >= good else None
        return None

    space = last_space(_SENTENCE_ENDS, False, budget)
    if space is None:
        space = last_space((" ",), False, budget)
    if space is not None:
        return s + space, s + space + 1, None
    if fences:
        space = last_space((" ",), True, code_cap)
        if space is not None:
            return s + space, s + space + 1, state_at(space)

    # Hard cut. Never through a fence line: cut before it instead when that leaves visible text.
    c = budget
    st = state_at(c)
    if st is not None and fences:
        c = code_cap
        st = state_at(c)
    for ls, le, _before, is_fence in segments:
        if is_fence and ls < c <= le:
            if ls >= min_end:
                c = ls
                st = state_at(c)
            break
    return s + c, s + c, st


def fence_at_end(text: str) -> str | None:
    """The fence line of the code block still open at the end of `text` (None if none is open)."""
    state: str | None = None
    lines = text.split("\n")
    for line in lines[:-1]:  # the last line is unfinished: it can't open or close a block yet
        state = _toggle(line, state)
    last = lines[-1]
    if (
        state is not None
        and last.strip()
        and not last.lstrip(" ").rstrip().strip("`")
        and last.lstrip(" ").startswith(_FENCE)
    ):
        return None  # text ends on a closing fence line without its newline
    return state
