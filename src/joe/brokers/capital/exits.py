"""Planning a reduce-only exit on Capital.com: which deals to close, capped at what is live. Pure.

Rules (DESIGN "Protection is an invariant" — exits are reduce-only, capped at the live position):

* Joe's deals are the ones its entry opened, found by `dealReference` (= the entry's client order
  id) or by deal id from an earlier answer; never by size. The trader's own deals are never touched.
* The exit is capped at the live size of Joe's deals. A cap that covers whole deals closes each of
  them by `DELETE /positions/{dealId}`; the attached stop and target go with the deal.
* A partial exit has no endpoint (spec §5.6). On a netting account an opposite deal nets oldest
  first (§5.1): allowed only when Joe's deals are first in that order for the whole size, so no
  trader deal can be reduced. On a hedging account an opposite deal opens a hedge: refused.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from joe.brokers.base import InvalidOrder
from joe.brokers.capital.markets import parse_utc
from joe.brokers.capital.models import PositionRow
from joe.brokers.capital.observe import own_reference
from joe.core.models import OrderIntent


@dataclass(frozen=True, slots=True)
class ExitPlan:
    """`close` deal ids to DELETE whole, or `net_size` to send as an opposite netting deal."""

    quantity: Decimal  # what will be exited (≤ the intent's quantity)
    live: Decimal  # Joe's live size before the exit
    requested: Decimal  # the intent's quantity
    close: list[str] = field(default_factory=list)
    net_size: Decimal | None = None

    @property
    def capped(self) -> bool:
        return self.quantity < self.requested


def joes_deals(
    rows: Sequence[PositionRow], intent: OrderIntent, entry_coid: str, known_deals: Collection[str]
) -> list[PositionRow]:
    """Joe's open deals for this exit: same epic, the direction the exit reduces, opened by the entry."""
    want = intent.side.opposite.value
    return [
        r
        for r in rows
        if r.market.epic == intent.symbol
        and r.position.direction.upper() == want
        and (own_reference(r.position.dealReference) == entry_coid or r.position.dealId in known_deals)
    ]


def plan_exit(
    rows: Sequence[PositionRow],
    intent: OrderIntent,
    entry_coid: str,
    *,
    hedging: bool,
    known_deals: Collection[str] = (),
) -> ExitPlan:
    """Decide how to exit `intent.quantity` of the position `entry_coid` opened; `InvalidOrder` if
    nothing is live or the exit cannot be done without touching another deal."""
    mine = sorted(
        joes_deals(rows, intent, entry_coid, known_deals), key=lambda r: parse_utc(r.position.createdDateUTC)
    )
    live = sum((r.position.size for r in mine), Decimal(0))
    cid = intent.client_order_id
    if live <= 0:
        raise InvalidOrder(
            f"capital: reduce-only {cid}: no live deal of entry {entry_coid} on {intent.symbol} "
            "(closed by its stop or target, or elsewhere); nothing to exit"
        )
    want = min(intent.quantity, live)
    if want == live:
        return ExitPlan(want, live, intent.quantity, close=[r.position.dealId for r in mine])
    # Whole deals first (oldest first), if they add up exactly.
    acc, whole = Decimal(0), []
    for r in mine:
        if acc + r.position.size <= want:
            acc += r.position.size
            whole.append(r.position.dealId)
    if acc == want:
        return ExitPlan(want, live, intent.quantity, close=whole)
    if hedging:
        raise InvalidOrder(
            f"capital: reduce-only {cid}: {want} of {live} {intent.symbol} is a partial close, which a "
            "hedging account cannot do (an opposite deal would open a hedge); exit whole deals"
        )
    fifo = sorted(
        (
            r
            for r in rows
            if r.market.epic == intent.symbol and r.position.direction.upper() == intent.side.opposite.value
        ),
        key=lambda r: parse_utc(r.position.createdDateUTC),
    )
    ours = {r.position.dealId for r in mine}
    covered = Decimal(0)
    for r in fifo:
        if covered >= want:
            break
        if r.position.dealId not in ours:
            raise InvalidOrder(
                f"capital: reduce-only {cid}: a partial exit of {want} {intent.symbol} would net against "
                f"deal {r.position.dealId}, which Joe did not open (netting closes oldest first); "
                "exit Joe's whole deal instead"
            )
        covered += r.position.size
    return ExitPlan(want, live, intent.quantity, net_size=want)
