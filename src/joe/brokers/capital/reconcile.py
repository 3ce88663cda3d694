"""Finding out what happened to an order request whose answer was lost (timeout, 5xx, garbage).

The order is never re-sent. Instead: if a dealReference arrived, its confirm decides; otherwise the
positions (or working orders) are searched for an unclaimed row with the same epic, direction and
size created inside the request's time window, and the activity history for a rejection. The
search is repeated for a while because a deal can take seconds to become visible. If nothing
proves the outcome, the answer is UNKNOWN and the caller raises `OrderOutcomeUnknown`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from joe.brokers.capital.accounts import AccountsApi
from joe.brokers.capital.errors import CapitalError
from joe.brokers.capital.markets import parse_utc
from joe.brokers.capital.trading import TradingApi


class Outcome(StrEnum):
    FILLED = "filled"
    WORKING = "working"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Finding:
    """What reconciliation proved."""

    outcome: Outcome
    deal_id: str | None = None
    level: Decimal | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Probe:
    """The request we are looking for."""

    epic: str
    direction: str
    size: Decimal
    sent_at: datetime  # on the broker's clock (its deals' `createdDateUTC` are compared with it)
    working: bool = False
    level: Decimal | None = None
    clock_offset: timedelta = timedelta(0)  # the broker's clock minus this host's


class Reconciler:
    """Searches positions/working orders/activity for the result of an ambiguous order request."""

    def __init__(
        self,
        trading: TradingApi,
        accounts: AccountsApi,
        *,
        window_s: float = 10.0,
        interval_s: float = 0.5,
        slack_s: float = 5.0,
    ) -> None:
        self.trading = trading
        self.accounts = accounts
        self.window_s = window_s
        self.interval_s = interval_s
        self.slack = timedelta(seconds=slack_s)

    async def find(self, probe: Probe, claimed: Collection[str]) -> Finding:
        """Poll until the request's outcome is proven or the window closes (then UNKNOWN)."""
        deadline = time.monotonic() + self.window_s
        while True:
            try:
                found = await self._look(probe, claimed)
            except CapitalError:
                found = None  # reads are retried inside the client; a persistent failure means keep polling
            if found is not None:
                return found
            if time.monotonic() + self.interval_s > deadline:
                return Finding(Outcome.UNKNOWN, reason="no matching deal, order or rejection found")
            await asyncio.sleep(self.interval_s)

    async def _look(self, probe: Probe, claimed: Collection[str]) -> Finding | None:
        lo = probe.sent_at - self.slack
        hits: list[tuple[str, Decimal | None]] = []
        if probe.working:
            for row in await self.trading.working_orders():
                o = row.workingOrderData
                if (
                    o.epic == probe.epic
                    and o.direction == probe.direction
                    and o.orderSize == probe.size
                    and o.dealId not in claimed
                    and parse_utc(o.createdDateUTC) >= lo
                ):
                    hits.append((o.dealId, o.orderLevel))
        else:
            for prow in await self.trading.positions():
                p = prow.position
                if (
                    prow.market.epic == probe.epic
                    and p.direction == probe.direction
                    and p.size == probe.size
                    and p.dealId not in claimed
                    and parse_utc(p.createdDateUTC) >= lo
                ):
                    hits.append((p.dealId, p.level))
        if len(hits) == 1:
            deal_id, level = hits[0]
            return Finding(Outcome.WORKING if probe.working else Outcome.FILLED, deal_id, level)
        if len(hits) > 1:
            # Several unclaimed look-alikes: we cannot prove which one is ours.
            return Finding(Outcome.UNKNOWN, reason=f"{len(hits)} matching rows; cannot attribute")
        broker_now = datetime.now(probe.sent_at.tzinfo) + probe.clock_offset
        span = max(60, int((broker_now - lo).total_seconds()) + 5)
        rows = await self.accounts.activity(
            last_period_s=min(span, 86400), detailed=True, fiql=f"epic=={probe.epic}"
        )
        for act in rows:
            d = act.details
            if (
                act.status.upper() == "REJECTED"
                and parse_utc(act.dateUTC) >= lo
                and d is not None
                and d.size == probe.size
                and (d.direction or probe.direction) == probe.direction
            ):
                return Finding(Outcome.REJECTED, act.dealId, reason="rejected (activity history)")
        return None
