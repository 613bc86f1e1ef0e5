"""Dispatcher: order inside a conversation, parallelism across them, queue modes, dedupe."""

from __future__ import annotations

import asyncio
import time

from bot.dispatcher import Dispatcher, Turn
from bot.types import InboundMessage


def msg(conv: str, mid: str, text: str = "") -> InboundMessage:
    return InboundMessage(channel="test", conversation=conv, sender_id="u", text=text or mid, message_id=mid)


class Recorder:
    """A handler that takes `delay` seconds per reply and records start/end of each."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.events: list[tuple[str, str, float]] = []  # (kind, text, time)
        self.cancelled: list[str] = []
        self.turns: list[Turn] = []

    async def __call__(self, turn: Turn) -> None:
        self.turns.append(turn)
        self.events.append(("start", turn.msg.text, time.perf_counter()))
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled.append(turn.msg.text)
            raise
        self.events.append(("end", turn.msg.text, time.perf_counter()))

    def order(self, kind: str) -> list[str]:
        return [t for k, t, _ in self.events if k == kind]


async def test_strict_order_within_a_conversation():
    rec = Recorder(0.01)
    d = Dispatcher(rec)
    for i in range(10):
        assert await d.submit(msg("a", str(i)))
    await d.drain()
    assert rec.order("end") == [str(i) for i in range(10)]
    # never two replies of one conversation at once
    running = 0
    for kind, _, _ in rec.events:
        running += 1 if kind == "start" else -1
        assert running <= 1


async def test_conversations_run_in_parallel():
    rec = Recorder(0.2)
    d = Dispatcher(rec)
    t0 = time.perf_counter()
    for i in range(20):
        await d.submit(msg(f"c{i}", str(i)))
    await d.drain()
    elapsed = time.perf_counter() - t0
    assert len(rec.order("end")) == 20
    assert elapsed < 0.2 * 3  # serial would be 4 s


async def test_global_limit_caps_concurrent_replies():
    rec = Recorder(0.05)
    d = Dispatcher(rec, max_concurrent=3)
    peak = 0

    async def watch():
        nonlocal peak
        while True:
            peak = max(peak, d.active)
            await asyncio.sleep(0.005)

    w = asyncio.create_task(watch())
    for i in range(12):
        await d.submit(msg(f"c{i}", str(i)))
    await d.drain()
    w.cancel()
    assert peak == 3
    assert len(rec.order("end")) == 12


async def test_duplicate_deliveries_dropped():
    rec = Recorder(0.01)
    d = Dispatcher(rec)
    assert await d.submit(msg("a", "1"))
    assert not await d.submit(msg("a", "1"))
    assert not await d.submit(msg("b", "1", "same id, other conversation, same channel"))
    assert await d.submit(InboundMessage("other", "x", "u", "t", "1"))  # other channel: a different message
    await d.drain()
    assert rec.order("end") == ["1", "t"]
    assert d.duplicates == 2


async def test_dedupe_window_is_bounded():
    d = Dispatcher(Recorder(0), dedupe_window=3)
    for i in range(5):
        await d.submit(msg("a", str(i)))
    await d.drain()
    assert await d.submit(msg("a", "0"))  # forgotten after 3 newer ids
    assert not await d.submit(msg("a", "4"))
    await d.drain()


async def test_followup_answers_each_in_turn():
    rec = Recorder(0.05)
    d = Dispatcher(rec, queue_mode="followup")
    await d.submit(msg("a", "1"))
    await asyncio.sleep(0.01)
    await d.submit(msg("a", "2"))
    await d.submit(msg("a", "3"))
    await d.drain()
    assert rec.order("end") == ["1", "2", "3"]


async def test_collect_merges_queued_messages_into_one_turn():
    rec = Recorder(0.05)
    d = Dispatcher(rec, queue_mode="collect")
    await d.submit(msg("a", "1", "first"))
    await asyncio.sleep(0.01)  # reply to "first" is running
    await d.submit(msg("a", "2", "second"))
    await d.submit(msg("a", "3", "third"))
    await d.drain()
    assert rec.order("end") == ["first", "second\n\nthird"]
    assert [m.message_id for m in rec.turns[1].merged] == ["2", "3"]


async def test_interrupt_cancels_running_reply_and_answers_newest():
    rec = Recorder(0.2)
    d = Dispatcher(rec, queue_mode="interrupt")
    await d.submit(msg("a", "1", "old"))
    await asyncio.sleep(0.02)
    await d.submit(msg("a", "2", "middle"))
    await d.submit(msg("a", "3", "newest"))
    await d.drain()
    assert rec.cancelled == ["old"]
    assert rec.order("end") == ["newest"]
    assert "middle" not in rec.order("start")


async def test_interrupt_leaves_other_conversations_alone():
    rec = Recorder(0.1)
    d = Dispatcher(rec, queue_mode="interrupt")
    await d.submit(msg("a", "1", "a1"))
    await d.submit(msg("b", "2", "b1"))
    await asyncio.sleep(0.01)
    await d.submit(msg("a", "3", "a2"))
    await d.drain()
    assert rec.cancelled == ["a1"]
    assert sorted(rec.order("end")) == ["a2", "b1"]


async def test_failing_reply_does_not_stop_the_lane():
    seen = []

    async def handler(turn: Turn) -> None:
        seen.append(turn.msg.text)
        if turn.msg.text == "boom":
            raise RuntimeError("handler failed")

    d = Dispatcher(handler)
    await d.submit(msg("a", "1", "boom"))
    await d.submit(msg("a", "2", "after"))
    await d.drain()
    assert seen == ["boom", "after"]


async def test_stop_reply_cancels_only_the_running_reply_and_the_lane_goes_on():
    for mode in ("followup", "interrupt"):
        rec = Recorder(0.3)
        d = Dispatcher(rec, queue_mode=mode)  # type: ignore[arg-type]
        await d.submit(msg("c", "1", "first"))
        if mode == "followup":
            await d.submit(msg("c", "2", "second"))
        await asyncio.sleep(0.05)
        assert d.stop_reply("c") is True
        await asyncio.wait_for(d.drain(), 2)
        assert rec.cancelled == ["first"], mode
        assert rec.order("end") == (["second"] if mode == "followup" else []), mode
        assert d.stop_reply("c") is False  # nothing running any more
        assert d.stop_reply("elsewhere") is False
