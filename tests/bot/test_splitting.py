"""split_text: limits, boundary preference, code fences, and property checks over random texts."""

from __future__ import annotations

import random

import pytest

from bot.splitting import LOOKAHEAD, Splitter, fence_at_end, split_parts, split_text

# --- examples ---------------------------------------------------------------------------------


def test_short_text_is_one_part() -> None:
    assert split_text("Hello there.", 100) == ["Hello there."]
    assert split_text("x" * 100, 100) == ["x" * 100]


def test_empty_and_whitespace_only_give_no_parts() -> None:
    assert split_text("", 100) == []
    assert split_text("  \n\n  ", 100) == []


def test_one_over_the_limit_makes_two_parts() -> None:
    parts = split_text("word " * 20 + "end", 100)  # 103 characters
    assert len(parts) == 2
    assert all(len(p) <= 100 for p in parts)


def test_paragraph_beats_line_sentence_and_word() -> None:
    text = "a" * 55 + "\n\n" + "Bb. cc dd\nee ff. gg hh ii" + " jj" * 30
    first = split_text(text, 100)[0]
    assert first == "a" * 55


def test_line_beats_sentence_and_word() -> None:
    text = "Aa bb. " * 9 + "cc\n" + "Dd ee. ff gg" * 10
    first = split_text(text, 100)[0]
    assert first == ("Aa bb. " * 9 + "cc")


def test_sentence_beats_word() -> None:
    text = "Aa bb cc. " * 7 + "dd ee ff gg hh ii jj kk ll mm nn oo pp qq rr ss tt uu"
    first = split_text(text, 100)[0]
    assert first.endswith(".") and len(first) == len("Aa bb cc. " * 7) - 1


def test_word_beats_hard_cut() -> None:
    text = "abcd " * 30
    parts = split_text(text, 52)
    assert all(not p.startswith(" ") and "abcd" in p for p in parts)
    assert all(w == "abcd" for p in parts for w in p.rstrip(" ").split(" "))


def test_hard_cut_for_a_long_token() -> None:
    text = "x" * 250
    assert split_text(text, 100) == ["x" * 100, "x" * 100, "x" * 50]


def test_boundaries_in_the_first_half_are_not_taken() -> None:
    # A paragraph break after 10 characters must not produce a 10-character message.
    text = "short one\n\n" + "word " * 40
    first = split_text(text, 100)[0]
    assert len(first) >= 50


def test_code_block_is_closed_and_reopened_with_its_language() -> None:
    code = "\n".join(f"value_{i} = compute({i})" for i in range(20))
    text = "Here is the code:\n\n```python\n" + code + "\n```\n\nThat's all."
    parts = split_text(text, 200)
    assert len(parts) >= 3
    assert all(len(p) <= 200 for p in parts)
    for p in parts:
        assert fence_at_end(p + "\n") is None, p  # no part leaves a block open
    inner = [p for p in parts if "value_" in p]
    assert "```python\n" in inner[0]  # the short intro stays with the start of the block
    for p in inner[1:]:
        assert p.startswith("```python\n")
    for p in inner[:-1]:
        assert p.endswith("\n```")
    # Every code line survives whole.
    joined = "\n".join(parts)
    for i in range(20):
        assert f"value_{i} = compute({i})" in joined


def test_block_that_fits_next_part_is_not_cut() -> None:
    text = "Intro words " * 8 + "\n```js\n" + "let a = 1;\n" * 5 + "```\nbye"
    parts = split_text(text, 120)
    assert parts[0] == ("Intro words " * 8).rstrip(" ")  # cut before the block, not inside it
    assert parts[1].startswith("```js\n") and "```\nbye" in parts[1]


def test_fence_lines_count_against_the_limit() -> None:
    text = "```python\n" + "y" * 500 + "\n```"
    parts = split_text(text, 100)
    assert all(len(p) <= 100 for p in parts)
    assert all(p.startswith("```python\n") for p in parts)
    assert all(p.endswith("\n```") for p in parts)
    content = "".join(p.removeprefix("```python\n").removesuffix("\n```") for p in parts)
    assert content == "y" * 500


def test_long_language_tag_falls_back_to_bare_fence() -> None:
    text = "```" + "a" * 40 + "\n" + "code line\n" * 20 + "```"
    parts = split_text(text, 80)
    assert all(len(p) <= 80 for p in parts)
    assert all(p.startswith("```") for p in parts[1:])


def test_tiny_limits_terminate() -> None:
    for limit in range(1, 20):
        text = "```py\nab cd\n```\n\nef. gh ij\n" * 3
        parts = split_parts(text, limit)
        assert all(len(p.text) <= limit for p in parts)


def test_invalid_limit() -> None:
    with pytest.raises(ValueError):
        split_text("x", 0)


def test_fence_at_end() -> None:
    assert fence_at_end("text") is None
    assert fence_at_end("```py\ncode") == "```py"
    assert fence_at_end("```py\ncode\n```") is None
    assert fence_at_end("```py\ncode\n```\n") is None
    assert fence_at_end("a ```inline``` b") is None


# --- property checks over random texts ---------------------------------------------------------

_WORDS = ["a", "to", "the", "model", "answer", "is", "ok", "Ünïcode", "ёж", "😀", "streaming", "x" * 30]


def _random_text(rnd: random.Random, size: int) -> str:
    out: list[str] = []
    n = 0
    while n < size:
        r = rnd.random()
        if r < 0.08:
            lang = rnd.choice(["", "python", "js", "c++"])
            lines = [
                " ".join(rnd.choice(_WORDS[:8]) for _ in range(rnd.randint(0, 8))) for _ in range(rnd.randint(1, 12))
            ]
            chunk = "```" + lang + "\n" + "\n".join(lines) + "\n```"
            chunk = ("\n" if out and not out[-1].endswith("\n") else "") + chunk + "\n"
        elif r < 0.18:
            chunk = rnd.choice(["\n\n", "\n", "\n\n\n", "  \n"])
        elif r < 0.22:
            chunk = rnd.choice([". ", "! ", "? ", "… "])
        elif r < 0.24:
            chunk = "y" * rnd.randint(1, 300)  # a long token
        elif r < 0.25:
            chunk = " " * rnd.randint(1, 80)
        else:
            chunk = rnd.choice(_WORDS) + " "
        out.append(chunk)
        n += len(chunk)
    return "".join(out)


def _check_reconstruction(text: str, limit: int) -> None:
    parts = split_parts(text, limit)
    assert [p.text for p in parts if not p.skip] == split_text(text, limit)
    rebuilt: list[str] = []
    pos = 0
    for p in parts:
        assert p.start == pos, (p, pos)
        assert len(p.text) <= limit, (limit, p)
        assert p.text == p.prefix + text[p.start : p.end] + p.suffix
        assert p.prefix in ("",) or (p.prefix.startswith("```") and p.prefix.endswith("\n"))
        assert p.suffix in ("", "\n```")
        gap = text[p.end : p.next_start]
        assert not gap.strip(), repr(gap)  # only boundary whitespace is dropped
        if p.skip:
            assert not text[p.start : p.end].strip()
        rebuilt.append(text[p.start : p.next_start])
        pos = p.next_start
    assert pos == len(text)
    assert "".join(rebuilt) == text


@pytest.mark.parametrize("seed", range(40))
def test_parts_fit_and_join_back_to_the_text(seed: int) -> None:
    rnd = random.Random(seed)
    for _ in range(10):
        text = _random_text(rnd, rnd.randint(0, 3000))
        limit = rnd.choice([16, 30, 64, 100, 257, 1000, 2000, 4096])
        _check_reconstruction(text, limit)


@pytest.mark.parametrize("seed", range(20))
def test_no_part_leaves_a_code_block_open(seed: int) -> None:
    rnd = random.Random(1000 + seed)
    for _ in range(10):
        text = _random_text(rnd, rnd.randint(200, 4000))
        limit = rnd.choice([120, 300, 500, 2000])
        assert fence_at_end(text + "\n") is None  # the generator closes its blocks
        for part in split_text(text, limit):
            assert fence_at_end(part + "\n") is None, (limit, part)


def test_parts_use_their_room() -> None:
    # Ordinary prose: every part but the last is at least half the limit.
    rnd = random.Random(7)
    text = " ".join(rnd.choice(_WORDS[:9]) + rnd.choice(["", "", ".", "\n", "\n\n"]) for _ in range(3000))
    for limit in (100, 500, 2000):
        parts = split_text(text, limit)
        assert all(len(p) >= limit // 2 for p in parts[:-1])


@pytest.mark.parametrize("seed", range(30))
def test_incremental_splitter_agrees_with_the_final_split(seed: int) -> None:
    """What a stream freezes early is exactly what the final split produces."""
    rnd = random.Random(5000 + seed)
    text = _random_text(rnd, rnd.randint(0, 5000))
    limit = rnd.choice([16, 40, 100, 300, 1000])
    sp = Splitter(limit)
    frozen = []
    n = 0
    while n < len(text):
        n = min(len(text), n + rnd.choice([1, 2, 3, 5, 8, 40, 200]))
        while (part := sp.next_part(text[:n], final=False)) is not None:
            # Enough text existed to decide this cut, so it must not need anything later.
            assert n - part.start >= len(part.prefix) and n >= part.next_start
            frozen.append(part)
    while (part := sp.next_part(text, final=True)) is not None:
        frozen.append(part)
    assert frozen == split_parts(text, limit)


def test_lookahead_is_small() -> None:
    assert LOOKAHEAD <= 2
