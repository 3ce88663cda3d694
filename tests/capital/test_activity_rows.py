"""Reading Capital.com's activity history by time window (`AccountsApi.activity`, `rows`): both bounds
inclusive in whole seconds (spec §2, §4.5), a range over a day read one day at a time with the
windows sharing their boundary second, and the answers merged by each row's identity — so a row on
or around a boundary is read exactly once, and rows with one key (one deal, one millisecond, one
source) are each a row of their own, with the same id in every read."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from joe.brokers.capital.accounts import AccountsApi
from joe.brokers.capital.models import Activity
from joe.brokers.capital.rows import merge_reads, number_rows, row_fill_id

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def wire(deal: str, ts: datetime, source: str = "USER", size: float = 1.0) -> dict[str, Any]:
    stamp = ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")
    return {
        "date": stamp, "dateUTC": stamp, "epic": "GOLD", "dealId": deal, "source": source,
        "type": "POSITION", "status": "ACCEPTED",
        "details": {"dealReference": "p_" + deal, "size": size, "direction": "BUY", "level": 2000.0},
    }  # fmt: skip


class History:
    """A broker's `GET /history/activity` over `rows` (oldest first): `from`/`to` filter on `dateUTC`
    in whole seconds, both inclusive, at most a day apart (as the simulator and spec §4.5)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.asked: list[tuple[str, str]] = []

    async def request(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        assert (method, path) == ("GET", "/history/activity")
        lo, hi = (datetime.fromisoformat(params[k]).replace(tzinfo=UTC) for k in ("from", "to"))
        assert timedelta(0) <= hi - lo <= DAY, (lo, hi)
        self.asked.append((params["from"], params["to"]))
        sel = [r for r in self.rows if lo <= _second(r) <= hi]
        if params.get("dealId"):
            sel = [r for r in sel if r["dealId"] == params["dealId"]]
        return {"activities": sel}


def _second(row: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(row["dateUTC"][:19]).replace(tzinfo=UTC)


def read(rows: list[dict[str, Any]], start: datetime, end: datetime, **kw: Any) -> list[Activity]:
    api = AccountsApi(History(rows))  # type: ignore[arg-type]
    return asyncio.run(api.activity(start, end, **kw))


def _content(r: Activity | dict[str, Any]) -> tuple[Any, ...]:
    d = r if isinstance(r, dict) else r.model_dump(mode="json")
    return (d["dealId"], d["dateUTC"], d["source"], float(d["details"]["size"]))


# Instants on and around the day boundaries a read over [T0, T0 + 3 days] is cut at: the boundary
# second itself, its neighbours, with and without milliseconds.
_near = st.builds(
    lambda day, s, ms: T0 + day * DAY + timedelta(seconds=s, milliseconds=ms),
    st.integers(0, 3), st.integers(-2, 2), st.sampled_from([0, 1, 500, 999]),
)  # fmt: skip
_row = st.tuples(
    _near, st.sampled_from(["d1", "d2"]), st.sampled_from(["USER", "SL"]), st.sampled_from([1.0, 2.0])
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_row, max_size=12),
    st.lists(st.integers(0, 2), max_size=12),
    st.sampled_from([T0, T0 + timedelta(milliseconds=700), T0 + DAY - timedelta(seconds=1)]),
    st.sampled_from([T0 + 3 * DAY, T0 + 3 * DAY + timedelta(milliseconds=300), T0 + 2 * DAY]),
)
@example(  # two identical rows on a window boundary second, and one more in it: three rows, once each
    [(T0 + DAY, "d1", "USER", 1.0), (T0 + DAY, "d1", "USER", 1.0),
     (T0 + DAY + timedelta(milliseconds=999), "d1", "USER", 1.0)],
    [], T0, T0 + 3 * DAY,
)  # fmt: skip
def test_each_row_in_the_window_is_read_exactly_once_with_one_id(
    spec: list[tuple[datetime, str, str, float]], dups: list[int], start: datetime, end: datetime
) -> None:
    rows = [wire(deal, ts, source, size) for ts, deal, source, size in spec]
    for i, n in zip(range(len(rows)), dups, strict=False):  # same key again: the same ms, deal, source
        rows += [dict(rows[i])] * n
    rows.sort(key=lambda r: r["dateUTC"])  # the broker lists oldest first (ties keep their order)
    got = read(rows, start, end)
    lo, hi = start.replace(microsecond=0), end
    inside = [r for r in rows if lo <= _second(r) <= hi]
    assert Counter(_content(r) for r in got) == Counter(_content(r) for r in inside)  # none lost, none twice
    ids = [row_fill_id(r) for r in got]
    assert len(set(ids)) == len(ids)
    # The ids are those of one read of the whole window (numbered in the broker's listing order).
    whole = number_rows(Activity.model_validate(r) for r in inside)
    assert sorted(ids) == sorted(row_fill_id(r) for r in whole)
    # A narrower read (one deal) gives each of its rows the same id.
    for deal in ("d1", "d2"):
        narrow = [row_fill_id(r) for r in read(rows, start, end, deal_id=deal)]
        assert narrow == [row_fill_id(r) for r in got if r.dealId == deal]


def test_the_first_row_of_a_key_keeps_the_id_fills_were_stored_under() -> None:
    ts = T0 + timedelta(hours=1, milliseconds=885)
    [a, b] = number_rows(Activity.model_validate(wire("d1", ts)) for _ in range(2))
    assert row_fill_id(a) == "capital:d1:2026-12-01T01:00:00.885:USER"
    assert row_fill_id(b) == "capital:d1:2026-12-01T01:00:00.885:USER#2"


def test_a_row_visible_only_in_the_later_window_is_kept() -> None:
    """Overlapping answers are merged by identity: a key seen once in one answer and twice in the
    next (a row became visible between the two requests) is two rows, not one, not three."""
    ts = T0 + DAY
    first = [Activity.model_validate(wire("d1", ts))]
    second = [Activity.model_validate(wire("d1", ts)) for _ in range(2)]
    merged = merge_reads([first, second])
    assert [row_fill_id(r) for r in merged] == [
        "capital:d1:2026-12-02T00:00:00.000:USER", "capital:d1:2026-12-02T00:00:00.000:USER#2",
    ]  # fmt: skip


def test_a_read_over_days_asks_one_day_at_a_time_sharing_each_boundary_second() -> None:
    h = History([])
    api = AccountsApi(h)  # type: ignore[arg-type]
    asyncio.run(api.activity(T0 + timedelta(milliseconds=400), T0 + 2 * DAY + timedelta(seconds=5)))
    assert h.asked == [
        ("2026-12-01T00:00:00", "2026-12-02T00:00:00"),
        ("2026-12-02T00:00:00", "2026-12-03T00:00:00"),
        ("2026-12-03T00:00:00", "2026-12-03T00:00:05"),
    ]
    h = History([])
    api = AccountsApi(h)  # type: ignore[arg-type]
    asyncio.run(api.activity(T0 + timedelta(milliseconds=400), T0 + timedelta(milliseconds=900)))
    assert h.asked == [("2026-12-01T00:00:00", "2026-12-01T00:00:00")]  # the one second, not nothing
