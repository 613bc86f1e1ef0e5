from __future__ import annotations

import time

from bot.store.base import ReplyRecord
from bot.store.sqlite import SqliteStore
from bot.types import ChatTurn


def record(conv: str, cost: float, at: float | None = None) -> ReplyRecord:
    return ReplyRecord(at or time.time(), "test", conv, "m/x", "because", 0.1, 0.12, 0.5, 10, 20, 4, cost)


async def test_history_survives_reopen_and_is_windowed(tmp_path):
    path = tmp_path / "data" / "switchboard.sqlite3"
    s = SqliteStore(path)
    await s.open()
    for i in range(5):
        await s.save_reply("c", [ChatTurn("user", f"q{i}"), ChatTurn("assistant", f"a{i}")], record("c", 0.0))
    await s.close()

    s = SqliteStore(path)
    await s.open()
    hist = await s.history("c", 4)
    assert [t.content for t in hist] == ["q3", "a3", "q4", "a4"]
    assert await s.history("other", 4) == []
    await s.reset("c")
    assert await s.history("c", 4) == []
    await s.close()
    s = SqliteStore(path)
    await s.open()
    assert await s.history("c", 4) == []
    await s.close()


async def test_sticky_model_and_ledger(tmp_path):
    s = SqliteStore(tmp_path / "x.sqlite3")
    await s.open()
    assert (await s.conversation("c")).sticky_model is None
    await s.set_sticky_model("c", "cerebras/llama-3.3-70b")
    assert (await s.conversation("c")).sticky_model == "cerebras/llama-3.3-70b"
    await s.set_sticky_model("c", None)
    assert (await s.conversation("c")).sticky_model is None
    await s.save_reply("c", [], record("c", 0.25, at=1000.0))
    await s.save_reply("c", [], record("c", 0.5))
    assert abs(await s.spend_since(2000.0) - 0.5) < 1e-9
    last = await s.last_reply("c")
    assert last is not None and last.cost_usd == 0.5 and last.route_reason == "because"
    await s.close()


async def test_reset_as_first_message_then_conversation_works(tmp_path):
    """/reset on a conversation never looked up (or evicted) must not break its next message."""
    s = SqliteStore(tmp_path / "x.sqlite3")
    await s.open()
    await s.set_sticky_model("c", "m/x")
    fresh = SqliteStore(tmp_path / "x.sqlite3")
    await fresh.open()
    await fresh.reset("c")
    assert (await fresh.conversation("c")).sticky_model == "m/x"
    assert await fresh.history("c", 5) == []
    await fresh.save_reply("c", [ChatTurn("user", "hi")], record("c", 0.0))
    assert [t.content for t in await fresh.history("c", 5)] == ["hi"]
    await fresh.close()
    await s.close()


async def test_concurrent_first_lookups_share_one_cache_entry(tmp_path):
    import asyncio

    s = SqliteStore(tmp_path / "x.sqlite3")
    await s.open()
    await s.save_reply("c", [ChatTurn("user", "old")], record("c", 0.0))
    fresh = SqliteStore(tmp_path / "x.sqlite3")
    await fresh.open()
    a, b = await asyncio.gather(fresh.history("c", 5), fresh.history("c", 5))
    await fresh.save_reply("c", [ChatTurn("user", "new")], record("c", 0.0))
    assert [t.content for t in await fresh.history("c", 5)] == ["old", "new"]  # one deque, not two
    await fresh.close()
    await s.close()


async def test_the_data_is_readable_by_its_owner_only(tmp_path):
    import stat

    path = tmp_path / "data" / "switchboard.sqlite3"
    s = SqliteStore(path)
    await s.open()
    await s.save_reply("c", [ChatTurn("user", "private words")], record("c", 0.0))
    await s.close()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for f in path.parent.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
