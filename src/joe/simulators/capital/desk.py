"""The simulated dealing desk, part 1: accounts, prices, confirms, activity and positions.

Prices come from the shared seeded `PriceProcess`; attached stops, take-profits, trailing stops and
working orders are `SimOrder`s decided by the shared `FillModel` on every price step. Netting
follows the spec (§5.1): on a non-hedging account an opposite order closes existing deals of the
epic oldest first, a same-direction order adds a separate position row.

A client may name its request: `dealReference` in the POST body (1-30 of `A-Za-z0-9_-`, IG's rule;
the Capital.com docs do not list the field, so this is the simulator's assumption). The confirm is
then filed under that reference, and the position or working order it creates, the position a
working order becomes, and their activity rows carry it, so the client can find its order again
with nothing but its own id. Without one the server makes `o_<uuid>` and positions say `p_<dealId>`.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from joe.simulators.capital.catalog import BY_EPIC, CATALOG, MarketSpec
from joe.simulators.capital.rules import ApiError, Bracket, check_size, direction_of, parse_bracket
from joe.simulators.common import FillModel, PriceProcess, SimOrder, SimOrderType


def cents(amount: Decimal) -> Decimal:
    """Money as the account shows it: whole cents, half up (our pick; the spec does not say),
    never a negative zero (`-0.00` would print as `-0.0` in JSON)."""
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) + 0


def fmt(ts: datetime, millis: bool = True) -> str:
    s = ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds" if millis else "seconds")
    return s


@dataclass
class SimPosition:
    deal_id: str
    epic: str
    direction: str
    size: Decimal
    level: Decimal
    created: datetime
    working_order_id: str
    bracket: Bracket
    stop_order: SimOrder | None = None
    profit_order: SimOrder | None = None
    deal_reference: str = ""  # the client's reference of the request that opened it ("" = none)


@dataclass
class SimWorkingOrder:
    deal_id: str
    epic: str
    direction: str
    size: Decimal
    level: Decimal
    order_type: str
    created: datetime
    good_till: datetime | None
    bracket: Bracket  # legs resolved around `level` (every form: level, distance, amount)
    sim: SimOrder
    deal_reference: str = ""


@dataclass
class SimAccount:
    account_id: str
    name: str
    currency: str
    balance: Decimal
    hedging: bool = False
    preferred: bool = False
    leverages: dict[str, int] = field(
        default_factory=lambda: {
            "SHARES": 5,
            "CURRENCIES": 30,
            "INDICES": 20,
            "CRYPTOCURRENCIES": 2,
            "COMMODITIES": 10,
        }
    )
    positions: list[SimPosition] = field(default_factory=list)
    orders: list[SimWorkingOrder] = field(default_factory=list)
    activity: list[dict[str, Any]] = field(default_factory=list)
    transactions: list[dict[str, Any]] = field(default_factory=list)


_CLIENT_REF = re.compile(r"[A-Za-z0-9_-]{1,30}")


def client_ref(body: dict[str, Any]) -> str:
    """The request's own `dealReference` ("" if absent); a malformed one is a 400."""
    ref = body.get("dealReference")
    if ref is None:
        return ""
    if not isinstance(ref, str) or not _CLIENT_REF.fullmatch(ref):
        raise ApiError(400, "error.invalid.dealReference")
    return ref


class Desk:
    """Accounts, prices, confirms, activity and positions; `Exchange` adds working orders and triggers."""

    def __init__(
        self, seed: int = 1, *, tz_offset_h: int = 2, now: Callable[[], datetime] | None = None
    ) -> None:
        self.seed = seed
        self.tz_offset = timedelta(hours=tz_offset_h)
        self.now = now or (lambda: datetime.now(UTC))
        self.fill = FillModel()
        self.prices: dict[str, PriceProcess] = {
            m.epic: PriceProcess(m.epic, seed=seed, start=m.start, tick=m.tick, vol_per_step=0.0004)
            for m in CATALOG
        }
        self.status: dict[str, str] = {m.epic: "TRADEABLE" for m in CATALOG}
        self.accounts: dict[str, SimAccount] = {
            "12345678901234567": SimAccount(
                "12345678901234567", "USD", "USD", Decimal(100_000), preferred=True
            ),
            "12345678901234568": SimAccount("12345678901234568", "Second account", "USD", Decimal(25_000)),
        }
        self.confirms: dict[str, dict[str, Any]] = {}
        self.hidden_polls: dict[str, int] = {}
        self._rng = random.Random(seed)
        self._n = 0

    # ------------------------------------------------------------------ helpers
    def spec(self, epic: str) -> MarketSpec:
        spec = BY_EPIC.get(epic)
        if spec is None:
            raise ApiError(404, "error.not-found.epic")
        return spec

    def quote(self, epic: str) -> tuple[Decimal, Decimal]:
        q = self.prices[epic].quote
        return q.bid, q.ask

    def _id(self) -> str:
        self._n += 1
        return f"{self.seed & 0xFFFFFFFF:08x}-0001-54c4-0000-{self._n:012x}"

    def _ref(self) -> str:
        return "o_" + str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def dates(self, key: str, ts: datetime, utc_key: str | None = None) -> dict[str, str]:
        return {key: fmt(ts + self.tz_offset), utc_key or key + "UTC": fmt(ts)}

    def _activity(
        self, acc: SimAccount, epic: str, deal_id: str, source: str, typ: str, status: str, **details: Any
    ) -> None:
        spec = BY_EPIC[epic]
        acc.activity.append(
            {
                **self.dates("date", self.now()),
                "epic": epic,
                "dealId": deal_id,
                "source": source,
                "type": typ,
                "status": status,
                "details": {
                    "marketName": spec.name,
                    "currency": spec.currency,
                    **{k: v for k, v in details.items() if v is not None},
                },
            }
        )

    def _confirm(self, ref: str, body: dict[str, Any], hide: int = 0) -> str:
        # The confirm's `date` is UTC (recorded confirm vs its HTTP Date header), unlike `createdDate`.
        self.confirms[ref] = {"date": fmt(self.now()), "dealReference": ref, **body}
        if hide:
            self.hidden_polls[ref] = hide
        return ref

    def get_confirm(self, ref: str) -> dict[str, Any]:
        if self.hidden_polls.get(ref, 0) > 0:
            self.hidden_polls[ref] -= 1
            raise ApiError(404, "error.not-found.dealReference")
        c = self.confirms.get(ref)
        if c is None:
            raise ApiError(404, "error.not-found.dealReference")
        return c

    def _reject(
        self, ref: str, epic: str, direction: str, size: Decimal, reason: str, text: str, hide: int
    ) -> str:
        return self._confirm(
            ref,
            {
                "status": None,
                "reason": reason,
                "rejectReason": text,
                "dealStatus": "REJECTED",
                "epic": epic,
                "dealId": self._id(),
                "affectedDeals": [],
                "level": None,
                "size": float(size),
                "direction": direction,
                "guaranteedStop": False,
                "trailingStop": False,
            },
            hide,
        )

    # ------------------------------------------------------------------ money
    @staticmethod
    def upl(p: SimPosition, bid: Decimal, ask: Decimal) -> Decimal:
        return (bid - p.level) * p.size if p.direction == "BUY" else (p.level - ask) * p.size

    def account_balance(self, acc: SimAccount) -> dict[str, float]:
        """As recorded: `deposit` is the cash, `profitLoss` the open P/L, `balance` = deposit +
        profitLoss, `available` = balance − margin in use; all in cents."""
        upl = margin = Decimal(0)
        for p in acc.positions:
            bid, ask = self.quote(p.epic)
            upl += self.upl(p, bid, ask)
            margin += p.size * p.level * BY_EPIC[p.epic].margin_pct / 100
        deposit, pnl = cents(acc.balance), cents(upl)
        return {
            "balance": float(deposit + pnl),
            "deposit": float(deposit),
            "profitLoss": float(pnl),
            "available": float(deposit + pnl - cents(margin)),
        }

    # ------------------------------------------------------------------ positions
    def _attach(self, p: SimPosition) -> None:
        """(Re)build the protective SimOrders of a position from its bracket."""
        side = "SELL" if p.direction == "BUY" else "BUY"
        b = p.bracket
        p.stop_order = p.profit_order = None
        if b.trailing and b.stop_distance is not None:
            p.stop_order = SimOrder(
                p.deal_id + ":sl",
                p.epic,
                side,
                p.size,
                SimOrderType.TRAIL,
                stop_price=b.stop_level,
                trail_amount=b.stop_distance,
            )
        elif b.stop_level is not None:
            p.stop_order = SimOrder(
                p.deal_id + ":sl", p.epic, side, p.size, SimOrderType.STOP, stop_price=b.stop_level
            )
        if b.profit_level is not None:
            p.profit_order = SimOrder(
                p.deal_id + ":tp", p.epic, side, p.size, SimOrderType.LIMIT, limit_price=b.profit_level
            )

    def _realise(
        self, acc: SimAccount, p: SimPosition, size: Decimal, price: Decimal, source: str, ref: str = ""
    ) -> Decimal:
        # Booked in cents, as the confirm's `profit` and the transaction show it: the cash must
        # equal the sum of what the broker reports, not drift by fractions of a cent per trade.
        pnl = cents(((price - p.level) if p.direction == "BUY" else (p.level - price)) * size)
        acc.balance += pnl
        acc.transactions.append(
            {
                **self.dates("date", self.now(), "dateUtc"),
                "instrumentName": BY_EPIC[p.epic].name,
                "transactionType": "TRADE",
                "note": "Trade closed",
                "reference": p.deal_id,
                "size": f"{pnl:.2f}",
                "currency": acc.currency,
            }
        )
        self._activity(
            acc,
            p.epic,
            p.deal_id,
            source,
            "POSITION",
            "ACCEPTED",
            dealReference=ref or "p_" + p.deal_id,
            size=float(size),
            direction=p.direction,
            level=float(price),
            guaranteedStop=p.bracket.guaranteed,
        )
        return pnl

    def execute(
        self,
        acc: SimAccount,
        epic: str,
        direction: str,
        size: Decimal,
        level: Decimal,
        bracket: Bracket,
        request_id: str,
        source: str = "USER",
        ref: str = "",
    ) -> list[dict[str, str]]:
        """Fill at `level`: net against opposite deals (non-hedging), then open the rest as a new row."""
        affected: list[dict[str, str]] = []
        remaining = size
        if not acc.hedging:
            for p in sorted(
                (p for p in acc.positions if p.epic == epic and p.direction != direction),
                key=lambda p: p.created,
            ):
                if remaining <= 0:
                    break
                take = min(p.size, remaining)
                self._realise(acc, p, take, level, source, ref)
                p.size -= take
                remaining -= take
                if p.size == 0:
                    acc.positions.remove(p)
                    affected.append({"dealId": p.deal_id, "status": "FULLY_CLOSED"})
                else:
                    self._attach(p)
                    affected.append({"dealId": p.deal_id, "status": "PARTIALLY_CLOSED"})
        if remaining > 0:
            deal_id = self._id()
            p = SimPosition(
                deal_id,
                epic,
                direction,
                remaining,
                level,
                self.now(),
                request_id,
                bracket,
                deal_reference=ref,
            )
            self._attach(p)
            acc.positions.append(p)
            affected.append({"dealId": deal_id, "status": "OPENED"})
            self._activity(
                acc,
                epic,
                deal_id,
                source,
                "POSITION",
                "ACCEPTED",
                dealReference=ref or "p_" + deal_id,
                size=float(remaining),
                direction=direction,
                level=float(level),
                guaranteedStop=bracket.guaranteed,
                trailingStop=bracket.trailing or None,  # only when set, as the levels
                **bracket.levels_json(),
                workingOrderId=request_id,
            )
        return affected

    def _closed_reason(self, epic: str) -> str | None:
        if self.status.get(epic) != "TRADEABLE":
            return f"Rejected. {epic} is currently closed. Timetable in place: UTC; Mon-Fri 00:00-23:59"
        return None

    def open_position(self, acc: SimAccount, body: dict[str, Any], hide: int = 0) -> str:
        if not isinstance(body, dict):
            raise ApiError(400, "error.invalid.request")
        direction = direction_of(body)
        epic = body.get("epic")
        if not isinstance(epic, str) or not epic:
            raise ApiError(400, "error.null.epic")
        spec = self.spec(epic)
        size = check_size(spec, body)
        bid, ask = self.quote(epic)
        level = ask if direction == "BUY" else bid
        bracket = parse_bracket(spec, body, direction=direction, ref=level, size=size, hedging=acc.hedging)
        own = client_ref(body)
        ref = own or self._ref()
        closed = self._closed_reason(epic)
        if closed:
            return self._reject(ref, epic, direction, size, "MARKET_CLOSED", closed, hide)
        margin = size * level * spec.margin_pct / 100
        if Decimal(str(self.account_balance(acc)["available"])) < margin:
            return self._reject(ref, epic, direction, size, "INSUFFICIENT_FUNDS", "INSUFFICIENT_FUNDS", hide)
        request_id = self._id()
        affected = self.execute(acc, epic, direction, size, level, bracket, request_id, ref=own)
        return self._confirm(
            ref,
            {
                "status": "OPEN",
                "reason": "SUCCESS",
                "dealStatus": "ACCEPTED",
                "epic": epic,
                "dealId": request_id,
                "affectedDeals": affected,
                "level": float(level),
                "size": float(size),
                "direction": direction,
                "guaranteedStop": bracket.guaranteed,
                "trailingStop": bracket.trailing,
                **bracket.levels_json(),
            },
            hide,
        )

    def find_position(self, acc: SimAccount, deal_id: str) -> SimPosition:
        for p in acc.positions:
            if p.deal_id == deal_id:
                return p
        raise ApiError(404, "error.not-found.dealId")

    def amend_position(self, acc: SimAccount, deal_id: str, body: dict[str, Any]) -> str:
        """PUT replaces the whole stop/profit/trailing set; an empty body changes nothing."""
        p = self.find_position(acc, deal_id)
        if not isinstance(body, dict):
            raise ApiError(400, "error.invalid.request")
        if body:
            bid, ask = self.quote(p.epic)
            ref_px = bid if p.direction == "BUY" else ask
            p.bracket = parse_bracket(
                self.spec(p.epic), body, direction=p.direction, ref=ref_px, size=p.size, hedging=acc.hedging
            )
            self._attach(p)
            self._activity(
                acc,
                p.epic,
                deal_id,
                "USER",
                "EDIT_STOP_AND_LIMIT",
                "ACCEPTED",
                dealReference="p_" + deal_id,
                size=float(p.size),
                direction=p.direction,
                level=float(p.level),
                guaranteedStop=p.bracket.guaranteed,
                trailingStop=p.bracket.trailing or None,
                **p.bracket.levels_json(),
            )
        return self._confirm(
            "p_" + deal_id,
            {
                "status": "AMENDED",
                "reason": "SUCCESS",
                "dealStatus": "ACCEPTED",
                "epic": p.epic,
                "dealId": deal_id,
                "affectedDeals": [{"dealId": deal_id, "status": "AMENDED"}],
                "level": float(p.level),
                "size": float(p.size),
                "direction": p.direction,
                "guaranteedStop": p.bracket.guaranteed,
                "trailingStop": p.bracket.trailing,
                **p.bracket.levels_json(),
            },
        )

    def close_position(self, acc: SimAccount, deal_id: str, source: str = "USER") -> str:
        p = self.find_position(acc, deal_id)
        closed = self._closed_reason(p.epic)
        if closed:
            raise ApiError(400, closed)
        bid, ask = self.quote(p.epic)
        price = bid if p.direction == "BUY" else ask
        return self._close_at(acc, p, price, source)

    def _close_at(self, acc: SimAccount, p: SimPosition, price: Decimal, source: str) -> str:
        pnl = self._realise(acc, p, p.size, price, source)
        acc.positions.remove(p)
        return self._confirm(
            "p_" + p.deal_id,
            {
                "status": "CLOSED",
                "reason": "SUCCESS",
                "dealStatus": "ACCEPTED",
                "epic": p.epic,
                "dealId": p.deal_id,
                "affectedDeals": [{"dealId": p.deal_id, "status": "FULLY_CLOSED"}],
                "level": float(price),
                "size": float(p.size),
                "direction": "SELL" if p.direction == "BUY" else "BUY",
                "guaranteedStop": p.bracket.guaranteed,
                "trailingStop": p.bracket.trailing,
                "profit": float(pnl),  # money in cents, as balances
                "profitCurrency": acc.currency,
            },
        )
