"""Interactive Brokers broker over ib_async (TWS / IB Gateway).

`IBKRExecutionClient` is the thin `ExecutionClient` adapter the `OrderManager` drives: it sends
orders and reports observations (`joe.core.reports`), with TWS message codes read through the one
table in `joe.brokers.ibkr.codes`. `IBKRMarketData` serves history, quotes and scans.

Typical wiring (one socket, one clientId, shared by both)::

    md, client = create_ibkr(audit=audit, mode=resolved_mode, host="127.0.0.1", port=7497, client_id=1,
                             account="DU1234567", order_ids="data/ibkr_order_ids.json")
    await md.connect(); await client.connect()  # port/mode gate (audited), connect, start-up re-sync
    universe = await md.universe()              # scanner universe (~20 symbols by default)
    frame = await md.history("AAPL", "1d")      # >= 300 daily bars by default ("2 Y")
    acks = await client.submit([entry, stop, target])   # one bracket; ids only, no state
    async for obs in client.observations(): ... # status reports, fills, commissions, notices
    await client.close(); await md.close()

Against the simulator: `IBKRSimulator(...).start()` then use `port=sim.port`.
"""

from joe.brokers.ibkr.client import IBKRExecutionClient
from joe.brokers.ibkr.connection import IBKRConnection
from joe.brokers.ibkr.factory import create_ibkr
from joe.brokers.ibkr.marketdata import IBKRMarketData
from joe.brokers.ibkr.orderids import FileOrderIdStore, MemoryOrderIdStore, OrderIdStore
from joe.brokers.ibkr.ports import PortModeMismatch, check_port, default_port

__all__ = [
    "FileOrderIdStore",
    "IBKRConnection",
    "IBKRExecutionClient",
    "IBKRMarketData",
    "MemoryOrderIdStore",
    "OrderIdStore",
    "PortModeMismatch",
    "check_port",
    "create_ibkr",
    "default_port",
]
