"""Capital.com answers → Joe's execution reports (`joe.core.reports`). Pure functions, no I/O.

Identity rules (one per fact, the same on the live path and in reconciliation):

* An order is found by its `dealReference`: Joe sends its `client_order_id` as the request's
  `dealReference`, and the confirm, the position or working order it creates, and their activity
  rows carry it. A row whose reference is the broker's own (`o_…` / `p_…`) is *not* Joe's, whatever
  its size: nothing here ever matches by size.
* A fill is one `POSITION` activity row: `fill_id = capital:<dealId>:<dateUTC>:<source>`, `#n` for
  the n-th row of that key (two closes of a deal in one millisecond; `rows`). The live path reads
  the same rows (`GET /history/activity?dealId=…`) after a confirm, so a fill seen live and the same
  fill seen by `mass_status` are one fill.
* The attached stop and target of a position are reported as orders of their own with broker id
  `<dealId>:SL` / `<dealId>:TP` (Capital.com has no separate order for them).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from joe.brokers.capital.markets import parse_utc
from joe.brokers.capital.models import Activity, Confirm, PositionRow, WorkingOrderRow
from joe.brokers.capital.rows import BROKER, row_fill_id
from joe.core.models import Fill, OrderIntent, OrderLeg, OrderType, Side
from joe.core.reports import CodeMeaning, FillReport, OrderStatusReport, PositionReport, VenueOrderStatus

_BROKER_REF_PREFIXES = ("o_", "p_")
_CLOSING_SOURCES = frozenset({"SL", "TP", "CLOSE_OUT"})
STOP_SUFFIX, TARGET_SUFFIX = ":SL", ":TP"


def own_reference(ref: str | None) -> str:
    """A client's reference ("" for none or for the broker's own `o_…` / `p_…` references)."""
    if not ref or ref.startswith(_BROKER_REF_PREFIXES):
        return ""
    return ref


def is_opening(row: Activity) -> bool:
    """True for the activity row that opened a deal (it names the request that created it)."""
    d = row.details
    return d is not None and bool(d.workingOrderId)


def fill_from_activity(row: Activity, client_order_id: str = "") -> FillReport | None:
    """One `POSITION` activity row (ACCEPTED/EXECUTED, with size, level, direction) → FillReport.

    Opening rows carry the deal's direction; closing rows carry the *position's* direction (spec
    §4.5 for SL/TP; the simulator does the same for every close), so the trade side is its opposite.
    `client_order_id`: the request's own reference when the row has one, else the caller's guess.
    Closing fills carry broker order id `p_<dealId>` (a close's reference), or `<dealId>:SL` / `:TP`.
    """
    d = row.details
    if row.type.upper() != "POSITION" or row.status.upper() not in ("ACCEPTED", "EXECUTED"):
        return None
    if d is None or d.size is None or d.level is None or d.direction is None:
        return None
    side = Side(d.direction.upper())
    source = row.source.upper()
    opening = is_opening(row) and source not in _CLOSING_SOURCES
    if opening:
        broker_order_id = row.dealId
    else:
        side = side.opposite
        broker_order_id = {"SL": row.dealId + STOP_SUFFIX, "TP": row.dealId + TARGET_SUFFIX}.get(
            source, own_reference(d.dealReference) or "p_" + row.dealId
        )
    cid = own_reference(d.dealReference) or client_order_id
    fill = Fill(
        fill_id=row_fill_id(row),
        client_order_id=cid,
        symbol=row.epic,
        side=side,
        quantity=d.size,
        price=d.level,
        ts=parse_utc(row.dateUTC),
        broker_order_id=broker_order_id,
    )
    return FillReport(BROKER, fill, raw_exec_id=fill.fill_id.removeprefix(f"{BROKER}:"))


def position_report(row: PositionRow, ts: datetime) -> PositionReport:
    p = row.position
    sign = 1 if p.direction.upper() == "BUY" else -1
    return PositionReport(
        BROKER,
        row.market.epic,
        p.size * sign,
        p.level,
        ts,
        broker_position_id=p.dealId,
        client_order_id=own_reference(p.dealReference),
        stop_level=None if p.trailingStop else p.stopLevel,
        limit_level=p.profitLevel,
    )


def entry_report_from_position(
    row: PositionRow, ts: datetime, *, reconciling: bool = False
) -> OrderStatusReport:
    """The entry that opened a live deal: FILLED at the deal's level (the deal is the fill)."""
    p = row.position
    return OrderStatusReport(
        BROKER,
        own_reference(p.dealReference),
        p.dealId,
        row.market.epic,
        Side(p.direction.upper()),
        p.size,
        VenueOrderStatus.FILLED,
        ts,
        filled_quantity=p.size,
        avg_fill_price=p.level,
        order_type=OrderType.MARKET,
        leg=OrderLeg.ENTRY,
        raw_status="OPEN",
        from_reconciliation=reconciling,
    )


def child_reports(
    row: PositionRow, ts: datetime, *, stop_coid: str = "", target_coid: str = "", reconciling: bool = False
) -> list[OrderStatusReport]:
    """The stop and target attached to a live deal, as WORKING orders sized like the deal."""
    p = row.position
    side = Side(p.direction.upper()).opposite
    out = []
    stop = p.stopLevel
    if stop is not None or p.trailingStop:
        out.append(
            OrderStatusReport(
                BROKER,
                stop_coid,
                p.dealId + STOP_SUFFIX,
                row.market.epic,
                side,
                p.size,
                VenueOrderStatus.WORKING,
                ts,
                order_type=OrderType.TRAILING_STOP if p.trailingStop else OrderType.STOP,
                stop_price=stop,
                parent_broker_order_id=p.dealId,
                leg=OrderLeg.STOP_LOSS,
                raw_status="ATTACHED",
                from_reconciliation=reconciling,
            )
        )
    if p.profitLevel is not None:
        out.append(
            OrderStatusReport(
                BROKER,
                target_coid,
                p.dealId + TARGET_SUFFIX,
                row.market.epic,
                side,
                p.size,
                VenueOrderStatus.WORKING,
                ts,
                order_type=OrderType.LIMIT,
                limit_price=p.profitLevel,
                parent_broker_order_id=p.dealId,
                leg=OrderLeg.TAKE_PROFIT,
                raw_status="ATTACHED",
                from_reconciliation=reconciling,
            )
        )
    return out


def working_order_report(
    row: WorkingOrderRow, ts: datetime, *, reconciling: bool = False
) -> OrderStatusReport:
    o = row.workingOrderData
    limit = o.orderType.upper() == "LIMIT"
    return OrderStatusReport(
        BROKER,
        own_reference(getattr(o, "dealReference", None)),
        o.dealId,
        o.epic,
        Side(o.direction.upper()),
        o.orderSize,
        VenueOrderStatus.WORKING,
        ts,
        order_type=OrderType.LIMIT if limit else OrderType.STOP,
        limit_price=o.orderLevel if limit else None,
        stop_price=None if limit else o.orderLevel,
        leg=OrderLeg.ENTRY,
        raw_status="WORKING",
        from_reconciliation=reconciling,
    )


def confirm_report(
    c: Confirm, client_order_id: str, *, working: bool, ts: datetime | None = None, reconciling: bool = False
) -> OrderStatusReport:
    """What a deal confirm says about the request it answers.

    ACCEPTED market deal → FILLED (size at `level`); ACCEPTED working order → WORKING;
    REJECTED → REJECTED with the broker's reason. The order's broker id is the deal it opened
    (`affectedDeals[OPENED]`), else the request id.
    """
    opened = opened_deal(c)
    side = Side((c.direction or "BUY").upper())
    size = c.size if c.size is not None else Decimal(0)
    accepted = c.dealStatus.upper() == "ACCEPTED"
    if not accepted:
        status = VenueOrderStatus.REJECTED
    elif working:
        status = VenueOrderStatus.WORKING
    else:
        status = VenueOrderStatus.FILLED
    return OrderStatusReport(
        BROKER,
        client_order_id,
        opened or c.dealId,
        c.epic,
        side,
        size,
        status,
        ts or datetime.now(UTC),
        filled_quantity=size if status is VenueOrderStatus.FILLED else Decimal(0),
        avg_fill_price=c.level if status is VenueOrderStatus.FILLED else None,
        order_type=(OrderType.LIMIT if working else OrderType.MARKET),
        leg=OrderLeg.ENTRY,
        raw_status=f"{c.dealStatus}/{c.status or ''}",
        reason=(c.rejectReason or c.reason or "") if not accepted else "",
        from_reconciliation=reconciling,
        raw=c.model_dump(mode="json"),
    )


def rejected(i: OrderIntent, reason: str, ts: datetime) -> OrderStatusReport:
    """A request the broker refused, as a report for each of its intents."""
    return OrderStatusReport(
        BROKER, i.client_order_id, None, i.symbol, i.side, i.quantity, VenueOrderStatus.REJECTED, ts,
        order_type=i.order_type, leg=i.leg, raw_status="REJECTED", reason=reason,
    )  # fmt: skip


def leg_report(leg: OrderIntent, opened: str | None, c: Confirm, ts: datetime) -> OrderStatusReport:
    """An attached stop/target right after its entry's confirm: WORKING on the deal it opened, or
    CANCELLED when the deal opened nothing (netting: it closed opposite deals instead)."""
    suffix = STOP_SUFFIX if leg.leg is OrderLeg.STOP_LOSS else TARGET_SUFFIX
    if opened is None:
        closed = ", ".join(closed_deals(c))
        return OrderStatusReport(
            BROKER, leg.client_order_id, None, leg.symbol, leg.side, leg.quantity, VenueOrderStatus.CANCELLED,
            ts, order_type=leg.order_type, leg=leg.leg, raw_status="NOT_ATTACHED",
            reason=f"no position opened (netting closed {closed})",
        )  # fmt: skip
    return OrderStatusReport(
        BROKER, leg.client_order_id, opened + suffix, leg.symbol, leg.side, c.size or leg.quantity,
        VenueOrderStatus.WORKING, ts, order_type=leg.order_type, limit_price=leg.limit_price,
        stop_price=leg.stop_price, parent_broker_order_id=opened, leg=leg.leg, raw_status="ATTACHED",
    )  # fmt: skip


def opened_deal(c: Confirm) -> str | None:
    """`affectedDeals[].dealId` with status OPENED (spec §10.2: not the confirm's top-level dealId)."""
    for deal in c.affectedDeals:
        if deal.status.upper() == "OPENED":
            return deal.dealId
    return None


def closed_deals(c: Confirm) -> list[str]:
    """Deals the request closed or reduced (netting: an opposite deal nets against them)."""
    return [d.dealId for d in c.affectedDeals if d.status.upper() in ("FULLY_CLOSED", "PARTIALLY_CLOSED")]


# The meaning of Capital.com error codes for the order they answer. Validation codes are a refusal
# of a new request; anything not listed is AMBIGUOUS (the OrderManager asks the broker).
_REFUSALS = (
    "error.invalid.",
    "error.not-in-future.",
    "error.validation.",
    "error.null.",
    "rejected.",  # free-text "Rejected. <EPIC> is currently closed..."
)


def code_meaning(code: str, *, request: str) -> CodeMeaning:
    """What `code` means for a `request` ("place" / "modify" / "cancel")."""
    low = code.lower()
    if low == "error.too-many.requests":
        return CodeMeaning.PACING
    if low.startswith("error.not-found.dealid"):
        return CodeMeaning.AMBIGUOUS  # gone: filled, closed or cancelled — ask, do not guess
    if low.startswith(_REFUSALS) or low in {
        "insufficient_funds",
        "market_closed",
        "size_increment",
        "minimum_order_size_error",
        "wrong_side_of_market",
        "limit_order_wrong_side_of_market",
        "risk_check",
    }:
        return CodeMeaning.REJECTED if request == "place" else CodeMeaning.REQUEST_REFUSED
    if "session" in low or "token" in low:
        return CodeMeaning.CONNECTIVITY
    return CodeMeaning.AMBIGUOUS


def describe(code: str) -> str:
    """A short human meaning for a Capital.com error code (for notices and errors)."""
    low = code.lower()
    table: dict[str, str] = {
        "error.invalid.size": "size is off the market's size grid (minSizeIncrement)",
        "error.invalid.size.minvalue": "size below the market's minDealSize",
        "error.invalid.size.maxvalue": "size above the market's maxDealSize",
        "error.too-many.requests": "rate limited; the request was not processed",
        "error.not-found.dealid": "no such deal or working order (filled, closed or cancelled)",
        "insufficient_funds": "not enough available funds for the margin",
        "market_closed": "the market is closed",
    }
    for key, text in table.items():
        if low == key:
            return text
    if low.startswith(("error.invalid.stoploss", "error.invalid.takeprofit")):
        return "stop or target level outside the allowed distance (value = the bound)"
    if low.startswith("rejected."):
        return "the market is closed"
    return "see the Capital.com error catalogue"


def raw_of(obj: Any) -> dict[str, Any]:
    dump = getattr(obj, "model_dump", None)
    return dump(mode="json") if dump is not None else {}


def of_request(cid: str, opened: str | None) -> Callable[[Activity], bool]:
    """Rows a POST made: those naming its reference, and the opening row of the deal it opened."""
    return lambda r: (
        (r.details is not None and own_reference(r.details.dealReference) == cid)
        or (r.dealId == opened and is_opening(r))
    )


def not_in(seen: set[str]) -> Callable[[Activity], bool]:
    """Rows whose fill id is not in `seen` (the rows a close by dealId added)."""
    return lambda r: row_fill_id(r) not in seen
