"""Small-size rollout on a real-money account (config `live.rollout`, issue 10).

The first `trades` live entries and every entry in the first `days` days since the first live entry
are capped at `size_fraction` of the normal size and at `max_notional`. Only on a real-money
endpoint: against a broker's paper/demo account the caps do not apply (they say so).

Only real-money trades count toward the caps: a trade on a demo account says nothing about how Joe
does with real money, so a hundred demo trades leave a new real-money account at the start of its
rollout. Each live entry is tagged with the kind of account it was sent to when it is sent
(`record_entry`, kept in the store's key-value state under `ROLLOUT_KEY`, so it survives restarts);
the count is the filled entries tagged real-money. An entry without a tag (sent before tagging
existed) is not counted: not knowing its account means keeping the caps longer, never shorter.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from joe.core.clock import utcnow
from joe.core.models import OrderLeg
from joe.portfolio.intents import SizeCap

if TYPE_CHECKING:
    from joe.config.schema import ExecutionConfig, LiveConfig, RolloutConfig
    from joe.core.events import AuditSink
    from joe.store import Store

ROLLOUT_KEY = "live.rollout.entries"  # {client order id: {"real_money": bool, "broker": str}}

# The rollout's floors (issue 10's defaults): the yaml may make the rollout stricter, never looser —
# as `live.min_paper_days/trades` — except through the audited `live.track_record_override` with a
# reason (`joe.config.mode.MIN_OVERRIDE_REASON`).
FLOOR_TRADES = 10
FLOOR_DAYS = 5
CEILING_SIZE_FRACTION = Decimal("0.25")
CEILING_MAX_NOTIONAL = Decimal(5000)


def effective_rollout(live: LiveConfig) -> tuple[RolloutConfig, str | None]:
    """(the rollout that applies, a note when the yaml's was looser than the floors). Without a valid
    override the floors apply; with one the yaml's values apply and the note says so."""
    from joe.config.mode import MIN_OVERRIDE_REASON

    y = live.rollout
    floored = y.model_copy(update={
        "trades": max(y.trades, FLOOR_TRADES), "days": max(y.days, FLOOR_DAYS),
        "size_fraction": min(y.size_fraction, CEILING_SIZE_FRACTION),
        "max_notional": min(y.max_notional, CEILING_MAX_NOTIONAL),
    })  # fmt: skip
    if floored == y:
        return y, None
    yaml = (f"yaml live.rollout trades={y.trades} days={y.days} size_fraction={y.size_fraction} "
            f"max_notional={y.max_notional}")  # fmt: skip
    override = live.track_record_override
    if override.enabled and len(override.reason.strip()) >= MIN_OVERRIDE_REASON:
        return y, f"{yaml} is looser than the floors: OVERRIDDEN ({override.reason.strip()})"
    return floored, (f"{yaml} is looser than the floors ({FLOOR_TRADES} trades, {FLOOR_DAYS} days, size "
                     f"<= {CEILING_SIZE_FRACTION}, notional <= {CEILING_MAX_NOTIONAL}): the floors apply; "
                     "only live.track_record_override with a reason skips them")  # fmt: skip


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
        audit: AuditSink | None = None,
    ) -> None:
        self.cfg, self.note = effective_rollout(config.live)
        if self.note is not None and audit is not None and real_money:
            overridden = "OVERRIDDEN" in self.note
            audit.record("mode.override" if overridden else "rollout.floored", {"gate": "rollout",
                         "detail": self.note})  # fmt: skip
        self.store = store
        self.real_money = real_money
        self.broker = broker
        self.clock = clock

    def _tags(self) -> dict[str, Any]:
        return dict(self.store.get_state(ROLLOUT_KEY) or {})

    def record_entry(self, client_order_id: str) -> None:
        """Tag a live entry with the kind of account it goes to (call before sending it)."""
        tags = self._tags()
        if client_order_id in tags:  # a rerun of the same signal: the first send's account decides
            return
        tags[client_order_id] = {"real_money": self.real_money, "broker": self.broker}
        self.store.set_state(ROLLOUT_KEY, tags)

    def progress(self) -> tuple[int, int]:
        """(real-money live entries filled so far, whole days since the first one)."""
        tags = self._tags()
        entries = [
            o
            for o in self.store.orders(mode="live", broker=self.broker)
            if o.intent.leg is OrderLeg.ENTRY
            and o.filled_quantity > 0
            and (tags.get(o.client_order_id) or {}).get("real_money") is True
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

    def state(self) -> dict[str, Any]:
        """The caps and the count so far, for the report's JSON (decimals as strings)."""
        c = self.cfg
        trades, days = self.progress()
        return {
            "real_money": self.real_money,
            "active": self.active(),
            "trades": trades,
            "days": days,
            "trades_cap": c.trades,
            "days_cap": c.days,
            "size_fraction": str(c.size_fraction),
            "max_notional": str(c.max_notional),
        }

    def lines(self) -> list[str]:
        """What `joe mode` and the report say about the rollout."""
        c = self.cfg
        trades, days = self.progress()
        caps = (
            f"first {c.trades} live trades and first {c.days} days at {c.size_fraction} of normal size, "
            f"max notional {c.max_notional}"
        )
        note = [f"rollout: {self.note}"] if self.note else []
        if not self.real_money:
            return [f"rollout caps ({caps}) apply on a real-money account only; not on this one", *note]
        state = "ACTIVE" if self.active() else "done"
        return [
            f"rollout caps {state}: {caps}; so far {trades} real-money live trade(s) over {days} day(s) "
            "(demo-account trades do not count)",
            *note,
        ]
