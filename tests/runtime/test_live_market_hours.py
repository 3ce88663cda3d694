"""Live and shadow entries need the instrument's market open NOW and a fresh live quote (review r1012
finding 1: a live run at 10:50Z with NYSE closed placed and filled 4 brackets; the daemon's pre-open
scan is such a run). The run's minute is injected (``JOE_CLOCK_START``), never the wall clock's."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from joe.config.schema import RiskConfig
from joe.core.events import NullAudit
from joe.core.models import AssetClass, Instrument, Quote
from joe.safety.live_book import live_book
from joe.safety.risk_gate import GateBook, ProposedOrder, RiskGate
from joe.safety.rules.order import MarketClosed, StaleQuote
from runtime.test_live_runs import LIVE_CONFIG, get, joe_run, post, sim

NYSE_CLOSED = "2026-12-01T10:50:00+00:00"  # Tuesday 05:50 New York: the reviewer's minute
NYSE_OPEN = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def _audit(project: Path) -> list[dict[str, object]]:
    lines = "".join(f.read_text() for f in sorted((project / "data/audit").glob("*.jsonl"))).splitlines()
    return [json.loads(ln) for ln in lines if ln.strip()]


def _denied(project: Path, rule: str) -> list[dict[str, object]]:
    return [r for r in _audit(project) if r.get("event") == "risk.denied" and rule in json.dumps(r)]


@pytest.mark.timeout(600)
def test_live_ibkr_run_sends_no_entry_while_nyse_is_closed(project: Path) -> None:
    (project / "config/execution.yaml").write_text(LIVE_CONFIG)
    with sim("ibkr") as (env, control):
        out = joe_run(project, {**env, "TRADING_MODE": "live", "JOE_CLOCK_START": NYSE_CLOSED})
        assert out.returncode in (0, 3), out.stderr[-3000:]
        entries = [o for o in get(f"{control}/_sim/orders")["orders"] if o["parent_id"] == 0]
        assert entries == []
    assert _denied(project, "market_closed"), "each entry is refused by the market_closed rule, audited"


@pytest.mark.timeout(600)
def test_live_capital_run_sends_no_entry_on_a_market_the_broker_says_is_closed(project: Path) -> None:
    """Capital.com CFDs keep their own hours: the broker's marketStatus rules (NYSE is open here)."""
    from joe.simulators.capital.catalog import CATALOG

    (project / "config/execution.yaml").write_text(LIVE_CONFIG)
    with sim("capital") as (env, control):
        for m in CATALOG:
            post(f"{control}/_sim/status", {"epic": m.epic, "status": "CLOSED"})
        out = joe_run(project, {**env, "TRADING_MODE": "live"})
        assert out.returncode in (0, 3), out.stderr[-3000:]
        order_paths = ("/positions", "/workingorders")
        requests = get(f"{control}/_sim/requests")["requests"]
        sent = [r for r in requests if r["method"] == "POST" and r["path"].rstrip("/").endswith(order_paths)]
        assert sent == []
    assert _denied(project, "market_closed")


# -- the live book, unit level (deterministic: the minute and the wall clock are given) -------------

AAPL = Instrument("AAPL", AssetClass.EQUITY, currency="USD", exchange="NASDAQ")


def _book(now: datetime, quote_age_s: float, status: dict[str, bool] | None = None) -> GateBook:
    daily = GateBook(now=now.replace(hour=0, minute=0), equity=Decimal(100000), positions=[], quotes={},
                     instruments={"AAPL": AAPL})  # fmt: skip
    wall = datetime(2030, 1, 1, tzinfo=UTC)  # the quotes' own clock: only their age counts
    q = Quote("AAPL", wall - timedelta(seconds=quote_age_s), Decimal("99.9"), Decimal("100.1"))
    return live_book(daily, now=now, quotes={"AAPL": q}, market_open=status, wall_now=wall)


ORDER = ProposedOrder("s1", "AAPL", Decimal(10), Decimal(100))


def _gate() -> RiskGate:
    return RiskGate(RiskConfig(max_quote_age_s=5.0), NullAudit())


@pytest.mark.parametrize(
    ("minute", "closed"),
    [
        (NYSE_OPEN, False),
        (NYSE_OPEN.replace(hour=10, minute=50), True),  # pre-open: the daemon's pre_open_scan
        (NYSE_OPEN.replace(hour=14, minute=29), True),  # one minute before the open
        (NYSE_OPEN.replace(hour=21, minute=1), True),  # after the close
        (datetime(2026, 11, 26, 15, 0, tzinfo=UTC), True),  # Thanksgiving, mid-session hour
        (datetime(2026, 11, 27, 18, 30, tzinfo=UTC), True),  # day after: early close 13:00 New York
    ],
)
def test_market_closed_judges_the_minute_on_a_live_book(minute: datetime, closed: bool) -> None:
    denial = MarketClosed().check(ORDER, _book(minute, 1.0), _gate())
    assert (denial is not None) is closed


def test_broker_status_rules_over_the_calendar() -> None:
    assert MarketClosed().check(ORDER, _book(NYSE_OPEN, 1.0, {"AAPL": False}), _gate()) is not None
    assert MarketClosed().check(ORDER, _book(NYSE_OPEN.replace(hour=3), 1.0, {"AAPL": True}), _gate()) is None


@pytest.mark.parametrize(("age", "stale"), [(0.0, False), (4.9, False), (5.1, True), (3600.0, True)])
def test_stale_quote_uses_max_quote_age_on_a_live_book(age: float, stale: bool) -> None:
    assert (StaleQuote().check(ORDER, _book(NYSE_OPEN, age), _gate()) is not None) is stale


def test_no_live_quote_means_no_entry() -> None:
    daily = GateBook(now=NYSE_OPEN, equity=Decimal(1), positions=[], quotes={}, instruments={"AAPL": AAPL})
    book = live_book(daily, now=NYSE_OPEN, quotes={})
    assert StaleQuote().check(ORDER, book, _gate()) is not None


def test_the_minute_check_is_silent_on_the_newest_pandas() -> None:
    """Before: exchange_calendars' `is_open_on_minute` raised pandas 3.1's Pandas4Warning
    (`DatetimeIndex.values` on a tz-aware index) on every live/shadow run's market-hours check, on
    the user's console. Now the check says open/closed and nothing else (review r10days #2)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert MarketClosed().check(ORDER, _book(NYSE_OPEN, 1.0), _gate()) is None
        assert MarketClosed().check(ORDER, _book(NYSE_OPEN.replace(hour=21, minute=1), 1.0), _gate())
