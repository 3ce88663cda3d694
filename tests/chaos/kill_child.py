"""A Joe process for the chaos suite's SIGKILL faults: it opens the data folder (store, audit log),
connects to the broker simulator through the real client, places one bracket through the
`OrderManager` and SIGKILLs itself at the chosen point of the order flow.

argv: <data dir> <point: after_write | in_flight | after_send> <intents JSON> <broker> <broker args...>
(ibkr: <port> <client id>; capital: <url> <api key> <identifier> <password>).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import traceback
from decimal import Decimal
from pathlib import Path
from typing import Any

from chaos import timing
from joe.audit.anchor import StoreAnchor
from joe.audit.log import AuditLog
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.execution.order_manager import OrderManager
from joe.store import open_store


def _intent(d: dict[str, Any]) -> OrderIntent:
    dec = {k: Decimal(d[k]) for k in ("limit_price", "stop_price", "stop_loss", "take_profit") if k in d}
    return OrderIntent(
        d["client_order_id"], d["signal_id"], OrderLeg(d["leg"]), d["symbol"], Side(d["side"]),
        Decimal(d["quantity"]), OrderType(d["order_type"]), reduce_only=bool(d["reduce_only"]), **dec,
    )  # fmt: skip


async def _client(broker: str, args: list[str], audit: Any, data: Path) -> Any:
    if broker == "ibkr":
        from joe.brokers.ibkr.client import IBKRExecutionClient

        xc = IBKRExecutionClient(
            "127.0.0.1", int(args[0]), int(args[1]), "", "paper", audit, data / "ibkr-order-ids.json",
            **timing.IBKR,
        )  # fmt: skip
        await xc.connect()
        return xc
    from joe.brokers.capital import CapitalClient, Credentials, Limits
    from joe.brokers.capital.client import CapitalExecutionClient

    http = CapitalClient(args[0], Credentials(args[1], args[2], args[3]), audit=audit,
                         limits=Limits().scaled(timing.CAPITAL_SCALE), **timing.CAPITAL_HTTP)  # fmt: skip
    await http.open()
    return CapitalExecutionClient(http, audit=audit, **timing.CAPITAL_XC)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def run(data: str, point: str, intents_json: str, broker: str, *args: str) -> None:
    folder = Path(data)
    store = open_store(data_dir=folder)
    audit = AuditLog(folder / "audit", fsync=False, reserve_bytes=256 * 1024)  # as the harness
    audit.attach_anchor(StoreAnchor(store))
    xc = await _client(broker, list(args), audit, folder)
    real_submit = xc.submit

    async def submit(intents: Any) -> Any:
        if point == "in_flight":  # the request is on the wire; the simulator is slow (armed by the runner)
            asyncio.get_running_loop().call_later(0.3, _die)
        acks = await real_submit(intents)
        await asyncio.sleep(0.3)  # let the bytes reach the broker
        if point == "after_send":  # the broker has it; Joe never records the acknowledgement
            _die()
        return acks

    xc.submit = submit
    om = OrderManager(xc, store, audit, mode="live", **timing.OM)  # the same order path as the harness
    real_send = om.send

    async def send(orders: Any) -> Any:
        if point == "after_write":  # the intent is committed (NEW); nothing sent
            _die()
        return await real_send(orders)

    om.send = send  # type: ignore[method-assign]
    await om.start()
    await om.submit([_intent(d) for d in json.loads(intents_json)])
    await asyncio.sleep(1.0)  # an in-flight point's timer (0.3 s) fires first
    _die()  # the flow ended before its point (refused, say): die anyway, as the fault says


def main() -> None:
    """Run the flow and die by SIGKILL whatever happens: a flow that raised (a client's error before
    its point, seed 379) still ends the way the fault says, its traceback on stderr for the record."""
    try:
        asyncio.run(run(*sys.argv[1:]))
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        _die()


if __name__ == "__main__":
    main()
