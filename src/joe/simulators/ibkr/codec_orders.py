"""Order-related server messages: openOrder, completedOrder and execDetails (the long ones).

`openOrder` is 127 fields at server version 178 and 120 at 157 for a plain order; the layout follows
`ib_async.decoder.Decoder.openOrder` block by block (count fields must be integers, "" elsewhere
decodes to the default).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from joe.simulators.ibkr.codec import Field, SimContract


@dataclass(frozen=True, slots=True)
class WireOrder:
    """The order facts echoed back to the client in openOrder/completedOrder."""

    order_id: int
    client_id: int
    perm_id: int
    action: str
    quantity: Decimal
    order_type: str
    lmt_price: Decimal | None = None
    aux_price: Decimal | None = None
    tif: str = "DAY"
    oca_group: str = ""
    oca_type: int = 0
    account: str = ""
    order_ref: str = ""
    parent_id: int = 0
    trail_stop_price: Decimal | None = None
    trailing_percent: Decimal | None = None
    transmit: bool = True
    filled: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class WhatIfState:
    """Margin numbers of a whatIf answer (strings on the wire, numeric here)."""

    init_before: Decimal
    maint_before: Decimal
    ewl_before: Decimal
    init_change: Decimal
    maint_change: Decimal
    ewl_change: Decimal
    commission: Decimal
    warning: str = ""


def _contract_block(c: SimContract) -> list[Field]:
    """conId .. tradingClass (11 fields) as openOrder/completedOrder carry it."""
    return [*c.short(), c.exchange, c.currency, c.symbol, c.symbol]


def open_order(
    sv: int, c: SimContract, o: WireOrder, status: str, what_if: WhatIfState | None = None
) -> list[Field]:
    """Build openOrder (id 5) for a plain (non-combo, non-algo, no-condition) order."""
    f: list[Field] = [5, o.order_id, *_contract_block(c)]
    f += [o.action, o.quantity, o.order_type, o.lmt_price, o.aux_price, o.tif, o.oca_group, o.account]
    f += ["", 0, o.order_ref, o.client_id, o.perm_id, 0, 0, 0, "", "", "", "", ""]
    if sv < 177:
        f.append("")  # faProfile
    f += ["", "", "", "", "", 0, "", "", 0, "", "", "", "", ""]  # modelCode .. stockRangeUpper
    f += ["", 0, 0, 0, "", o.oca_type, 0, 0, "", o.parent_id, 0, "", "", "", ""]
    # continuousUpdate, referencePriceType, trailStopPrice, trailingPercent, basisPoints(+Type), comboDescrip
    f += [0, "", o.trail_stop_price, o.trailing_percent, "", "", ""]
    f += [0, 0, 0]  # numLegs, numOrderLegs, numSmartComboRoutingParams
    f += ["", "", ""]  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
    f += [""]  # hedgeType
    f += [0, "", "", 0, 0]  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld, dncPresent
    f += [""]  # algoStrategy
    if what_if is not None:
        w = what_if
        st: list[Field] = [
            status, w.init_before, w.maint_before, w.ewl_before, w.init_change, w.maint_change,
            w.ewl_change, w.init_before + w.init_change, w.maint_before + w.maint_change,
            w.ewl_before + w.ewl_change, w.commission, w.commission, w.commission, "USD", w.warning,
        ]  # fmt: skip
        f += [0, 1, *st, 0, 0]
    else:
        f += [0, 0, status, *([""] * 12), "", "", 0, 0]
    f += [0]  # numConditions
    f += ["", "", o.trail_stop_price, "", "", "", "", 0, "", "", "", "", 0, 0, "", 0]
    if sv >= 159:
        f.append("")  # duration
    if sv >= 160:
        f.append("")  # postToAts
    if sv >= 162:
        f.append(0)  # autoCancelParent
    if sv >= 170:
        f += ["", "", "", "", ""]
    return f


def completed_order(sv: int, c: SimContract, o: WireOrder, status: str, completed_time: str) -> list[Field]:
    """Build completedOrder (id 101) for a plain order that is Filled or Cancelled."""
    f: list[Field] = [101, *_contract_block(c)]
    f += [o.action, o.quantity, o.order_type, o.lmt_price, o.aux_price, o.tif, o.oca_group, o.account]
    f += ["", 0, o.order_ref, o.perm_id, 0, 0, 0, "", "", "", ""]
    if sv < 177:
        f.append("")  # faProfile
    f += ["", "", "", "", "", 0, "", "", "", "", "", "", "", "", 0, 0, "", o.oca_type, 0, "", "", "", ""]
    f += [0, "", o.trail_stop_price, o.trailing_percent, ""]
    f += [0, 0, 0, "", "", "", ""]  # legs, order legs, params, scale x3, hedgeType
    f += ["", "", 0, 0, ""]  # clearingAccount, clearingIntent, notHeld, dncPresent, algoStrategy
    f += [0, status, 0, 0, 0]  # solicited, status, randomizeSize, randomizePrice, numConditions
    f += [o.trail_stop_price, "", "", 0, 0, "", o.filled, 0, 0, "", 0, 0, 0, completed_time, status]
    if sv >= 170:
        f += ["", "", "", "", ""]
    return f


@dataclass(frozen=True, slots=True)
class WireExec:
    """One execution as execDetails carries it."""

    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    time: str
    account: str
    side: str  # BOT / SLD
    shares: Decimal
    price: Decimal
    cum_qty: Decimal
    avg_price: Decimal
    order_ref: str


def exec_details(sv: int, req_id: int, c: SimContract, e: WireExec) -> list[Field]:
    """Build execDetails (id 11): 31 strict leading fields (+ pendingPriceRevision from 178)."""
    f: list[Field] = [11, req_id, e.order_id, *c.short(), c.exchange, c.currency, c.symbol, c.symbol]
    f += [e.exec_id, e.time, e.account, c.primary_exchange, e.side, e.shares, e.price, e.perm_id, e.client_id]
    f += [0, e.cum_qty, e.avg_price, e.order_ref, "", "", "", 1]
    if sv >= 178:
        f.append(0)
    return f
