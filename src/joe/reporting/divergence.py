"""The shadow divergence report (issue 13 Deliver 4): what Joe intended against what happened.

Two sources, one shape (`Divergence`):

* **live with its paper twin** (`from_live`): the live store's orders and fills (mode `live`) against
  the paper twin's fills (`<data dir>/twin-live.db`, mode `paper`). Live and twin share each leg's
  client order id (`joe.core.ids.client_order_id(signal, leg)`), so an order is *intended* when the
  twin filled it or Joe wrote it as an entry, *filled* when the broker executed it, *missed* when the
  twin filled it and the broker did not (rejected, cancelled, lost, still working), *extra* when the
  broker filled it and the twin did not.
* **shadow** (`from_shadow`): the `shadow.intent` audit records (each would-be entry with the live
  quote's mid it was priced at) against the shadow book's fills (`<data dir>/twin-shadow.db`).
  Nothing is transmitted in shadow, so there is no acknowledgement and no latency.

Per matched order (by client order id; several executions of one order are one volume-weighted
price): slippage in basis points, positive when the actual price was worse than the intended one
for the order's side (a buy paid more, a sell got less). Latency (live only), in seconds of Joe's
clock and the broker's fill time: signal → ack (the order written → its first ACCEPTED transition),
ack → fill (→ its first execution), signal → fill. PnL gap: the money the difference cost, intended
minus actual (negative: actual did worse), in the instrument's currency: Σ (intended − actual
price) × side sign × matched quantity, plus Σ (intended − actual commission). Decimal throughout.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from joe.core.models import Fill, OrderLeg, Side
from joe.core.order import Order, OrderState

ZERO = Decimal(0)
BP = Decimal(10_000)


@dataclass(frozen=True)
class Match:
    """One order both sides filled: quantities and volume-weighted prices, commission totals."""

    client_order_id: str
    symbol: str
    side: Side
    intended_qty: Decimal
    actual_qty: Decimal
    intended_price: Decimal
    actual_price: Decimal
    intended_commission: Decimal = ZERO
    actual_commission: Decimal = ZERO

    @property
    def slippage_bp(self) -> Decimal:
        if not self.intended_price:
            return ZERO
        sign = Decimal(self.side.sign)
        return (self.actual_price - self.intended_price) / self.intended_price * BP * sign

    @property
    def pnl_gap(self) -> Decimal:
        q = min(self.intended_qty, self.actual_qty)
        price = (self.intended_price - self.actual_price) * Decimal(self.side.sign) * q
        return price + (self.intended_commission - self.actual_commission)


@dataclass
class Divergence:
    """Intended vs actual over a run's (or a data folder's) orders; `to_dict` is its JSON."""

    mode: str  # "live" (live vs its paper twin) or "shadow" (intents vs the shadow book)
    intended: list[str] = field(default_factory=list)  # client order ids, sorted
    matches: list[Match] = field(default_factory=list)
    missed: dict[str, str] = field(default_factory=dict)  # client order id -> why (the live state)
    extra: list[str] = field(default_factory=list)  # filled at the broker, not intended by the twin
    signal_to_ack: list[float] = field(default_factory=list)  # seconds, one per acknowledged order
    ack_to_fill: list[float] = field(default_factory=list)
    signal_to_fill: list[float] = field(default_factory=list)

    @property
    def pnl_gap(self) -> Decimal:
        return sum((m.pnl_gap for m in self.matches), ZERO)

    def to_dict(self) -> dict[str, Any]:
        slips = [m.slippage_bp for m in self.matches]
        return {
            "mode": self.mode,
            "intended": len(self.intended),
            "filled": len(self.matches),
            "missed": len(self.missed),
            "missed_orders": dict(sorted(self.missed.items())),
            "extra": sorted(self.extra),
            "slippage_bp": _stats([float(s) for s in slips]),
            "latency_s": None
            if self.mode == "shadow"
            else {
                "signal_to_ack": _stats(self.signal_to_ack),
                "ack_to_fill": _stats(self.ack_to_fill),
                "signal_to_fill": _stats(self.signal_to_fill),
            },
            "pnl_gap": str(self.pnl_gap.quantize(Decimal("0.01"))),
            "orders": [
                {"client_order_id": m.client_order_id, "symbol": m.symbol, "side": m.side.value,
                 "intended_qty": str(m.intended_qty), "actual_qty": str(m.actual_qty),
                 "intended_price": str(m.intended_price), "actual_price": str(m.actual_price),
                 "slippage_bp": str(m.slippage_bp.quantize(Decimal("0.1"))),
                 "pnl_gap": str(m.pnl_gap.quantize(Decimal("0.01")))}
                for m in self.matches
            ],
        }  # fmt: skip


def _stats(xs: Sequence[float]) -> dict[str, float | int | None]:
    """n, mean, the 50th and 90th percentiles (nearest rank), min and max; None when empty."""
    if not xs:
        return {"n": 0, "mean": None, "p50": None, "p90": None, "min": None, "max": None}
    s = sorted(xs)

    def rank(p: float) -> float:
        return s[max(0, -(-len(s) * int(p * 100) // 100) - 1)]

    return {"n": len(s), "mean": round(sum(s) / len(s), 4), "p50": round(rank(0.5), 4),
            "p90": round(rank(0.9), 4), "min": round(s[0], 4), "max": round(s[-1], 4)}  # fmt: skip


_Agg = tuple[Fill, Decimal, Decimal, Decimal]  # first fill, quantity, volume-weighted price, commission


def _vwap(fills: Iterable[Fill]) -> dict[str, _Agg]:
    """client order id -> (first fill, total quantity, volume-weighted price, total commission)."""
    out: dict[str, _Agg] = {}
    for f in fills:
        first, q, notional, comm = out.get(f.client_order_id, (f, ZERO, ZERO, ZERO))
        notional += f.quantity * f.price
        out[f.client_order_id] = (first, q + f.quantity, notional, comm + f.commission)
    return {k: (f, q, (n / q if q else ZERO), c) for k, (f, q, n, c) in out.items()}


def _match(cid: str, a: _Agg, b: _Agg) -> Match:
    return Match(cid, b[0].symbol, b[0].side, a[1], b[1], a[2], b[2], a[3], b[3])


def _ack_time(o: Order) -> datetime | None:
    return next((t.ts for t in o.history if t.to_state is OrderState.ACCEPTED), None)


def from_live(orders: Sequence[Order], fills: Sequence[Fill], twin_fills: Sequence[Fill]) -> Divergence:
    """Live vs its paper twin (see the module docstring). `orders`/`fills`: the live store's (mode
    `live`); `twin_fills`: the twin's (mode `paper`)."""
    live, twin = _vwap(fills), _vwap(twin_fills)
    by_id = {o.client_order_id: o for o in orders}
    entries = {o.client_order_id for o in orders if o.intent.leg is OrderLeg.ENTRY}
    intended = sorted(set(twin) | entries)
    d = Divergence("live", intended=intended)
    for cid in intended:
        if cid in live and cid in twin:
            d.matches.append(_match(cid, twin[cid], live[cid]))
        elif cid not in live:
            o = by_id.get(cid)
            d.missed[cid] = "never written by the live side" if o is None else f"live order {o.state.value}"
        else:  # an entry Joe filled that the twin did not take
            d.extra.append(cid)
    d.extra += sorted(c for c in live if c not in twin and c not in entries and c in by_id
                      and by_id[c].intent.leg is OrderLeg.ENTRY)  # fmt: skip
    for cid in sorted(live):
        o = by_id.get(cid)
        if o is None:
            continue
        ack, first_fill = _ack_time(o), live[cid][0].ts
        d.signal_to_fill.append((first_fill - o.created_at).total_seconds())
        if ack is not None:
            d.signal_to_ack.append((ack - o.created_at).total_seconds())
            d.ack_to_fill.append((first_fill - ack).total_seconds())
    return d


def from_shadow(intents: Sequence[dict[str, Any]], book_fills: Sequence[Fill]) -> Divergence:
    """Shadow intents (the `shadow.intent` audit records: ids.client_order_id, payload.live_price,
    payload.side, payload.quantity) vs the shadow book's fills."""
    book = _vwap(book_fills)
    d = Divergence("shadow")
    for rec in intents:
        cid = str((rec.get("ids") or {}).get("client_order_id") or "")
        p = rec.get("payload") or {}
        if not cid or cid in d.intended:
            continue
        d.intended.append(cid)
        price = p.get("live_price")
        if cid not in book:
            d.missed[cid] = "no live quote" if price is None else "not filled in the shadow book"
            continue
        f, q, vwap, comm = book[cid]
        intended_price = Decimal(str(price)) if price is not None else vwap
        d.matches.append(Match(cid, f.symbol, f.side, Decimal(str(p.get("quantity", q))), q,
                               intended_price, vwap, ZERO, comm))  # fmt: skip
    d.intended.sort()  # the book's exits are its own (no intent): only entries are compared
    return d


def shadow_intents(audit_dir: Path) -> list[dict[str, Any]]:
    """The `shadow.intent` records of an audit folder (its day files, oldest first)."""
    from joe.audit.chain import day_files

    out = []
    for f in day_files(audit_dir):
        for line in f.read_bytes().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("event") == "shadow.intent":
                out.append(rec)
    return out


def to_markdown(d: Divergence) -> str:
    doc = d.to_dict()
    s = doc["slippage_bp"]
    lines = [
        f"## Divergence ({'live vs paper twin' if d.mode == 'live' else 'shadow intents vs shadow book'})",
        "",
        f"Intended {doc['intended']}, filled {doc['filled']}, missed {doc['missed']}, "
        f"extra {len(doc['extra'])}; PnL gap {doc['pnl_gap']} (intended − actual; negative: actual "
        "did worse).",
        "",
        f"Slippage (bp, + = worse): n {s['n']}, mean {s['mean']}, p50 {s['p50']}, p90 {s['p90']}, "
        f"min {s['min']}, max {s['max']}.",
    ]
    if doc["latency_s"] is not None:
        lines += ["", "| latency (s) | n | p50 | p90 | max |", "|---|---|---|---|---|"]
        for k, v in doc["latency_s"].items():
            lines.append(f"| {k.replace('_', ' ')} | {v['n']} | {v['p50']} | {v['p90']} | {v['max']} |")
    else:
        lines += ["", "Latency: none in shadow (nothing is transmitted)."]
    if doc["missed_orders"]:
        lines += ["", "Missed:", *[f"- {c}: {why}" for c, why in doc["missed_orders"].items()]]
    if doc["extra"]:
        lines += ["", "Extra (filled, not intended by the twin):", *[f"- {c}" for c in doc["extra"]]]
    return "\n".join(lines) + "\n"


def load(data_dir: Path, mode: str = "live") -> Divergence:
    """The divergence of a data folder: `live` reads `joe.db` (mode live) and `twin-live.db`;
    `shadow` reads the audit log's `shadow.intent` records and `twin-shadow.db`. Raises
    `FileNotFoundError` naming the file when the twin's database is missing (no such run yet)."""
    from joe.store import open_store

    if mode not in ("live", "shadow"):
        raise ValueError(f"divergence mode must be live or shadow, not {mode!r}")
    twin_db = data_dir / f"twin-{mode}.db"
    if not twin_db.is_file():
        raise FileNotFoundError(
            f"{twin_db} does not exist: run Joe in {mode} mode first (TRADING_MODE={mode} joe run --once)"
        )
    twin = open_store(f"sqlite:///{twin_db}", data_dir=data_dir)
    try:
        twin_fills = twin.fills(mode="paper")
    finally:
        twin.close()
    if mode == "shadow":
        return from_shadow(shadow_intents(data_dir / "audit"), twin_fills)
    store = open_store(data_dir=data_dir)
    try:
        return from_live(store.orders(mode="live"), store.fills(mode="live"), twin_fills)
    finally:
        store.close()
