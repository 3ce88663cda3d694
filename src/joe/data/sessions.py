"""Daily bars on days their exchange has no session (weekends, exchange holidays): left out, named.

Used by the file source (`joe.data.files`) on each file it reads; the calendars are
`joe.data.calendars` (exchange-calendars).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from joe.core.models import AssetClass
from joe.data.calendars import day_array, exchange_of, holiday_name, keeps_holidays, non_sessions
from joe.data.dates import is_daily_spacing
from joe.data.findings import Finding

if TYPE_CHECKING:
    from joe.data.files import LoadedFile


def drop_non_session_bars(loaded: LoadedFile, kind: AssetClass) -> LoadedFile:
    """A share's, fund's or index's daily bars on a day its exchange has no session - a weekend or an
    exchange holiday (2023-07-04 on the NYSE, 2023-08-28 in London) - are left out with a `non_session`
    warning naming the rows and the holiday, so one stray row can neither move the run's as-of date
    (and leave every other file a session behind) nor feed a signal. The exchange is the symbol's
    listing suffix (``VOD.L`` → XLON), else the NYSE (`joe.data.calendars.exchange_of`); FX and crypto
    trade on weekends and holidays and are not checked."""
    code = exchange_of(loaded.symbol, kind.value)
    if not loaded.daily or code is None or loaded.frame.empty:
        return loaded
    index = pd.DatetimeIndex(loaded.frame.index)
    if not is_daily_spacing(index):  # weekly/monthly labels: any weekday
        return loaded
    # A weekday-calendar file (a bar on most holidays: synthetic, or holiday-filled) is checked for
    # weekends only: its holiday bars are its calendar (`keeps_holidays`).
    days = day_array(index)  # the bars' dates, once (a pandas weekday field costs more than the check)
    calendar = keeps_holidays(code, days)
    weekend = non_sessions(code, index) if calendar else ~np.is_busday(days)
    if not weekend.any():
        return loaded
    lines = loaded.rows[weekend]
    days = index[weekend]

    def why(d: pd.Timestamp) -> str:
        if d.day_of_week >= 5:
            return d.day_name()
        return f"{d.day_name()}, {holiday_name(code, d.date()) or 'an exchange holiday'}"

    listed = ", ".join(
        f"row {int(r)} ({d.date()}, {why(d)})" for r, d in zip(lines[:5], days[:5], strict=True)
    )
    more = f" and {len(lines) - 5} more" if len(lines) > 5 else ""
    note = Finding(
        loaded.symbol,
        "warning",
        "non_session",
        f"{len(lines)} daily bar(s) on days {code} has no session - a weekend or an exchange holiday "
        f"({listed}{more}): left out (they do not move the as-of date); a time zone shifted by a day, a "
        f"wrong date or a filler row? Check those rows",
        loaded.file,
        int(lines[0]),
        days[0].date().isoformat(),
    )
    return replace(
        loaded,
        frame=loaded.frame.loc[~weekend],
        rows=loaded.rows[~weekend],
        findings=[*loaded.findings, note],
    )
