"""Asking Capital.com about Joe's orders: `order_status` by reference and `mass_status` for a
reconciliation pass. Reads only; every answer is a report marked `from_reconciliation`.

An order is found by its `dealReference` (Joe's client order id) in the confirms, the positions, the
working orders and the activity history — never by size. A read that fails raises; only an answer
that shows nothing gives [] ("the broker has none").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from joe.brokers.capital import observe as ob
from joe.brokers.capital.accounts import AccountsApi
from joe.brokers.capital.errors import InvalidRequest, NotFound
from joe.brokers.capital.mapping import account_info
from joe.brokers.capital.models import Activity, Confirm, PositionRow
from joe.brokers.capital.trading import TradingApi
from joe.core.models import OrderLeg, OrderType, Side
from joe.core.reports import (
    FillReport,
    MassStatus,
    OrderStatusReport,
    VenueOrderStatus,
    since_on_broker_clock,
)

# How far back a gone deal's close is looked for (seven one-day requests, only when the last day has
# none): a week of skipped daily runs.
DEAL_LOOKBACK = timedelta(days=7)


class CapitalQueries:
    """The read side of `CapitalExecutionClient`. `children` maps an attached leg's id to
    (entry id, leg) and `exits` an exit's id to the deals it closed — hints from `submit` (a close
    by dealId names no request at Capital.com). Without them a leg is found by broker id in
    `mass_status` (`<dealId>:SL` / `:TP`) and a close by `p_<dealId>`. `preclose` maps an exit that
    closed deals by id to the fill ids those deals had before its DELETE: a reference-less close
    row among them is not the exit's (the owner closed part of the deal on the platform); `netted`
    holds the exits sent as a netting POST named by their id (their rows carry it)."""

    def __init__(
        self,
        trading: TradingApi,
        accounts: AccountsApi,
        clock: Callable[[], datetime],
        children: dict[str, tuple[str, OrderLeg]],
        exits: dict[str, list[str]] | None = None,
        preclose: dict[str, set[str]] | None = None,
        netted: set[str] | None = None,
    ) -> None:
        self.trading = trading
        self.accounts = accounts
        self.clock = clock
        self._children = children
        self._exits = exits if exits is not None else {}
        self._preclose = preclose if preclose is not None else {}
        self._netted = netted if netted is not None else set()
        self.entry_deals: dict[str, str] = {}  # dealId -> Joe's entry id, from the store (`link`)
        self.closing: set[str] = set()  # exits whose DELETEs are being sent now (their deals may be live)
        self.refused: dict[str, set[str]] = {}  # exit id -> deals its close did not close (no longer its)
        self.in_doubt: dict[str, str] = {}  # exit id -> its entry's id: sent, no broker id stored (`link`)
        # attached leg id -> (epic, the leg's side, size in units): its fate needs them once the
        # history (1 day deep) no longer shows the deal it was on
        self.leg_facts: dict[str, tuple[str, Side, Decimal]] = {}

    async def order_status(self, client_order_id: str) -> list[OrderStatusReport]:
        """Every order at Capital.com carrying this id (confirm, positions, working orders, activity).

        [] only when the broker answered and has nothing; a failed read raises (never "not found").
        """
        cid = client_order_id
        now = self.clock()
        if cid in self._children:
            return await self._child_status(cid, *self._children[cid])
        if cid in self._exits:
            return await self._exit_status(cid, self._exits[cid])
        try:
            confirm: Confirm | None = await self.trading.confirm(cid)
        except (NotFound, InvalidRequest):
            confirm = None
        positions = await self.trading.positions()
        if confirm is None and cid in self.in_doubt:
            acts = await self.accounts.activity(last_period_s=86400, fiql="type==POSITION")
            if self._claim(cid, positions, acts):
                return await self._exit_status(cid, self._exits[cid])
        orders = await self.trading.working_orders()
        out = [ob.working_order_report(r, now, reconciling=True) for r in orders
               if ob.own_reference(getattr(r.workingOrderData, "dealReference", None)) == cid]  # fmt: skip
        out += [ob.entry_report_from_position(r, now, reconciling=True) for r in positions
                if ob.own_reference(r.position.dealReference) == cid]  # fmt: skip
        if out:
            return out
        if confirm is not None:
            return [await self._settled(confirm, cid, now)]
        rows = await self.accounts.activity(last_period_s=86400, fiql="type==POSITION")
        fills = [
            f
            for f in (ob.fill_from_activity(r) for r in rows)
            if f is not None and f.fill.client_order_id == cid
        ]
        if not fills:
            return []
        f0 = fills[0].fill
        qty = sum((f.fill.quantity for f in fills), Decimal(0))
        return [OrderStatusReport(
            "capital", cid, f0.broker_order_id, f0.symbol, f0.side, qty, VenueOrderStatus.FILLED, now,
            filled_quantity=qty, avg_fill_price=f0.price, raw_status="ACTIVITY", from_reconciliation=True,
        )]  # fmt: skip

    def _claim(self, cid: str, positions: Sequence[PositionRow], acts: Sequence[Activity]) -> bool:
        """Whether in-doubt exit `cid` closed deals by id: its entry's deals (found by the entry's
        dealReference in the activity's opening rows, or from the store's links) that are gone
        from `positions` and not claimed by another exit become its deals (`_exits`), so their
        reference-less close rows are its fills (`is_exit_row`), never outside changes.

        The exit was stored before its DELETE was sent and the process died before the confirm was
        read (chaos seed 75), so no broker id names the deal. A deal still live was not closed by
        it: nothing is claimed and the exit is asked for as before (never resent). A close row of
        a claimed deal from the owner on the platform cannot be told apart from the exit's close
        (neither names a request); the stop's and target's rows can (`source`) and are not claimed."""
        entry = self.in_doubt[cid]
        live = {r.position.dealId for r in positions}
        deals = {d for d, e in self.entry_deals.items() if e == entry}
        deals |= {
            a.dealId for a in acts
            if ob.is_opening(a) and a.details and ob.own_reference(a.details.dealReference) == entry
        }  # fmt: skip
        taken = {d for c, ds in self._exits.items() if c != cid for d in ds}
        gone = sorted(d for d in deals if d not in live and d not in taken)
        if not gone:
            return False
        self._exits[cid] = gone
        return True

    async def _settled(self, c: Confirm, cid: str, now: datetime) -> OrderStatusReport:
        """A confirmed request no longer live: a market deal filled; a working order's fate is in activity."""
        opened = ob.opened_deal(c)
        if c.dealStatus.upper() != "ACCEPTED" or opened is None:
            return ob.confirm_report(c, cid, working=False, ts=now, reconciling=True)
        rows = await self.accounts.activity(deal_id=opened, last_period_s=86400)
        fate = {r.status.upper() for r in rows if r.type.upper() == "WORKING_ORDER"}
        if not fate:
            return ob.confirm_report(c, cid, working=False, ts=now, reconciling=True)
        # Whatever order the history lists rows in, an execution or an end outranks the acceptance.
        end = next((f for f in ("EXECUTED", "CANCELLED", "EXPIRED", "REJECTED") if f in fate), "ACCEPTED")
        status = {"EXECUTED": VenueOrderStatus.FILLED, "CANCELLED": VenueOrderStatus.CANCELLED,
                  "EXPIRED": VenueOrderStatus.EXPIRED, "REJECTED": VenueOrderStatus.REJECTED,
                  }.get(end, VenueOrderStatus.WORKING)  # fmt: skip
        report = ob.confirm_report(c, cid, working=True, ts=now, reconciling=True)
        filled = report.quantity if status is VenueOrderStatus.FILLED else Decimal(0)
        return OrderStatusReport(
            "capital", cid, report.broker_order_id, report.symbol, report.side, report.quantity, status, now,
            filled_quantity=filled, order_type=report.order_type, limit_price=c.level, leg=OrderLeg.ENTRY,
            raw_status=end, from_reconciliation=True,
        )  # fmt: skip

    async def _child_status(self, cid: str, entry_cid: str, leg: OrderLeg) -> list[OrderStatusReport]:
        """An attached stop/target: WORKING while on its live deal; once the deal is gone, FILLED if
        the deal closed by it (activity source SL / TP), else CANCELLED; CANCELLED if detached."""
        now = self.clock()
        stop_cid = cid if leg is OrderLeg.STOP_LOSS else ""
        target_cid = cid if leg is OrderLeg.TAKE_PROFIT else ""
        rows = [
            r
            for r in await self.trading.positions()
            if ob.own_reference(r.position.dealReference) == entry_cid
        ]
        newest = [c for c, (e, lg) in self._children.items() if e == entry_cid and lg is leg][-1:]
        if rows and newest and newest[0] != cid:  # the deal's leg now belongs to a later one (re-placed)
            p = rows[0].position
            suffix = ob.STOP_SUFFIX if leg is OrderLeg.STOP_LOSS else ob.TARGET_SUFFIX
            return [self._leg_fate(cid, leg, p.dealId + suffix, rows[0].market.epic, p.direction, p.size,
                                   VenueOrderStatus.CANCELLED, "REPLACED", now)]  # fmt: skip
        for r in rows:
            kids = ob.child_reports(r, now, reconciling=True, stop_coid=stop_cid, target_coid=target_cid)
            mine = [k for k in kids if k.leg is leg]
            if mine:
                return mine
        suffix = ob.STOP_SUFFIX if leg is OrderLeg.STOP_LOSS else ob.TARGET_SUFFIX
        if rows:  # the deal is live without this leg: it was removed
            p = rows[0].position
            return [self._leg_fate(cid, leg, p.dealId + suffix, rows[0].market.epic, p.direction, p.size,
                                   VenueOrderStatus.CANCELLED, "DETACHED", now)]  # fmt: skip
        acts = await self.accounts.activity(last_period_s=86400, fiql="type==POSITION")
        # The entry's deals: from the store's links (its dealId at acknowledgement) and the history's
        # opening rows. The history is one day deep (spec 4.5): a deal opened before that, gone now,
        # still has a fate — a stop that fired two days after the entry left its target DEAL_CLOSED.
        deals = {d for d, e in self.entry_deals.items() if e == entry_cid}
        deals |= {
            a.dealId for a in acts
            if ob.is_opening(a) and a.details and ob.own_reference(a.details.dealReference) == entry_cid
        }  # fmt: skip
        if not deals:
            deals = await self._confirmed_deals(entry_cid)
        facts = self.leg_facts.get(cid)
        out = []
        for deal_id in sorted(deals):
            hist = [a for a in acts if a.dealId == deal_id]
            opening = next((a for a in hist if ob.is_opening(a) and a.details), None)
            fired = [a for a in hist if not ob.is_opening(a) and a.source.upper() == suffix[1:]]
            size = sum((a.details.size or Decimal(0) for a in fired if a.details), Decimal(0))
            if opening is not None and opening.details is not None:
                epic, deal_dir = opening.epic, opening.details.direction or "BUY"
                deal_size = opening.details.size or Decimal(0)
            elif facts is not None:  # the opening is older than the history: the leg's own facts
                epic, deal_dir, deal_size = facts[0], facts[1].opposite.value, facts[2]
            else:
                continue  # nothing says which instrument: asked again on the next pass
            out.append(self._leg_fate(
                cid, leg, deal_id + suffix, epic, deal_dir, size or deal_size,
                VenueOrderStatus.FILLED if fired else VenueOrderStatus.CANCELLED,
                "FIRED" if fired else "DEAL_CLOSED", now, filled=size,
            ))  # fmt: skip
        return out

    async def _confirmed_deals(self, entry_cid: str) -> set[str]:
        """The deals the entry's own confirm (GET /confirms/{dealReference}) names, remembered in
        `entry_deals`: for an entry whose dealId no acknowledgement stored (the process died with its
        POST on the wire) and whose opening row has left the one-day activity history (a restart two
        days later). {} when the broker has no confirm (or no accepted deal) for it."""
        try:
            c = await self.trading.confirm(entry_cid)
        except (NotFound, InvalidRequest):
            return set()
        if (c.dealStatus or "").upper() != "ACCEPTED" or not c.dealId:
            return set()
        deals = {c.dealId} | {d.dealId for d in c.affectedDeals if d.status.upper() == "OPENED"}
        for d in deals:
            self.entry_deals.setdefault(d, entry_cid)
        return deals

    @staticmethod
    def _leg_fate(
        cid: str, leg: OrderLeg, bid: str, epic: str, deal_dir: str, size: Decimal,
        status: VenueOrderStatus, raw: str, now: datetime, filled: Decimal = Decimal(0),
    ) -> OrderStatusReport:  # fmt: skip
        side = Side(deal_dir.upper()).opposite
        return OrderStatusReport(
            "capital", cid, bid, epic, side, size, status, now, filled_quantity=filled,
            order_type=OrderType.STOP if leg is OrderLeg.STOP_LOSS else OrderType.LIMIT,
            parent_broker_order_id=bid.rsplit(":", 1)[0], leg=leg, raw_status=raw, from_reconciliation=True,
        )  # fmt: skip

    def _owner(self, row: Activity, kids: dict[str, dict[OrderLeg, str]], entry_of: dict[str, str]) -> str:
        """Whose fill a row is, where the row itself does not say (from this process's hints)."""
        source = row.source.upper()
        if source in ("SL", "TP"):
            entry = entry_of.get(row.dealId, "")
            leg = OrderLeg.STOP_LOSS if source == "SL" else OrderLeg.TAKE_PROFIT
            return kids.get(entry, {}).get(leg, "")
        if not ob.is_opening(row):
            return next((c for c in self._exits if self.is_exit_row(c, row)), "")
        return ""

    def is_exit_row(self, cid: str, row: Activity) -> bool:
        """Whether a closing row is exit `cid`'s own: it names the exit's reference (a netting exit
        sent as a POST), or — for an exit that closed deals by id, whose close rows name no request —
        it is a reference-less close of one of its deals that was not there before its DELETE. A
        reference-less row of an exit sent by reference is someone else's (the owner on the platform)."""
        if ob.is_opening(row) or row.source.upper() in ("SL", "TP"):
            return False
        ref = ob.own_reference(row.details.dealReference if row.details else None)
        if ref:
            return ref == cid
        if row.dealId not in self._exits.get(cid, ()) or row.dealId in self.refused.get(cid, ()):
            return False
        if cid in self._netted:
            return False
        before = self._preclose.get(cid)
        # Without a hint (after a restart) the store still refuses a row booked once elsewhere.
        return before is None or ob.row_fill_id(row) not in before

    @staticmethod
    def _fill(row: Activity, owner: str, entry_of: dict[str, str]) -> FillReport | None:
        """A row as a fill; a close no order of Joe's made (no reference, not a stop's or a target's,
        not an exit's) on a deal Joe's entry opened names that entry in `changes`: the owner (or the
        broker's close-out) changed Joe's position — an outside change, never Joe's fill."""
        f = ob.fill_from_activity(row, owner)
        if f is None or f.fill.client_order_id or ob.is_opening(row) or row.source.upper() in ("SL", "TP"):
            return f
        entry = entry_of.get(row.dealId, "")
        return replace(f, changes=entry) if entry else f

    async def _exit_status(self, cid: str, deal_ids: list[str]) -> list[OrderStatusReport]:
        """An exit that closed deals by id: FILLED by the closing rows that are not a stop's or a
        target's (those closed the deal instead); CANCELLED (with what it filled) when a deal is
        still live once its DELETEs were sent, WORKING while they are being sent."""
        now = self.clock()
        live = {r.position.dealId for r in await self.trading.positions()}
        out = []
        for deal_id in deal_ids:
            rows = await self.accounts.activity(deal_id=deal_id, last_period_s=86400, fiql="type==POSITION")
            if deal_id not in live and not any(not ob.is_opening(r) for r in rows):
                rows = await self._older_rows(deal_id)  # closed before the day-deep window
            opening = next((r for r in rows if ob.is_opening(r)), None)
            # Only this exit's own close rows: a close by the owner on the platform is not its fill.
            reports = (ob.fill_from_activity(r, cid) for r in rows if self.is_exit_row(cid, r))
            mine = [f.fill for f in reports if f]
            done = sum((f.quantity for f in mine), Decimal(0))
            refused = deal_id in self.refused.get(cid, ())
            if deal_id in live and cid in self.closing and not refused:
                status = VenueOrderStatus.WORKING  # its DELETE is being sent right now
            elif deal_id in live or refused:
                # A close by dealId rests nowhere: a deal still open after the exit was sent was not
                # closed by it (refused, or never reached the broker). Over (REJECTED, or CANCELLED
                # with what it filled); never WORKING with nothing working (the exit can be retried).
                status = VenueOrderStatus.CANCELLED if done else VenueOrderStatus.REJECTED
            else:
                status = VenueOrderStatus.FILLED if mine else VenueOrderStatus.CANCELLED
            side = mine[0].side if mine else Side.SELL
            if opening is not None and opening.details is not None and opening.details.direction:
                side = Side(opening.details.direction.upper()).opposite
            out.append(OrderStatusReport(
                "capital", cid, "p_" + deal_id, opening.epic if opening else "", side, done, status, now,
                filled_quantity=done, avg_fill_price=mine[0].price if mine else None,
                order_type=OrderType.MARKET, leg=OrderLeg.EXIT, raw_status="CLOSE", from_reconciliation=True,
            ))  # fmt: skip
        return out

    async def _older_rows(self, deal_id: str) -> list[Activity]:
        """A gone deal's activity over the last `DEAL_LOOKBACK` (one-day windows on the broker's clock,
        spec §4.5): its close is older than `lastPeriod`'s day when the run after the close came a day
        or more later (an exit whose process died mid-DELETE, re-run the next day or after a weekend)."""
        now = await self.broker_now()
        return await self.accounts.activity(
            now - DEAL_LOOKBACK, now + timedelta(seconds=1), deal_id=deal_id, fiql="type==POSITION"
        )

    async def broker_now(self) -> datetime:
        """The broker's clock (`GET /time`). A read is windowed and stamped on it, never on Joe's
        clock: with Joe's clock behind, an execution stamped after Joe's "now" fell outside the
        window, and ahead, before the next window's start (found by the chaos suite, clock skew)."""
        ms = await self.accounts.server_time()
        return datetime.fromtimestamp(ms / 1000, UTC)

    async def mass_status(self, since: datetime | None = None, *, joes_clock: bool = False) -> MassStatus:
        """Working orders, live deals (as filled entries with their attached legs), fills since `since`
        (default: the last 10 minutes; at most one day per request), positions and the account.
        `ts` (and the window's end) is the broker's time (`broker_now`). `since` is on it too, or with
        `joes_clock` on Joe's (an order's creation): then the window starts early enough on the broker's
        (`joe.core.reports.since_on_broker_clock`)."""
        now = await self.broker_now()
        positions = await self.trading.positions()
        orders = await self.trading.working_orders()
        if since is None:
            start = now - timedelta(minutes=10)
        else:
            start = since_on_broker_clock(since, now, self.clock()) if joes_clock else since
        acts = await self.accounts.activity(start, now + timedelta(seconds=1), fiql="type==POSITION")
        reports = [ob.working_order_report(r, now, reconciling=True) for r in orders]
        kids: dict[str, dict[OrderLeg, str]] = {}
        for child, (parent, leg) in self._children.items():
            kids.setdefault(parent, {})[leg] = child
        for r in positions:
            reports.append(ob.entry_report_from_position(r, now, reconciling=True))
            legs = kids.get(ob.own_reference(r.position.dealReference), {})
            reports += ob.child_reports(
                r,
                now,
                reconciling=True,
                stop_coid=legs.get(OrderLeg.STOP_LOSS, ""),
                target_coid=legs.get(OrderLeg.TAKE_PROFIT, ""),
            )
        entry_of = {r.position.dealId: ob.own_reference(r.position.dealReference) for r in positions}
        for deal_id, entry_cid in self.entry_deals.items():
            if not entry_of.get(deal_id):
                entry_of[deal_id] = entry_cid
        for a in acts:
            if ob.is_opening(a) and a.details is not None:
                ref = ob.own_reference(a.details.dealReference)
                entry_of.setdefault(a.dealId, ref)
                if ref:  # the broker says Joe's entry opened this deal: its legs' fate needs it later,
                    self.entry_deals.setdefault(a.dealId, ref)  # when the row is out of the day-deep history
        for cid in [c for c in self.in_doubt if c not in self._exits]:
            self._claim(cid, positions, acts)  # before a close row is called an outside change
        fills = [
            f
            for f in (self._fill(a, self._owner(a, kids, entry_of), entry_of) for a in acts)
            if f is not None
        ]
        return MassStatus(
            "capital", now, orders=reports, fills=[_reconciled(f) for f in fills],
            positions=[ob.position_report(r, now) for r in positions],
            account=account_info(await self.accounts.current_account()),
        )  # fmt: skip

    def deals_of(self, rows: Sequence[PositionRow], entry_cid: str) -> list[str]:
        """Deal ids opened by `entry_cid` (by reference; never by size)."""
        return [r.position.dealId for r in rows if ob.own_reference(r.position.dealReference) == entry_cid]


def _reconciled(f: FillReport) -> FillReport:
    return replace(f, from_reconciliation=True)
