"""Issue 10: positions a previous live run opened are managed by the next `joe run --once`, end to end at
both simulators (separate processes, the real CLI, the simulator's state as the truth):

* the strategy's signal on a held instrument reverses → one reduce-only exit of exactly the position,
  never a reversal, and the paper twin (live) / the shadow book (shadow) takes the same exit;
* the position's stop is cancelled at the broker between runs → the next run places exactly one stop
  sized from the broker's position; a later run places none.

The market turns at the simulator (`POST /_sim/history {"mirror": true}`: the held symbol's history
served upside down, every return negated, ending at the current price). Joe's bar cache holds the
history as it was (only the last few bars are fetched again), so the turned symbol's cache file is
removed: a real turn arrives as new bars, which one simulated day cannot produce.
"""

from __future__ import annotations

import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.test_live_runs import CAPITAL_LOGIN, LIVE_CONFIG, get, joe_run, live_facts, post, sim


def _turn(kind: str, control: str, project: Path, symbols: set[str]) -> None:
    """The market turns on `symbols` at the simulator; Joe's cached history of them is dropped."""
    for s in symbols:
        post(f"{control}/_sim/history", {"symbol" if kind == "ibkr" else "epic": s, "mirror": True})
    cached = [f for f in (project / "data/cache/bars").rglob("*.parquet") if f.stem in symbols]
    assert cached, "the first run cached the held symbols' bars"
    for f in cached:
        f.unlink()


def capital_deals(base: str) -> list[dict[str, Any]]:
    """The simulator's open positions through its own REST API (a separate login): the broker's truth."""
    with httpx.Client(base_url=base + "/api/v1", timeout=10) as c:

        def patient(method: str, path: str, **kw: Any) -> httpx.Response:
            for _ in range(60):  # the simulator's rate limits answer 429 (logins: 1/s)
                r = c.request(method, path, **kw)
                if r.status_code != 429:
                    break
                time.sleep(0.5)
            r.raise_for_status()
            return r

        creds = {
            "identifier": CAPITAL_LOGIN["CAPITAL_IDENTIFIER"],
            "password": CAPITAL_LOGIN["CAPITAL_PASSWORD"],
        }
        r = patient(
            "POST", "/session", headers={"X-CAP-API-KEY": CAPITAL_LOGIN["CAPITAL_API_KEY"]}, json=creds
        )
        auth = {"CST": r.headers["CST"], "X-SECURITY-TOKEN": r.headers["X-SECURITY-TOKEN"]}
        got = patient("GET", "/positions", headers=auth)
        return list(got.json()["positions"])


def broker_net(kind: str, control: str) -> dict[str, Decimal]:
    """Signed net position per symbol at the simulator."""
    if kind == "ibkr":
        return {s: Decimal(q) for s, q in get(f"{control}/_sim/positions")["positions"].items() if Decimal(q)}
    net: dict[str, Decimal] = {}
    for d in capital_deals(control):
        sign = 1 if d["position"]["direction"] == "BUY" else -1
        net[d["market"]["epic"]] = net.get(d["market"]["epic"], Decimal(0)) + sign * Decimal(
            str(d["position"]["size"])
        )
    return {s: q for s, q in net.items() if q}


def twin_open(project: Path, mode: str) -> dict[str, Decimal]:
    with sqlite3.connect(project / "data" / f"twin-{mode}.db") as db:
        rows = db.execute("select symbol, quantity from positions where status = 'open'").fetchall()
    return {s: Decimal(str(q)) for s, q in rows}


@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", ["ibkr", "capital"])
def test_a_reversed_signal_exits_the_held_position_reduce_only_and_the_twin_follows(
    project: Path, kind: str
) -> None:
    """Before: the reversal was judged on the run's approved signals, and the risk stage never approves a
    signal on a held symbol (max_positions_per_symbol: 1), so a held position was never exited on a
    reversed signal; the paper twin never exited on strategy signals at all. Now the strategies' call on
    each held symbol decides: one reduce-only exit of exactly the position, at the broker and in the
    twin; no reversed entry; the next run sends nothing more."""
    (project / "config/execution.yaml").write_text(LIVE_CONFIG)
    with sim(kind) as (env, control):
        env = {**env, "TRADING_MODE": "live"}
        facts, _ = live_facts(joe_run(project, env))
        held = {p["symbol"]: Decimal(p["quantity"]) for p in facts["positions"]}
        assert held and broker_net(kind, control) == held
        twin_before = twin_open(project, "live")
        assert set(twin_before) == set(held)  # the twin took the same entries
        _turn(kind, control, project, set(held))

        facts2, report2 = live_facts(joe_run(project, env))
        assert facts2["reconciled"] is True, facts2["findings"]
        exits = {x["symbol"]: x for x in facts2["exits"]}
        assert set(exits) == set(held), facts2["exits"]
        for sym, x in exits.items():
            assert x["reason"].startswith("signal reversed:") and x["state"] == "FILLED", x
            assert Decimal(x["quantity"]) == abs(held[sym])  # reduce-only: the position, no more
        # The broker is flat on them: exited, not reversed; no reversed entry was sent.
        after = broker_net(kind, control)
        assert not set(held) & set(after), after
        assert {p["symbol"] for p in facts2["positions"]} == set(after)
        assert all(o["symbol"] not in held or o["action"] != "opened" for o in facts2["outcomes"])
        if kind == "ibkr":  # one exit per symbol, the bracket's legs cancelled with it
            orders = get(f"{control}/_sim/orders")["orders"]
            for s in held:
                parents = [o for o in orders if o["symbol"] == s and o["parent_id"] == 0]
                assert len(parents) == 2, parents  # the entry and one exit
                kids = [o for o in orders if o["symbol"] == s and o["parent_id"] != 0]
                assert kids and all(o["status"] == "Cancelled" for o in kids), kids
        # The paper twin took the same exits on its own positions, reported beside live's.
        book = {x["symbol"]: x for x in facts2["book_exits"]}
        assert set(book) == set(held) and all(x["state"] == "FILLED" for x in book.values()), book
        for sym, x in book.items():
            assert Decimal(x["quantity"]) == abs(twin_before[sym])
        assert not set(held) & set(twin_open(project, "live"))
        assert "### Paper twin strategy exits" in (report2 / "report.md").read_text()

        # Once: the next run has nothing left to exit and sends nothing for it.
        requests_before = len(get(f"{control}/_sim/requests")["requests"])
        facts3, _ = live_facts(joe_run(project, env))
        assert facts3["exits"] == [] and facts3["book_exits"] == []
        # A symbol held again was entered afresh by this run (the new direction, its own bracket),
        # never by the exit: the reversal takes two runs, an exit and then an entry.
        for s in set(held) & set(broker_net(kind, control)):
            assert [o["action"] for o in facts3["outcomes"] if o["symbol"] == s] == ["opened"]
        if kind == "ibkr":
            orders = get(f"{control}/_sim/orders")["orders"]
            for s in held:
                assert len([o for o in orders if o["symbol"] == s and o["parent_id"] == 0]) == 2
        else:
            later = get(f"{control}/_sim/requests")["requests"][requests_before:]
            closes = [r for r in later if r["method"] == "DELETE" and r["path"].startswith("/positions")]
            assert closes == [], closes


@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", ["ibkr", "capital"])
def test_the_shadow_book_follows_a_reversed_signal_and_sends_nothing(project: Path, kind: str) -> None:
    """Before: the shadow book never exited on a strategy signal, so it drifted away from what live would
    hold. Now it takes the same strategy exit at the live quote, and still transmits nothing."""
    (project / "config/execution.yaml").write_text(LIVE_CONFIG)
    with sim(kind) as (env, control):
        env = {**env, "TRADING_MODE": "shadow"}
        live_facts(joe_run(project, env))
        held = twin_open(project, "shadow")
        assert held
        _turn(kind, control, project, set(held))
        facts2, report2 = live_facts(joe_run(project, env))
        book = {x["symbol"]: x for x in facts2["book_exits"]}
        assert set(book) == set(held), facts2["book_exits"]
        for sym, x in book.items():
            assert x["reason"].startswith("signal reversed:") and x["state"] == "FILLED", x
            assert Decimal(x["quantity"]) == abs(held[sym])
        assert not set(held) & set(twin_open(project, "shadow"))
        assert "### Shadow book strategy exits" in (report2 / "report.md").read_text()
        requests = get(f"{control}/_sim/requests")["requests"]
        if kind == "ibkr":
            assert not [r for r in requests if r["name"] in ("placeOrder", "cancelOrder")]
        else:
            writes = [
                r for r in requests if r["method"] in ("POST", "PUT", "DELETE") and r["path"] != "/session"
            ]
            assert writes == [], writes


def _stops_at_ibkr(control: str, symbol: str) -> list[dict[str, Any]]:
    return [
        o
        for o in get(f"{control}/_sim/orders")["orders"]
        if o["symbol"] == symbol and o["order_type"] == "STP" and o["status"] in ("Submitted", "PreSubmitted")
    ]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", ["ibkr", "capital"])
def test_a_stop_cancelled_between_runs_is_placed_again_once(project: Path, kind: str) -> None:
    """Before: the reconciliation found the position without its stop and reported it from inside its own
    pass, where the OrderManager refuses intents: the lost-protection reaction retried for 30 s, could not
    exit either and HALTED trading with the position naked. At Capital.com the re-placed stop, a
    reduce-only order, was sent as a close: the position was closed at market instead of protected. Now
    the next run places exactly one stop of the broker's position size (at Capital.com: the position's
    stop level again), trading stays ACTIVE, and a third run places none."""
    (project / "config/execution.yaml").write_text(LIVE_CONFIG)
    with sim(kind) as (env, control):
        env = {**env, "TRADING_MODE": "live"}
        facts, _ = live_facts(joe_run(project, env))
        pos = facts["positions"][0]
        sym, qty = pos["symbol"], Decimal(pos["quantity"])
        stop = next(o for o in facts["orders"] if o["symbol"] == sym and o["leg"] == "stop")
        if kind == "ibkr":
            post(f"{control}/_sim/cancel", {"order_ref": stop["client_order_id"]})
            assert _stops_at_ibkr(control, sym) == []
        else:
            post(f"{control}/_sim/remove_stop", {"epic": sym})
            deal = next(d for d in capital_deals(control) if d["market"]["epic"] == sym)
            assert deal["position"].get("stopLevel") is None and deal["position"].get("profitLevel")

        facts2, _ = live_facts(joe_run(project, env))  # exit 0: trading was not halted
        assert facts2["reconciled"] is True, facts2["findings"]
        assert broker_net(kind, control)[sym] == qty  # still held: protected, not closed
        new = [
            o
            for o in facts2["orders"]
            if o["symbol"] == sym and o["leg"] == "stop" and o["client_order_id"] != stop["client_order_id"]
        ]
        assert len(new) == 1 and new[0]["state"] == "ACCEPTED", new
        assert Decimal(new[0]["quantity"]) == abs(qty)  # the broker's position size
        assert new[0]["side"] == ("SELL" if qty > 0 else "BUY")
        if kind == "ibkr":
            [working] = _stops_at_ibkr(control, sym)
            assert working["order_ref"] == new[0]["client_order_id"]
            assert Decimal(working["quantity"]) == abs(qty)
        else:
            deal = next(d for d in capital_deals(control) if d["market"]["epic"] == sym)
            assert deal["position"].get("stopLevel") is not None and deal["position"].get("profitLevel")
        puts_before = (
            len([r for r in get(f"{control}/_sim/requests")["requests"] if r.get("method") == "PUT"])
            if kind == "capital"
            else 0
        )

        # Run 3: the stop is there; nothing more is placed.
        facts3, _ = live_facts(joe_run(project, env))
        assert facts3["reconciled"] is True and not facts3["findings"], facts3["findings"]
        stops3 = [o for o in facts3["orders"] if o["symbol"] == sym and o["leg"] == "stop"]
        assert len(stops3) == 2 and [o["state"] for o in stops3].count("ACCEPTED") == 1, stops3
        if kind == "ibkr":
            assert len(_stops_at_ibkr(control, sym)) == 1
        else:
            puts = [r for r in get(f"{control}/_sim/requests")["requests"] if r.get("method") == "PUT"]
            assert len(puts) == puts_before
