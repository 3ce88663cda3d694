"""Amending and cancelling at Capital.com for `CapitalExecutionClient`: `modify`, `cancel`, and the
PUT of a position's stop/profit set. Split out of `client.py` by concept; like the client it only
sends and reports — the broker's answer is observed (a WORKING report at the new level, or a
`BrokerNotice` refusal), never decided here.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

from joe.brokers.base import BrokerOrderRef, InvalidOrder, SendFailed, SubmitAck
from joe.brokers.capital import observe as ob
from joe.brokers.capital.errors import (
    AmbiguousWrite,
    CapitalAuthError,
    CapitalTransient,
    InvalidRequest,
    NotFound,
    RateLimited,
    SessionExpired,
)
from joe.brokers.capital.port import ClientPort
from joe.brokers.capital.trading import bracket, num
from joe.core import ids
from joe.core.models import OrderIntent, OrderLeg, OrderType
from joe.core.reports import CodeMeaning, InstrumentRules, OrderStatusReport

if TYPE_CHECKING:
    from joe.brokers.capital.queries import CapitalQueries

_CHILD_LEGS = (OrderLeg.STOP_LOSS, OrderLeg.TAKE_PROFIT)


class OrderAmendments(ClientPort):
    """`modify`/`cancel` of `CapitalExecutionClient` (which provides the transport and reporting)."""

    _children: dict[str, tuple[str, OrderLeg]]
    queries: CapitalQueries

    async def instrument_rules(self, symbol: str) -> InstrumentRules:
        raise NotImplementedError

    async def order_status(self, client_order_id: str) -> list[OrderStatusReport]:
        raise NotImplementedError

    async def modify(
        self,
        order: BrokerOrderRef,
        *,
        quantity: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> None:
        """Amend a level; the answer (a WORKING report at the new level, or a refusal) is observed."""
        i = order.intent
        cid = i.client_order_id
        if quantity is not None and quantity != i.quantity:
            if i.leg in _CHILD_LEGS:
                # An attached stop/target is always the deal's size: the broker resizes it with the
                # deal. Report what it holds now instead of sending anything.
                for r in await self.order_status(cid):
                    self._emit(r)
            else:
                self._notice(
                    "joe.size.not_amendable",
                    CodeMeaning.REQUEST_REFUSED,
                    "modify",
                    cid,
                    order.broker_order_id,
                )
            return
        rules = await self.instrument_rules(i.symbol)
        for name, px in (("limit_price", limit_price), ("stop_price", stop_price)):
            if px is not None and px % rules.tick_size != 0:
                raise InvalidOrder(
                    f"capital: modify {cid}: {name} {px} is not on the tick grid {rules.tick_size}"
                )
        if i.leg in _CHILD_LEGS:
            new = stop_price if i.leg is OrderLeg.STOP_LOSS else limit_price
            await self._set_leg(order, i.leg, new, "modify")
        else:
            level = limit_price if limit_price is not None else stop_price
            await self._write(cid, "modify", lambda: self.trading.amend_working_order(
                order.broker_order_id or "", {"level": num(level)}))  # fmt: skip

    async def cancel(self, order: BrokerOrderRef) -> None:
        """Cancel a working entry, or detach a stop/target from its position (the other leg stays)."""
        i = order.intent
        if i.leg in _CHILD_LEGS:
            await self._set_leg(order, i.leg, None, "cancel")
            return
        if order.broker_order_id is None or i.order_type is OrderType.MARKET:
            self._notice("joe.not_cancellable", CodeMeaning.REQUEST_REFUSED, "cancel", i.client_order_id)
            return
        await self._write(i.client_order_id, "cancel", lambda: self.trading.delete_working_order(
            order.broker_order_id or ""))  # fmt: skip

    async def attach_stop(self, intent: OrderIntent) -> list[SubmitAck]:
        """A protective stop for a position Joe holds, sent alone (the lost-protection reaction's
        reduce-only STOP after the bracket's stop went missing). At Capital.com a stop is the
        position's `stopLevel`, not an order: it is attached to the live deal(s) of the signal's entry
        (PUT, the take-profit kept; it covers the deal's whole size, as the broker holds it) and
        followed as that entry's stop leg from then on. It never opens or closes a deal.

        Raises `InvalidOrder` (nothing sent) when the entry has no live deal."""
        cid = intent.client_order_id
        entry_cid = ids.client_order_id(intent.signal_id, OrderLeg.ENTRY.value)
        if intent.stop_price is None:
            raise InvalidOrder(f"capital: stop {cid} has no stop price")
        try:
            rows = [
                r
                for r in await self.trading.positions()
                if ob.own_reference(r.position.dealReference) == entry_cid and r.market.epic == intent.symbol
            ]
        except (InvalidRequest, NotFound, RateLimited, CapitalAuthError, SessionExpired) as exc:
            raise SendFailed(f"capital: positions unreadable; stop {cid} not sent ({exc.code})") from None
        if not rows:
            raise InvalidOrder(
                f"capital: stop {cid}: no live deal of entry {entry_cid} on {intent.symbol}; "
                "nothing to protect"
            )
        self._children[cid] = (entry_cid, OrderLeg.STOP_LOSS)  # its fate is read as the entry's stop leg
        self.queries.leg_facts[cid] = (intent.symbol, intent.side, intent.quantity)
        for r in rows:
            deal, profit = r.position.dealId, r.position.profitLevel
            body = bracket(stop_level=intent.stop_price, profit_level=profit, explicit_nulls=True)
            await self._write(cid, "place", partial(self.trading.amend_position, deal, body))
        return [SubmitAck(cid, rows[0].position.dealId + ob.STOP_SUFFIX)]

    async def _set_leg(
        self, order: BrokerOrderRef, leg: OrderLeg, level: Decimal | None, request: str
    ) -> None:
        """PUT the position's full stop/profit set (spec §5.5: omitted fields are cleared)."""
        cid = order.intent.client_order_id
        parent = order.parent_broker_order_id or (order.broker_order_id or "").rsplit(":", 1)[0]
        try:
            cur = (await self.trading.position(parent)).position
        except NotFound:
            self._notice("error.not-found.dealId", CodeMeaning.AMBIGUOUS, request, cid, order.broker_order_id)
            return
        stop = level if leg is OrderLeg.STOP_LOSS else cur.stopLevel
        target = level if leg is OrderLeg.TAKE_PROFIT else cur.profitLevel
        trailing = cur.stopDistance if cur.trailingStop and leg is not OrderLeg.STOP_LOSS else None
        body = bracket(stop_level=stop, profit_level=target, trailing_distance=trailing, explicit_nulls=True)
        # The answer (WORKING at the new level, or CANCELLED once detached) is read back by `_write`.
        await self._write(cid, request, lambda: self.trading.amend_position(parent, body))

    async def _write(self, cid: str, request: str, send: Callable[[], Any]) -> bool:
        """Send one amend/cancel and confirm it; True when the broker accepted it. A refusal is a
        notice (REQUEST_REFUSED), a lost answer an AMBIGUOUS one: the OrderManager asks."""
        self._audit(f"capital.order.{request}", cid)
        try:
            ref = await send()
        except (InvalidRequest, NotFound, RateLimited, CapitalAuthError, SessionExpired) as exc:
            self._refused(exc, request, cid)
            return False
        except AmbiguousWrite:
            self._notice("joe.answer_lost", CodeMeaning.AMBIGUOUS, request, cid)
            return False
        except CapitalTransient as exc:
            if getattr(exc, "not_sent", False):  # provably never reached the broker: the caller may retry
                raise SendFailed(f"Capital.com {request} of {cid} not sent: {exc}") from exc
            raise
        c = await self._confirm(ref)
        if c is None or c.dealStatus.upper() != "ACCEPTED":
            code = "joe.unconfirmed" if c is None else (c.rejectReason or c.reason or "REJECTED")
            meaning = CodeMeaning.AMBIGUOUS if c is None else CodeMeaning.REQUEST_REFUSED
            self._notice(code, meaning, request, cid)
            return False
        for r in await self.order_status(cid):
            self._emit(r)
        return True
