"""Every RiskGate rule: a denial naming the rule, the numbers and the limit, with its audit record;
and the issue's two cases (three correlated MSFT shorts; the daily loss limit)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from joe.brokers.base import WhatIfResult
from joe.config.schema import RiskConfig
from joe.core.events import NullAudit
from joe.core.models import AssetClass, Direction, Instrument, Position, Signal
from joe.safety.risk_gate import GateBook, ProposedOrder, QuoteMark, RiskGate

D = Decimal
NOW = datetime(2018, 2, 2, 21, 0, tzinfo=UTC)  # a Friday session close
SAT = datetime(2018, 2, 3, 21, tzinfo=UTC)


def signal(
    symbol: str, qty: str, price: str = "100", direction: Direction = Direction.LONG, n: int = 0
) -> Signal:
    p = D(price)
    stop, target = (
        (p * D("0.9"), p * D("1.2")) if direction is Direction.LONG else (p * D("1.1"), p * D("0.8"))
    )
    return Signal(
        f"s:{symbol}:{n}:{direction.value}",
        symbol,
        "test",
        direction,
        p,
        stop,
        target,
        0.9,
        "t",
        NOW,
        quantity=D(qty),
    )


def book(**kw: Any) -> GateBook:
    base = GateBook(
        now=NOW,
        equity=D(100_000),
        positions=[],
        quotes={
            s: QuoteMark(D(100), NOW) for s in ("AAA", "BBB", "CCC", "MSFT", "MSFT@pmdarima", "MSFT@bokeh")
        },
        instruments={"AAA": Instrument("AAA", exchange="NYSE")},
        day_start_equity=D(100_000),
        peak_equity=D(100_000),
        available_funds=D(100_000),
    )
    return replace(base, **kw)


def gate(audit: NullAudit, clock: Callable[[], datetime] | None = None, **cfg: Any) -> RiskGate:
    return RiskGate(RiskConfig(**cfg), audit, clock=clock or (lambda: NOW))


def screen_one(s: Signal, b: GateBook, **cfg: Any) -> tuple[str, dict[str, Any]]:
    audit = NullAudit()
    approved, denied = gate(audit, **cfg).screen([s], b)
    assert approved == [] and list(denied) == [s.signal_id]
    (rec,) = [r for r in audit.records if r[0] == "risk.denied"]
    assert rec[2] == {"signal_id": s.signal_id}
    return denied[s.signal_id], rec[1]


def test_an_ordinary_entry_passes_every_rule() -> None:
    audit = NullAudit()
    approved, denied = gate(audit).screen([signal("AAA", "50")], book())
    assert len(approved) == 1 and denied == {}
    assert [r[0] for r in audit.records] == ["risk.screened"]


@pytest.mark.parametrize(
    ("rule", "sig", "bk", "cfg", "value", "limit"),
    [
        ("max_order_quantity", signal("AAA", "20"), book(), {"max_order_quantity": D(10)}, "20", "10"),
        ("max_order_notional", signal("AAA", "20"), book(), {"max_order_notional": D(1000)}, "2000", "1000"),
        ("max_order_notional", signal("AAA", "150"), book(), {}, "15.00%", "10.00%"),
        (
            "stale_quote",
            signal("AAA", "10"),
            book(quotes={"AAA": QuoteMark(D(100), NOW - timedelta(days=3))}),
            {},
            "2018-01-30",
            "2018-02-02",
        ),
        ("stale_quote", signal("ZZZ", "10"), book(), {}, "none", "a quote"),
        ("price_band", signal("AAA", "10", price="107"), book(), {}, "7.00%", "5.00%"),
        (
            "market_closed",
            signal("AAA", "10"),
            book(now=SAT, quotes={"AAA": QuoteMark(D(100), SAT)}),
            {},
            "closed",
            "open",
        ),
        ("daily_loss_limit", signal("AAA", "10"), book(equity=D(96_960)), {}, "3.04%", "3.00%"),
        (
            "max_drawdown",
            signal("AAA", "10"),
            book(equity=D(79_000), day_start_equity=None),
            {},
            "21.00%",
            "20.00%",
        ),
        ("max_open_positions", signal("AAA", "10"), book(), {"max_positions": 0}, "1", "0"),
        (
            "symbol_exposure",
            signal("AAA", "30"),
            book(positions=[Position("AAA", D(-20), D(100))]),
            {"max_positions_per_symbol": 2, "max_symbol_exposure_pct": D(0.5)},
            "1.00%",
            "0.50%",
        ),
        (
            "symbol_exposure",
            signal("AAA", "1"),
            book(positions=[Position("AAA", D(1), D(100))]),
            {},
            "2",
            "1",
        ),
        (
            "total_exposure",
            signal("AAA", "10"),
            book(positions=[Position("BBB", D(1490), D(100))]),
            {},
            "150.00%",
            "150.00%",
        ),
    ],
)
def test_each_rule_denies_with_numbers_and_an_audit_record(
    rule: str, sig: Signal, bk: GateBook, cfg: dict[str, Any], value: str, limit: str
) -> None:
    if rule == "total_exposure":
        value = "150.00%"
        cfg = {
            "max_gross_exposure_pct": D("149.99"),
            "max_position_pct": D(100),
            "max_symbol_exposure_pct": D(100),
        }
        limit = "149.99%"
    text, payload = screen_one(sig, bk, **cfg)
    assert text.startswith(f"denied: {rule}: ")
    assert (payload["rule"], payload["value"], payload["limit"]) == (rule, value, limit)
    assert f"({value} vs limit {limit})" in text
    assert payload["symbol"] == sig.symbol


def test_order_rate_per_second_and_minute() -> None:
    t = [NOW]
    audit = NullAudit()
    g = gate(audit, clock=lambda: t[0], max_orders_per_second=2, max_orders_per_minute=3)
    sigs = [signal(s, "1", n=i) for i, s in enumerate(["AAA", "BBB", "CCC"])]
    approved, denied = g.screen(sigs, book())
    assert (
        len(approved) == 2
        and "denied: order_rate: orders in the last second (3 vs limit 2)" in denied.values()
    )
    t[0] += timedelta(seconds=2)
    approved, denied = g.screen([signal("CCC", "1", n=9)], book())
    assert len(approved) == 1
    approved, denied = g.screen([signal("CCC", "1", n=10)], book())
    assert list(denied.values()) == ["denied: order_rate: orders in the last minute (4 vs limit 3)"]
    t[0] += timedelta(minutes=2)  # the window slides: allowed again
    assert len(g.screen([signal("CCC", "1", n=11)], book())[0]) == 1
    assert sum(1 for r in audit.records if r[0] == "risk.denied" and r[1]["rule"] == "order_rate") == 2


def test_margin_whatif_hook_denies_before_entry() -> None:
    audit = NullAudit()
    seen: list[ProposedOrder] = []

    def whatif(o: ProposedOrder) -> WhatIfResult:
        seen.append(o)
        return WhatIfResult(init_margin_change=D(150_000), maint_margin_change=D(100_000))

    g = RiskGate(RiskConfig(), audit, clock=lambda: NOW, whatif=whatif)
    approved, denied = g.screen([signal("AAA", "10")], book())
    assert approved == [] and seen[0].symbol == "AAA"
    assert list(denied.values()) == [
        "denied: margin_whatif: initial margin the order adds (150000 vs limit 100000)"
    ]
    warn = RiskGate(RiskConfig(), audit, whatif=lambda o: WhatIfResult(D(1), D(1), warning="no permission"))
    assert "broker warns: no permission" in next(iter(warn.screen([signal("AAA", "10")], book())[1].values()))

    def broken(o: ProposedOrder) -> WhatIfResult:
        raise TimeoutError

    failing = RiskGate(RiskConfig(), audit, whatif=broken)  # no preview = no entry (fail closed)
    assert "margin preview failed" in next(iter(failing.screen([signal("AAA", "10")], book())[1].values()))


def test_three_correlated_msft_shorts_are_one_exposure() -> None:
    """The issue: MSFT, MSFT@pmdarima and MSFT@bokeh approved together as three shorts (21 % vs 10 %)."""
    audit = NullAudit()
    shorts = [
        signal(s, "70", direction=Direction.SHORT, n=i)
        for i, s in enumerate(["MSFT", "MSFT@pmdarima", "MSFT@bokeh"])
    ]
    approved, denied = gate(audit).screen(shorts, book())
    assert [s.symbol for s in approved] == ["MSFT"]
    assert all(
        t.startswith("denied: correlated_exposure: ") and "(14.00% vs limit 10.00%)" in t
        for t in denied.values()
    )


def test_correlated_by_returns_not_only_by_name() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(0, 0.01, 80)
    returns = pd.DataFrame(
        {"AAA": base, "BBB": base + rng.normal(0, 0.0005, 80), "CCC": rng.normal(0, 0.01, 80)}
    )
    b = book(returns=returns, positions=[Position("AAA", D(70), D(100))])
    audit = NullAudit()
    approved, denied = gate(audit).screen([signal("BBB", "70", n=1), signal("CCC", "70", n=2)], b)
    assert [s.symbol for s in approved] == ["CCC"]
    assert "BBB moves with AAA" in next(iter(denied.values()))
    # A hedge (opposite direction) in the cluster reduces the net exposure: allowed.
    hedge = signal("BBB", "70", direction=Direction.SHORT, n=3)
    assert gate(NullAudit()).screen([hedge], b)[0] == [hedge]


def test_daily_loss_limit_case_of_2018_02_02() -> None:
    """Equity fell 3.04 % on 2018-02-02 with the limit at 3 %: none of the six entries may open."""
    audit = NullAudit()
    sigs = [signal(s, "10", n=i) for i, s in enumerate(["AAA", "BBB", "CCC", "MSFT", "AAA", "BBB"])]
    approved, denied = gate(audit).screen(sigs, book(day_start_equity=D(100_000), equity=D(96_960)))
    assert approved == [] and len(denied) == 6
    assert {r[1]["rule"] for r in audit.records if r[0] == "risk.denied"} == {"daily_loss_limit"}


def test_market_hours_for_live_quotes_and_asset_classes() -> None:
    sat = datetime(2018, 2, 3, 15, tzinfo=UTC)
    instruments = {
        "AAA": Instrument("AAA", exchange="NYSE"),
        "BTC": Instrument("BTC", AssetClass.CRYPTO),
        "EURUSD": Instrument("EURUSD", AssetClass.FX),
    }
    quotes = {s: QuoteMark(D(100), sat) for s in instruments}
    b = book(now=sat, quotes=quotes, instruments=instruments, daily_bars=False)
    approved, denied = gate(NullAudit()).screen([signal(s, "1", n=i) for i, s in enumerate(instruments)], b)
    assert [s.symbol for s in approved] == ["BTC"]
    assert len(denied) == 2
    open_minute = datetime(2018, 2, 2, 15, 0, tzinfo=UTC)  # 10:00 New York
    quotes = {s: QuoteMark(D(100), open_minute - timedelta(seconds=2)) for s in instruments}
    b = book(now=open_minute, quotes=quotes, instruments=instruments, daily_bars=False)
    assert len(gate(NullAudit()).screen([signal("AAA", "1")], b)[0]) == 1
    stale = book(
        now=open_minute,
        quotes={"AAA": QuoteMark(D(100), open_minute - timedelta(seconds=9))},
        daily_bars=False,
    )
    assert "quote is 9.0s old" in next(
        iter(gate(NullAudit()).screen([signal("AAA", "1")], stale)[1].values())
    )
