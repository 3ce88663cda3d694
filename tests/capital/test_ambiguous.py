"""No blind retries on the order path: when the answer to POST /positions is lost (timeout after
the simulator accepted the order, or garbage), the executor never re-sends; it reconciles and
reports the single position that exists. Repeated 50 times with random timing."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import pytest

from joe.brokers.base import OrderOutcomeUnknown
from joe.brokers.capital import CapitalExecutor
from joe.core.events import NullAudit
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.simulators.capital import CapitalSimulator

from .conftest import make_client

ACC = "12345678901234567"


def _intent(cid: str, **kw: object) -> OrderIntent:
    return OrderIntent(cid, "sig-" + cid, OrderLeg.ENTRY, "US500", Side.BUY, Decimal(1), **kw)  # type: ignore[arg-type]


async def test_timeout_after_accept_50_times_random_timing(sim: CapitalSimulator) -> None:
    rng = random.Random(20261125)
    client = make_client(sim, order_timeout_s=0.1)
    await client.open()
    ex = CapitalExecutor(
        client, audit=NullAudit(), confirm_interval_s=0.02, reconcile_interval_s=0.05, reconcile_window_s=2.0
    )
    await ex.connect()
    ambiguous = 0
    for i in range(50):
        sim.faults.disarm()
        pre, post = rng.uniform(0, 0.15), rng.uniform(0, 0.25)
        sim.faults.arm("latency", 1, seconds=pre, path="/positions", method="POST")
        sim.faults.arm("delay_response", 1, seconds=post, path="/positions", method="POST")
        posts_before = sim.count("/positions", method="POST")
        res = await ex.place(_intent(f"amb{i}"))
        ambiguous += (pre + post) > 0.1
        assert sim.count("/positions", method="POST") == posts_before + 1  # never re-sent
        positions = sim.exchange.accounts[ACC].positions
        assert len(positions) == 1, f"iteration {i}: {len(positions)} positions"
        assert res.accepted and res.filled_quantity == 1
        assert res.broker_position_id == positions[0].deal_id
        sim.exchange.close_position(sim.exchange.accounts[ACC], positions[0].deal_id)
    assert ambiguous >= 20  # the random timings really did produce lost answers
    await client.close()


@pytest.mark.parametrize("kind", ["invalid_json", "html", "missing_fields", "wrong_types"])
async def test_garbage_answer_to_an_order_is_reconciled(
    sim: CapitalSimulator, executor_factory, kind: str
) -> None:  # type: ignore[no-untyped-def]
    ex: CapitalExecutor = executor_factory()
    await ex.connect()
    sim.faults.arm("garbage", 1, kind=kind, path="/positions", method="POST")
    res = await ex.place(_intent("g1"))
    positions = sim.exchange.accounts[ACC].positions
    assert len(positions) == 1 and res.broker_position_id == positions[0].deal_id
    assert sim.count("/positions", method="POST") == 1


@pytest.mark.parametrize("kind", ["invalid_json", "missing_fields", "wrong_types"])
async def test_garbage_confirm_is_reconciled(sim: CapitalSimulator, executor_factory, kind: str) -> None:  # type: ignore[no-untyped-def]
    ex: CapitalExecutor = executor_factory()
    await ex.connect()
    sim.faults.arm("garbage", -1, kind=kind, path="/confirms")
    res = await ex.place(_intent("g2"))
    positions = sim.exchange.accounts[ACC].positions
    assert len(positions) == 1 and res.broker_position_id == positions[0].deal_id


async def test_ambiguous_working_order_is_found(sim: CapitalSimulator, executor_factory) -> None:  # type: ignore[no-untyped-def]
    ex: CapitalExecutor = executor_factory()
    await ex.connect()
    sim.faults.arm("http_5xx", 1, path="/confirms", status=503)
    sim.faults.arm("garbage", 1, kind="html", path="/workingorders", method="POST")
    px = sim.exchange.quote("US500")[0]
    res = await ex.place(_intent("wo1", order_type=OrderType.LIMIT, limit_price=px - 100))
    orders = sim.exchange.accounts[ACC].orders
    assert len(orders) == 1 and res.broker_order_id == orders[0].deal_id and res.filled_quantity == 0


async def test_two_lookalikes_make_the_outcome_unknown(sim: CapitalSimulator, executor_factory) -> None:  # type: ignore[no-untyped-def]
    ex: CapitalExecutor = executor_factory(reconcile_window_s=0.3)
    await ex.connect()
    acc = sim.exchange.accounts[ACC]
    sim.faults.arm("garbage", 1, kind="invalid_json", path="/positions", method="POST")
    sim.faults.arm("latency", 1, seconds=0.05, path="/positions", method="POST")
    # Someone else opens the same deal while our answer is lost: we cannot tell which is ours.
    sim.exchange.open_position(acc, {"epic": "US500", "direction": "BUY", "size": 1})
    with pytest.raises(OrderOutcomeUnknown):
        await ex.place(_intent("dup"))
    assert len(acc.positions) == 2


async def test_concurrent_position_reads_do_not_block_attribution(sim: CapitalSimulator) -> None:
    client = make_client(sim, order_timeout_s=0.15)
    await client.open()
    ex = CapitalExecutor(client, audit=NullAudit(), reconcile_interval_s=0.05, reconcile_window_s=2.0)
    await ex.connect()
    sim.faults.arm("delay_response", 1, seconds=0.4, path="/positions", method="POST")

    async def monitor() -> None:  # e.g. a position monitor polling while the answer is lost
        await asyncio.sleep(0.08)
        assert len(await ex.positions()) == 1

    res, _ = await asyncio.gather(ex.place(_intent("cc1")), monitor())
    positions = sim.exchange.accounts[ACC].positions
    assert res.accepted and res.broker_position_id == positions[0].deal_id
    await client.close()


async def test_ambiguous_close_is_resolved_by_looking(sim: CapitalSimulator, executor_factory) -> None:  # type: ignore[no-untyped-def]
    ex: CapitalExecutor = executor_factory()
    await ex.connect()
    await ex.place(_intent("cl1"))
    sim.faults.arm("garbage", 1, kind="html", path="/positions/", method="DELETE")
    await ex.close_position("cl1")
    assert sim.exchange.accounts[ACC].positions == []
    assert sim.count("/positions/", method="DELETE") == 1
