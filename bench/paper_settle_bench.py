"""Paper book settle: how long bringing a book forward takes when it was last run long ago.

The issue's case: positions opened on 1999-10-20, next run 2018-02-09 — every daily bar of each held
symbol in between goes through the exits (about 4,600 bars each). Held positions here have a stop
and a target no bar reaches (the worst case: nothing closes, every bar is checked). Prints bars/s and the time
per settle; run with `.venv/bin/python bench/paper_settle_bench.py`.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pandas as pd

from joe.config.schema import ExecutionConfig
from joe.core.events import NullAudit
from joe.core.models import Direction, Signal
from joe.portfolio import PaperPortfolio
from joe.store import open_store

try:
    from _machine import machine
except ImportError:  # run from elsewhere

    def machine() -> str:
        return "unknown machine"


N_POSITIONS = 10
DAYS = pd.bdate_range("1999-10-20", "2018-02-09", tz="UTC")


def history(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.015, len(DAYS))))
    return pd.DataFrame(
        {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close}, index=DAYS
    ).round(4)


async def main() -> None:
    hist = {f"S{i}": history(i) for i in range(N_POSITIONS)}
    t0 = DAYS[0].to_pydatetime()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'joe.db'}", data_dir=tmp)
        pf = PaperPortfolio.load(store, NullAudit(), ExecutionConfig())
        sigs = [
            Signal(
                f"s{i}",
                sym,
                "bench",
                Direction.LONG,
                D(str(h["close"].iloc[0])),
                D("0.01"),
                D(1_000_000),
                0.9,
                "b",
                t0,
                quantity=D(10),
            )
            for i, (sym, h) in enumerate(hist.items())
        ]
        await pf.submit(sigs, t0)
        start = time.perf_counter()
        await pf.settle(hist, DAYS[-1].to_pydatetime())
        took = time.perf_counter() - start
        store.close()
    bars = N_POSITIONS * (len(DAYS) - 1)
    print(
        f"paper settle: {N_POSITIONS} positions x {len(DAYS) - 1} bars = {bars} bars in {took:.2f} s "
        f"({bars / took:,.0f} bars/s) on {machine()}  [{datetime.now(UTC):%Y-%m-%d}]"
    )


if __name__ == "__main__":
    asyncio.run(main())
