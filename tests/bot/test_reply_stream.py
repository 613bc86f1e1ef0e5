"""ReplyStream against the RecordingSurface: pacing, coalescing, errors, splitting, typing, abort.

Timing assertions only ever check lower bounds taken from recorded timestamps (a gap is at least
the interval minus 1 ms), or ordering; nothing depends on the machine being fast.
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from bot.errors import MarkupRejected, MessageGone, NotModified, PlatformError, RateLimited
from bot.reply_stream import DeliveryFailed, ReplyResult, ReplyStream
from bot.splitting import fence_at_end, split_text
from bot.types import Capabilities, LatencyClass, Streaming
from tests.fakes.recording_surface import Call, RecordingSurface

EPS = 0.001
LIVE = [Streaming.EDIT, Streaming.DRAFT, Streaming.NATIVE]


def make_caps(
    mode: Streaming,
    *,
    max_chars: int = 4096,
    interval: float = 0.05,
    typing: float | None = None,
    first: int = 12,
) -> Capabilities:
    return Capabilities(
        streaming=mode,
        latency_class=LatencyClass.SYNC,
        max_chars=max_chars,
        min_edit_interval=interval,
        typing_refresh=typing,
        first_chunk_chars=first,
    )


class Feeder:
    """Pushes deltas and remembers how much text existed at each moment."""

    def __init__(self, rs: ReplyStream) -> None:
        self.rs = rs
        self.text = ""
        self.timeline: list[tuple[float, int]] = [(time.perf_counter(), 0)]

    def push(self, delta: str) -> None:
        self.rs.push(delta)
        self.text += delta
        self.timeline.append((time.perf_counter(), len(self.text)))

    async def feed(self, deltas: list[str], gap: float = 0.0) -> None:
        for d in deltas:
            self.push(d)
            await asyncio.sleep(gap)

    def pushed_at(self, t: float) -> int:
        """How many characters had been pushed when a request stamped at `t` started."""
        n = 0
        for ts, length in self.timeline:
            if ts <= t:
                n = length
        return n


def words(n: int, seed: int = 0) -> list[str]:
    rnd = random.Random(seed)
    vocab = ["the", "model", "writes", "an", "answer", "quickly", "and", "well", "ünï", "😀"]
    out = []
    for _ in range(n):
        w = rnd.choice(vocab)
        sep = rnd.choice([" ", " ", " ", " ", ". ", ",\n", "\n\n"])
        out.append(w + sep)
    return out


def assert_paced(surface: RecordingSurface, interval: float) -> None:
    starts = [c.start for c in surface.text_calls]
    for a, b in zip(starts, starts[1:], strict=False):
        assert b - a >= interval - EPS, f"requests {b - a:.4f}s apart, interval {interval}"


def assert_sequential(surface: RecordingSurface) -> None:
    assert surface.violations == []
    assert surface.max_in_flight <= 1
    calls = surface.text_calls
    for a, b in zip(calls, calls[1:], strict=False):
        assert a.end is not None and b.start >= a.end


def assert_final(surface: RecordingSurface, result: ReplyResult, text: str, max_chars: int) -> None:
    parts = split_text(text, max_chars)
    assert result.text == text
    assert result.parts == parts
    assert surface.visible == parts
    assert "".join(parts) == text or len(parts) > 1
    assert surface.draft_text is None  # no preview left behind


# --- EDIT ------------------------------------------------------------------------------------


async def test_edit_first_text_goes_out_once_first_chunk_exists_without_waiting() -> None:
    surface = RecordingSurface()
    rs = ReplyStream(surface, make_caps(Streaming.EDIT, interval=10.0, first=12))
    await rs.start()
    f = Feeder(rs)
    f.push("Hello")  # 5 < 12 characters: not yet
    await asyncio.sleep(0.02)
    assert surface.text_calls == []
    t = time.perf_counter()
    f.push(", wonderful")
    await asyncio.sleep(0.01)
    sends = surface.of("send")
    assert len(sends) == 1 and sends[0].text == "Hello, wonderful"
    assert sends[0].start - t < 0.01  # no interval wait before the first send
    assert rs.first_visible_at is not None and rs.first_visible_at >= sends[0].end
    assert surface.first_visible == sends[0].end
    # close must still respect the (long) interval: use a fresh stream for speed instead
    rs._last_start = time.perf_counter() - 10.0  # pretend the interval has passed
    f.push(" world")
    result = await rs.close()
    assert surface.visible == ["Hello, wonderful world"]
    assert result.requests == 2


async def test_edit_interval_never_undercut_including_the_final_edit() -> None:
    surface = RecordingSurface(latency=0.005)
    rs = ReplyStream(surface, make_caps(Streaming.EDIT, interval=0.05))
    await rs.start()
    f = Feeder(rs)
    await f.feed(words(150, seed=1), gap=0.002)
    result = await rs.close()  # right after the last delta: the final edit must wait its turn
    assert_paced(surface, 0.05)
    assert_sequential(surface)
    assert_final(surface, result, f.text, 4096)
    assert surface.text_calls[-1].kind == "edit" and surface.text_calls[-1].text == f.text


async def test_close_waits_for_the_request_in_flight_and_the_interval() -> None:
    surface = RecordingSurface(latency=0.03)
    rs = ReplyStream(surface, make_caps(Streaming.EDIT, interval=0.1))
    await rs.start()
    f = Feeder(rs)
    f.push("The first words are here")
    await asyncio.sleep(0.005)  # the send is in flight now
    f.push(" and then the rest.")
    result = await rs.close()
    send, edit = surface.text_calls
    assert send.kind == "send" and edit.kind == "edit"
    assert edit.start >= send.end and edit.start - send.start >= 0.1 - EPS
    assert_final(surface, result, f.text, 4096)


async def test_one_request_in_flight_when_the_platform_is_slower_than_the_interval() -> None:
    surface = RecordingSurface(latency=0.03)
    rs = ReplyStream(surface, make_caps(Streaming.EDIT, interval=0.005))
    await rs.start()
    f = Feeder(rs)
    await f.feed(words(100, seed=2), gap=0.002)
    result = await rs.close()
    assert_sequential(surface)
    assert_final(surface, result, f.text, 4096)


async def test_coalescing_many_deltas_few_edits_each_with_the_newest_text() -> None:
    surface = RecordingSurface(latency=0.002)
    rs = ReplyStream(surface, make_caps(Streaming.EDIT, interval=0.1))
    await rs.start()
    f = Feeder(rs)
    start = time.perf_counter()
    await f.feed(words(300, seed=3), gap=0.001)
    result = await rs.close()
    elapsed = surface.text_calls[-1].start - start
    calls = surface.text_calls
    assert len(calls) <= elapsed / 0.1 + 2  # one per interval at most, plus first send
    assert len(calls) < 300 / 10
    previous = ""
    for c in calls:
        assert c.text is not None and f.text.startswith(c.text)
        assert len(c.text) > len(previous)  # never an edit with what is already shown
        assert len(c.text) == f.pushed_at(c.start)  # the newest text at the moment it started
        previous = c.text
    assert_final(surface, result, f.text, 4096)


async def test_edit_with_unchanged_text_is_skipped() -> None:
    surface = RecordingSurface()
    rs = ReplyStream(surface, make_caps(Streaming.EDIT, interval=0.02))
    await rs.start()
    f = Feeder(rs)
    f.push("A complete answer, all at once.")
    await asyncio.sleep(0.05)
    result = await rs.close()
    assert [c.kind for c in surface.text_calls] == ["send"]
    assert result.requests == 1
    assert_final(surface, result, f.text, 4096)


async def test_not_modified_on_the_final_edit_is_success_not_a_resend() -> None:
    surface = RecordingSurface(latency=0.002)
    rs = ReplyStream(surface, make_caps(Streaming.EDIT, interval=0.03))
    deltas = words(60, seed=4)
    final = "".join(deltas)
    surface.fail_when("edit", NotModified("message is not modified"), lambda c: c.text == final)
    await rs.start()
    f = Feeder(rs)
    await f.feed(deltas, gap=0.002)
    result = await rs.close()
    assert any(isinstance(c.error, NotModified) for c in surface.calls)
    assert len(surface.of("send")) == 1  # no duplicate message
    assert surface.text_calls[-1].kind == "edit" and surface.text_calls[-1].text == final
    assert_final(surface, result, final, 4096)


async def test_rate_limited_waits_the_whole_retry_after_then_sends_the_newest_text() -> None:
    surface = RecordingSurface(latency=0.002)
    surface.fail("edit", RateLimited(0.2), nth=2)
    rs = ReplyStream(surface, make_caps(Streaming.EDIT, interval=0.03))
    await rs.start()
    f = Feeder(rs)
    await f.feed(words(120, seed=5), gap=0.003)
    result = await rs.close()
    calls = surface.text_calls
    k = next(i for i, c in enumerate(calls) if isinstance(c.error, RateLimited))
    failed, retry = calls[k], calls[k + 1]
    assert failed.end is not None and retry.start >= failed.end + 0.2 - EPS
    assert retry.text is not None and failed.text is not None
    assert len(retry.text) > len(failed.text)  # not the stale text
    assert len(retry.text) == f.pushed_at(retry.start)
    assert_paced(surface, 0.03)
    assert_final(surface, result, f.text, 4096)


async def test_long_retry_after_is_not_capped_and_close_still_delivers() -> None:
    surface = RecordingSurface()
    surface.fail("edit", RateLimited(0.4), nth=1)
    rs = ReplyStream(surface, make_caps(Streaming.EDIT, interval=0.01))
    await rs.start()
    f = Feeder(rs)
    f.push("First part of the answer")
    await asyncio.sleep(0.03)
    f.push(", second part")
    await asyncio.sleep(0.03)
    f.push(", and the end.")
    result = await rs.close()
    failed = next(c for c in surface.calls if isinstance(c.error, RateLimited))
    last = surface.text_calls[-1]
    assert failed.end is not None and last.start >= failed.end + 0.4 - EPS
    assert last.text == f.text
    assert_final(surface, result, f.text, 4096)


async def test_markup_rejected_send_is_repeated_as_plain_and_stays_plain() -> None:
    surface = RecordingSurface()
    surface.fail_when("send", MarkupRejected("can't parse entities"), lambda c: not c.plain)
    rs = ReplyStream(surface, make_caps(Streaming.EDIT, interval=0.02))
    await rs.start()
    f = Feeder(rs)
    await f.feed(words(40, seed=6), gap=0.002)
    result = await rs.close()
    sends = surface.of("send")
    assert [s.plain for s in sends] == [False, True]
    assert sends[1].text is not None and f.text.startswith(sends[1].text)
    assert all(c.plain for c in surface.of("edit"))
    assert_paced(surface, 0.02)
    assert_final(surface, result, f.text, 4096)


async def test_markup_rejected_edit_is_repeated_as_plain() -> None:
    surface = RecordingSurface()
    surface.fail("edit", MarkupRejected("can't parse entities"), nth=1)
    rs = ReplyStream(surface, make_caps(Streaming.EDIT, interval=0.02))
    await rs.start()
    f = Feeder(rs)
    await f.feed(words(40, seed=7), gap=0.002)
    result = await rs.close()
    edits = surface.of("edit")
    assert not edits[0].plain and all(e.plain for e in edits[1:])
    assert_final(surface, result, f.text, 4096)


async def test_message_gone_sends_the_part_again_as_a_new_message() -> None:
    surface = RecordingSurface()
    rs = ReplyStream(surface, make_caps(Streaming.EDIT, interval=0.02))
    await rs.start()
    f = Feeder(rs)
    f.push("The start of a long answer")
    await asyncio.sleep(0.01)
    surface.delete("m1")  # someone deleted the reply
    await f.feed(words(30, seed=8), gap=0.002)
    result = await rs.close()
    assert any(isinstance(c.error, MessageGone) for c in surface.calls)
    assert len(surface.of("send")) == 2
    assert_final(surface, result, f.text, 4096)
    assert [r.id for r in result.refs] == ["m2"]


async def test_other_platform_errors_are_retried_with_backoff() -> None:
    surface = RecordingSurface()
    surface.fail("edit", PlatformError("502 bad gateway"), nth=1)
    surface.fail("edit", PlatformError("502 bad gateway"), nth=2)
    rs = ReplyStream(surface, make_caps(Streaming.EDIT, interval=0.01))
    await rs.start()
    f = Feeder(rs)
    f.push("Some words to start with")
    await asyncio.sleep(0.01)
    f.push(" and more words.")
    result = await rs.close()
    edits = surface.of("edit")
    assert len(edits) == 3 and edits[-1].ok
    assert edits[1].start - edits[0].end >= 0.1 - EPS  # backoff
    assert_final(surface, result, f.text, 4096)


async def test_persistent_failure_raises_from_close_with_the_result() -> None:
    surface = RecordingSurface()
    surface.fail_when("send", PlatformError("500"), lambda c: True, times=1000)
    rs = ReplyStream(surface, make_caps(Streaming.NONE))
    await rs.start()
    rs.push("An answer nobody will see.")
    with pytest.raises(DeliveryFailed) as info:
        await rs.close()
    result = info.value.result
    assert isinstance(result.error, PlatformError)
    assert result.text == "An answer nobody will see."
    assert result.requests == 3 and len(surface.of("send")) == 3
    with pytest.raises(DeliveryFailed):  # asking again does not pretend it worked
        await rs.close()


async def test_previews_pause_after_repeated_failures_and_close_delivers() -> None:
    surface = RecordingSurface()
    surface.fail_when("edit", PlatformError("500"), lambda c: True, times=3)
    rs = ReplyStream(surface, make_caps(Streaming.EDIT, interval=0.01))
    await rs.start()
    f = Feeder(rs)
    f.push("The first few words")
    await asyncio.sleep(0.01)
    await f.feed(words(30, seed=9), gap=0.02)  # edits fail 3 times (backoff 0.1 s, 0.3 s), then pause
    n_during = len(surface.text_calls)
    result = await rs.close()
    assert n_during == 4  # send + 3 failed edits, then quiet until close
    assert_final(surface, result, f.text, 4096)


# --- splitting while streaming ------------------------------------------------------------------


def code_heavy_deltas(seed: int, n: int) -> list[str]:
    rnd = random.Random(seed)
    out: list[str] = []
    for _ in range(n):
        r = rnd.random()
        if r < 0.1:
            block = (
                ("" if not out or out[-1].endswith("\n") else "\n")
                + "```python\n"
                + "".join(f"x_{rnd.randint(0, 99)} = {rnd.randint(0, 9999)}\n" for _ in range(rnd.randint(2, 15)))
                + "```\n"
            )
            # models emit code in small pieces too
            i = 0
            while i < len(block):
                j = i + rnd.randint(1, 6)
                out.append(block[i:j])
                i = j
        else:
            out.append(rnd.choice(["word ", "another ", "sentence. ", "\n", "\n\n", "über ", "ok, "]))
    return out


@pytest.mark.parametrize("mode", [Streaming.EDIT, Streaming.DRAFT, Streaming.NATIVE, Streaming.NONE])
async def test_split_at_the_limit_while_streaming_and_at_the_end(mode: Streaming) -> None:
    limit = 200
    surface = RecordingSurface(latency=0.001)
    rs = ReplyStream(surface, make_caps(mode, max_chars=limit, interval=0.01))
    await rs.start()
    f = Feeder(rs)
    await f.feed(code_heavy_deltas(10, 400), gap=0.001)
    result = await rs.close()
    parts = split_text(f.text, limit)
    assert len(parts) >= 4
    assert all(c.text is not None and len(c.text) <= limit for c in surface.text_calls)
    assert_final(surface, result, f.text, limit)
    for part in surface.visible:
        assert fence_at_end(part + "\n") is None  # code blocks closed in every message
    assert_paced(surface, 0.01)
    assert_sequential(surface)
    if mode is Streaming.EDIT:
        # A message, once it shows its final part, never changes again; and parts appear while
        # streaming, not only at the end.
        for ref, part in zip(surface.order, parts, strict=False):
            writes = [c for c in surface.text_calls if c.ref == ref and c.accepted]
            final_at = next(i for i, c in enumerate(writes) if c.text == part)
            assert all(c.text == part for c in writes[final_at:])
        close_started = f.timeline[-1][0]
        assert sum(1 for c in surface.of("send") if c.start < close_started) >= 2
    if mode is Streaming.NONE:
        assert [c.kind for c in surface.text_calls] == ["send"] * len(parts)


@pytest.mark.parametrize("mode", LIVE + [Streaming.NONE])
@pytest.mark.parametrize("seed", range(4))
async def test_exact_final_text_whatever_happens(mode: Streaming, seed: int) -> None:
    rnd = random.Random(seed)
    limit = rnd.choice([60, 150, 1000])
    surface = RecordingSurface(latency=0.001)
    # A platform having a bad day: rate limits, not-modified, markup trouble, a 502.
    surface.fail("edit", RateLimited(0.05), nth=2)
    surface.fail("draft", RateLimited(0.05), nth=3)
    surface.fail("finish", RateLimited(0.05), nth=1)
    surface.fail("send", MarkupRejected("bad entities"), nth=2)
    surface.fail("edit", NotModified("not modified"), nth=4)
    surface.fail("edit", PlatformError("502"), nth=5)
    surface.fail("draft", PlatformError("502"), nth=2)
    rs = ReplyStream(surface, make_caps(mode, max_chars=limit, interval=0.005))
    await rs.start()
    f = Feeder(rs)
    deltas = code_heavy_deltas(100 + seed, 250)
    for d in deltas:
        f.push(d)
        if rnd.random() < 0.3:
            await asyncio.sleep(0.001)
    result = await rs.close()
    assert_final(surface, result, f.text, limit)
    assert surface.violations == []


# --- DRAFT / NATIVE ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [Streaming.DRAFT, Streaming.NATIVE])
async def test_drafts_carry_the_whole_part_never_empty_and_finish_closes(mode: Streaming) -> None:
    surface = RecordingSurface(latency=0.002)
    rs = ReplyStream(surface, make_caps(mode, interval=0.03, first=1))
    await rs.start()
    f = Feeder(rs)
    f.push("")  # nothing: no draft
    f.push("   ")  # whitespace only: no draft either
    await asyncio.sleep(0.01)
    assert surface.text_calls == []
    await f.feed(words(80, seed=11), gap=0.002)
    result = await rs.close()
    drafts = surface.of("draft")
    assert drafts and all(d.text and d.text.strip() for d in drafts)
    for d in drafts:
        assert len(d.text or "") == f.pushed_at(d.start)  # the whole text so far, newest
    finishes = surface.of("finish")
    assert len(finishes) == 1 and finishes[0].text == f.text
    assert rs.first_visible_at is not None and rs.first_visible_at >= drafts[0].end
    assert_paced(surface, 0.03)
    assert_sequential(surface)
    assert_final(surface, result, f.text, 4096)


async def test_native_with_zero_interval_streams_as_fast_as_one_in_flight_allows() -> None:
    surface = RecordingSurface(latency=0.01)
    rs = ReplyStream(surface, make_caps(Streaming.NATIVE, interval=0.0, first=1))
    await rs.start()
    f = Feeder(rs)
    await f.feed(words(100, seed=12), gap=0.002)
    result = await rs.close()
    drafts = surface.of("draft")
    assert len(drafts) >= 8  # ~0.2 s of text at one 10 ms call after another
    assert_sequential(surface)
    assert_final(surface, result, f.text, 4096)


async def test_draft_markup_rejected_stops_previews_and_finish_delivers() -> None:
    surface = RecordingSurface()
    surface.fail("draft", MarkupRejected("bad entities"), nth=1)
    rs = ReplyStream(surface, make_caps(Streaming.DRAFT, interval=0.01, first=1))
    await rs.start()
    f = Feeder(rs)
    await f.feed(words(20, seed=13), gap=0.003)
    result = await rs.close()
    assert len(surface.of("draft")) == 1
    assert_final(surface, result, f.text, 4096)


async def test_finish_markup_rejected_is_sent_again_as_plain() -> None:
    surface = RecordingSurface()
    surface.fail_when("finish", MarkupRejected("can't parse entities"), lambda c: not c.plain)
    rs = ReplyStream(surface, make_caps(Streaming.DRAFT, interval=0.01, first=1))
    await rs.start()
    f = Feeder(rs)
    await f.feed(words(10, seed=21), gap=0.002)
    result = await rs.close()
    finishes = surface.of("finish")
    assert [c.plain for c in finishes] == [False, True]  # one rejected, one plain: no duplicate
    assert_final(surface, result, f.text, 4096)


async def test_finish_rate_limited_is_retried_after_the_wait() -> None:
    surface = RecordingSurface()
    surface.fail("finish", RateLimited(0.15), nth=1)
    rs = ReplyStream(surface, make_caps(Streaming.DRAFT, interval=0.01, first=1))
    await rs.start()
    f = Feeder(rs)
    await f.feed(words(10, seed=14), gap=0.002)
    result = await rs.close()
    first, second = surface.of("finish")
    assert first.end is not None and second.start >= first.end + 0.15 - EPS
    assert_final(surface, result, f.text, 4096)


# --- NONE ---------------------------------------------------------------------------------------


async def test_none_sends_nothing_until_close_then_the_whole_text() -> None:
    surface = RecordingSurface()
    rs = ReplyStream(surface, make_caps(Streaming.NONE, max_chars=100))
    await rs.start()
    f = Feeder(rs)
    await f.feed(words(60, seed=15), gap=0.001)
    await asyncio.sleep(0.02)
    assert surface.text_calls == []
    result = await rs.close()
    assert [c.kind for c in surface.text_calls] == ["send"] * len(split_text(f.text, 100))
    assert result.first_visible_at is not None
    assert_final(surface, result, f.text, 100)


async def test_empty_reply_sends_nothing() -> None:
    for mode in Streaming:
        surface = RecordingSurface()
        rs = ReplyStream(surface, make_caps(mode, typing=0.05))
        await rs.start()
        result = await rs.close()
        assert result.parts == [] and surface.text_calls == [] and result.requests == 0
        n = len(surface.of("typing"))
        await asyncio.sleep(0.08)
        assert len(surface.of("typing")) == n  # typing stopped


# --- typing ----------------------------------------------------------------------------------------


async def test_typing_goes_out_at_once_without_waiting_for_its_answer() -> None:
    surface = RecordingSurface(latencies={"typing": 0.2})
    rs = ReplyStream(surface, make_caps(Streaming.EDIT, typing=4.0))
    t0 = time.perf_counter()
    await rs.start()
    assert not surface.of("typing")  # scheduled: the caller's own request (the model call) goes first
    await asyncio.sleep(0)  # the caller's next wait
    t1 = time.perf_counter()
    (typing,) = surface.of("typing")
    assert t0 <= typing.start <= t1
    assert typing.end is None  # in flight; nothing waits for its answer
    assert rs.typing_at is not None and t0 <= rs.typing_at <= t1
    # The first text is not held back by the slow typing call.
    rs.push("An answer that starts right away")
    await asyncio.sleep(0.01)
    assert len(surface.of("send")) == 1
    await rs.close()


async def test_typing_refreshed_until_the_final_send_then_stopped_for_good() -> None:
    surface = RecordingSurface(latency=0.002)
    rs = ReplyStream(surface, make_caps(Streaming.NONE, typing=0.05))
    await rs.start()
    f = Feeder(rs)
    await f.feed(words(30, seed=16), gap=0.008)  # ~0.24 s of model time
    result = await rs.close()
    await asyncio.sleep(0.15)
    typing = surface.of("typing")
    assert len(typing) >= 4
    for a, b in zip(typing, typing[1:], strict=False):
        assert b.start - a.start >= 0.05 - EPS
    send = surface.of("send")[0]
    assert all(t.start < send.start for t in typing)  # none after the reply
    assert_final(surface, result, f.text, 4096)


async def test_typing_stops_at_the_first_visible_text_when_streaming() -> None:
    surface = RecordingSurface(latency=0.002)
    rs = ReplyStream(surface, make_caps(Streaming.EDIT, typing=0.04, interval=0.02))
    await rs.start()
    await asyncio.sleep(0.13)  # the model thinks: typing refreshed meanwhile
    f = Feeder(rs)
    await f.feed(words(40, seed=17), gap=0.005)
    await rs.close()
    await asyncio.sleep(0.1)
    typing = surface.of("typing")
    first = surface.text_calls[0]
    assert len(typing) >= 3
    assert all(t.start < first.start for t in typing)


async def test_typing_errors_are_not_fatal_and_retry_after_is_respected() -> None:
    surface = RecordingSurface()
    surface.fail("typing", PlatformError("403"), nth=1)
    surface.fail("typing", RateLimited(0.12), nth=2)
    rs = ReplyStream(surface, make_caps(Streaming.NONE, typing=0.05))
    await rs.start()
    await asyncio.sleep(0.25)
    rs.push("Still answered.")
    result = await rs.close()
    typing = surface.of("typing")
    assert len(typing) >= 3
    assert typing[1].end is not None and typing[2].start >= typing[1].end + 0.12 - EPS
    assert surface.visible == ["Still answered."] and result.error is None


async def test_no_typing_when_the_channel_has_none() -> None:
    surface = RecordingSurface()
    rs = ReplyStream(surface, make_caps(Streaming.NONE, typing=None))
    await rs.start()
    rs.push("hi")
    await rs.close()
    assert surface.of("typing") == [] and rs.typing_at is None


# --- abort -------------------------------------------------------------------------------------


async def test_abort_keeps_what_was_shown_and_adds_the_notice() -> None:
    surface = RecordingSurface()
    rs = ReplyStream(surface, make_caps(Streaming.EDIT, interval=0.02, typing=0.03))
    await rs.start()
    f = Feeder(rs)
    await f.feed(words(20, seed=18), gap=0.003)
    shown = surface.visible[0]
    result = await rs.abort("⚠️ The model stopped; try again.")
    assert surface.visible == [result.text]
    assert result.text.startswith(f.text) and result.text.startswith(shown)
    assert result.text.endswith("\n\n⚠️ The model stopped; try again.") or result.text.endswith(
        "\n⚠️ The model stopped; try again."
    )
    assert len(surface.of("send")) == 1
    n = len(surface.of("typing"))
    await asyncio.sleep(0.08)
    assert len(surface.of("typing")) == n


async def test_abort_closes_an_open_code_block_before_the_notice() -> None:
    surface = RecordingSurface()
    rs = ReplyStream(surface, make_caps(Streaming.DRAFT, interval=0.01, first=1))
    await rs.start()
    rs.push("Here:\n```python\nprint(1")
    await asyncio.sleep(0.02)
    result = await rs.abort("(cut off)")
    assert result.text == "Here:\n```python\nprint(1\n```\n\n(cut off)"
    assert surface.visible == [result.text]


async def test_abort_before_any_text_sends_just_the_notice() -> None:
    surface = RecordingSurface()
    rs = ReplyStream(surface, make_caps(Streaming.NONE, typing=0.05))
    await rs.start()
    result = await rs.abort("Sorry, no model is available right now.")
    assert surface.visible == ["Sorry, no model is available right now."]
    assert result.error is None


async def test_abort_does_not_raise_when_delivery_fails() -> None:
    surface = RecordingSurface()
    surface.fail_when("send", PlatformError("500"), lambda c: True, times=100)
    rs = ReplyStream(surface, make_caps(Streaming.NONE))
    await rs.start()
    result = await rs.abort("notice")
    assert isinstance(result.error, PlatformError)


# --- hot path and lifecycle -----------------------------------------------------------------------


async def test_push_is_cheap_and_uses_one_background_task() -> None:
    surface = RecordingSurface()
    rs = ReplyStream(surface, make_caps(Streaming.EDIT, interval=0.0, typing=4.0))
    before = len(asyncio.all_tasks())
    await rs.start()
    rs.push("x" * 20)
    await asyncio.sleep(0.005)
    t = time.perf_counter()
    for _ in range(100_000):
        rs.push("ab")
    elapsed = time.perf_counter() - t
    assert len(asyncio.all_tasks()) - before <= 2  # the worker and the typing loop, not one per delta
    assert len(rs._pieces) >= 100_000  # pieces are kept, not re-joined on every push
    assert elapsed < 1.0
    result = await rs.close()
    assert result.text == "x" * 20 + "ab" * 100_000
    assert surface.visible == split_text(result.text, 4096)


async def test_push_after_close_is_an_error() -> None:
    rs = ReplyStream(RecordingSurface(), make_caps(Streaming.NONE))
    await rs.start()
    rs.push("done")
    await rs.close()
    with pytest.raises(RuntimeError):
        rs.push("more")
    assert (await rs.close()).text == "done"  # close is idempotent


async def test_cancelling_close_stops_the_stream() -> None:
    surface = RecordingSurface()
    surface.fail("send", RateLimited(30), nth=1)
    rs = ReplyStream(surface, make_caps(Streaming.NONE, typing=0.05))
    await rs.start()
    rs.push("text")
    task = asyncio.create_task(rs.close())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rs._worker is not None and rs._worker.done()


async def test_logs_carry_no_text() -> None:
    events: list[dict] = []

    class Log:
        def _rec(self, event: str, **kw: object) -> None:
            events.append({"event": event, **kw})

        debug = info = warning = error = _rec

    surface = RecordingSurface()
    surface.fail("edit", RateLimited(0.01), nth=1)
    surface.fail("send", MarkupRejected("x"), nth=1)
    rs = ReplyStream(surface, make_caps(Streaming.EDIT, interval=0.01), log=Log())
    await rs.start()
    f = Feeder(rs)
    await f.feed(["SECRET-CONTENT ", "more SECRET-CONTENT "] * 10, gap=0.003)
    await rs.close()
    assert any(e["event"] == "reply_stream.rate_limited" for e in events)
    assert "SECRET" not in repr(events)


def test_call_record_helpers() -> None:
    c = Call("edit", 1, "t", "m1", False, 0.0, 1.0, NotModified("x"))
    assert c.accepted and not c.ok


async def test_new_messages_keep_their_own_pace_while_drafts_go_fast() -> None:
    from dataclasses import replace as _replace

    surface = RecordingSurface()
    caps = _replace(make_caps(Streaming.DRAFT, max_chars=200, interval=0.01), min_send_interval=0.15)
    rs = ReplyStream(surface, caps)
    await rs.start()
    f = Feeder(rs)
    await f.feed(words(150, seed=31), gap=0.001)
    result = await rs.close()
    finishes = surface.of("finish")
    assert len(finishes) >= 3
    for a, b in zip(finishes, finishes[1:], strict=False):
        assert b.start >= a.end + 0.15 - EPS  # one new message per min_send_interval
    drafts = surface.of("draft")
    assert any(b.start - a.end < 0.1 for a, b in zip(drafts, drafts[1:], strict=False))  # previews stay quick
    assert_final(surface, result, f.text, 200)


def test_an_inline_mark_stays_on_the_last_line_and_a_notice_gets_its_own_paragraph():
    from bot.reply_stream import _notice_suffix

    assert _notice_suffix("and then", " […]") == " […]"
    assert _notice_suffix("a list:\n", " […]") == "\n[…]"
    assert _notice_suffix("```py\nx = 1", " […]") == "\n```\n\n[…]"  # the code block is closed first
    assert _notice_suffix("done", "Sorry.") == "\n\nSorry."


async def test_previews_carry_the_marker_and_the_final_edit_removes_it() -> None:
    from dataclasses import replace

    surface = RecordingSurface()
    caps = replace(make_caps(Streaming.EDIT, max_chars=60, interval=0.01, first=1), preview_marker=" ▌")
    rs = ReplyStream(surface, caps)
    await rs.start()
    f = Feeder(rs)
    await f.feed(words(40), gap=0.005)
    result = await rs.close()
    previews = [c.text for c in surface.text_calls if c.text is not None][:-1]
    assert sum(t.endswith(" ▌") for t in previews) >= 3  # several previews, each marked
    assert surface.visible == split_text(f.text, 60) and not any("▌" in v for v in surface.visible)
    assert all(len(c.text) <= 60 for c in surface.text_calls if c.text is not None)  # the marker fits too
    assert result.text == f.text


async def test_a_native_streams_finish_is_not_a_new_message_and_takes_no_budget() -> None:
    """A draft (Telegram) is a preview and its finish sends the message: the chat's budget is
    taken there. A native stream's calls (Slack) are metered by the platform apart from messages."""

    class CountingGate:
        def __init__(self) -> None:
            self.at: list[float] = []

        async def acquire(self) -> None:
            self.at.append(time.perf_counter())

    for mode in (Streaming.NATIVE, Streaming.DRAFT):
        gate = CountingGate()
        surface = RecordingSurface()
        rs = ReplyStream(surface, make_caps(mode, interval=0.01, first=1), budget=gate)
        await rs.start()
        await Feeder(rs).feed(words(20), gap=0.003)
        await rs.close()
        drafts, (finish,) = surface.of("draft"), surface.of("finish")
        assert len(drafts) >= 2, mode
        if mode is Streaming.NATIVE:
            assert gate.at == []
        else:
            assert len(gate.at) == 1 and drafts[-1].start < gate.at[0] <= finish.start  # the finish sends it
