"""The operator read model: what the dashboard, its JSON API and Telegram show, as plain JSON data —
read from the same places as `joe status` (`joe.safety.status.status_snapshot`), the store and the
audit log; nothing computed twice. Each function takes the runtime and returns dicts/lists ready for a
template, JSON or a chat line. It sits below both outside channels (`joe.web`, `joe.telegram`) so
neither imports the other (Freqtrade's ``rpc.py`` split: channels translate, one place reads)."""

from __future__ import annotations

import csv
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joe.core.order import OrderState

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime
    from joe.safety.control import SafetyContext

MODES = ("paper", "live", "shadow")


def latest_run(rt: Runtime) -> dict[str, Any] | None:
    run = rt.store.latest_run(status="ok")
    if run is None:
        return None
    return {
        "run_id": run.run_id,
        "mode": run.mode,
        "broker": run.broker,
        "source": run.source,
        "as_of": run.as_of.isoformat() if run.as_of else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "summary": {k: v for k, v in (run.summary or {}).items() if k != "timings"},
        "report_dir": run.report_dir,
    }


def overview(rt: Runtime, ctx: SafetyContext) -> dict[str, Any]:
    """`joe status`'s snapshot plus the daemon's heartbeat, the latest run and its regime."""
    from joe.runtime.daemon import alive_only_with_a_holder, heartbeat_health
    from joe.safety.status import status_snapshot

    snap = status_snapshot(rt, ctx)
    snap["daemon"] = alive_only_with_a_holder(heartbeat_health(rt.store), snap["running_pid"])
    run = latest_run(rt)
    snap["latest_run"] = run
    snap["regime"] = (run or {}).get("summary", {}).get("regime")
    return snap


def _marks(run: dict[str, Any] | None) -> dict[str, Decimal]:
    """Last marks by symbol from the latest run's positions.csv (paper marks)."""
    if not run or not run.get("report_dir"):
        return {}
    path = Path(run["report_dir"]) / "positions.csv"
    out: dict[str, Decimal] = {}
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    out[row["symbol"]] = Decimal(row["market_price"])
                except (KeyError, InvalidOperation, TypeError):
                    continue
    except OSError:
        return {}
    return out


def _broker_marks(run: dict[str, Any] | None) -> dict[str, Decimal]:
    """The broker's market price by symbol from the latest live/shadow run's live.json (its positions
    as the broker reported them), when that run was a broker run."""
    if not run or run.get("mode") not in ("live", "shadow") or not run.get("report_dir"):
        return {}
    try:
        doc = json.loads((Path(run["report_dir"]) / "live.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out: dict[str, Decimal] = {}
    for p in doc.get("positions") or [] if isinstance(doc, dict) else []:
        try:
            price = Decimal(str(p["market_price"]))
        except (KeyError, TypeError, InvalidOperation):
            continue
        if price.is_finite() and price > 0:
            out[str(p["symbol"])] = price
    return out


def positions(rt: Runtime, ctx: SafetyContext) -> dict[str, Any]:
    """Open positions with their stop and its distance (from the last mark when known, else from the
    entry price, said in `distance_from`), and positions at a broker with their broker-side stops and
    their distance from the broker's last market price (else from the entry, said the same way)."""
    from joe.safety.status import broker_positions

    marks = _marks(latest_run(rt))
    rows = []
    for mode in MODES:
        for p in rt.store.open_positions(mode):
            ref, ref_name = (marks[p.symbol], "mark") if p.symbol in marks else (p.avg_price, "entry")
            distance = None
            if p.stop_loss is not None and ref:
                distance = str(((ref - p.stop_loss).copy_abs() / ref * 100).quantize(Decimal("0.01")))
            rows.append(
                {
                    "mode": mode,
                    "broker": p.broker,
                    "symbol": p.symbol,
                    "quantity": str(p.quantity),
                    "avg_price": str(p.avg_price),
                    "price": str(ref),
                    "stop": None if p.stop_loss is None else str(p.stop_loss),
                    "target": None if p.take_profit is None else str(p.take_profit),
                    "stop_distance_pct": distance,
                    "distance_from": ref_name,
                    "opened_at": p.opened_at.isoformat(),
                }
            )
    at_broker = broker_positions(rt)
    live_marks = _broker_marks(latest_run(rt))
    for row in at_broker:
        # Each broker-side stop's distance from the current price: the broker's market price of the
        # latest live/shadow run; only when none is known, from the entry's average fill (said in
        # `distance_from`).
        legs = rt.store.orders_for_signal(row["signal_id"])
        entry = next((o for o in legs if o.intent.leg.value == "entry"), None)
        entry_price = entry.avg_fill_price if entry is not None else None
        row["entry_price"] = None if entry_price is None else str(entry_price)
        mark = live_marks.get(row["symbol"])
        price = mark if mark is not None else entry_price
        row["price"] = None if price is None else str(price)
        row["distance_from"] = "mark" if mark is not None else "entry"
        for stop in row["broker_stops"]:
            sp = stop.get("stop_price")
            dist = abs(price - Decimal(sp)) / price * 100 if price and sp else None
            stop["distance_pct"] = None if dist is None else str(dist.quantize(Decimal("0.01")))
    return {"positions": rows, "broker_positions": at_broker}


def orders(
    rt: Runtime,
    *,
    mode: str | None = None,
    state: str | None = None,
    symbol: str | None = None,
    broker: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Orders, newest first, filtered by mode, state (a state name, or ``working``), symbol, broker."""
    from joe.core.order import TERMINAL_STATES

    states: set[OrderState] | None = None
    if state == "working":
        states = set(OrderState) - set(TERMINAL_STATES)
    elif state:
        states = {OrderState(state.upper())} if state.upper() in OrderState.__members__ else set()
    rows = rt.store.orders(state=states, mode=mode or None, broker=broker or None)
    out = []
    for o in reversed(rows):
        i = o.intent
        if symbol and i.symbol.upper() != symbol.upper():
            continue
        out.append(
            {
                "client_order_id": o.client_order_id,
                "symbol": i.symbol,
                "side": i.side.value,
                "leg": i.leg.value,
                "order_type": i.order_type.value,
                "quantity": str(i.quantity),
                "filled": str(o.filled_quantity),
                "limit_price": None if i.limit_price is None else str(i.limit_price),
                "stop_price": None if i.stop_price is None else str(i.stop_price),
                "state": o.state.value,
                "broker_order_id": o.broker_order_id,
            }
        )
        if len(out) >= limit:
            break
    return out


def fills(
    rt: Runtime, *, mode: str | None = None, symbol: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    out = []
    for f in reversed(rt.store.fills(mode=mode or None)):
        if symbol and f.symbol.upper() != symbol.upper():
            continue
        out.append(
            {
                "fill_id": f.fill_id,
                "client_order_id": f.client_order_id,
                "symbol": f.symbol,
                "side": f.side.value,
                "quantity": str(f.quantity),
                "price": str(f.price),
                "commission": str(f.commission),
                "ts": f.ts.isoformat(),
            }
        )
        if len(out) >= limit:
            break
    return out


def equity(rt: Runtime, mode: str | None = None) -> dict[str, Any]:
    """The equity curve of `mode` (default: the process's) and its drawdown from the running peak, %."""
    m = mode or rt.mode
    ts, eq, dd = [], [], []
    peak = Decimal(0)
    for p in rt.store.equity_curve(m):
        peak = max(peak, p.equity)
        ts.append(p.ts.isoformat())
        eq.append(float(p.equity))
        dd.append(float((p.equity - peak) / peak * 100) if peak else 0.0)
    return {"mode": m, "ts": ts, "equity": eq, "drawdown_pct": dd}


def audit_tail(rt: Runtime, n: int = 50) -> list[dict[str, Any]]:
    from joe.audit.chain import tail

    return tail(rt.data_dir / "audit", n)[::-1]


def report_html(rt: Runtime) -> Path | None:
    """The latest ok run's report.html, if it is still there."""
    run = latest_run(rt)
    if not run or not run.get("report_dir"):
        return None
    path = Path(run["report_dir"]) / "report.html"
    return path if path.is_file() else None
