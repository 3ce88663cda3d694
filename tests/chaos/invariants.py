"""The invariants every chaos scenario must leave true (issue 13 point 2), read from Joe's data folder
(store, audit log) against the broker SIMULATOR's own books (the truth).

`check(outcome, world)` returns the list of violations (empty: all hold) and counts each check made.
Each check is one function: it names the invariant and says what differs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from chaos.harness import Outcome
from chaos.timeline import as_stored, walk
from chaos.worlds import World
from joe.audit.chain import day_files, verify
from joe.audit.health import stored_anchor
from joe.core.order import Order, OrderState
from joe.execution.estimated_fills import is_estimate
from joe.safety.trading_state import TradingState
from joe.store import Store, open_store

ZERO = Decimal(0)
S = OrderState
INVARIANTS = (
    "no_duplicate_order",
    "every_fill_once",
    "no_phantom_fill",
    "positions_equal",
    "protected_or_halted",
    "no_reversal",
    "correction_short_known",
    "halted_after_unexplained",
    "audit_chain",
    "order_events_audited",
    "no_secret",
    "audit_full_fails_closed",
    "divergence_consistent",
)
# Audit events that announce an order's state (besides `order.state` / `order.amended` with "to").
_STATE_EVENTS = {
    S.NEW: ("order.attempt",),
    S.SUBMITTING: ("order.attempt",),
    S.FILLED: ("order.fill",),
    S.PARTIALLY_FILLED: ("order.fill",),
    S.REJECTED: ("order.rejected",),
    S.UNKNOWN: ("order.unknown",),
    S.LOST: ("order.lost",),
    S.ACCEPTED: ("order.submitted", "order.adopted"),
}


class Facts:
    """Joe's side, read once from its folder after the run."""

    def __init__(self, out: Outcome) -> None:
        store: Store = open_store(data_dir=out.data_dir)
        try:
            self.orders: list[Order] = store.orders(mode="live")
            self.fills = store.fills(mode="live")
            self.state = _state(store)
        finally:
            store.close()
        twin = open_store(f"sqlite:///{out.data_dir / 'twin-live.db'}", data_dir=out.data_dir)
        try:
            self.twin_fills = twin.fills(mode="paper")
        finally:
            twin.close()
        self.records = _records(out)
        self.joes = {o.client_order_id for o in self.orders}


def _state(store: Store) -> TradingState:
    from joe.core.events import NullAudit
    from joe.safety.trading_state import TradingStateStore

    return TradingStateStore(store, NullAudit()).current().state


def _records(out: Outcome) -> list[dict[str, Any]]:
    recs = []
    for f in day_files(out.data_dir / "audit"):
        for line in f.read_bytes().splitlines():
            try:
                recs.append(json.loads(line))
            except ValueError:
                continue  # a torn line (a crash mid-write) is the chain check's business
    return recs


def joe_net(f: Facts) -> dict[str, Decimal]:
    net: dict[str, Decimal] = {}
    for fill in f.fills:
        net[fill.symbol] = net.get(fill.symbol, ZERO) + fill.quantity * fill.side.sign
    return net


# ------------------------------------------------------------------------------------ the checks
def no_duplicate_order(out: Outcome, w: World, f: Facts) -> list[str]:
    """No client_order_id ever reached the broker twice."""
    return [f"{ref} reached the broker {n} times" for ref, n in w.placements().items() if n > 1]


def every_fill_once(out: Outcome, w: World, f: Facts) -> list[str]:
    """Every execution of Joe's orders at the broker is in Joe's store exactly once, with its commission."""
    got = Counter(x.fill_id for x in f.fills)
    mine = {x.fill_id: x for x in f.fills}
    bad = []
    for b in w.fills():
        if not b.joes:
            continue
        n = got.get(b.fill_id, 0)
        if n != 1:
            bad.append(
                f"broker execution {b.fill_id} ({b.ref} {b.symbol} {b.signed_qty}) is in Joe's store {n}x"
            )
            continue
        j = mine[b.fill_id]
        if j.quantity * j.side.sign != b.signed_qty:
            bad.append(f"fill {b.fill_id}: Joe {j.side.value} {j.quantity}, broker {b.signed_qty}")
        if j.commission != b.commission:
            bad.append(f"fill {b.fill_id}: commission Joe {j.commission}, broker {b.commission}")
    return bad


def no_phantom_fill(out: Outcome, w: World, f: Facts) -> list[str]:
    """Every fill in Joe's store is an execution at the broker. An estimated fill a real execution
    replaced (`joe.execution.estimated_fills`: kept at quantity 0 as the record of the replacement)
    is not a fill; a standing estimate is, and must be at the broker like any other."""
    at_broker = {b.fill_id for b in w.fills()}
    return [f"Joe's fill {x.fill_id} ({x.client_order_id}) is not at the broker" for x in f.fills
            if x.fill_id not in at_broker and not (is_estimate(x.fill_id) and x.quantity == 0)]  # fmt: skip


def positions_equal(out: Outcome, w: World, f: Facts) -> list[str]:
    """Joe's positions (its fills) equal the broker's, less the account owner's own trades."""
    net, broker = joe_net(f), w.positions()
    bad = []
    for s in sorted(set(net) | set(broker) | set(out.owner_net)):
        joes = net.get(s, ZERO)
        expected = broker.get(s, ZERO) - out.owner_net.get(s, ZERO)
        if joes != expected:
            owner = out.owner_net.get(s, ZERO)
            bad.append(f"{s}: Joe holds {joes}, the broker {broker.get(s, ZERO)} (owner {owner})")
    return bad


def protected_or_halted(out: Outcome, w: World, f: Facts) -> list[str]:
    """Every open position of Joe's has a resting stop of its size at the broker, or Joe is
    REDUCING/HALTED with an alert saying why."""
    broker = w.positions()
    stops: dict[str, Decimal] = {}
    for st in w.stops():
        if st.ref in f.joes:
            stops[st.symbol] = stops.get(st.symbol, ZERO) + st.signed_qty
    bad = []
    for s in sorted(set(broker) | set(stops)):
        # What Joe holds there now: the owner's own trades are not Joe's, but an owner's close of one of
        # Joe's deals took that part away from Joe (and its stop with it).
        joes = broker.get(s, ZERO) - out.owner_net.get(s, ZERO) + out.owner_closed.get(s, ZERO)
        if stops.get(s, ZERO) == joes:
            continue
        why = f"{s}: Joe holds {joes} at the broker, its resting stops cover {stops.get(s, ZERO)}"
        if f.state in (TradingState.REDUCING, TradingState.HALTED):
            if not (out.alerts or out.queued_alerts):
                bad.append(f"{why}; {f.state.value} but no alert says why")
            continue
        bad.append(f"{why}; trading is {f.state.value}")
    return bad


def no_reversal(out: Outcome, w: World, f: Facts) -> list[str]:
    """No exit or leg ever reversed a position (Joe only opens longs here). Where the broker keeps a
    timeline of executions with corrections (IBKR), judged in it (`chaos.timeline`): a sell of Joe's
    that left Joe short when it filled, at the broker and in Joe's stored fills placed in the broker's
    order; a short a later correction made is the broker's act (`correction_short_known`). Elsewhere
    (Capital: no corrections) by the Joe-held position sampled after each step and Joe's fills' net."""
    tl = w.timeline()
    if tl is None:
        if out.min_joe_position < 0:
            return [f"Joe's position at the broker went to {out.min_joe_position}"]
        return [f"{s}: Joe's fills net {q}" for s, q in joe_net(f).items() if q < 0]
    bad = [f"at the broker: {r}" for r in walk(tl).reversals]
    return bad + [f"in Joe's store: {r}" for r in walk(as_stored(tl, f.fills)).reversals]


def correction_short_known(out: Outcome, w: World, f: Facts) -> list[str]:
    """A position a broker's correction left short (`no_reversal`: not an exit's reversal) is known
    to Joe, never silently left: Joe's fills net to the broker's Joe-held quantity, or trading is
    HALTED/REDUCING with an alert naming the symbol. Judged on every short Joe-held position at the
    end of the run (one an exit made is also `no_reversal`'s); brokers without a timeline: none."""
    tl = w.timeline()
    if tl is None:
        return []
    broker = walk(tl)
    net, bad = joe_net(f), []
    said = [repr(a) for a in (*out.alerts, *out.queued_alerts)]
    for s, held in sorted(broker.held.items()):
        if held >= 0 or net.get(s, ZERO) == held:
            continue
        how = "; ".join(broker.shorted.get(s, [])) or "no correction: see no_reversal"
        why = f"{s}: Joe short {held} at the broker ({how}), Joe's fills net {net.get(s, ZERO)}"
        if f.state not in (TradingState.REDUCING, TradingState.HALTED):
            bad.append(f"{why}; trading is {f.state.value}")
        elif not any(s in a for a in said):
            bad.append(f"{why}; {f.state.value} but no alert names {s}")
    return bad


def halted_after_unexplained(out: Outcome, w: World, f: Facts) -> list[str]:
    """The trading state is HALTED after any unexplained reconciliation."""
    bad = [r for r in out.reports if not r.explained]
    if bad and f.state is not TradingState.HALTED:
        return [f"unexplained reconciliation ({bad[0].summary()}) but trading is {f.state.value}"]
    return []


def audit_chain(out: Outcome, w: World, f: Facts) -> list[str]:
    """The audit chain verifies, tail included (against the store's anchor)."""
    rep = verify(out.data_dir / "audit", stored_anchor(out.data_dir))
    return [] if rep.ok else [f"audit chain broken: {rep.to_dict()}"]


def order_events_audited(out: Outcome, w: World, f: Facts) -> list[str]:
    """Every order in the store has its attempt audited, every stored fill its `order.fill` record,
    and every order's current state a record that announces it."""
    by_coid: dict[str, list[dict[str, Any]]] = {}
    for r in f.records:
        coid = (r.get("ids") or {}).get("client_order_id")
        if coid:
            by_coid.setdefault(coid, []).append(r)
    audited_fills = {
        (r.get("payload") or {}).get("fill_id") for r in f.records if r.get("event") == "order.fill"
    }
    bad = []
    for o in f.orders:
        recs = by_coid.get(o.client_order_id, [])
        events = {r.get("event") for r in recs}
        if not events & {"order.attempt", "order.adopted"}:
            bad.append(f"{o.client_order_id}: no order.attempt in the audit log")
        tos = {(r.get("payload") or {}).get("to") for r in recs}
        if o.state.value not in tos and not events & set(_STATE_EVENTS.get(o.state, ())):
            bad.append(f"{o.client_order_id}: state {o.state.value} not in the audit log ({sorted(events)})")
    for x in f.fills:
        if x.fill_id not in audited_fills:
            bad.append(f"fill {x.fill_id}: no order.fill audit record")
    return bad


def no_secret(out: Outcome, w: World, f: Facts) -> list[str]:
    """No secret (the broker login) in the audit log, the store's alerts or the child's output."""
    texts = [json.dumps(f.records), "\n".join(out.child_output), repr(out.alerts)]
    return [f"a secret ({s[:2]}…) appears in Joe's output" for s in w.secrets() if any(s in t for t in texts)]


def audit_full_fails_closed(out: Outcome, w: World, f: Facts) -> list[str]:
    """While the audit log's disk is full Joe fails closed: no entry it was asked for reaches the
    broker, every exit it was asked for does (exits stay allowed); nothing is lost (the other
    invariants: every order and fill audited once the disk has room, the store equal to the broker)."""
    placed = w.placements()
    bad = [f"entry {c} reached the broker while the audit disk was full"
           for c in out.full_entries if placed[c]]  # fmt: skip
    bad += [f"the exit of {sig} was not sent while the audit disk was full (exits stay allowed)"
            for sig, sent in out.full_exits if not sent]  # fmt: skip
    return bad


def divergence_consistent(out: Outcome, w: World, f: Facts) -> list[str]:
    """`joe report --divergence` is computed from Joe's store and its paper twin, and agrees with the
    broker: every signal the twin took is intended; an entry counts as filled exactly when the broker
    executed it, with the broker's quantity; filled + missed + extra = intended; one latency sample
    per filled order; the gap is the sum of the orders' gaps."""
    from joe.reporting.divergence import from_live, to_markdown

    d = from_live(f.orders, f.fills, f.twin_fills)
    doc, bad = d.to_dict(), []
    to_markdown(d)  # renders
    twin = {x.client_order_id for x in f.twin_fills}
    if not twin <= set(d.intended):
        bad.append(f"twin entries not intended: {sorted(twin - set(d.intended))}")
    broker_qty: dict[str, Decimal] = {}
    for b in w.fills():
        if b.joes and b.ref in twin and b.signed_qty > 0:
            broker_qty[b.ref] = broker_qty.get(b.ref, ZERO) + b.signed_qty
    matched = {m.client_order_id: m.actual_qty for m in d.matches}
    if matched != broker_qty:
        bad.append(f"divergence filled {matched}, the broker executed {broker_qty}")
    extra_intended = [c for c in d.extra if c in d.intended]
    if doc["filled"] + doc["missed"] + len(extra_intended) != doc["intended"]:
        bad.append(f"filled {doc['filled']} + missed {doc['missed']} + extra {len(extra_intended)} "
                   f"!= intended {doc['intended']}")  # fmt: skip
    filled_orders = {x.client_order_id for x in f.fills} & {o.client_order_id for o in f.orders}
    if doc["latency_s"]["signal_to_fill"]["n"] != len(filled_orders):
        bad.append(
            f"{doc['latency_s']['signal_to_fill']['n']} latency samples for {len(filled_orders)} orders"
        )
    if d.pnl_gap != sum((m.pnl_gap for m in d.matches), ZERO):
        bad.append("the PnL gap is not the sum of the orders' gaps")
    return bad


CHECKS: dict[str, Callable[[Outcome, World, Facts], list[str]]] = {
    "no_duplicate_order": no_duplicate_order,
    "every_fill_once": every_fill_once,
    "no_phantom_fill": no_phantom_fill,
    "positions_equal": positions_equal,
    "protected_or_halted": protected_or_halted,
    "no_reversal": no_reversal,
    "correction_short_known": correction_short_known,
    "halted_after_unexplained": halted_after_unexplained,
    "audit_chain": audit_chain,
    "order_events_audited": order_events_audited,
    "no_secret": no_secret,
    "audit_full_fails_closed": audit_full_fails_closed,
    "divergence_consistent": divergence_consistent,
}


def check(out: Outcome, world: World) -> dict[str, list[str]]:
    """Every invariant → its violations (empty list: it holds)."""
    facts = Facts(out)
    return {name: fn(out, world, facts) for name, fn in CHECKS.items()}
