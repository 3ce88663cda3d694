"""Read a broker's demo-live record (issue 19) from the store and the hash-chained audit log.

The record is evidence, so it is read only from what Joe wrote as it happened, never from a file a
person keeps: the audit chain is verified first (against the store's anchor) and a broken chain
makes the record unavailable (the gate then fails). From the audit log:

- **days**: the UTC day of each `run.started` of a live or shadow run at `broker` whose payload says
  `real_money: false` and `simulator: false`, whose connection's `run.venue` record says
  `simulator: false` (what the far end said it is on the wire, never the port: review r16 defect 4),
  and whose run row in the store finished `ok`. A run against Joe's simulator (either record says
  so) is counted apart (`simulator_days`) and never toward the gate; a run without those fields or
  without its `run.venue` (written before this version) does not count either.
- **incidents** at `broker` (a record without a broker counts against every broker: fail closed):
  `reconcile.report`, `live.reconciled` or `daemon.reconciled` with `explained: false` (an
  unexplained reconciliation mismatch); `position.unprotected` (a position left without its full
  protective stop). An incident on a day on which `broker` ran only with real money belongs to the
  real-money account, not to the demo record, and is left out.

From the store: orders at `broker` in mode live still in state UNKNOWN (`unresolved_unknown`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joe.audit.anchor import StoreAnchor
from joe.audit.chain import day_files, parse_line
from joe.audit.health import chain_health
from joe.config.graduation import UNEXPLAINED, UNPROTECTED, DemoRecord, Incident
from joe.core.order import OrderState

if TYPE_CHECKING:
    from joe.store import Store

_RECONCILE_EVENTS = ("reconcile.report", "live.reconciled", "daemon.reconciled")


def _records(audit_dir: Path) -> Iterator[dict[str, Any]]:
    for path in day_files(audit_dir):
        with path.open("rb") as fh:
            for line in fh:
                rec = parse_line(line.rstrip(b"\n"))[0] if line.strip() else None
                if rec is not None:
                    yield rec


def _day(rec: dict[str, Any]) -> date | None:
    try:
        return datetime.fromisoformat(str(rec["ts"]).replace("Z", "+00:00")).date()
    except (KeyError, ValueError):
        return None


def _incident(rec: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, detail) when `rec` is an incident record, else None."""
    event, payload = rec.get("event"), rec.get("payload") or {}
    if event in _RECONCILE_EVENTS and payload.get("explained") is False:
        detail = payload.get("summary") or payload.get("findings") or "not explained"
        return UNEXPLAINED, f"{event}: {str(detail)[:160]}"
    if event == "position.unprotected":
        return UNPROTECTED, f"{payload.get('symbol', '?')}: {str(payload.get('reason', ''))[:160]}"
    return None


def read_demo_record(store: Store, audit_dir: Path | str, broker: str) -> DemoRecord:
    """The demo-live record of `broker` (see the module docstring). Never raises for bad data:
    what cannot be read is the record's `problem`, and the gate then fails."""
    audit_dir = Path(audit_dir)
    try:
        health = chain_health(audit_dir, StoreAnchor(store).load_anchor())
    except Exception as exc:  # an unreadable folder proves nothing
        return DemoRecord(broker, problem=f"audit log unreadable ({type(exc).__name__})")
    if not health.ok:
        return DemoRecord(broker, problem=f"audit chain {health.summary}")
    demo: set[date] = set()
    real: set[date] = set()
    sim: set[date] = set()
    incidents: list[tuple[date, str, str]] = []
    records = list(_records(audit_dir))
    venue: dict[str, bool] = {}  # run id -> the connection said "simulator"
    for rec in records:
        if rec.get("event") == "run.venue":
            rid = str((rec.get("ids") or {}).get("run_id", ""))
            sim_flag = (rec.get("payload") or {}).get("simulator")
            if rid and isinstance(sim_flag, bool):
                venue[rid] = venue.get(rid, False) or sim_flag
    for rec in records:
        day = _day(rec)
        if day is None:
            continue
        payload = rec.get("payload") or {}
        if rec.get("event") == "run.started":
            if payload.get("broker") != broker or payload.get("mode") not in ("live", "shadow"):
                continue
            if payload.get("real_money") is True:
                real.add(day)
                continue
            if payload.get("real_money") is not False or "simulator" not in payload:
                continue  # written before the record existed: not evidence either way
            run_id = str((rec.get("ids") or {}).get("run_id", ""))
            run = store.get_run(run_id)
            if run is None or run.status != "ok" or run_id not in venue:
                continue  # failed, never finished, or no word from the connection: proves nothing
            (sim if payload.get("simulator") or venue[run_id] else demo).add(day)
            continue
        found = _incident(rec)
        if found is None:
            continue
        if payload.get("broker", broker) != broker:
            continue
        incidents.append((day, *found))
    kept = [Incident(d, k, t) for d, k, t in incidents if not (d in real and d not in demo and d not in sim)]
    unknown = tuple(
        o.client_order_id for o in store.orders(state={OrderState.UNKNOWN}, mode="live", broker=broker)
    )
    return DemoRecord(
        broker=broker,
        days=tuple(sorted(demo)),
        incidents=tuple(sorted(kept, key=lambda i: i.day)),
        unresolved_unknown=unknown,
        simulator_days=len(sim - demo),
    )


def demo_record_for(settings: Any, broker: str) -> DemoRecord | None:
    """The record for `joe mode` / start-up from the settings' store and audit folder (None: no store
    to read, e.g. the broker is `sim`)."""
    if broker not in ("ibkr", "capital"):
        return None
    from joe.store import open_store

    store = open_store(settings.database_url, data_dir=settings.data_dir)
    try:
        return read_demo_record(store, Path(settings.data_dir) / "audit", broker)
    finally:
        store.close()
