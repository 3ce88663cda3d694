"""Held positions whose instrument stopped trading (delisted, merged, a file that stops): found causally
and closed at their last known close, exit reason "data ended" (`settle_book` calls `close_data_ended`).
Moved out of `joe.runtime.stages` to keep that module to the stages themselves."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from joe.analysis.panel import Panel, to_utc_timestamp
from joe.core.logging import get_logger
from joe.data.calendars import exchange_of, sessions_after
from joe.portfolio.paper import DATA_ENDED

if TYPE_CHECKING:
    from joe.runtime.stages import RunState

log = get_logger("joe.runtime.run")  # the run's logger, as when this lived in stages


def market_sessions_after(panel: Panel, last: datetime, until: datetime) -> int:
    """Sessions of the market in (`last`, `until`]: the panel's dates in that span on which some
    instrument has a close (the panel holds only dates some series traded on)."""
    dates = panel.dates
    lo = int(dates.searchsorted(to_utc_timestamp(last), side="right"))
    hi = int(dates.searchsorted(to_utc_timestamp(until), side="right"))
    if hi <= lo:
        return 0
    return int(np.isfinite(panel.close[lo:hi]).any(axis=1).sum())


def data_ended(st: RunState, until: datetime) -> dict[str, datetime]:
    """Held symbols whose data has ended at `until` → the bar time of their last close.

    A symbol's data has ended when it has no bar for `paper.data_ended_sessions` consecutive sessions
    of the market (dates on which other instruments of the run's data trade) and, for an instrument of
    an exchange, as many sessions of its own exchange (a long local holiday is not an end). Causal: it
    reads only bars up to `until`. Never a symbol whose bars the data-quality stage refused to trust
    (`follow_data_quality`: it keeps its mark until the file is fixed), nor, outside a backtest, one
    whose history the source could not give (a failed read is not an end of the data)."""
    assert st.pf is not None
    if st.snap is None or not st.pf.ledger.positions:
        return {}
    n = st.rt.config.paper.data_ended_sessions
    # A file the quality stage refused on an error other than staleness (a bad row, an unconfirmed split)
    # keeps its mark until it is fixed: its data has not ended, Joe cannot read it. Stale is the end.
    untrusted = set(st.snap.quality.rejected_bars()) | {
        f.symbol for f in st.snap.quality.findings if f.severity == "error" and f.check != "stale"
    }
    readable = None if st.held_bars is not None else set(st.held_history)
    out: dict[str, datetime] = {}
    for pid, pos in st.pf.ledger.positions.items():
        sym = pos.symbol
        if sym in out or sym in untrusted or (readable is not None and sym not in readable):
            continue
        last = st.pf.marked_at(pid) or pos.opened_at
        # fewer calendar days than sessions needed: no numpy (a backtest asks this of every position daily)
        if (until.date() - last.date()).days < n or market_sessions_after(st.snap.panel, last, until) < n:
            continue
        inst = st.snap.instruments.get(sym)
        code = exchange_of(sym, inst.asset_class.value, inst.exchange) if inst else exchange_of(sym)
        if code is not None and sessions_after(code, last.date(), until.date()) < n:
            continue
        out[sym] = last
    return out


def close_data_ended(st: RunState, until: datetime) -> None:
    """Close the held positions whose instrument stopped trading (`data_ended`) at their last known
    close, exit reason "data ended", and say each once (the run's warnings, `st.data_ended`, the log).

    Without this a position in a delisted symbol (or a file that stops) is never settled again: it
    keeps its last mark for ever and, its correlation unknown, fills the risk rules' exposure limits,
    so no entry is approved for the rest of a backtest."""
    assert st.pf is not None
    ended = data_ended(st, until)
    if not ended:
        return
    n = st.rt.config.paper.data_ended_sessions
    for pos, mark in st.pf.close_data_ended(ended, until):
        line = (
            f"{pos.symbol}: no bar since {mark.ts.date()} ({n}+ sessions while the market traded): its data "
            f"has ended (delisted, merged or the file stops); the position was closed at its last close "
            f"{mark.price} on {until.date()}, exit reason '{DATA_ENDED}'"
        )
        st.warnings.append(line)
        st.data_ended.append(line)
        st.closed += 1
        log.warning("position.data_ended", symbol=pos.symbol, last_bar=mark.ts.date().isoformat(),
                    price=str(mark.price), closed_on=until.date().isoformat())  # fmt: skip
