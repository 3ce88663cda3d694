"""`MarginMonitor`: the broker account's margin cushion, checked on every run (and by the daemon).

Cushion = excess liquidity ÷ equity (net liquidation). IBKR reports it (``Cushion``, from
``ExcessLiquidity`` and ``NetLiquidation``; ``MaintMarginReq`` kept for the record); Capital.com's
equivalent is available funds ÷ equity. Thresholds (``safety.margin``): below ``warn_cushion`` an
alert; below ``reduce_cushion`` REDUCING (exits only); below ``halt_cushion`` HALTED. The last
reading is kept in the store (``kv_state`` key ``safety.margin``, shown by ``joe status``); every
level change is audited (``safety.margin``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from enum import StrEnum

from joe.config.schema import MarginConfig
from joe.core.models import AccountInfo
from joe.safety.control import SafetyContext
from joe.safety.trading_state import TradingState

MARGIN_KEY = "safety.margin"


class MarginLevel(StrEnum):
    OK = "ok"
    WARN = "warn"
    REDUCE = "reduce"
    HALT = "halt"


@dataclass(frozen=True, slots=True)
class MarginReading:
    """One account reading; `cushion` in 0..1 (None when the broker gave nothing to compute it from)."""

    broker: str
    equity: Decimal
    excess_liquidity: Decimal | None
    maint_margin: Decimal | None
    cushion: Decimal | None

    @classmethod
    def from_account(cls, broker: str, a: AccountInfo) -> MarginReading:
        extra = {k.lower(): v for k, v in (a.extra or {}).items()}
        excess = a.excess_liquidity if a.excess_liquidity is not None else a.available_funds
        maint = _dec(extra.get("maintmarginreq"))
        cushion = _dec(extra.get("cushion"))
        if cushion is None and excess is not None and a.equity > 0:
            cushion = excess / a.equity
        return cls(broker, a.equity, excess, maint, cushion)


def _dec(v: str | None) -> Decimal | None:
    try:
        return None if v in (None, "") else Decimal(str(v))
    except ArithmeticError:
        return None


class MarginMonitor:
    """Judges readings against `config` and moves the trading state (see the module docstring)."""

    def __init__(self, config: MarginConfig, ctx: SafetyContext) -> None:
        self.config = config
        self.ctx = ctx

    def level(self, r: MarginReading) -> MarginLevel:
        c = r.cushion
        if c is None:
            return MarginLevel.OK
        if c < self.config.halt_cushion:
            return MarginLevel.HALT
        if c < self.config.reduce_cushion:
            return MarginLevel.REDUCE
        if c < self.config.warn_cushion:
            return MarginLevel.WARN
        return MarginLevel.OK

    def check(self, r: MarginReading) -> MarginLevel:
        """Judge `r`, store it, and act: alert, REDUCING or HALTED."""
        lvl = self.level(r)
        previous = (self.ctx.store.get_state(MARGIN_KEY) or {}).get("level")
        data = {k: (None if v is None else str(v)) for k, v in asdict(r).items()}
        data["level"] = lvl.value
        data["at"] = self.ctx.clock().isoformat()
        self.ctx.store.set_state(MARGIN_KEY, data)
        if lvl.value != previous:
            self.ctx.audit.record("safety.margin", data)
        detail = (
            f"cushion {r.cushion:.3f} (warn < {self.config.warn_cushion}, reduce < "
            if r.cushion is not None
            else ""
        )
        detail += f"{self.config.reduce_cushion}, halt < {self.config.halt_cushion})" if detail else ""
        if lvl is MarginLevel.OK:
            return lvl
        self.ctx.alerts.margin(lvl.value, r.broker, detail)
        if lvl is MarginLevel.REDUCE:
            self.ctx.states.escalate(TradingState.REDUCING, by=f"margin:{r.broker}", reason=detail)
        elif lvl is MarginLevel.HALT:
            self.ctx.states.escalate(TradingState.HALTED, by=f"margin:{r.broker}", reason=detail)
        return lvl
