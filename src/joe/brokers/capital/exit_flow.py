"""Exits at Capital.com for `CapitalExecutionClient`: a reduce-only exit closes Joe's own deals by
dealId (whole; the attached stop and target go with the deal) or, on a netting account, sends an
opposite deal named by the exit's id (`exits.plan_exit` decides which). Split out of `client.py` by
concept; like the client it only sends and reports what the broker answered.

* A close by dealId rests nowhere: a deal still open once its DELETE was answered was not closed by
  it (refused on a closed market, say), so the exit is over (CANCELLED, with what it filled; it may
  be retried), never WORKING with nothing working — and the deal keeps its stop, which the
  `OrderManager` never removes first where the legs follow the deal (chaos defect 5).
* What a close closed is the broker's confirm (`size`), not the size read before: the owner may
  close part of the deal on the platform between Joe's read and its DELETE. The exit's fill is the
  newest new close row up to that size; an older new row is the owner's (an outside change).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from joe.brokers.base import OrderOutcomeUnknown, SendFailed, SubmitAck
from joe.brokers.capital import observe as ob
from joe.brokers.capital.accounts import AccountsApi
from joe.brokers.capital.errors import (
    CapitalAuthError,
    CapitalError,
    CapitalTransient,
    InvalidRequest,
    NotFound,
    RateLimited,
    SessionExpired,
)
from joe.brokers.capital.exits import ExitPlan, plan_exit
from joe.brokers.capital.models import Activity, Confirm, PositionRow
from joe.brokers.capital.port import ClientPort
from joe.brokers.capital.queries import CapitalQueries
from joe.brokers.capital.trading import num
from joe.core import ids
from joe.core.models import OrderIntent, OrderLeg, OrderType
from joe.core.reports import BrokerNotice, CodeMeaning, OrderStatusReport, VenueOrderStatus


class ExitFlow(ClientPort):
    """The exit side of `CapitalExecutionClient` (which provides the transport and reporting)."""

    accounts: AccountsApi
    queries: CapitalQueries
    clock: Callable[[], datetime]
    fill_wait_s: float
    confirm_interval_s: float
    _sent: set[str]
    _exits: dict[str, list[str]]
    _preclose: dict[str, set[str]]
    _netted: set[str]

    async def _existing(self, cid: str) -> Confirm | None:
        raise NotImplementedError

    async def _send_order(
        self, entry: OrderIntent, legs: Sequence[OrderIntent], path: str, body: dict[str, Any]
    ) -> str | None:
        raise NotImplementedError

    async def _acks_from_broker(self, entry: OrderIntent, legs: Sequence[OrderIntent]) -> list[SubmitAck]:
        raise NotImplementedError

    async def _deal_rows(self, deal_id: str) -> list[Activity]:
        raise NotImplementedError

    async def _report_fills(
        self, deal_ids: Sequence[str], cid: str, keep: Callable[[Activity], bool]
    ) -> None:
        raise NotImplementedError

    async def _report_close(self, deal_id: str, cid: str, before: set[str], size: Decimal) -> None:
        """Emit the fills of exit `cid`'s close of `deal_id` (`size` closed, from its confirm). Its row
        names no request (`p_<dealId>`): it is among the rows that were not there `before` — the
        newest, up to `size`. An older new row is the owner's partial close of the deal that landed
        between `before` and the DELETE (the race of an exit with the owner): it is added to the
        exit's `preclose`, so no later query books it on the exit; it is an outside change."""
        deadline = time.monotonic() + self.fill_wait_s
        while True:
            rows = [
                r for r in await self._deal_rows(deal_id)
                if ob.not_in(before)(r) and not ob.is_opening(r) and r.source.upper() not in ("SL", "TP")
            ]  # fmt: skip
            mine, got = [], Decimal(0)
            # Newest first; of rows in one millisecond, the later listed (`occurrence`) is taken as newer.
            for r in sorted(rows, key=lambda r: (r.dateUTC, r.occurrence), reverse=True):
                f = ob.fill_from_activity(r, cid) if got < size else None
                if f is not None:
                    mine.append((r, f))
                    got += f.fill.quantity
            if got >= size or time.monotonic() >= deadline:
                break
            await asyncio.sleep(self.confirm_interval_s)
        taken = {id(r) for r, _ in mine}
        self._preclose.setdefault(cid, set()).update(ob.row_fill_id(r) for r in rows if id(r) not in taken)
        for _, f in mine:
            self._emit(f)

    async def _exit(self, intent: OrderIntent) -> list[SubmitAck]:
        cid = intent.client_order_id
        entry_cid = ids.client_order_id(intent.signal_id, OrderLeg.ENTRY.value)
        if cid in self._sent:
            raise OrderOutcomeUnknown(f"capital: exit {cid} was already sent; ask order_status, never resend")
        try:
            hedging = (await self.accounts.preferences()).hedgingMode
            rows = await self.trading.positions()
        except CapitalError as exc:
            raise SendFailed(f"capital: positions unreadable; exit {cid} not sent ({exc.code})") from None
        plan = plan_exit(rows, intent, entry_cid, hedging=hedging)
        if plan.capped:
            self._emit(BrokerNotice(
                "capital", "joe.exit.capped", f"exit of {intent.quantity} capped at the live {plan.live}",
                CodeMeaning.NOTICE, self.clock(), cid, request="place",
            ))  # fmt: skip
        self._sent.add(cid)
        self._audit(
            "capital.exit.submit", cid, entry=entry_cid, close=plan.close, net_size=str(plan.net_size),
            quantity=str(plan.quantity), live=str(plan.live),
        )  # fmt: skip
        if plan.net_size is not None:
            existing = await self._existing(cid)  # a netting exit is a POST named by its id: asked first
            if existing is not None:
                self._emit(ob.confirm_report(existing, cid, working=False, ts=self.clock()))
                return [SubmitAck(cid, existing.dealId, None)]
            body = {"epic": intent.symbol, "direction": intent.side.value, "size": num(plan.net_size),
                    "dealReference": cid}  # fmt: skip
            ref = await self._send_order(intent, [], "/positions", body)
            c = await self._confirm(ref) if ref else None
            if c is None:
                return await self._acks_from_broker(intent, [])
            self._exits[cid] = ob.closed_deals(c)
            self._netted.add(cid)
            self._emit(ob.confirm_report(c, cid, working=False, ts=self.clock()))
            await self._report_fills(ob.closed_deals(c), cid, ob.of_request(cid, None))
            return [SubmitAck(cid, c.dealId, None)]
        self._exits[cid] = list(plan.close)
        self.queries.closing.add(cid)
        try:
            return await self._close_deals(intent, plan, rows)
        finally:
            self.queries.closing.discard(cid)

    async def _close_deals(
        self, intent: OrderIntent, plan: ExitPlan, rows: Sequence[PositionRow]
    ) -> list[SubmitAck]:
        """DELETE each deal of `plan` (whole); report what closed (see `_unclosed`)."""
        cid = intent.client_order_id
        done = Decimal(0)
        prices: list[tuple[Decimal, Decimal]] = []
        closed: set[str] = set()
        for deal_id in plan.close:
            size = next(r.position.size for r in rows if r.position.dealId == deal_id)
            before = {ob.row_fill_id(r) for r in await self._deal_rows(deal_id)}
            self._preclose.setdefault(cid, set()).update(before)
            c = await self._close_deal(cid, deal_id)
            if c is not None and c.dealStatus.upper() == "ACCEPTED":
                closed.add(deal_id)
                got = c.size if c.size is not None else size  # the broker's word: what it closed
                done += got
                prices.append((got, c.level or Decimal(0)))
                await self._report_close(deal_id, cid, before, got)
        avg = sum((s * p for s, p in prices), Decimal(0)) / done if done else None
        first = plan.close[0]
        unclosed = [d for d in plan.close if d not in closed]
        # What this exit can fill: what its closes closed (a deal the owner reduced meanwhile closes
        # smaller), plus the deals whose close is not confirmed.
        qty = done + sum((r.position.size for r in rows if r.position.dealId in unclosed), Decimal(0))
        status, why = VenueOrderStatus.FILLED, "capped at the live position" if plan.capped else ""
        if qty < plan.quantity:
            why = f"capped at what the deals held when closed ({qty} of {plan.quantity})"
        if unclosed:
            status, why = await self._unclosed(cid, unclosed, done)
        self._emit(OrderStatusReport(
            "capital", cid, "p_" + first, intent.symbol, intent.side, qty, status, self.clock(),
            filled_quantity=done, avg_fill_price=avg, order_type=OrderType.MARKET, leg=intent.leg,
            raw_status="CLOSED", reason=why,
        ))  # fmt: skip
        return [SubmitAck(cid, "p_" + first, first)]

    async def _unclosed(
        self, cid: str, deal_ids: Sequence[str], done: Decimal
    ) -> tuple[VenueOrderStatus, str]:
        """The status of exit `cid` whose closes of `deal_ids` were not confirmed (`done` closed by
        the others). A close by dealId is immediate (nothing of it rests at the broker): a deal still
        open was not closed by it (refused, or never reached the broker), so the exit is over —
        REJECTED, or CANCELLED with what it filled — and may be retried, never WORKING with nothing
        working; the deal is no longer this exit's (`CapitalQueries.refused`: a later close of it,
        by the next exit or the owner, is not this one's fill). A deal gone without a confirm (its
        stop or target, or a lost answer) is WORKING until `order_status` reads its activity rows."""
        try:
            live = {r.position.dealId for r in await self.trading.positions()}
        except CapitalError:
            return VenueOrderStatus.WORKING, "close not confirmed; positions unreadable"
        if any(d not in live for d in deal_ids):
            return VenueOrderStatus.WORKING, "close not confirmed; the deal is gone"
        self.queries.refused.setdefault(cid, set()).update(deal_ids)
        status = VenueOrderStatus.CANCELLED if done else VenueOrderStatus.REJECTED
        return status, "close refused: the deal is still open (its stop stays attached)"

    async def _close_deal(self, cid: str, deal_id: str) -> Confirm | None:
        """DELETE one deal. An answer that may have been lost is resolved by asking whether it exists."""
        try:
            ref = await self.trading.close_position(deal_id)
        except NotFound:
            self._notice("error.not-found.dealId", CodeMeaning.AMBIGUOUS, "place", cid, deal_id)
            return None
        except (InvalidRequest, CapitalAuthError, RateLimited, SessionExpired) as exc:
            self._refused(exc, "place", cid, deal_id)
            return None
        except CapitalTransient:
            ref = "p_" + deal_id  # where a close of this deal is filed; an amend files there too
        c = await self._confirm(ref)
        if c is not None and deal_id in ob.closed_deals(c):
            return c
        # No confirm that this deal closed (lost, or an older amend's): the positions say.
        try:
            live = {r.position.dealId for r in await self.trading.positions()}
        except CapitalError:
            live = {deal_id}
        if deal_id in live:
            raise OrderOutcomeUnknown(f"capital: close of deal {deal_id} for {cid} could not be confirmed")
        # Gone, by this close or by its stop/target: the activity rows settle it (order_status).
        self._notice("joe.close_unconfirmed", CodeMeaning.AMBIGUOUS, "place", cid, deal_id)
        return None
