"""The simulated dealing desk, part 2: working orders and the price-driven triggers.

Attached stops, take-profits, trailing stops and working orders are `SimOrder`s decided by the
shared `FillModel` on every price step (`on_price`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from joe.simulators.capital.desk import Desk, SimAccount, SimPosition, SimWorkingOrder, client_ref, fmt
from joe.simulators.capital.rules import (
    ApiError,
    check_size,
    dec,
    direction_of,
    on_tick,
    parse_bracket,
)
from joe.simulators.common import SimOrder, SimOrderType

__all__ = ["Exchange", "SimAccount", "SimPosition", "SimWorkingOrder", "fmt"]


class Exchange(Desk):
    """All trading state of the simulator (see `Desk`) plus working orders and triggers."""

    # ------------------------------------------------------------------ working orders
    def create_order(self, acc: SimAccount, body: dict[str, Any], hide: int = 0) -> str:
        if not isinstance(body, dict):
            raise ApiError(400, "error.invalid.request")
        direction = direction_of(body)
        epic = body.get("epic")
        if not isinstance(epic, str) or not epic:
            raise ApiError(400, "error.null.epic")
        spec = self.spec(epic)
        size = check_size(spec, body)
        if "level" not in body:
            raise ApiError(400, "error.invalid.level")
        level = dec(body["level"], "error.invalid.level")
        on_tick(spec, level, "error.invalid.level")
        otype = body.get("type")
        if otype not in ("LIMIT", "STOP"):
            raise ApiError(400, "error.invalid.type")
        good_till = self._good_till(body)
        # Every protection form resolves once, around the order level: what every view shows.
        bracket = parse_bracket(spec, body, direction=direction, ref=level, size=size, hedging=acc.hedging)
        own = client_ref(body)
        ref = own or self._ref()
        bid, ask = self.quote(epic)
        touch = ask if direction == "BUY" else bid
        wrong = (otype == "LIMIT") == (level > touch if direction == "BUY" else level < touch)
        if wrong:
            reason = "LIMIT_ORDER_WRONG_SIDE_OF_MARKET" if otype == "LIMIT" else "WRONG_SIDE_OF_MARKET"
            return self._reject(ref, epic, direction, size, reason, reason, hide)
        deal_id, request_id = self._id(), self._id()
        side_type = SimOrderType.LIMIT if otype == "LIMIT" else SimOrderType.STOP
        sim = SimOrder(
            deal_id,
            epic,
            direction,
            size,
            side_type,
            limit_price=level if otype == "LIMIT" else None,
            stop_price=level if otype == "STOP" else None,
        )
        acc.orders.append(
            SimWorkingOrder(
                deal_id,
                epic,
                direction,
                size,
                level,
                otype,
                self.now(),
                good_till,
                bracket,
                sim,
                deal_reference=own,
            )
        )
        self._activity(
            acc,
            epic,
            deal_id,
            "USER",
            "WORKING_ORDER",
            "ACCEPTED",
            **order_details(acc.orders[-1]),
        )
        return self._confirm(
            ref,
            {
                "status": "OPEN",
                "reason": "SUCCESS",
                "dealStatus": "ACCEPTED",
                "epic": epic,
                "dealId": request_id,
                "affectedDeals": [{"dealId": deal_id, "status": "OPENED"}],
                "level": float(level),
                "size": float(size),
                "direction": direction,
                "guaranteedStop": bracket.guaranteed,
                "trailingStop": bracket.trailing,
                **bracket.levels_json(),
            },
            hide,
        )

    def _good_till(self, body: dict[str, Any]) -> datetime | None:
        gtd = body.get("goodTillDate")
        if gtd is None:
            return None
        try:
            ts = datetime.strptime(str(gtd), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            raise ApiError(400, "error.invalid.goodTillDate") from None
        if ts <= self.now():
            raise ApiError(400, "error.not-in-future.goodTillDate")
        return ts

    def find_order(self, acc: SimAccount, deal_id: str) -> SimWorkingOrder:
        for o in acc.orders:
            if o.deal_id == deal_id:
                return o
        raise ApiError(404, "error.not-found.dealId")

    def amend_order(self, acc: SimAccount, deal_id: str, body: dict[str, Any]) -> str:
        o = self.find_order(acc, deal_id)
        if not isinstance(body, dict):
            raise ApiError(400, "error.invalid.request")
        if "level" in body:
            level = dec(body["level"], "error.invalid.level")
            on_tick(self.spec(o.epic), level, "error.invalid.level")
            # The legs are offsets from the order level (that is how `GET /workingorders` reports
            # them), so moving the level moves every leg with it, whatever form it was sent in.
            o.bracket = o.bracket.shifted(level - o.level)
            o.level = level
            if o.order_type == "LIMIT":
                o.sim.limit_price = o.level
            else:
                o.sim.stop_price = o.level
        if "goodTillDate" in body:
            o.good_till = self._good_till(body)
        brk = {k: v for k, v in body.items() if k.startswith(("stop", "profit", "trailing", "guaranteed"))}
        if brk:
            o.bracket = parse_bracket(
                self.spec(o.epic), brk, direction=o.direction, ref=o.level, size=o.size, hedging=acc.hedging
            )
        self._activity(acc, o.epic, deal_id, "USER", "WORKING_ORDER", "MODIFIED", **order_details(o))
        return self._confirm(
            self._ref(),
            {
                "status": "AMENDED",
                "reason": "SUCCESS",
                "dealStatus": "ACCEPTED",
                "epic": o.epic,
                "dealId": self._id(),
                "affectedDeals": [{"dealId": deal_id, "status": "AMENDED"}],
                "level": float(o.level),
                "size": float(o.size),
                "direction": o.direction,
                "guaranteedStop": o.bracket.guaranteed,
                "trailingStop": o.bracket.trailing,
                **o.bracket.levels_json(),
            },
        )

    def delete_order(self, acc: SimAccount, deal_id: str) -> str:
        o = self.find_order(acc, deal_id)
        acc.orders.remove(o)
        self._activity(acc, o.epic, deal_id, "USER", "WORKING_ORDER", "CANCELLED", **order_details(o))
        return self._confirm(
            self._ref(),
            {
                "status": "DELETED",
                "reason": "SUCCESS",
                "dealStatus": "ACCEPTED",
                "epic": o.epic,
                "dealId": self._id(),
                "affectedDeals": [{"dealId": deal_id, "status": "DELETED"}],
                "level": float(o.level),
                "size": float(o.size),
                "direction": o.direction,
                "guaranteedStop": o.bracket.guaranteed,
                "trailingStop": o.bracket.trailing,
                **o.bracket.levels_json(),
            },
        )

    # ------------------------------------------------------------------ time passes
    def on_price(self, epic: str) -> None:
        """Fire any stop / take-profit / trailing stop / working order that the new quote reaches."""
        if self.status.get(epic) != "TRADEABLE":
            return
        bid, ask = self.quote(epic)
        now = self.now()
        for acc in self.accounts.values():
            for p in [p for p in acc.positions if p.epic == epic]:
                for order, source in ((p.stop_order, "SL"), (p.profit_order, "TP")):
                    if order is None or p not in acc.positions:
                        continue
                    hit = self.fill.check(order, bid, ask)
                    if order.order_type is SimOrderType.TRAIL:
                        p.bracket.stop_level = order.stop_price
                    if hit is not None:
                        self._close_at(acc, p, hit.price, source)
            for o in [o for o in acc.orders if o.epic == epic]:
                if o.good_till is not None and now >= o.good_till:
                    acc.orders.remove(o)
                    self._activity(
                        acc, epic, o.deal_id, "SYSTEM", "WORKING_ORDER", "EXPIRED", **order_details(o)
                    )
                    continue
                hit = self.fill.check(o.sim, bid, ask)
                if hit is None:
                    continue
                acc.orders.remove(o)
                self._activity(
                    acc, epic, o.deal_id, "SYSTEM", "WORKING_ORDER", "EXECUTED", **order_details(o, hit.price)
                )
                self.execute(
                    acc,
                    epic,
                    o.direction,
                    o.size,
                    hit.price,
                    o.bracket.shifted(hit.price - o.level),  # the legs' offsets, from the fill
                    o.deal_id,
                    source="SYSTEM",
                    ref=o.deal_reference,
                )


def order_details(o: SimWorkingOrder, level: Decimal | None = None) -> dict[str, Any]:
    """What every activity row of a working order carries in `details` (as recorded rows do), with
    its legs as levels around the order level (or around the fill `level` once executed)."""
    at = o.level if level is None else level
    return {
        "dealReference": o.deal_reference or None,
        "size": float(o.size),
        "direction": o.direction,
        "level": float(at),
        "guaranteedStop": o.bracket.guaranteed,
        "trailingStop": o.bracket.trailing or None,  # only when set (recorded rows have none)
        **o.bracket.shifted(at - o.level).levels_json(),
    }
