"""`PositionMonitor`: watches every open position on every quote.

Per quote batch (`QuoteBatch`, from the `PriceStream`) it:
- updates each instrument's mark (the last mid) and so every position's unrealised PnL;
- finds, in quote order, every quote that crosses a resting stop or take-profit and emits a `Trigger`:
  per instrument it keeps only the nearest levels (`_lo`: the highest armed lower level, `_hi`: the
  lowest armed upper level, from its `LevelBook`), so a quote is two float comparisons in plain Python
  and only a quote that reaches one walks the sorted levels (`LevelBook.pop_crossed`);
- bot-side backup (DESIGN, "Protection is an invariant"): broker-side stops are primary. When the
  price has stayed through a stop for `grace_s` and the position is still open (the broker has not
  filled), it asks the `ExitRequester` for one reduce-only exit — exactly one per position id, ever;
- trailing stops: asks the broker to move the stop in whole `step`s behind the best price, only ever
  tightening, one modify in flight at a time; the level it checks is the broker-confirmed one
  (the arithmetic: `joe.execution.trailing`);
- time-based exits: at `exit_at`, one reduce-only exit;
- splits (`joe.execution.monitor_splits`): a split-like jump holds the instrument's positions (no
  backup exit, no trail; the broker-side stop stays) until `apply_split` adjusts them (quantity × r,
  levels ÷ r) or the price comes back, so a pre-split stop never meets a post-split quote.

Prices on the hot path are floats (a crossing check); the levels and quantities it reports are the
`Decimal`s it was given. Timestamps are int nanoseconds UTC: the batches' quote times, or
`clock_ns()` in `tick()` (the `PriceStream` stamps quotes with the same clock when the broker does not).
Positions open and close through `add` / `close` (the `OrderManager` calls them on fills).
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections.abc import Callable
from decimal import Decimal

from joe.core.events import AuditSink, NullAudit
from joe.core.models import Side
from joe.execution.levels import LevelBook
from joe.execution.monitor_slot import MonitorSlot
from joe.execution.monitor_splits import SPLIT_TOL, SplitSuspect, exact_ratio, split_watched, suspects
from joe.execution.protection import (
    ExitReason,
    ExitRequest,
    ExitRequester,
    ProtectionGap,
    ProtectionView,
    StopModify,
    Trigger,
    TriggerKind,
    WatchedPosition,
    protection_gaps,
)
from joe.execution.quotes import InstrumentIndex, QuoteBatch
from joe.execution.trailing import better, tightened_stop

log = logging.getLogger(__name__)

_NS = 1_000_000_000
_BUY = Side.BUY  # an enum member read through its class costs a descriptor call on CPython 3.11
_STOP, _TAKE_PROFIT = TriggerKind.STOP, TriggerKind.TAKE_PROFIT
_tuple_new = tuple.__new__
_JUMP = 0.3  # a first quote this far (relative) from the previous mark is checked for a split
# A quote more than this factor from the mark its instrument's `_lo`/`_hi` were set at goes to the slow
# path. With the previous quote inside that band, any jump of `_JUMP` or more leaves it as long as
# _BAND**2 <= 1 + _JUMP and (1 - _JUMP) * _BAND**2 <= 1 (1.1**2 = 1.21): no split is missed.
_BAND = 1.1
# Batches up to this many quotes take their mids in plain Python: numpy's two ufunc calls cost more than
# the loop below ~40 quotes (on CPython 3.11), and the daemon's live batches are mostly a few quotes.
_PY_MID = 32


class PositionMonitor:
    """Marks, unrealised PnL, stop/target crossings, backup exits, trailing stops and time exits.

    `listeners` get every `Trigger` synchronously, in quote order (stops before take-profits at one
    quote); they may call `add`/`close` at once and the rest of the batch sees the change.
    """

    def __init__(
        self,
        instruments: InstrumentIndex,
        requester: ExitRequester,
        *,
        grace_s: float = 5.0,
        audit: AuditSink | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        if grace_s < 0:
            raise ValueError(f"grace_s must be >= 0, got {grace_s}")
        self.instruments = instruments
        self.requester = requester
        self.grace_ns = int(grace_s * _NS)
        self.audit: AuditSink = audit if audit is not None else NullAudit()
        self.clock_ns = clock_ns
        self.listeners: list[Callable[[Trigger], None]] = []
        self.split_listeners: list[Callable[[SplitSuspect], None]] = []  # called once per suspected split
        self.quotes_seen = 0
        self.triggers = {TriggerKind.STOP: 0, TriggerKind.TAKE_PROFIT: 0}
        self._pos: list[MonitorSlot | None] = []
        self._free: list[int] = []
        self._by_id: dict[str, int] = {}
        self._books: dict[int, LevelBook] = {}
        self._through: set[int] = set()  # slots through their stop, awaiting the broker's fill
        self._touched: set[int] = set()  # slots at/through their target, awaiting the fill
        self._trailing: set[int] = set()
        self._split_held: set[int] = set()  # slots held by a suspected split (monitor_splits)
        self._timed: list[tuple[int, int, str]] = []  # (exit_at ns, slot, position id)
        self._exited: set[str] = set()  # position ids an exit was requested for (never a second)
        cap = max(16, len(instruments))
        # per instrument id: the last mid, and the nearest levels a quote must reach to need a look
        self._mark: list[float] = [math.nan] * cap
        self._lo: list[float] = [-math.inf] * cap
        self._hi: list[float] = [math.inf] * cap
        self._top_lo: list[float] = [-math.inf] * cap  # the book's own nearest levels (no band), as of
        self._top_hi: list[float] = [math.inf] * cap  # the last `_refresh_dirty`
        self._ext: dict[int, tuple[float, float]] = {}  # trailing instruments: (high, low) mid this batch
        self._in_batch = False
        self._dirty: set[int] = set()  # instruments whose `_lo`/`_hi` need recomputing
        self._inst_ids = instruments._ids  # symbol -> id, read directly on the quote path

    # -- positions ----------------------------------------------------------------------------------

    def add(self, position: WatchedPosition) -> None:
        """Start watching an open position (replaces a watched one with the same id)."""
        # On the quote path (a strategy re-opens from a trigger listener): plain locals, no helper calls.
        pid = position.position_id
        if pid in self._by_id:
            self.close(pid)
        sym = position.symbol
        inst = self._inst_ids.get(sym)
        if inst is None:
            inst = self.instruments.id(sym)
        if inst >= len(self._mark):
            self._grow(inst + 1)
        pos = self._pos
        free = self._free
        if free:
            slot = free.pop()
        else:
            slot = len(pos)
            pos.append(None)
        sign = 1 if position.side is _BUY else -1
        stop, tp = position.stop, position.take_profit
        stop_f = float(stop) if stop is not None else math.nan
        tp_f = float(tp) if tp is not None else math.nan
        p = MonitorSlot(position, slot, inst, sign, position.quantity, stop, stop_f, tp_f)
        if self._exited and pid in self._exited:
            p.exit_requested = True
        pos[slot] = p
        self._by_id[pid] = slot
        book = self._books.get(inst)
        if book is None:
            book = self._books[inst] = LevelBook()
        # a long's stop and a short's target fire from above (lower levels), the others from below
        if sign > 0:
            book.arm(slot, stop_f, tp_f)
        else:
            book.arm(slot, tp_f, stop_f)
        if position.trailing is not None:
            self._trailing.add(slot)
        if position.exit_at is not None:
            heapq.heappush(self._timed, (int(position.exit_at.timestamp() * _NS), slot, pid))
        self._dirty.add(inst)

    def close(self, position_id: str) -> None:
        """The position is flat (the broker filled its exit): stop watching it. Unknown ids are ignored."""
        slot = self._by_id.pop(position_id, None)
        if slot is None:
            return
        p = self._pos[slot]
        assert p is not None
        self._books[p.inst].disarm(slot)  # `add` made the book
        if self._through:
            self._through.discard(slot)
        if self._touched:
            self._touched.discard(slot)
        if self._trailing:
            self._trailing.discard(slot)
        if self._split_held:
            self._split_held.discard(slot)
        self._pos[slot] = None
        self._free.append(slot)
        self._dirty.add(p.inst)

    def resize(self, position_id: str, quantity: Decimal) -> None:
        """A partial fill changed the open quantity (> 0; use `close` when flat)."""
        if quantity <= 0:
            raise ValueError(f"{position_id}: resize needs a quantity > 0, got {quantity} (use close())")
        self._get(position_id).qty = quantity

    def confirm_stop(self, position_id: str, stop: Decimal) -> None:
        """The broker confirmed the position's stop at `stop` (after a modify, or a re-placement)."""
        p = self._get(position_id)
        p.stop, p.stop_f, p.modify_pending, p.refused_stop = stop, float(stop), None, None
        self._through.discard(p.slot)
        p.through_since = None
        self._arm_stop(p)
        if not self._in_batch and p.slot in self._trailing and not math.isnan(p.best):
            # The price may have gone on while the modify was in flight: catch up from the best price
            # seen, not only at the next quote.
            self._trail({p.inst: (p.best, p.best)}, self.clock_ns())

    def refuse_stop_modify(self, position_id: str) -> None:
        """The broker refused a stop modify: Joe's copy keeps the old stop; the trail asks again only
        once the price allows a stop beyond the refused one (no retry loop at quote rate)."""
        p = self._get(position_id)
        p.refused_stop, p.modify_pending = p.modify_pending, None

    def apply_split(self, symbol: str, ratio: float | Decimal) -> list[str]:
        """A split of `symbol` took effect: every watched position of it becomes quantity × `ratio`,
        entry/stop/target/trail ÷ `ratio` (4 for a 4-for-1, 0.1 for a 1-for-10), its suspected-split
        hold is lifted and the levels are re-armed against the post-split quotes. Audited
        (``monitor.split_adjusted``); returns the adjusted position ids. Raises ValueError for a ratio
        that is not > 0."""
        r = exact_ratio(ratio)
        done = []
        for p in [q for q in self._pos if q is not None and q.spec.symbol == symbol]:
            pid, old, best = p.spec.position_id, p.spec, p.best
            self.close(pid)
            self.add(split_watched(old, r))
            q = self._get(pid)
            q.best = best / float(r)  # never updated while held: still in pre-split units
            done.append(pid)
            self.audit.record(
                "monitor.split_adjusted",
                {"symbol": symbol, "ratio": str(r), "quantity": {"from": str(old.quantity), "to": str(q.qty)},
                 "stop": {"from": str(old.stop), "to": str(q.stop)}},
                position_id=pid,
            )  # fmt: skip
        return done

    def split_held(self, position_id: str) -> bool:
        """True while a suspected split holds the position's backup exit and trailing."""
        return not math.isnan(self._get(position_id).split_ref)

    def __contains__(self, position_id: object) -> bool:
        return position_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def position_ids(self) -> list[str]:
        return list(self._by_id)

    def quantity_of(self, position_id: str) -> Decimal:
        return self._get(position_id).qty

    def symbol_of(self, position_id: str) -> str:
        return self._get(position_id).spec.symbol

    def stop_of(self, position_id: str) -> Decimal | None:
        """The broker-confirmed stop the monitor checks against."""
        return self._get(position_id).stop

    def exit_requested(self, position_id: str) -> bool:
        return position_id in self._exited

    # -- marks and PnL ------------------------------------------------------------------------------

    def mark(self, symbol: str) -> float | None:
        """The last mid seen for `symbol`, or None."""
        i = self.instruments.get(symbol)
        if i is None or i >= len(self._mark) or math.isnan(self._mark[i]):
            return None
        return float(self._mark[i])

    def unrealised(self, position_id: str) -> float:
        """Unrealised PnL of one position at the current mark (0 before its first quote), in the
        instrument's currency."""
        p = self._get(position_id)
        m = self._mark[p.inst]
        return 0.0 if math.isnan(m) else p.sign * float(p.qty) * (m - float(p.spec.entry_price))

    def unrealised_total(self) -> float:
        """Sum of every position's unrealised PnL (instruments without a quote yet count 0).
        Computed on read from the marks, so the hot path only moves marks."""
        total = 0.0
        for p in self._pos:
            if p is not None:
                m = self._mark[p.inst]
                if not math.isnan(m):
                    total += p.sign * float(p.qty) * (m - float(p.spec.entry_price))
        return total

    # -- the hot path -------------------------------------------------------------------------------

    def on_batch(self, batch: QuoteBatch) -> None:
        """Process quotes in arrival order (see the module docstring).

        One pure-Python pass over the batch: a quote costs two float comparisons against its
        instrument's nearest levels (`_lo`/`_hi`: the highest lower and lowest upper armed level,
        narrowed to ±`_BAND` of the previous mark so a split-sized jump is never missed). Only a quote
        outside them goes to `_quote` (split check, trailing extremes, crossing). No numpy call per
        batch beyond the mid (none up to `_PY_MID` quotes) and the `tolist`s, so small batches stay
        cheap."""
        n = len(batch)
        if n == 0:
            return
        il = batch.inst.tolist()
        if n <= _PY_MID:  # the same floats either way: one IEEE add and a halving per quote
            ml = [(b + a) * 0.5 for b, a in zip(batch.bid.tolist(), batch.ask.tolist(), strict=True)]
        else:
            ml = ((batch.bid + batch.ask) * 0.5).tolist()
        self.quotes_seen += n
        top = max(il) + 1
        if top > len(self._mark):
            self._grow(top)
        if self._dirty:
            self._refresh_dirty()
        lo, hi, marks = self._lo, self._hi, self._mark
        ext = self._ext
        tl: list[int] | None = None
        self._in_batch = True
        try:
            for j, u in enumerate(il):
                m = ml[j]
                if m <= lo[u] or m >= hi[u]:
                    if tl is None:
                        tl = batch.ts.tolist()
                    self._quote(u, m, tl[j])
                else:
                    marks[u] = m
        finally:
            self._in_batch = False
        if self._through or self._touched or self._trailing or self._timed:
            now = int(batch.ts.max())
            if self._through or self._touched:
                self._recheck(now)
            if self._trailing:
                self._trail(ext, now)
            if self._timed:
                self._time_exits(now)
        ext.clear()

    def tick(self, now_ns: int | None = None) -> None:
        """Grace periods and time exits when no quote arrives (the daemon calls this every second)."""
        now = self.clock_ns() if now_ns is None else now_ns
        if self._through:
            self._recheck(now)
        if self._timed:
            self._time_exits(now)

    def _quote(self, u: int, m: float, ts: int) -> None:
        """One quote outside its instrument's `_lo`/`_hi`: split check against the previous mark,
        trailing extremes, then every level it crosses (`_cross`); listeners may add/close."""
        marks = self._mark
        book = self._books.get(u)
        if book is not None:
            mark = marks[u]  # the split check's fast exit inline: held positions, no mark yet, or a jump
            if self._split_held or mark != mark or abs(m / mark - 1) >= _JUMP:
                self._split_check(u, m, mark)
        marks[u] = m
        if self._trailing:
            e = self._ext.get(u)
            self._ext[u] = (m, m) if e is None else (max(e[0], m), min(e[1], m))
        if self._dirty:
            self._refresh_dirty()
        if book is not None and (m <= self._top_lo[u] or m >= self._top_hi[u]):
            self._cross(u, m, ts)
        self._dirty.add(u)
        self._refresh_dirty()

    def _refresh_dirty(self) -> None:
        """Recompute `_lo`/`_hi` of the instruments whose levels, positions or mark moved."""
        lo, hi, marks, books = self._lo, self._hi, self._mark, self._books
        forcing = self._trailing or self._split_held
        for u in self._dirty:
            book = books.get(u)
            if book is None:
                lo[u], hi[u] = -math.inf, math.inf  # no position ever: nothing to check
                self._top_lo[u], self._top_hi[u] = -math.inf, math.inf
                continue
            self._top_lo[u] = low = book.lower_top()
            self._top_hi[u] = high = book.upper_top()
            ref = marks[u]
            if ref != ref or (forcing and self._forced(u)):  # no mark yet (NaN), or forced
                lo[u], hi[u] = math.inf, -math.inf  # every quote goes to `_quote`
            else:
                band = ref / _BAND
                lo[u] = low if low > band else band
                band = ref * _BAND
                hi[u] = high if high < band else band
        self._dirty.clear()

    def _forced(self, u: int) -> bool:
        """Instruments whose every quote needs `_quote`: a trailing stop's best price, or a held split
        waiting for the price to come back."""
        for slots in (self._trailing, self._split_held):
            for k in slots:
                p = self._pos[k]
                if p is not None and p.inst == u:
                    return True
        return False

    def _split_check(self, u: int, first: float, mark: float) -> None:
        """Hold the positions of instrument `u` when quote `first` jumped by a split's factor from the
        previous mark `mark` (the entry price before any mark); release held ones whose price came back."""
        back = False
        if self._split_held:
            for slot in [k for k in self._split_held if self._pos[k].inst == u]:  # type: ignore[union-attr]
                p = self._pos[slot]
                assert p is not None
                if abs(math.log(first / p.split_ref)) <= SPLIT_TOL:  # back: a bad tick, not a split
                    p.split_ref, back = math.nan, True
                    self._split_held.discard(slot)
                    self._dirty.add(u)
        if back or (not math.isnan(mark) and abs(first / mark - 1) < _JUMP):
            return
        mine = [p for p in self._pos if p is not None and p.inst == u and math.isnan(p.split_ref)]
        no_mark = math.isnan(mark)
        refs = [(p.spec.position_id, float(p.spec.entry_price) if no_mark else mark) for p in mine]
        for sp in suspects(mine[0].spec.symbol, refs, first) if mine else ():
            for pid in sp.positions:
                q = self._get(pid)
                q.split_ref = sp.reference
                self._split_held.add(q.slot)
                self._dirty.add(u)
            log.error("suspected split: %s", sp.message)
            self.audit.record("monitor.split_suspected", sp.to_json())
            for fn in self.split_listeners:
                try:
                    fn(sp)
                except Exception as exc:  # a listener's bug must not stop the quote path
                    log.error("split listener failed: %r", exc)

    def _cross(self, inst: int, price: float, ts: int) -> None:
        pos = self._pos
        stops: list[MonitorSlot] = []
        targets: list[MonitorSlot] = []
        through, touched = self._through, self._touched
        lower, upper = self._books[inst].pop_crossed(price)
        # lower levels: long stops, short targets; upper levels: long targets, short stops
        for slots, long_stops in ((lower, True), (upper, False)):
            for slot in slots:
                p = pos[slot]
                assert p is not None
                if (p.sign > 0) is long_stops:
                    p.through_since = ts
                    through.add(slot)
                    stops.append(p)
                else:
                    p.tp_touched = True
                    touched.add(slot)
                    targets.append(p)
        self.triggers[_STOP] += len(stops)
        self.triggers[_TAKE_PROFIT] += len(targets)
        listeners = self.listeners
        if not listeners:
            return
        for p in stops:  # `_tuple_new`: Trigger's own __new__ is a Python frame, one per trigger
            q = p.spec
            t = _tuple_new(Trigger, (q.position_id, q.symbol, _STOP, p.stop, price, ts))
            for fn in listeners:
                fn(t)
        for p in targets:
            q = p.spec
            t = _tuple_new(Trigger, (q.position_id, q.symbol, _TAKE_PROFIT, q.take_profit, price, ts))
            for fn in listeners:
                fn(t)

    def _recheck(self, now: int) -> None:
        """Positions through their stop or target: re-arm if the price came back, else (stops only)
        a backup exit once the grace period is over."""
        for slot in list(self._through):
            p = self._pos[slot]
            assert p is not None and p.through_since is not None
            m = self._mark[p.inst]
            if (m > p.stop_f) if p.sign > 0 else (m < p.stop_f):
                p.through_since = None
                self._through.discard(slot)
                self._arm_stop(p)
            elif not p.exit_requested and now - p.through_since >= self.grace_ns and math.isnan(p.split_ref):
                self._request_exit(p, ExitReason.BACKUP_STOP, float(m), now)
        for slot in list(self._touched):
            p = self._pos[slot]
            assert p is not None
            m = self._mark[p.inst]
            if (m < p.tp_f) if p.sign > 0 else (m > p.tp_f):
                p.tp_touched = False
                self._touched.discard(slot)
                self._arm_target(p)

    def _trail(self, extremes: dict[int, tuple[float, float]], now: int) -> None:
        for slot in self._trailing:
            p = self._pos[slot]
            assert p is not None and p.spec.trailing is not None and p.stop is not None
            ext = extremes.get(p.inst)
            if not math.isnan(p.split_ref):  # a suspected split: the best price is in the other units
                continue
            if ext is None:
                continue
            p.best = better(p.best, ext[0] if p.sign > 0 else ext[1], p.sign)
            if p.exit_requested or p.modify_pending is not None or p.through_since is not None:
                continue  # the best price is kept; the stop moves once nothing is in flight
            new = tightened_stop(p.stop, p.stop_f, p.best, p.sign, p.spec.trailing, p.refused_stop)
            if new is None:
                continue
            p.modify_pending = new
            req = StopModify(p.spec.position_id, p.spec.symbol, p.stop, new, now)
            self.audit.record(
                "monitor.stop_modify_requested",
                {"symbol": p.spec.symbol, "old_stop": str(p.stop), "new_stop": str(new), "best": p.best},
                position_id=p.spec.position_id,
            )
            try:
                self.requester.request_stop_modify(req)
            except Exception as exc:  # the manager's bug must not stop the quote path
                log.error("stop modify request for %s failed: %r", p.spec.position_id, exc)
                p.modify_pending = None
                p.refused_stop = new

    def _time_exits(self, now: int) -> None:
        while self._timed and self._timed[0][0] <= now:
            at, slot, pid = heapq.heappop(self._timed)
            p = self._pos[slot]
            if p is None or p.spec.position_id != pid or p.exit_requested or p.spec.exit_at is None:
                continue
            if int(p.spec.exit_at.timestamp() * _NS) != at:
                continue  # the position was re-added with another exit time: that entry decides
            m = self._mark[p.inst]
            self._request_exit(p, ExitReason.TIME, float(m), now)

    def _request_exit(self, p: MonitorSlot, reason: ExitReason, price: float, now: int) -> None:
        pid = p.spec.position_id
        if p.exit_requested or pid in self._exited:
            p.exit_requested = True
            return
        p.exit_requested = True
        self._exited.add(pid)
        req = ExitRequest(pid, p.spec.symbol, p.spec.side.opposite, p.qty, reason, price, now)
        self.audit.record(
            "monitor.exit_requested",
            {"symbol": p.spec.symbol, "reason": reason.value, "quantity": str(p.qty), "price": price,
             "stop": str(p.stop), "client_order_id": req.client_order_id},
            position_id=pid,
        )  # fmt: skip
        try:
            self.requester.request_exit(req)
        except Exception as exc:
            # Never a second exit: the request stays marked; a human (and the reconciler) take over.
            log.error("exit request for %s failed: %r", pid, exc)
            self.audit.record("monitor.exit_request_failed", {"error": repr(exc)}, position_id=pid)

    # -- protection invariant -----------------------------------------------------------------------

    def check_protection(self, view: ProtectionView) -> list[ProtectionGap]:
        """Every watched position must have a resting broker stop of its full size (DESIGN)."""
        held = ((pid, p.spec.symbol, p.qty) for pid, slot in self._by_id.items() if (p := self._pos[slot]))
        return protection_gaps(held, view)

    # -- internals ----------------------------------------------------------------------------------

    def _get(self, position_id: str) -> MonitorSlot:
        slot = self._by_id.get(position_id)
        if slot is None:
            raise KeyError(f"position {position_id!r} is not watched")
        p = self._pos[slot]
        assert p is not None
        return p

    def _book(self, inst: int) -> LevelBook:
        book = self._books.get(inst)
        if book is None:
            book = self._books[inst] = LevelBook()
        return book

    def _arm_stop(self, p: MonitorSlot) -> None:
        self._arm(p, p.stop_f, p.sign > 0)  # a long's stop is a lower level, a short's an upper one

    def _arm_target(self, p: MonitorSlot) -> None:
        self._arm(p, p.tp_f, p.sign < 0)

    def _arm(self, p: MonitorSlot, level: float, lower: bool) -> None:
        if not math.isnan(level):
            self._dirty.add(p.inst)
            self._book(p.inst).arm(p.slot, level if lower else math.nan, math.nan if lower else level)

    def _grow(self, n: int) -> None:
        cap = len(self._mark)
        if n <= cap:
            return
        more = max(n, 2 * cap) - cap
        self._mark.extend([math.nan] * more)
        self._lo.extend([-math.inf] * more)
        self._hi.extend([math.inf] * more)
        self._top_lo.extend([-math.inf] * more)
        self._top_hi.extend([math.inf] * more)
