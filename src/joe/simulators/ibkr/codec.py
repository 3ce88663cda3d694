"""TWS socket codec: framing plus one builder per server→client message, with explicit version gates.

Every builder returns the list of string fields of one message (message id first). `frame()` turns a
field list into the wire bytes: a big-endian uint32 length, then each field NUL-terminated. Field
orders mirror `ib_async/decoder.py` (2.1.0) at server versions 157..178; tests/ibkr/test_codec.py
decodes every builder's output with ib_async's own `Decoder` to keep this honest.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

Field = str | int | float | Decimal | bool | None


def fmt(v: Field) -> str:
    """Encode one value the way TWS does: bools as 0/1, None as empty, numbers in plain notation."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, Decimal):
        return format(v.normalize(), "f") if v == v.to_integral_value() else format(v, "f")
    return str(v)


def frame(fields: Iterable[Field]) -> bytes:
    """Frame one message: uint32 BE length + NUL-terminated fields."""
    payload = "".join(fmt(f) + "\0" for f in fields).encode()
    return struct.pack(">I", len(payload)) + payload


def split_frames(buf: bytearray) -> list[list[str]]:
    """Remove every complete frame from `buf` and return their field lists."""
    out: list[list[str]] = []
    while len(buf) >= 4:
        (n,) = struct.unpack(">I", bytes(buf[:4]))
        if len(buf) < 4 + n:
            break
        payload = bytes(buf[4 : 4 + n]).decode(errors="backslashreplace")
        del buf[: 4 + n]
        fields = payload.split("\0")
        if fields and fields[-1] == "":
            fields.pop()
        out.append(fields)
    return out


@dataclass(frozen=True, slots=True)
class SimContract:
    """The contract facts the simulator sends back (a US stock on SMART by default)."""

    con_id: int
    symbol: str
    sec_type: str = "STK"
    exchange: str = "SMART"
    primary_exchange: str = "NASDAQ"
    currency: str = "USD"
    long_name: str = ""
    min_tick: Decimal = Decimal("0.01")

    def short(self) -> list[Field]:
        """conId, symbol, secType, lastTradeDate, strike, right, multiplier (7 fields)."""
        return [self.con_id, self.symbol, self.sec_type, "", "0", "", ""]


# -- handshake and simple messages ------------------------------------------------------------------


def handshake(server_version: int, conn_time: str) -> list[Field]:
    return [server_version, conn_time]


def next_valid_id(order_id: int) -> list[Field]:
    return [9, 1, order_id]


def managed_accounts(accounts: Sequence[str]) -> list[Field]:
    return [15, 1, ",".join(accounts)]


def error(sv: int, req_id: int, code: int, msg: str, advanced_json: str = "") -> list[Field]:
    fields: list[Field] = [4, 2, req_id, code, msg]
    if sv >= 166:
        fields.append(advanced_json)
    return fields


def current_time(epoch: int) -> list[Field]:
    return [49, 1, epoch]


def position(account: str, c: SimContract, qty: Decimal, avg_cost: Decimal) -> list[Field]:
    return [61, 3, account, *c.short(), c.exchange, c.currency, c.symbol, c.symbol, qty, avg_cost]


def position_end() -> list[Field]:
    return [62, 1]


def open_order_end() -> list[Field]:
    return [53, 1]


def completed_orders_end() -> list[Field]:
    return [102]


def account_value(key: str, value: str, currency: str, account: str) -> list[Field]:
    return [6, 2, key, value, currency, account]


def portfolio_value(
    c: SimContract, qty: Decimal, mkt_px: Decimal, avg_cost: Decimal, upnl: Decimal, account: str
) -> list[Field]:
    return [
        7, 8, *c.short(), c.primary_exchange, c.currency, c.symbol, c.symbol,
        qty, mkt_px, qty * mkt_px, avg_cost, upnl, "0", account,
    ]  # fmt: skip


def account_time(hhmm: str) -> list[Field]:
    return [8, 1, hhmm]


def account_download_end(account: str) -> list[Field]:
    return [54, 1, account]


def account_update_multi(req_id: int, account: str, key: str, value: str, currency: str) -> list[Field]:
    return [73, 1, req_id, account, "", key, value, currency]


def account_update_multi_end(req_id: int) -> list[Field]:
    return [74, 1, req_id]


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> list[Field]:
    return [63, 1, req_id, account, tag, value, currency]


def account_summary_end(req_id: int) -> list[Field]:
    return [64, 1, req_id]


def exec_details_end(req_id: int) -> list[Field]:
    return [55, 1, req_id]


def commission_report(exec_id: str, commission: Decimal, currency: str = "USD") -> list[Field]:
    # Exactly 8 fields; realizedPNL/yield unset like TWS sends them.
    return [59, 1, exec_id, commission, currency, "1.7976931348623157E308", "1.7976931348623157E308", ""]


def order_status(
    order_id: int, status: str, filled: Decimal, remaining: Decimal, avg_px: Decimal,
    perm_id: int, parent_id: int, last_px: Decimal, client_id: int,
) -> list[Field]:  # fmt: skip
    return [3, order_id, status, filled, remaining, avg_px, perm_id, parent_id, last_px, client_id, "", "0"]


# -- market data ------------------------------------------------------------------------------------


def tick_price(req_id: int, tick_type: int, price: Decimal, size: Decimal | int) -> list[Field]:
    # Exactly 7 fields: id, version, reqId, tickType, price, size, attrMask.
    return [1, 6, req_id, tick_type, price, size, 0]


def tick_size(req_id: int, tick_type: int, size: Decimal | int) -> list[Field]:
    return [2, 6, req_id, tick_type, size]


def tick_snapshot_end(req_id: int) -> list[Field]:
    return [57, 1, req_id]


def market_data_type(req_id: int, kind: int = 1) -> list[Field]:
    return [58, 1, req_id, kind]


@dataclass(frozen=True, slots=True)
class SimBar:
    """One historical bar as the simulator sends it (`date` is already in IB text form)."""

    date: str
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


def historical_data(req_id: int, start: str, end: str, bars: Sequence[SimBar]) -> list[Field]:
    fields: list[Field] = [17, req_id, start, end, len(bars)]
    for b in bars:
        fields += [b.date, b.open, b.high, b.low, b.close, b.volume, b.close, 1]
    return fields


def scanner_data(req_id: int, rows: Sequence[SimContract]) -> list[Field]:
    fields: list[Field] = [20, 3, req_id, len(rows)]
    for rank, c in enumerate(rows):
        fields += [
            rank, c.con_id, c.symbol, c.sec_type, "", "0", "", c.exchange, c.currency,
            c.symbol, "NMS", c.symbol, "", "", "", "",
        ]  # fmt: skip
    return fields


def contract_details(sv: int, req_id: int, c: SimContract) -> list[Field]:
    fields: list[Field] = [10]
    if sv < 164:
        fields.append(8)
    fields += [
        req_id, c.symbol, c.sec_type, "", "0", "", c.exchange, c.currency, c.symbol, "NMS", c.symbol,
        c.con_id, c.min_tick,
    ]  # fmt: skip
    if sv < 164:
        fields.append(1)  # obsolete mdSizeMultiplier
    fields += [
        "", "ACTIVETIM,LMT,MKT,STP,STPLMT,TRAIL", "SMART,NASDAQ,NYSE", 1, 0, c.long_name or c.symbol,
        c.primary_exchange, "", "Technology", "Computers", "Software", "US/Eastern", "", "", "", "",
        0,  # numSecIds
        1, "", "", "26", "", "COMMON",
    ]  # fmt: skip
    if sv == 163:
        fields.append("1")
    if sv >= 164:
        fields += ["1", "1", "1"]
    return fields


def contract_details_end(req_id: int) -> list[Field]:
    return [52, 1, req_id]
