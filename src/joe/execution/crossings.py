"""Visiting a quote batch's level crossings in arrival order, across instruments (`PositionMonitor`).

The batch is sorted by instrument (stable, so each instrument's quotes keep their arrival order):
instrument `ids[k]`'s quotes are `order[starts[k]:ends[k]]` (batch positions, ascending) with mids
`smid[starts[k]:ends[k]]`, lowest `lo[k]` and highest `hi[k]`. An instrument whose lowest mid stays
above its highest lower level and whose highest stays below its lowest upper level (`LevelBook`) costs
no Python work beyond that test — the common case. For the others, one candidate per instrument (its
next crossing quote) sits in a heap keyed by batch position; `cross(inst, mid, ts_ns)` handles the
earliest, then that instrument — and any instrument whose levels `cross`'s listeners changed, which
they report in `dirty` — looks again from its next quote.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from joe.execution.levels import LevelBook
from joe.execution.quotes import FloatArray, IntArray, TsArray

IdxArray = npt.NDArray[np.intp]
_PEEK = 24  # quotes scanned in Python before a vectorised search


def visit_crossings(
    books: dict[int, LevelBook],
    ids: IntArray,
    starts: IdxArray,
    ends: IdxArray,
    order: IdxArray,
    smid: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
    ts: TsArray,
    cross: Callable[[int, float, int], None],
    dirty: set[int],
) -> None:
    """Call `cross` for every quote that reaches an armed level, in arrival order (see the module)."""
    groups: dict[int, tuple[int, int]] = {}  # inst -> (start, end) in the sorted arrays
    near: list[int] = []
    for u, s0, e0, lo_u, hi_u in zip(
        ids.tolist(), starts.tolist(), ends.tolist(), lo.tolist(), hi.tolist(), strict=True
    ):
        groups[u] = (s0, e0)
        book = books.get(u)
        if book is not None and len(book) and (lo_u <= book.lower_top() or hi_u >= book.upper_top()):
            near.append(u)
    epoch: dict[int, int] = {}
    cand: list[tuple[int, int, int, int]] = []  # (batch position, inst, index in group, epoch)
    lists: dict[int, tuple[list[float], list[int]]] = {}  # inst -> (mids, batch positions)

    def schedule(u: int, start: int) -> None:
        epoch[u] = ep = epoch.get(u, 0) + 1
        book = books.get(u)
        if book is None or not len(book):
            return
        s0, e0 = groups[u]
        n = e0 - s0
        if start >= n:
            return
        low, high = book.lower_top(), book.upper_top()
        # Crossings cluster (one often follows another): peek at a few quotes in Python, where numpy's
        # per-call cost would dominate, then search the rest vectorised.
        lg = lists.get(u)
        if lg is None:
            lg = lists[u] = (smid[s0:e0].tolist(), order[s0:e0].tolist())
        ml = lg[0]
        stop = min(n, start + _PEEK)
        for j in range(start, stop):
            x = ml[j]
            if x <= low or x >= high:
                heapq.heappush(cand, (lg[1][j], u, j, ep))
                return
        if stop < n:
            seg = smid[s0 + stop : e0]
            hit = (seg <= low) | (seg >= high)
            k = int(hit.argmax())
            if hit[k]:
                heapq.heappush(cand, (lg[1][stop + k], u, stop + k, ep))

    for u in near:
        schedule(u, 0)
    while cand:
        g, u, j, ep = heapq.heappop(cand)
        if ep != epoch[u]:
            continue
        dirty.clear()
        cross(u, lists[u][0][j], int(ts[g]))
        schedule(u, j + 1)
        if dirty:
            for k in list(dirty):
                if k != u and k in groups:
                    s0, e0 = groups[k]
                    schedule(k, int(np.searchsorted(order[s0:e0], g, side="right")))
