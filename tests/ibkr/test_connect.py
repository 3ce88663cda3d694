"""Connect + start-up sync against the simulator at server versions 178 and 157."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from ib_async import IB

from joe.brokers.ibkr import FileOrderIdStore
from joe.core.events import NullAudit
from joe.core.models import OrderLeg, OrderType, Side
from joe.simulators.ibkr import IBKRSimulator

from .helpers import audit_types, single, wait_for


async def test_raw_ib_async_connect_has_no_sync_timeouts(sim: IBKRSimulator, ib_log_guard: Any) -> None:
    ib = IB()
    # raiseSyncErrors: a missing End message would raise instead of silently costing the 4 s timeout.
    await ib.connectAsync("127.0.0.1", sim.port, clientId=5, timeout=3, raiseSyncErrors=True)
    try:
        assert ib.isConnected() and ib.client.serverVersion() == sim.server_version
        assert ib.managedAccounts() == ["DU1234567"]
        assert not [m for m in ib_log_guard.messages() if "timed out" in m]
        # (no wall-clock assertion: raiseSyncErrors turns a missed End message into an error, and
        # bench/ibkr_bench.py measures the connect time)
        ids = [m.msg_id for m in sim.messages if m.msg_id != -1]  # -1: the "v157..178" hello
        # startApi, then positions, open orders, completed orders, account updates(+multi), executions
        assert ids[0] == 71 and ids[-1] == 7
        assert {61, 5, 99, 6, 76} <= set(ids)
    finally:
        ib.disconnect()


async def test_client_connect_syncs_and_audits(
    sim: IBKRSimulator, make_client: Any, audit: NullAudit, ib_log_guard: Any
) -> None:
    client = await make_client(sim)
    assert client.ready and client.conn.account == "DU1234567"
    assert audit_types(audit)[:2] == ["ibkr.connected", "ibkr.resynced"]
    assert audit.records[0][1]["server_version"] == sim.server_version
    assert not [m for m in ib_log_guard.messages() if "timed out" in m]
    info = await client.account()
    assert info.equity == Decimal(1_000_000) and info.available_funds == Decimal(1_000_000)
    assert info.buying_power == Decimal(4_000_000) and info.excess_liquidity == Decimal(1_000_000)
    assert {"NetLiquidation", "AvailableFunds", "ExcessLiquidity", "MaintMarginReq", "BuyingPower"} <= set(
        info.extra
    )
    assert await client.positions() == []


async def test_order_ids_persist_and_only_increase(
    sim178: IBKRSimulator, make_client: Any, tmp_path: Path
) -> None:
    path = tmp_path / "ibkr_ids.json"
    FileOrderIdStore(path).save(500)  # a previous run used ids up to 500
    client = await make_client(sim178, order_ids=path)
    used = []

    def exit_order(sig: str) -> Any:
        limit = Decimal(9999)
        return single(sig, OrderLeg.EXIT, Side.SELL, qty=1, order_type=OrderType.LIMIT, limit_price=limit)

    for i in range(3):
        acks = await client.submit([exit_order(f"sig{i}")])
        used.append(int(acks[0].broker_order_id or 0))
    assert used == sorted(used) and len(set(used)) == 3 and used[0] > 500
    assert FileOrderIdStore(path).load() >= used[-1]
    await client.close()
    # A new process (fresh client, same file) continues above every id used before.
    again = await make_client(sim178, client_id=12, order_ids=path)
    acks = await again.submit([exit_order("sigX")])
    assert int(acks[0].broker_order_id or 0) > used[-1]
    await wait_for(lambda: len(sim178.placed) == 4, what="all sent")
    placed_ids = [p.order_id for p in sim178.placed]
    assert placed_ids == sorted(placed_ids)


def test_file_order_id_store(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ids.json"
    store = FileOrderIdStore(path)
    assert store.load() == 0
    store.save(41)
    store.save(7)  # never goes back
    assert FileOrderIdStore(path).load() == 41
    path.write_text("not json")
    assert FileOrderIdStore(path).load() == 0  # a corrupt file is not trusted, ids restart from TWS's


def test_message_rate_is_capped_below_50_per_second() -> None:
    from joe.brokers.ibkr.connection import IBKRConnection

    conn = IBKRConnection("127.0.0.1", 7497, 1, "", "paper", NullAudit())
    assert conn.ib.client.MaxRequests == 45 and conn.ib.client.RequestsInterval == 1
