"""Small-size rollout on a real-money account (config `live.rollout`, issue 10).

The first `trades` live entries and every entry in the first `days` days since the first live entry
are capped at `size_fraction` of the normal size and at `max_notional`. Only on a real-money
endpoint: against a broker's paper/demo account the caps do not apply (they say so). The count so
far comes from the store (live entry orders that filled), so it survives restarts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from joe.core.clock import utcnow
from joe.core.models import OrderLeg
from joe.portfolio.intents import SizeCap

if TYPE_CHECKING:
    from joe.config.schema import ExecutionConfig
    from joe.store import Store


class Rollout:
    """The rollout caps of one process. `cap()` is the `SizeCap` for the next entry (None: no cap)."""

    def __init__(
        self,
        config: ExecutionConfig,
        store: Store,
        *,
        real_money: bool,
        broker: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.cfg = config.live.rollout
        self.store = store
        self.real_money = real_money
        self.broker = broker
        self.clock = clock

    def progress(self) -> tuple[int, int]:
        """(live entries filled so far, whole days since the first one)."""
        entries = [
            o
            for o in self.store.orders(mode="live", broker=self.broker)
            if o.intent.leg is OrderLeg.ENTRY and o.filled_quantity > 0
        ]
        if not entries:
            return 0, 0
        first = min(o.created_at for o in entries if o.created_at is not None)
        return len(entries), max(0, (self.clock() - first).days)

    def active(self) -> bool:
        if not self.real_money:
            return False
        trades, days = self.progress()
        return trades < self.cfg.trades or days < self.cfg.days

    def cap(self) -> SizeCap | None:
        if not self.active():
            return None
        return SizeCap(self.cfg.size_fraction, self.cfg.max_notional)

    def lines(self) -> list[str]:
        """What `joe mode` and the report say about the rollout."""
        c = self.cfg
        trades, days = self.progress()
        caps = (
            f"first {c.trades} live trades and first {c.days} days at {c.size_fraction} of normal size, "
            f"max notional {c.max_notional}"
        )
        if not self.real_money:
            return [f"rollout caps ({caps}) apply on a real-money account only; not on this one"]
        state = "ACTIVE" if self.active() else "done"
        return [f"rollout caps {state}: {caps}; so far {trades} live trade(s) over {days} day(s)"]
