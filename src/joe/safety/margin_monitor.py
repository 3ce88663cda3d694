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
    """One account reading; `cushion` in 0..1, `equity` in the account currency.

    `unreadable` says why the numbers cannot be trusted (None when they can): a field missing or not
    a finite number, or equity zero or negative (a blown account, or the broker sending garbage). An
    unreadable reading is judged HALT, never OK (review r1119 finding 5: fail closed on the live path).
    """

    broker: str
    equity: Decimal | None
    excess_liquidity: Decimal | None
    maint_margin: Decimal | None
    cushion: Decimal | None
    unreadable: str | None = None

    @classmethod
    def from_account(cls, broker: str, a: object) -> MarginReading:
        """The reading of `a` (an `AccountInfo`); never raises: anything it cannot read is `unreadable`."""
        try:
            return _read(broker, a)
        except Exception as e:  # a malformed account object is an unreadable margin, not a crash
            why = f"account not readable ({type(e).__name__})"
            return cls(broker, None, None, None, None, unreadable=why)


def _read(broker: str, a: object) -> MarginReading:
    if not isinstance(a, AccountInfo):
        return MarginReading(broker, None, None, None, None, unreadable=f"no account ({type(a).__name__})")
    extra = {str(k).lower(): v for k, v in (a.extra or {}).items()}
    maint = _finite(_dec(extra.get("maintmarginreq")))

    def bad(why: str, equity: Decimal | None = None) -> MarginReading:
        return MarginReading(broker, equity, None, maint, None, unreadable=why)

    # The broker's raw text wins over the mapped field (IBKR maps garbage and missing tags to 0).
    for tag in ("netliquidation", "excessliquidity", "cushion"):
        if tag in extra and _finite(_dec(extra[tag])) is None:
            return bad(f"{tag} {extra[tag]!r} is not a number")
    equity = _finite(a.equity if isinstance(a.equity, Decimal) else _dec(a.equity))
    if equity is None:
        return bad(f"equity {a.equity!r} is not a number")
    if equity <= 0:
        return bad(f"equity {equity} <= 0 (account blown, or the broker's numbers are garbage)", equity)
    excess_raw = a.excess_liquidity if a.excess_liquidity is not None else a.available_funds
    excess = _finite(excess_raw if isinstance(excess_raw, Decimal) else _dec(excess_raw))
    cushion = _finite(_dec(extra.get("cushion")))
    if cushion is None:
        if excess is None:
            return bad(f"excess liquidity / available funds {excess_raw!r} missing or not a number", equity)
        cushion = excess / equity
    return MarginReading(broker, equity, excess, maint, cushion)


def _dec(v: object) -> Decimal | None:
    try:
        return None if v in (None, "") else Decimal(str(v))
    except ArithmeticError:
        return Decimal("NaN")  # present but garbage: not the same as missing


def _finite(d: Decimal | None) -> Decimal | None:
    """`d` when a finite number, else None (NaN, sNaN and ±Infinity are no reading)."""
    return d if d is not None and d.is_finite() else None


class MarginMonitor:
    """Judges readings against `config` and moves the trading state (see the module docstring)."""

    def __init__(self, config: MarginConfig, ctx: SafetyContext) -> None:
        self.config = config
        self.ctx = ctx

    def level(self, r: MarginReading) -> MarginLevel:
        c = r.cushion
        if r.unreadable is not None or c is None:
            return MarginLevel.HALT  # unknown margin is not healthy margin (fail closed)
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
        detail = describe(r, self.config)
        if lvl is MarginLevel.OK:
            return lvl
        self.ctx.alerts.margin(lvl.value, r.broker, detail)
        if lvl is MarginLevel.REDUCE:
            self.ctx.states.escalate(TradingState.REDUCING, by=f"margin:{r.broker}", reason=detail)
        elif lvl is MarginLevel.HALT:
            self.ctx.states.escalate(TradingState.HALTED, by=f"margin:{r.broker}", reason=detail)
        return lvl


def describe(r: MarginReading, config: MarginConfig) -> str:
    """One line for alerts, the trading state's reason and `joe status`."""
    if r.unreadable is not None or r.cushion is None:
        why = r.unreadable or "no cushion"
        return f"margin unreadable: {why} — HALTED until the account reads right and `joe resume`"
    return (
        f"cushion {r.cushion:.3f} (warn < {config.warn_cushion}, reduce < {config.reduce_cushion}, "
        f"halt < {config.halt_cushion})"
    )
