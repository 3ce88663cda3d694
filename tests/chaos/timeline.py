"""The `no_reversal` invariant judged in the broker's own timeline (chaos seed 477).

A broker may reduce a fill AFTER an exit sold against it (an IBKR execution correction: the same execId
up to its last dot, a higher revision, a new quantity; `joe.simulators.ibkr.book.Book.correct`). The
account then ends short although no exit of Joe's ever sold more than was held when it filled. No
client can prevent that, so the end state cannot judge an exit. The rule here:

- walk the broker's executions in the order the broker made them, keeping each execution identity's
  current (latest revision) quantity; Joe's held quantity of a symbol at an instant is the sum of the
  current quantities of Joe's executions (the account owner's excluded, as `Runner._watch_reversal`
  excludes the owner's trades);
- a REVERSAL is a NEW execution (revision 0) of a sell of Joe's that leaves Joe's held quantity below
  zero (quantities in units of the instrument);
- a CORRECTION that leaves it below zero is the broker's act, not a reversal: it is reported as a short
  the broker made, which Joe must know of (`invariants.correction_short_known`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal

from joe.core.models import Fill

ZERO = Decimal(0)


@dataclass(frozen=True)
class Exec:
    """One execution message of the broker's, in the broker's order."""

    fill_id: str  # the execution's identity (IBKR: its execId without the correction suffix)
    symbol: str
    signed_qty: Decimal  # this revision's quantity, signed (> 0 bought), in instrument units
    joes: bool  # an execution of Joe's orders (not the account owner's)
    correction: bool = False  # a later revision of `fill_id`: replaces that identity's quantity
    ref: str = ""  # the order reference (Joe's client order id) it carries, for the messages


@dataclass
class Walk:
    """What walking a timeline found."""

    reversals: list[str] = field(default_factory=list)  # sells of Joe's that left Joe short
    shorted: dict[str, list[str]] = field(default_factory=dict)  # symbol -> corrections that left Joe short
    held: dict[str, Decimal] = field(default_factory=dict)  # Joe's held quantity at the end, by symbol


def walk(execs: Iterable[Exec]) -> Walk:
    """Walk `execs` in order (see the module docstring for the rule)."""
    current: dict[str, Decimal] = {}
    out = Walk()
    for ex in execs:
        if not ex.joes:
            continue
        before = current.get(ex.fill_id, ZERO)
        current[ex.fill_id] = ex.signed_qty
        held = out.held.get(ex.symbol, ZERO) - before + ex.signed_qty
        out.held[ex.symbol] = held
        if held >= 0:
            continue
        if ex.correction:
            what = f"correction of {ex.fill_id} ({before} -> {ex.signed_qty}) left Joe holding {held}"
            out.shorted.setdefault(ex.symbol, []).append(f"{ex.symbol}: {what}")
        elif ex.signed_qty < 0:
            out.reversals.append(
                f"{ex.symbol}: Joe's sell {ex.fill_id} ({ex.ref} {ex.signed_qty}) left Joe holding {held}"
            )
    return out


def as_stored(execs: list[Exec], fills: Iterable[Fill]) -> list[Exec]:
    """Joe's stored fills placed in the broker's timeline: the store keeps one row per execution
    identity, its last revision, so each identity's last revision carries the store's quantity (earlier
    revisions the broker's: what Joe was told then), an identity the store lacks contributes nothing,
    and a stored fill the broker never executed (a standing estimate) is a new execution at the end,
    in the store's order."""
    stored = {f.fill_id: f for f in fills}
    last = {ex.fill_id: i for i, ex in enumerate(execs) if ex.joes}
    out = []
    for i, ex in enumerate(execs):
        f = stored.get(ex.fill_id)
        if not ex.joes or f is None:
            continue
        out.append(replace(ex, signed_qty=f.quantity * f.side.sign) if last[ex.fill_id] == i else ex)
    for f in stored.values():
        if f.fill_id not in last and f.quantity != 0:
            out.append(Exec(f.fill_id, f.symbol, f.quantity * f.side.sign, True, ref=f.client_order_id))
    return out
