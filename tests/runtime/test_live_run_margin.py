"""The margin monitor in `joe run --once` (live), end to end: the real CLI in separate processes against
`joe sim ibkr` / `joe sim capital`. Run 1 opens brackets; then the account's equity falls AT THE
BROKER (its control port: cash / deposit) until the margin cushion is below ``safety.margin.halt_cushion``;
run 2 reads that account through the broker's client, the margin monitor HALTS trading before any
entry, the run refuses every entry (exit 3, "Refused"), nothing new reaches the broker, and the open
positions keep their stops there."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from runtime.test_live_runs import LIVE_CONFIG, _store_state, get, joe_run, live_facts, post, sim

D = Decimal


def _cash_for_cushion(control: str, kind: str, cushion: D) -> D:
    """The cash (IBKR) / deposit (Capital.com) at which the broker's cushion (excess / equity) is
    `cushion`, the margin in use unchanged: read from the simulator's account now."""
    a = get(f"{control}/_sim/account")
    if kind == "ibkr":
        equity, excess, cash = D(a["NetLiquidation"]), D(a["ExcessLiquidity"]), D(a["TotalCashValue"])
    else:
        equity, excess, cash = D(a["balance"]), D(a["available"]), D(a["deposit"])
    margin = equity - excess
    assert margin > 0, a
    return (cash + margin / (1 - cushion) - equity).quantize(D("0.01"))


def _order_requests(control: str, kind: str) -> int:
    requests = get(f"{control}/_sim/requests")["requests"]
    if kind == "ibkr":
        return len([r for r in requests if r["name"] == "placeOrder"])
    return len(
        [r for r in requests if r["method"] == "POST" and r["path"] in ("/positions", "/workingorders")]
    )


@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", ["ibkr", "capital"])
def test_margin_falling_at_the_broker_halts_the_next_run(project: Path, kind: str) -> None:
    (project / "config/execution.yaml").write_text(LIVE_CONFIG)
    with sim(kind) as (env, control):
        env = {**env, "TRADING_MODE": "live"}
        facts, _ = live_facts(joe_run(project, env))
        held = {p["symbol"] for p in facts["positions"]}
        assert held, facts["outcomes"]
        cash = _cash_for_cushion(control, kind, D("0.0"))  # all margin, no excess: far below 0.08
        post(f"{control}/_sim/account", {"cash": str(cash)} if kind == "ibkr" else {"balance": str(cash)})
        sent_before = _order_requests(control, kind)

        out = joe_run(project, env)

        assert out.returncode == 3, out.stdout[-3000:] + out.stderr[-3000:]
        said = out.stdout + out.stderr
        assert "Refused" in said and f"margin:{kind}" in said, said[-2000:]
        state = _store_state(project, "safety.trading_state")
        assert state["state"].upper() == "HALTED" and state["by"] == f"margin:{kind}", state
        margin = _store_state(project, "safety.margin")
        assert margin["level"] == "halt" and D(margin["cushion"]) < D("0.08"), margin
        assert _order_requests(control, kind) == sent_before  # no entry reached the broker
        if kind == "ibkr":  # every position still held, its stop still working at the broker
            at_sim = get(f"{control}/_sim/positions")["positions"]
            assert {s for s, q in at_sim.items() if D(q) != 0} == held
            stops = [o for o in get(f"{control}/_sim/orders")["orders"] if o["order_type"] == "STP"]
            assert {o["symbol"] for o in stops if o["status"] == "Submitted"} == held
