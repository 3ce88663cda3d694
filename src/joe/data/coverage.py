"""No series vanishes: the symbols a source holds but the run's universe left out, each named.

`FrameSource.universe_now()` (the default scan) lists the symbols *live* at the as-of date, so a
series that stopped updating - or has not started yet - never reached the quality stage and simply
disappeared from the run. `left_out_findings` closes that gap: with it, every symbol of a file or
cache source is in the analysed panel or has an error finding saying why it is not (issue 14):

* ``stale`` - its last bar is older than the live window: how many sessions (of the run's calendar,
  the panel's dates) before the as-of date, its last bar's date, its file and row;
* ``not_started`` - no bar up to the as-of date (its first bar is later); file sources only, since
  the sample's synthetic universe starts in 2014 by design;
* ``universe_cap`` - cut by ``pipeline.universe_size``.

Symbols a scan leaves out by choice (another asset class) are not listed. Broker sources have no list
of "their" symbols beyond the scan: nothing to account for.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from joe.data.frames import FrameSource
from joe.data.quality import Finding


def _session_gap(dates: pd.DatetimeIndex, last: pd.Timestamp) -> str:
    n = int((dates > last).sum())
    return f"more than {n}" if len(dates) and last < dates[0] else str(n)


def left_out_findings(
    source: object, analysed: Iterable[str], dates: pd.DatetimeIndex, *, capped: Iterable[str] = ()
) -> list[Finding]:
    """Error findings for the `source`'s symbols not in `analysed` (see the module docstring).

    `analysed`: the symbols the run took (in the panel or already given a finding, plus the regime's
    index/VIX); `dates`: the run's calendar (panel dates, last = as-of); `capped`: symbols the
    universe cap cut. Returns [] for sources that are not a `FrameSource`.
    """
    if not isinstance(source, FrameSource):
        return []
    locate = getattr(source, "locate", None)
    as_of = source.as_of
    out: list[Finding] = []
    for sym in capped:
        out.append(
            Finding(
                sym,
                "error",
                "universe_cap",
                "not analysed: the universe is capped by pipeline.universe_size; raise it to include "
                "this symbol",
                locate(sym, pd.Timestamp(as_of, tz="UTC"))[0] if locate else None,
            )
        )
    seen = set(analysed) | set(capped)
    for sym in source.known_symbols():
        if sym in seen or source.is_live(sym):
            continue
        last = source.last_bar(sym)
        if last is None:
            if not source.account_for_unstarted:
                continue
            first = source.first_bar(sym)
            where = locate(sym, first) if locate and first is not None else (None, None)
            when = f"its first bar is {first.date()}" if first is not None else "it has no bars"
            out.append(
                Finding(
                    sym,
                    "error",
                    "not_started",
                    f"no bar up to the as-of date {as_of} ({when}): not scored - choose a later --as-of",
                    where[0],
                    where[1],
                    None if first is None else first.date().isoformat(),
                )
            )
            continue
        file, row = locate(sym, last) if locate else (None, None)
        n = _session_gap(dates, last)
        out.append(
            Finding(
                sym,
                "error",
                "stale",
                f"stale {n} sessions: last bar {last.date()} is {n} sessions before the as-of date {as_of}; "
                f"not scored - update the file or remove it",
                file,
                row,
                last.date().isoformat(),
            )
        )
    return out
