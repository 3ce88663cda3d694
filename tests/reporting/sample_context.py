"""A realistic, deterministic `ReportContext` for report tests (synthetic but plausible data)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd

from joe.core.models import Direction, Fill, Side, Signal
from joe.reporting.context import PositionFacts, RegimeFacts, ReportContext, ScoreFacts, SignalFacts

AS_OF = date(2024, 6, 14)
_NAMES = {
    "AAPL": "Apple Inc.",
    "MSFT": "Microsoft Corp.",
    "NVDA": "NVIDIA Corp.",
    "JPM": "JPMorgan Chase & Co.",
    "XOM": "Exxon Mobil",
    "AMZN": "Amazon.com",
    "META": "Meta Platforms",
    "TSLA": 'Tesla <Inc> & "Co"',
    "EURUSD": "Euro / US Dollar",
    "BTCUSD": "Bitcoin",
    "GLD": "SPDR Gold",
    "KO": "Coca-Cola",
}


def regime_history(rng: np.random.Generator, n: int = 500) -> pd.DataFrame:
    idx = pd.bdate_range(end=pd.Timestamp(AS_OF), periods=n)
    spx = 4000 * np.exp(np.cumsum(rng.normal(0.0004, 0.009, n)))
    vix = np.clip(16 + np.cumsum(rng.normal(0, 0.6, n)) * 0.3 + 4 * np.sin(np.arange(n) / 40), 10, 45)
    # Multi-week regime blocks, as a detector with hysteresis would label them.
    blocks = np.repeat(["bull", "neutral", "bull", "high_volatility", "bear", "neutral", "bull"], n // 7 + 1)[
        :n
    ]
    return pd.DataFrame({"spx_close": spx, "vix_close": vix, "label": blocks}, index=idx)


def bars(rng: np.random.Generator, last: float, n: int = 120) -> pd.DataFrame:
    idx = pd.date_range(end=pd.Timestamp(AS_OF, tz="UTC"), periods=n, freq="B")
    walk = np.exp(np.cumsum(rng.normal(0, 0.015, n)))
    close = last * walk / walk[-1]  # ends exactly at `last`
    open_ = close * (1 + rng.normal(0, 0.004, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.006, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.006, n)))
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close}, index=idx)


def make_signal_facts(rng: np.random.Generator, i: int, symbol: str) -> SignalFacts:
    last = float(rng.uniform(20, 600))
    entry = Decimal(f"{last:.2f}")
    direction = Direction.LONG if i % 3 else Direction.SHORT
    risk = (entry * Decimal("0.03")).quantize(Decimal("0.01"))
    stop = entry - risk * direction.sign
    target = entry + 2 * risk * direction.sign
    as_of = datetime(2024, 6, 14, 20, 0, tzinfo=UTC)
    sig = Signal(
        signal_id=f"sig-{symbol.lower()}-{i}",
        symbol=symbol,
        strategy=["momentum_breakout", "mean_reversion", "trend_pullback"][i % 3],
        direction=direction,
        entry=entry,
        stop_loss=stop,
        take_profit=target,
        confidence=round(0.55 + 0.04 * i, 2),
        reason=f"Close above 20-day high with volume x{1.5 + i / 10:.1f}; ATR stop <2x> & target 2R",
        as_of=as_of,
        score=round(60 + 3.5 * i, 1),
        risk_grade="ABCD"[i % 4],
    )
    vetoed = i % 4 == 3
    return SignalFacts(
        signal=sig,
        risk_grade="ABCD"[i % 4],
        risk_dimensions={"volatility": 0.2 + 0.05 * i, "liquidity": 0.9 - 0.03 * i, "gap_risk": 0.1},
        vetoed=vetoed,
        veto_reason="grade below minimum C" if vetoed else None,
        quantity=None if vetoed else Decimal(10 + i * 5),
        price_history=bars(rng, last),
    )


def make_context(n_signals: int = 6, run_id: str = "20240614T200000Z-ab12cd") -> ReportContext:
    rng = np.random.default_rng(42)
    symbols = list(_NAMES)
    scores = [
        ScoreFacts(
            sym,
            _NAMES[sym],
            round(88 - 3.1 * k, 1),
            {"trend": round(80 - 2 * k, 1), "momentum": round(75 - k, 1), "volume": round(60 + k, 1)},
            ["breakout", "52w_high"] if k % 2 == 0 else ["pullback"],
        )
        for k, sym in enumerate(symbols[:10])
    ]
    signals = [make_signal_facts(rng, i, symbols[i % len(symbols)]) for i in range(n_signals)]
    opened = datetime(2024, 6, 10, 14, 30, tzinfo=UTC)
    positions = [
        PositionFacts(
            "MSFT",
            Direction.LONG,
            Decimal(20),
            Decimal("421.50"),
            Decimal("430.10"),
            Decimal("172.00"),
            Decimal("405.00"),
            Decimal("455.00"),
            opened,
        ),
        PositionFacts(
            "XOM",
            Direction.SHORT,
            Decimal(50),
            Decimal("112.40"),
            Decimal("113.90"),
            Decimal("-75.00"),
            Decimal("117.00"),
            Decimal("103.20"),
            opened + timedelta(days=1),
        ),
    ]
    fills = [
        Fill(
            "F-1",
            "joe-sig-aapl-0-entry",
            "AAPL",
            Side.SELL,
            Decimal(10),
            Decimal("212.49"),
            datetime(2024, 6, 14, 20, 0, 5, tzinfo=UTC),
            Decimal("1.00"),
        ),
        Fill(
            "F-2",
            "joe-sig-msft-1-entry",
            "MSFT",
            Side.BUY,
            Decimal(15),
            Decimal("430.12"),
            datetime(2024, 6, 14, 20, 0, 6, tzinfo=UTC),
            Decimal("1.00"),
        ),
    ]
    ts = pd.date_range(end=pd.Timestamp(AS_OF, tz="UTC"), periods=60, freq="B")
    equity = 100_000 + np.cumsum(rng.normal(40, 300, 60))
    curve = pd.DataFrame({"ts": ts, "equity": equity, "cash": equity * 0.7})
    return ReportContext(
        run_id=run_id,
        mode="paper",
        broker="sim",
        source="sample",
        source_description="Shipped sample data: S&P 500 & VIX daily (arch.data) + synthetic universe",
        as_of=AS_OF,
        started_at=datetime(2024, 6, 14, 20, 0, 0, tzinfo=UTC),
        finished_at=datetime(2024, 6, 14, 20, 0, 7, 250000, tzinfo=UTC),
        regime=RegimeFacts("bull", 0.72, False, {"vix": 14.2, "spx_vs_sma200": 0.081, "breadth": 0.63}),
        regime_history=regime_history(rng),
        top_scores=scores,
        signals=signals,
        positions=positions,
        fills=fills,
        equity_curve=curve,
        account={
            "cash": Decimal("70123.45"),
            "equity": Decimal("101234.56"),
            "realized_pnl": Decimal("812.30"),
            "unrealized_pnl": Decimal("97.00"),
        },
        stage_timings={"data": 2.1, "regime": 0.05, "scan": 1.2, "score": 0.8, "strategy": 0.6, "risk": 0.1},
        warnings=["Using shipped sample data, not live prices"],
    )


def minimal_context(run_id: str = "minimal-run") -> ReportContext:
    t = datetime(2024, 6, 14, 20, 0, tzinfo=UTC)
    return ReportContext(
        run_id=run_id,
        mode="paper",
        broker="sim",
        source="sample",
        source_description="sample",
        as_of=AS_OF,
        started_at=t,
        finished_at=t,
        regime=RegimeFacts("neutral", 0.5),
    )
