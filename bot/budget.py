"""The monthly budget: once the month's spend reaches it, only free models answer.

Spend is kept in memory (loaded from the reply ledger at start, added to after each reply), so the
check on the message path costs nothing.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from bot.store.base import Store


def month_start(now: float | None = None) -> float:
    t = datetime.fromtimestamp(time.time() if now is None else now, tz=timezone.utc)
    return t.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


class Budget:
    def __init__(self, monthly_usd: float | None, store: Store) -> None:
        self.monthly_usd = monthly_usd
        self._store = store
        self._month = month_start()
        self.spent = 0.0

    async def load(self) -> None:
        self._month = month_start()
        self.spent = await self._store.spend_since(self._month)

    def add(self, cost: float, at: float | None = None) -> None:
        m = month_start(at)
        if m != self._month:  # a new month began
            self._month, self.spent = m, 0.0
        self.spent += cost

    @property
    def exhausted(self) -> bool:
        if self.monthly_usd is None:
            return False
        if month_start() != self._month:
            self._month, self.spent = month_start(), 0.0
        return self.spent >= self.monthly_usd
