"""SQLite store (one file under the data directory), with an in-memory front for the hot path.

All SQL runs on one dedicated thread, one hop per operation (a whole read, or a whole write with
its commit), so the event loop never blocks and a conversation's first message does not queue
behind several round trips. Reads that sit before the first token (history, sticky model) come
from memory after a conversation's first look-up, which loads both at once. Writes happen after
the reply is delivered.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from bot.store.base import ConversationRecord, ReplyRecord
from bot.types import ChatTurn

T = TypeVar("T")

_SCHEMA = """
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
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
CREATE TABLE IF NOT EXISTS seen (
  channel TEXT NOT NULL,
  message_id TEXT NOT NULL,
  at REAL NOT NULL,
  PRIMARY KEY (channel, message_id)
);
CREATE INDEX IF NOT EXISTS seen_at ON seen(at);
"""

_REPLY_COLUMNS = (
    "at, channel, conversation, model, route_reason, ttft, first_visible, total,"
    " prompt_tokens, completion_tokens, cached_tokens, cost_usd, outcome"
)
_INSERT_REPLY = f"INSERT INTO replies({_REPLY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_MESSAGE = "INSERT INTO messages(conversation, role, content, at) VALUES (?, ?, ?, ?)"

_CACHE_CONVERSATIONS = 4096
_CACHE_TURNS = 200


def _reply_row(r: ReplyRecord) -> tuple[Any, ...]:
    return (
        r.at,
        r.channel,
        r.conversation,
        r.model,
        r.route_reason,
        r.ttft,
        r.first_visible,
        r.total,
        r.prompt_tokens,
        r.completion_tokens,
        r.cached_tokens,
        r.cost_usd,
        r.outcome,
    )


class SqliteStore:
    def __init__(self, path: str | Path | None) -> None:
        """`path=None` keeps everything in memory (tests, benchmarks, `message send`)."""
        self.path = Path(path).expanduser() if path is not None else None
        self._conn: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._history: OrderedDict[str, deque[ChatTurn]] = OrderedDict()
        self._convs: dict[str, ConversationRecord] = {}

    # --- the SQL thread --------------------------------------------------------------------------

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None or self._thread is None:
            raise RuntimeError("store is not open")
        conn = self._conn
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, conn)

    async def open(self) -> None:
        target = ":memory:"
        if self.path is not None:
            # conversations are private: the directory 0700, the database (and so its -wal and
            # -shm files, which SQLite creates with the database's mode) 0600
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
            os.chmod(self.path, 0o600)
            target = str(self.path)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite")
        loop = asyncio.get_running_loop()
        self._conn = await loop.run_in_executor(self._thread, lambda: sqlite3.connect(target, check_same_thread=False))
        await self._run(lambda c: c.executescript(_SCHEMA))

    async def close(self) -> None:
        if self._conn is None and self._thread is not None:  # open() failed half-way
            self._thread.shutdown(wait=False)
            self._thread = None
        if self._conn is not None and self._thread is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(self._thread, conn.close)
            self._thread.shutdown(wait=True)
            self._thread = None

    @staticmethod
    def _write(sql: str, rows: list[tuple[Any, ...]]) -> Callable[[sqlite3.Connection], None]:
        def run(c: sqlite3.Connection) -> None:
            with c:  # one transaction
                c.executemany(sql, rows)

        return run

    # --- a conversation's memory -----------------------------------------------------------------

    async def _load(self, conversation: str) -> deque[ChatTurn]:
        """History and sticky model of a conversation, from memory or in one read."""
        turns = self._history.get(conversation)
        if turns is not None and conversation in self._convs:
            self._history.move_to_end(conversation)
            return turns

        def read(c: sqlite3.Connection) -> tuple[list[tuple[str, str]], tuple[str | None] | None]:
            rows = c.execute(
                "SELECT role, content FROM messages WHERE conversation = ? ORDER BY id DESC LIMIT ?",
                (conversation, _CACHE_TURNS),
            ).fetchall()
            state = c.execute(
                "SELECT sticky_model FROM conversations WHERE conversation = ?", (conversation,)
            ).fetchone()
            return rows, state

        rows, state = await self._run(read)
        turns = self._history.get(conversation)  # another task may have loaded it meanwhile
        if turns is None:
            turns = deque((ChatTurn(r, c) for r, c in reversed(rows)), maxlen=_CACHE_TURNS)
            self._history[conversation] = turns
            if len(self._history) > _CACHE_CONVERSATIONS:
                evicted, _ = self._history.popitem(last=False)
                self._convs.pop(evicted, None)
        self._convs.setdefault(conversation, ConversationRecord(sticky_model=state[0] if state else None))
        return turns

    async def history(self, conversation: str, limit: int) -> list[ChatTurn]:
        if limit <= 0:
            return []
        turns = await self._load(conversation)
        if len(turns) <= limit:
            return list(turns)
        return list(turns)[-limit:]

    async def conversation(self, conversation: str) -> ConversationRecord:
        rec = self._convs.get(conversation)
        if rec is None:
            await self._load(conversation)
            rec = self._convs.get(conversation, ConversationRecord())
        return rec

    async def save_reply(
        self, conversation: str, turns: Sequence[ChatTurn], record: ReplyRecord, *, replace_last: int = 0
    ) -> None:
        """A delivered reply: its turns in the history and its record in the ledger, in one write
        (after dropping the history's last `replace_last` turns: an edited question's exchange)."""
        if turns or replace_last:
            history = await self._load(conversation)
            for _ in range(min(replace_last, len(history))):
                history.pop()
            history.extend(turns)
        now = time.time()
        messages = [(conversation, t.role, t.content, now) for t in turns]
        reply = _reply_row(record)

        def write(c: sqlite3.Connection) -> None:
            with c:
                if replace_last:
                    c.execute(
                        "DELETE FROM messages WHERE id IN "
                        "(SELECT id FROM messages WHERE conversation = ? ORDER BY id DESC LIMIT ?)",
                        (conversation, replace_last),
                    )
                if messages:
                    c.executemany(_INSERT_MESSAGE, messages)
                c.execute(_INSERT_REPLY, reply)

        await self._run(write)

    async def reset(self, conversation: str) -> None:
        self._history.pop(conversation, None)  # the next look-up reads history and state afresh
        await self._run(self._write("DELETE FROM messages WHERE conversation = ?", [(conversation,)]))

    async def set_sticky_model(self, conversation: str, model: str | None) -> None:
        self._convs[conversation] = ConversationRecord(sticky_model=model)
        await self._run(
            self._write(
                "INSERT INTO conversations(conversation, sticky_model) VALUES (?, ?) "
                "ON CONFLICT(conversation) DO UPDATE SET sticky_model = excluded.sticky_model",
                [(conversation, model)],
            )
        )

    # --- ledger ----------------------------------------------------------------------------------

    async def last_reply(self, conversation: str) -> ReplyRecord | None:
        row = await self._run(
            lambda c: c.execute(
                f"SELECT {_REPLY_COLUMNS} FROM replies WHERE conversation = ? ORDER BY id DESC LIMIT 1", (conversation,)
            ).fetchone()
        )
        return ReplyRecord(*row) if row else None

    # --- deliveries already taken (dedupe across restarts) ----------------------------------------

    async def remember_seen(self, deliveries: Sequence[tuple[str, str, float]]) -> None:
        """(channel, message_id, unix time) of deliveries taken."""
        if deliveries:
            await self._run(
                self._write("INSERT OR IGNORE INTO seen(channel, message_id, at) VALUES (?, ?, ?)", list(deliveries))
            )

    async def seen_since(self, since: float) -> list[tuple[str, str]]:
        """Deliveries taken since `since`, oldest first; older ones are forgotten here."""

        def read(c: sqlite3.Connection) -> list[tuple[str, str]]:
            with c:
                c.execute("DELETE FROM seen WHERE at < ?", (since,))
            rows = c.execute("SELECT channel, message_id FROM seen ORDER BY at").fetchall()
            return [(str(ch), str(mid)) for ch, mid in rows]

        return await self._run(read)

    async def spend_since(self, since: float) -> float:
        row = await self._run(
            lambda c: c.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM replies WHERE at >= ?", (since,)).fetchone()
        )
        return float(row[0]) if row else 0.0

    async def model_stats(self) -> dict[str, tuple[float | None, float | None, int]]:
        """Per model: mean measured TTFT (s), tokens/s and reply count — for `models list`."""
        rows = await self._run(
            lambda c: c.execute(
                "SELECT model, AVG(ttft), AVG(CASE WHEN total > ttft AND ttft IS NOT NULL"
                " THEN completion_tokens / (total - ttft) END), COUNT(*) FROM replies GROUP BY model"
            ).fetchall()
        )
        return {model: (ttft, tps, n) for model, ttft, tps, n in rows}
