"""Time the safety layer's hot paths.

Usage: python bench/safety_bench.py [n_records] [n_signals]
- audit writes (fsync on and off) with the store anchor attached, per record;
- `joe audit verify` / the run's preflight chain check over n_records, with the anchor;
- the RiskGate screening n_signals entries (every rule, correlation over 60 bars of 500 symbols);
- `redact_text` on a log line with five registered secrets (every two-step form, layout-blind matching).
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from joe.audit.anchor import StoreAnchor
from joe.audit.chain import verify
from joe.audit.log import AuditLog
from joe.audit.redaction import redact_text
from joe.config.schema import RiskConfig
from joe.core.events import NullAudit
from joe.core.models import Direction, Signal
from joe.safety.risk_gate import GateBook, QuoteMark, RiskGate
from joe.store import open_store


def bench_audit(n: int) -> None:
    """Per-record write cost with the store anchor (fsync on and off, and without an anchor for the
    baseline), then verify of the written chain against its anchor (what `joe audit verify`, the
    run's preflight and `pre_run_checks` pay)."""
    with tempfile.TemporaryDirectory() as d:
        for fsync in (False, True):
            for anchored in (False, True):
                data = Path(d) / f"data-{fsync}-{anchored}"
                store = open_store(data_dir=data)
                log = AuditLog(data / "audit", fsync=fsync)
                if anchored:
                    log.attach_anchor(StoreAnchor(store))
                k = n if not fsync else min(n, 300)
                t0 = time.perf_counter()
                for i in range(k):
                    log.record(
                        "order.fill", {"i": i, "qty": Decimal("1.5"), "px": 101.25}, client_order_id=f"c{i}"
                    )
                dt = time.perf_counter() - t0
                what = "store anchor" if anchored else "no anchor"
                print(f"audit write fsync={fsync} ({what}): {k} records, {dt / k * 1e3:.2f} ms/record")
                if not fsync and anchored:
                    anchor = StoreAnchor(store).load_anchor()
                    t0 = time.perf_counter()
                    report = verify(data / "audit", anchor)
                    dt = time.perf_counter() - t0
                    assert report.ok and report.records == k, report
                    print(
                        f"verify (anchor seq {anchor.seq if anchor else None}): {report.records} records "
                        f"in {dt * 1000:.0f} ms ({report.records / dt:,.0f} records/s)"
                    )
                log.close()
                store.close()


def bench_gate(n_signals: int) -> None:
    rng = np.random.default_rng(3)
    now = datetime(2018, 2, 2, 21, tzinfo=UTC)
    symbols = [f"S{i:03d}" for i in range(500)]
    returns = pd.DataFrame(rng.normal(0, 0.01, (61, 500)), columns=symbols)
    quotes = {s: QuoteMark(Decimal(100), now) for s in symbols}
    book = GateBook(
        now, Decimal(10_000_000), [], quotes, returns=returns, day_start_equity=Decimal(10_000_000)
    )
    sigs = [
        Signal(
            f"x:{s}",
            s,
            "t",
            Direction.LONG,
            Decimal(100),
            Decimal(90),
            Decimal(120),
            0.9,
            "r",
            now,
            quantity=Decimal(10),
        )
        for s in symbols[:n_signals]
    ]
    # Limits past the yaml's bounds so that every signal is judged by every rule (a bench, not a config).
    cfg = RiskConfig().model_copy(
        update={"max_positions": 10_000, "max_orders_per_second": 10_000, "max_orders_per_minute": 10_000}
    )
    gate = RiskGate(cfg, NullAudit(), clock=lambda: now)
    t0 = time.perf_counter()
    approved, _ = gate.screen(sigs, book)
    dt = time.perf_counter() - t0
    per = dt / len(sigs) * 1e6
    print(
        f"risk gate: {len(sigs)} entries ({len(approved)} approved) in {dt * 1000:.0f} ms, {per:.0f} µs/entry"
    )


def bench_redaction(n_lines: int = 2000) -> None:
    """Per-line cost of `redact_text` (what every console line, log line and audit payload string pays)."""
    from joe.audit.redaction import clear_secrets, register_secret, registered_secret_count

    clear_secrets()
    t0 = time.perf_counter()
    for s in (
        "Sup3rSecretValue123",
        'pa"ss\\wörd-Secret1',
        "straßeSecret99",
        "x" * 40 + "tok",
        "abcd-efgh-1234",
    ):
        register_secret(s)
    reg = time.perf_counter() - t0
    line = (
        "2026-11-30 12:00:00 INFO joe.run: opened 3 positions SPY 100 @ 412.33 with stop 400.12, order id "
        "joe-2b1c-entry, account DU123456, report data/reports/2026-11-30/run.html"
    )
    t0 = time.perf_counter()
    for _ in range(n_lines):
        redact_text(line)
    per = (time.perf_counter() - t0) / n_lines
    print(
        f"redaction: 5 secrets -> {registered_secret_count()} forms registered in {reg * 1000:.0f} ms; "
        f"redact_text {per * 1e6:.0f} us per {len(line)}-char line"
    )
    clear_secrets()


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    bench_audit(n)
    bench_gate(m)
    bench_redaction()
