"""SQLite store (one file under the data directory), with an in-memory front for the hot path.

Reads that sit before the first token (history, sticky model) come from memory after the first
look-up of a conversation; writes go to SQLite after the reply, off the latency path.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from pathlib import Path
from typing import Sequence

import aiosqlite

from bot.store.base import ConversationRecord, ReplyRecord
from bot.types import ChatTurn

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  conversation TEXT NOT NULL,
  role TEXT NOT NULL,
  content TEXT NOT NULL,
  at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_conv ON messages(conversation, id);
CREATE TABLE IF NOT EXISTS conversations (
  conversation TEXT PRIMARY KEY,
  sticky_model TEXT
);
CREATE TABLE IF NOT EXISTS replies (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at REAL NOT NULL, channel TEXT NOT NULL, conversation TEXT NOT NULL, model TEXT NOT NULL,
  route_reason TEXT NOT NULL, ttft REAL, first_visible REAL, total REAL NOT NULL,
  prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,
  cost_usd REAL NOT NULL, outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS replies_at ON replies(at);
CREATE INDEX IF NOT EXISTS replies_conv ON replies(conversation, id);
"""

_CACHE_CONVERSATIONS = 4096
_CACHE_TURNS = 200


class SqliteStore:
    def __init__(self, path: str | Path | None) -> None:
        """`path=None` keeps everything in memory (tests, benchmarks, `message send`)."""
        self.path = Path(path).expanduser() if path is not None else None
        self._db: aiosqlite.Connection | None = None
        self._history: OrderedDict[str, deque[ChatTurn]] = OrderedDict()
        self._convs: dict[str, ConversationRecord] = {}
        # one statement at a time on the connection, each cursor closed before the next starts
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        if self.path is None:
            target = ":memory:"
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            target = str(self.path)
        self._db = await aiosqlite.connect(target)
        await self._db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" + _SCHEMA)
        await self._db.commit()

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    # --- history -----------------------------------------------------------------------------

    async def _cached(self, conversation: str) -> deque[ChatTurn]:
        turns = self._history.get(conversation)
        if turns is not None:
            self._history.move_to_end(conversation)
            return turns
        rows = await self._fetch(
            "SELECT role, content FROM messages WHERE conversation = ? ORDER BY id DESC LIMIT ?",
            (conversation, _CACHE_TURNS),
        )
        turns = deque((ChatTurn(r, c) for r, c in reversed(rows)), maxlen=_CACHE_TURNS)
        self._history[conversation] = turns
        if len(self._history) > _CACHE_CONVERSATIONS:
            self._history.popitem(last=False)
        return turns

    async def history(self, conversation: str, limit: int) -> list[ChatTurn]:
        if limit <= 0:
            return []
        turns = await self._cached(conversation)
        if len(turns) <= limit:
            return list(turns)
        return list(turns)[-limit:]

    async def append(self, conversation: str, turns: Sequence[ChatTurn]) -> None:
        cached = await self._cached(conversation)
        cached.extend(turns)
        now = time.time()
        await self._write(
            "INSERT INTO messages(conversation, role, content, at) VALUES (?, ?, ?, ?)",
            [(conversation, t.role, t.content, now) for t in turns],
        )

    async def reset(self, conversation: str) -> None:
        self._history[conversation] = deque(maxlen=_CACHE_TURNS)
        await self._write("DELETE FROM messages WHERE conversation = ?", [(conversation,)])

    # --- conversation state ------------------------------------------------------------------

    async def conversation(self, conversation: str) -> ConversationRecord:
        rec = self._convs.get(conversation)
        if rec is None:
            rows = await self._fetch("SELECT sticky_model FROM conversations WHERE conversation = ?", (conversation,))
            row = rows[0] if rows else None
            rec = ConversationRecord(sticky_model=row[0] if row else None)
            self._convs[conversation] = rec
        return rec

    async def set_sticky_model(self, conversation: str, model: str | None) -> None:
        self._convs[conversation] = ConversationRecord(sticky_model=model)
        await self._write(
            "INSERT INTO conversations(conversation, sticky_model) VALUES (?, ?) "
            "ON CONFLICT(conversation) DO UPDATE SET sticky_model = excluded.sticky_model",
            [(conversation, model)],
        )

    # --- ledger ------------------------------------------------------------------------------

    async def record_reply(self, r: ReplyRecord) -> None:
        await self._write(
            "INSERT INTO replies(at, channel, conversation, model, route_reason, ttft, first_visible, total,"
            " prompt_tokens, completion_tokens, cached_tokens, cost_usd, outcome)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(r.at, r.channel, r.conversation, r.model, r.route_reason, r.ttft, r.first_visible, r.total,
              r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.cost_usd, r.outcome)],
        )

    async def last_reply(self, conversation: str) -> ReplyRecord | None:
        rows = await self._fetch(
            "SELECT at, channel, conversation, model, route_reason, ttft, first_visible, total, prompt_tokens,"
            " completion_tokens, cached_tokens, cost_usd, outcome FROM replies WHERE conversation = ?"
            " ORDER BY id DESC LIMIT 1",
            (conversation,),
        )
        return ReplyRecord(*rows[0]) if rows else None

    async def spend_since(self, since: float) -> float:
        rows = await self._fetch("SELECT COALESCE(SUM(cost_usd), 0) FROM replies WHERE at >= ?", (since,))
        return float(rows[0][0]) if rows else 0.0

    async def model_stats(self) -> dict[str, tuple[float | None, float | None, int]]:
        """Per model: median-ish measured TTFT (s), tokens/s, and reply count — for `models list`."""
        rows = await self._fetch(
            "SELECT model, AVG(ttft), AVG(CASE WHEN total > ttft AND ttft IS NOT NULL"
            " THEN completion_tokens / (total - ttft) END), COUNT(*) FROM replies GROUP BY model",
            (),
        )
        return {model: (ttft, tps, n) for model, ttft, tps, n in rows}

    # --- one statement at a time -----------------------------------------------------------------

    async def _fetch(self, sql: str, params: tuple) -> list[tuple]:
        async with self._lock:
            cur = await self.db.execute(sql, params)
            try:
                return list(await cur.fetchall())
            finally:
                await cur.close()

    async def _write(self, sql: str, rows: list[tuple]) -> None:
        async with self._lock:
            cur = await self.db.executemany(sql, rows)
            await cur.close()
            await self.db.commit()
