"""Parsing of client→server requests the simulator understands.

`placeOrder` has a variable layout after index 34, so `parse_place_order` walks the same
conditionals as `ib_async.client.Client.placeOrder` to find ocaType, trailStopPrice,
trailingPercent and whatIf.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

UNSET_DOUBLE = 1.7976931348623157e308


def dec(s: str) -> Decimal | None:
    """Parse a wire number into Decimal; "" and the UNSET double become None."""
    if not s:
        return None
    try:
        if float(s) >= UNSET_DOUBLE:
            return None
        return Decimal(s)
    except (ValueError, InvalidOperation):
        return None


def as_int(s: str, default: int = 0) -> int:
    try:
        return int(s) if s else default
    except ValueError:
        return default


@dataclass(frozen=True, slots=True)
class ReqContract:
    """The 12 contract fields a request carries."""

    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str

    @classmethod
    def at(cls, f: list[str], i: int) -> ReqContract:
        return cls(as_int(f[i]), f[i + 1], f[i + 2], f[i + 7], f[i + 8], f[i + 9])


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    """Everything the simulator uses from one placeOrder message."""

    order_id: int
    contract: ReqContract
    action: str
    quantity: Decimal
    order_type: str
    lmt_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    oca_group: str
    account: str
    order_ref: str
    transmit: bool
    parent_id: int
    oca_type: int
    trail_stop_price: Decimal | None
    trailing_percent: Decimal | None
    what_if: bool


def parse_place_order(f: list[str], sv: int) -> PlacedOrder:
    """Parse placeOrder (id 3) fields sent by ib_async at server version `sv`."""
    c = ReqContract.at(f, 2)
    i = 35
    if c.sec_type == "BAG":
        n = as_int(f[i])
        i += 1 + 8 * n
        n = as_int(f[i])
        i += 1 + n
        n = as_int(f[i])
        i += 1 + 2 * n
    i += 7  # sharesAllocation, discretionaryAmt, goodAfterTime, goodTillDate, faGroup, faMethod, faPct
    if sv < 177:
        i += 1  # faProfile
    oca_type = as_int(f[i + 4])
    dn_type = f[i + 22]
    i += 24
    if dn_type:
        i += 8
    trail_stop = dec(f[i + 2])
    trailing_pct = dec(f[i + 3])
    increment = dec(f[i + 6])
    i += 7
    if increment is not None and increment > 0:
        i += 7
    hedge_type = f[i + 3]
    i += 4
    if hedge_type:
        i += 1
    i += 4  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    if f[i] == "1":
        i += 4
    else:
        i += 1
    algo = f[i]
    i += 1
    if algo:
        n = as_int(f[i])
        i += 1 + 2 * n
    what_if = f[i + 1] == "1"  # algoId, whatIf
    return PlacedOrder(
        order_id=as_int(f[1]),
        contract=c,
        action=f[16],
        quantity=dec(f[17]) or Decimal(0),
        order_type=f[18],
        lmt_price=dec(f[19]),
        aux_price=dec(f[20]),
        tif=f[21],
        oca_group=f[22],
        account=f[23],
        order_ref=f[26],
        transmit=f[27] == "1",
        parent_id=as_int(f[28]),
        oca_type=oca_type,
        trail_stop_price=trail_stop,
        trailing_percent=trailing_pct,
        what_if=what_if,
    )


@dataclass(frozen=True, slots=True)
class HistRequest:
    """reqHistoricalData (id 20) fields the simulator uses."""

    req_id: int
    contract: ReqContract
    end: str
    bar_size: str
    duration: str
    what_to_show: str


def parse_historical(f: list[str]) -> HistRequest:
    # 20, reqId, contract(12), includeExpired, endDateTime, barSize, duration, useRTH, whatToShow, ...
    return HistRequest(as_int(f[1]), ReqContract.at(f, 2), f[15], f[16], f[17], f[19])


def duration_days(duration: str) -> int:
    """IB duration string ("300 D", "2 Y", "6 M", "3 W") to a number of calendar days."""
    parts = duration.split()
    if len(parts) != 2:
        return 30
    n, unit = as_int(parts[0], 30), parts[1].upper()
    per = {"S": 0, "D": 1, "W": 7, "M": 31, "Y": 366}.get(unit, 1)
    return max(1, n * per)
