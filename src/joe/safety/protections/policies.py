"""The four protections (Freqtrade ``plugins/protections``: StoplossGuard, CooldownPeriod, MaxDrawdown,
LowProfitPairs — facts, not code), each one small class with one question."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from joe.config.schema import ProtectionsConfig

ALL = "*"


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """What the protections need of a closed position."""

    symbol: str
    closed_at: datetime
    pnl: Decimal
    notional: Decimal  # entry notional (for profit in percent)
    exit_reason: str

    @property
    def stopped_out(self) -> bool:
        return "stop" in self.exit_reason.lower()


@dataclass(frozen=True, slots=True)
class Lock:
    """`scope` is a symbol or ``*`` (everything); entries are refused until `until`."""

    scope: str
    until: datetime
    policy: str
    reason: str


class Protection(Protocol):
    name: str

    def locks(self, trades: Sequence[ClosedTrade], now: datetime) -> list[Lock]: ...


class StoplossGuard:
    """N stop-outs within the lookback → lock everything for a while (a market that hunts stops)."""

    name = "stoploss_guard"

    def __init__(self, trades: int, lookback_h: float, lock_h: float) -> None:
        self.trades, self.lookback, self.lock = trades, timedelta(hours=lookback_h), timedelta(hours=lock_h)

    def locks(self, trades: Sequence[ClosedTrade], now: datetime) -> list[Lock]:
        if self.trades <= 0:
            return []
        stops = [t for t in trades if t.stopped_out and now - self.lookback <= t.closed_at <= now]
        if len(stops) < self.trades:
            return []
        last = max(t.closed_at for t in stops)
        return [
            Lock(
                ALL,
                last + self.lock,
                self.name,
                f"{len(stops)} stop-outs within {self.lookback} (limit {self.trades})",
            )
        ]


class Cooldown:
    """After a stop-out on a symbol, no new entry on it for a while."""

    name = "cooldown"

    def __init__(self, lock_h: float) -> None:
        self.lock = timedelta(hours=lock_h)

    def locks(self, trades: Sequence[ClosedTrade], now: datetime) -> list[Lock]:
        if not self.lock:
            return []
        out: dict[str, Lock] = {}
        for t in trades:
            if t.stopped_out and t.closed_at <= now < t.closed_at + self.lock:
                out[t.symbol] = Lock(
                    t.symbol,
                    t.closed_at + self.lock,
                    self.name,
                    f"stopped out at {t.closed_at:%Y-%m-%d %H:%M}",
                )
        return list(out.values())


class MaxDrawdownLock:
    """Realised losses within the lookback beyond a share of the starting equity → lock everything."""

    name = "max_drawdown_lock"

    def __init__(self, max_pct: Decimal, lookback_h: float, lock_h: float, equity: Decimal) -> None:
        self.max_pct, self.lookback, self.lock, self.equity = (
            max_pct,
            timedelta(hours=lookback_h),
            timedelta(hours=lock_h),
            equity,
        )

    def locks(self, trades: Sequence[ClosedTrade], now: datetime) -> list[Lock]:
        recent = sorted(
            (t for t in trades if now - self.lookback <= t.closed_at <= now), key=lambda t: t.closed_at
        )
        if not recent or self.equity <= 0:
            return []
        # Peak-to-trough of the cumulative realised PnL inside the window.
        cum, peak, worst = Decimal(0), Decimal(0), Decimal(0)
        for t in recent:
            cum += t.pnl
            peak = max(peak, cum)
            worst = max(worst, peak - cum)
        pct = worst / self.equity * 100
        if pct < self.max_pct:
            return []
        return [
            Lock(
                ALL,
                recent[-1].closed_at + self.lock,
                self.name,
                f"realised drawdown {pct:.2f}% (limit {self.max_pct}%)",
            )
        ]


class LowProfitSymbols:
    """A symbol whose recent trades made less than the required profit is locked for a while."""

    name = "low_profit"

    def __init__(self, trades: int, lookback_h: float, min_pct: Decimal, lock_h: float) -> None:
        self.trades, self.lookback, self.min_pct, self.lock = (
            trades,
            timedelta(hours=lookback_h),
            min_pct,
            timedelta(hours=lock_h),
        )

    def locks(self, trades: Sequence[ClosedTrade], now: datetime) -> list[Lock]:
        if self.trades <= 0:
            return []
        by_symbol: dict[str, list[ClosedTrade]] = {}
        for t in trades:
            if now - self.lookback <= t.closed_at <= now:
                by_symbol.setdefault(t.symbol, []).append(t)
        out = []
        for sym, ts in by_symbol.items():
            if len(ts) < self.trades:
                continue
            notional = sum((t.notional for t in ts), Decimal(0))
            pct = sum((t.pnl for t in ts), Decimal(0)) / notional * 100 if notional else Decimal(0)
            if pct < self.min_pct:
                last = max(t.closed_at for t in ts)
                out.append(
                    Lock(
                        sym,
                        last + self.lock,
                        self.name,
                        f"{len(ts)} trades made {pct:.2f}% (required {self.min_pct}%)",
                    )
                )
        return out


def default_protections(cfg: ProtectionsConfig, equity: Decimal) -> list[Protection]:
    return [
        StoplossGuard(cfg.stoploss_guard_trades, cfg.stoploss_guard_lookback_h, cfg.stoploss_guard_lock_h),
        Cooldown(cfg.cooldown_h),
        MaxDrawdownLock(cfg.max_drawdown_pct, cfg.max_drawdown_lookback_h, cfg.max_drawdown_lock_h, equity),
        LowProfitSymbols(
            cfg.low_profit_trades, cfg.low_profit_lookback_h, cfg.low_profit_min_pct, cfg.low_profit_lock_h
        ),
    ]


def active_locks(
    protections: Sequence[Protection], trades: Sequence[ClosedTrade], now: datetime
) -> list[Lock]:
    """Every lock that holds at `now`."""
    return [lock for p in protections for lock in p.locks(trades, now) if lock.until > now]
