"""The identity of Capital.com activity rows, the one source of a Capital.com fill's id. Pure.

An activity row (spec §4.5) carries no id of its own: `dealId`, `dateUTC` (milliseconds), `source`,
`type`, `status` and `details`. A fill is one `POSITION` row, `capital:<dealId>:<dateUTC>:<source>`.
That key is not unique: two closes of one deal in the same millisecond by the same source — the
owner's partial close on the platform and Joe's `DELETE /positions/{dealId}`, both `USER`, both
`p_<dealId>` — are two rows with one key (the race test of issue 9 saw them about 1 run in 7 in the
simulator). Booked under one id, the second was "already booked" and vanished: the owner's close
was neither an outside change nor adopted, and the Reconciler found `position_mismatch`.

So a row's identity is its key plus its *occurrence*: the n-th row of a key in the broker's
listing. The first keeps the id it always had (`capital:<dealId>:<dateUTC>:<source>`, so the fills
already stored keep theirs); the n-th (n ≥ 2) is `…#n`. Every read of a deal's rows at a given
moment sees all rows of a key — they share the deal (a `dealId` filter), the instant (a time
window, whole seconds, holds all or none of them) and the type (`type==POSITION`) — so the numbering
is the same in every read. Rows read through several windows (a read over more than a day is one
request per day, each bound inclusive) are merged by identity, never concatenated: a row on a
shared boundary second is in both answers and is kept once (`merge_reads`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from joe.brokers.capital.models import Activity

BROKER = "capital"

RowKey = tuple[str, str, str, str]


def fill_id(deal_id: str, date_utc: str, source: str, occurrence: int = 1) -> str:
    """The identity of a Capital.com fill: `capital:<dealId>:<dateUTC>:<SOURCE>`, `#n` for the n-th
    row of that key (n ≥ 2; see the module docstring)."""
    base = f"{BROKER}:{deal_id}:{date_utc}:{source.upper()}"
    return base if occurrence <= 1 else f"{base}#{occurrence}"


def row_key(row: Activity) -> RowKey:
    """What the broker says of a row that could tell it apart: deal, instant, source, type."""
    return (row.dealId, row.dateUTC, row.source.upper(), row.type.upper())


def row_fill_id(row: Activity) -> str:
    """The fill id of an activity row read through `AccountsApi.activity` (numbered there)."""
    return fill_id(row.dealId, row.dateUTC, row.source, row.occurrence)


def number_rows(rows: Iterable[Activity]) -> list[Activity]:
    """One answer's rows, each numbered by its occurrence of its key in the broker's listing."""
    seen: dict[RowKey, int] = {}
    out = []
    for r in rows:
        k = row_key(r)
        seen[k] = seen.get(k, 0) + 1
        out.append(r.numbered(seen[k]))
    return out


def merge_reads(reads: Iterable[Sequence[Activity]]) -> list[Activity]:
    """The rows of several answers (overlapping windows), each identity once: an answer's rows are
    numbered on their own, and a row whose (key, occurrence) an earlier answer had is the same row.
    A key seen n times in one answer and m in another is max(n, m) rows (a row that became visible
    between the two requests is kept)."""
    have: set[tuple[RowKey, int]] = set()
    out: list[Activity] = []
    for rows in reads:
        for r in number_rows(rows):
            ident = (row_key(r), r.occurrence)
            if ident not in have:
                have.add(ident)
                out.append(r)
    return out
