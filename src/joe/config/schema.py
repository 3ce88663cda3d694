"""Schema of `config/execution.yaml`. Every key has a safe default; unknown keys are errors.

Sections: live (the gate), paper (paper fills and costs), risk (sizing and limits), pipeline
(scan/score/strategy knobs), ai (Gemini), alerts (Telegram/Discord), brokers (per-broker options).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

# Every safety/risk/daemon/breaker/margin number has a lower AND an upper bound, and no number anywhere
# may be inf or nan (review r1119 finding 8: `.inf` or `1e-9` in the yaml switched a limit off while the
# config gate said PASS). tests/config/test_safety_bounds.py walks the schema and holds every such field
# to this; the loader's error names the key and the allowed range.


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_number(cls, value: Any, info: ValidationInfo) -> Any:
        """A number is never a boolean and a switch is never a number or text. YAML reads an unquoted
        `yes`, `no`, `on`, `off`, `true`, `false` as booleans, and pydantic would take them as 1 and 0
        (`pipeline.max_signals: on` was 1 signal, `risk.max_positions: off` 0 positions); `live.enabled:
        1` or `"yes"` would switch live on. Both are wrong-typed keys, reported as such (hostile
        review 2026-12-02; README "Configuration": a wrong-typed key is reported)."""
        if info.field_name is None:
            return value
        annotation = cls.model_fields[info.field_name].annotation
        kinds = set(get_args(annotation)) or {annotation}
        if isinstance(value, bool) and bool not in kinds and kinds & {int, float, Decimal}:
            raise PydanticCustomError("bool_for_number", "a boolean where a number is expected")
        if bool in kinds and value is not None and not isinstance(value, bool):
            raise PydanticCustomError("not_bool", "a switch takes true or false")
        return value


class TrackRecordOverride(_Strict):
    """Skip the paper track-record gate for real money. Needs a written reason; it is audited."""

    enabled: bool = False
    reason: str = ""


class RolloutConfig(_Strict):
    """Small-size rollout on a real-money account: the first `trades` live entries and the first
    `days` days of live trading are sized at `size_fraction` of the normal size and at most
    `max_notional` each (issue 10; `joe mode` and the report show the count so far)."""

    trades: int = Field(10, ge=0, le=10_000)
    days: int = Field(5, ge=0, le=365)
    size_fraction: Decimal = Field(Decimal("0.25"), gt=0, le=1)
    max_notional: Decimal = Field(Decimal(5000), gt=0, le=10_000_000)


class DemoRecordOverride(_Strict):
    """Skip the demo-live record gate for real money (issue 19). Needs a written reason; audited."""

    enabled: bool = False
    reason: str = ""


class LiveConfig(_Strict):
    enabled: bool = False
    min_paper_days: int = Field(30, ge=0)
    min_paper_trades: int = Field(50, ge=0)
    track_record_override: TrackRecordOverride = TrackRecordOverride()
    # The demo-live record (issue 19): clean days of live/shadow runs at the same broker's demo/paper
    # account that a real-money account needs (`joe.config.graduation`).
    min_demo_days: int = Field(10, ge=1)
    demo_record_override: DemoRecordOverride = DemoRecordOverride()
    rollout: RolloutConfig = RolloutConfig()


class PaperConfig(_Strict):
    starting_cash: Decimal = Field(Decimal(100_000), gt=0)
    currency: str = "USD"
    spread_bps: Decimal = Field(Decimal(2), ge=0)
    slippage_bps: Decimal = Field(Decimal(1), ge=0)
    commission_per_share: Decimal = Field(Decimal("0.005"), ge=0)
    commission_min: Decimal = Field(Decimal(1), ge=0)
    commission_pct: Decimal = Field(Decimal(0), ge=0)
    # A margin account (as IBKR and Capital.com paper/demo accounts are): shorts allowed, gross
    # exposure capped at max_leverage × equity. False makes it a cash account: longs only, no debt.
    allow_margin: bool = True
    max_leverage: Decimal = Field(Decimal(2), ge=1, le=10)
    # A held instrument with no bar for this many consecutive sessions of the market (days on which
    # other instruments trade) has stopped trading (delisted, merged, its file ends): the paper book
    # closes it at its last known close, exit reason "data ended" (joe.runtime.stages.settle_book).
    data_ended_sessions: int = Field(5, ge=2, le=250)


class RiskConfig(_Strict):
    risk_per_trade_pct: Decimal = Field(Decimal("0.5"), gt=0, le=5)
    max_positions: int = Field(10, ge=0, le=1000)
    max_positions_per_symbol: int = Field(1, ge=0, le=100)
    max_position_pct: Decimal = Field(Decimal(10), gt=0, le=100)
    daily_loss_limit_pct: Decimal = Field(Decimal(3), gt=0, le=50)
    min_risk_grade: Literal["A", "B", "C", "D"] = "C"
    # The pre-trade RiskGate (joe.safety.risk_gate); README "Safety" explains each default.
    max_order_quantity: Decimal = Field(Decimal(100_000), gt=0, le=10_000_000)
    max_order_notional: Decimal = Field(Decimal(1_000_000), gt=0, le=100_000_000)
    max_symbol_exposure_pct: Decimal = Field(Decimal(10), gt=0, le=1000)
    max_gross_exposure_pct: Decimal = Field(Decimal(150), gt=0, le=1000)
    max_orders_per_second: int = Field(10, ge=1, le=100)
    max_orders_per_minute: int = Field(60, ge=1, le=6000)
    price_band_pct: Decimal = Field(Decimal(5), gt=0, le=50)
    max_quote_age_s: float = Field(5.0, ge=0.1, le=300)
    check_market_hours: bool = True
    max_drawdown_pct: Decimal = Field(Decimal(20), gt=0, le=100)
    correlation_threshold: float = Field(0.9, gt=0, le=1)
    correlation_lookback: int = Field(60, ge=10, le=2000)
    max_cluster_exposure_pct: Decimal = Field(Decimal(10), gt=0, le=1000)


class BreakerConfig(_Strict):
    """Per-broker circuit breaker: any limit reached within `window_s` halts new entries."""

    window_s: float = Field(300.0, ge=10, le=86_400)
    max_consecutive_rejects: int = Field(5, ge=1, le=1000)
    max_timeouts: int = Field(3, ge=1, le=1000)
    max_unknown: int = Field(1, ge=1, le=1000)
    max_disconnects: int = Field(3, ge=1, le=1000)
    max_server_errors: int = Field(5, ge=1, le=1000)
    max_rate_limited: int = Field(10, ge=1, le=1000)


class MarginConfig(_Strict):
    """Margin cushion (excess liquidity / equity) thresholds: warn → REDUCING → HALTED.

    Each at least 0.05 (below it the broker's own liquidation comes first: IBKR liquidates at a cushion
    of 0) and halt <= reduce <= warn."""

    warn_cushion: Decimal = Field(Decimal("0.25"), ge=Decimal("0.05"), le=1)
    reduce_cushion: Decimal = Field(Decimal("0.15"), ge=Decimal("0.05"), le=1)
    halt_cushion: Decimal = Field(Decimal("0.08"), ge=Decimal("0.05"), le=1)

    @model_validator(mode="after")
    def _ordered(self) -> MarginConfig:
        if not self.halt_cushion <= self.reduce_cushion <= self.warn_cushion:
            raise ValueError(
                f"needs halt_cushion <= reduce_cushion <= warn_cushion, got {self.halt_cushion} / "
                f"{self.reduce_cushion} / {self.warn_cushion}"
            )
        return self


class ProtectionsConfig(_Strict):
    """Freqtrade-style protections: each locks a symbol or everything for a while, and says why."""

    stoploss_guard_trades: int = Field(3, ge=0, le=100)
    stoploss_guard_lookback_h: float = Field(72.0, gt=0, le=8760)
    stoploss_guard_lock_h: float = Field(24.0, gt=0, le=8760)
    cooldown_h: float = Field(24.0, ge=0, le=8760)
    max_drawdown_pct: Decimal = Field(Decimal(10), gt=0, le=100)
    max_drawdown_lookback_h: float = Field(168.0, gt=0, le=8760)
    max_drawdown_lock_h: float = Field(48.0, gt=0, le=8760)
    low_profit_trades: int = Field(3, ge=0, le=100)
    low_profit_lookback_h: float = Field(720.0, gt=0, le=8760)
    low_profit_min_pct: Decimal = Field(Decimal(0), ge=-100, le=100)
    low_profit_lock_h: float = Field(168.0, gt=0, le=8760)


class SafetyConfig(_Strict):
    breaker: BreakerConfig = BreakerConfig()
    margin: MarginConfig = MarginConfig()
    protections: ProtectionsConfig = ProtectionsConfig()
    protection_deadline_s: float = Field(30.0, ge=1, le=300)
    flatten_attempts: int = Field(3, ge=1, le=10)


class PipelineConfig(_Strict):
    universe_size: int = Field(500, ge=1)
    history_bars: int = Field(300, ge=60)
    top_n: int = Field(20, ge=1)
    min_price: Decimal = Field(Decimal(1), ge=0)
    min_avg_dollar_volume: Decimal = Field(Decimal(1_000_000), ge=0)
    min_score: float = Field(55.0, ge=0, le=100)
    max_signals: int = Field(10, ge=0)
    atr_stop_multiple: float = Field(2.0, gt=0)
    reward_risk: float = Field(2.0, gt=0)


class AIConfig(_Strict):
    enabled: bool = True
    model: str = "gemini-2.5-flash"
    temperature: float = Field(0.2, ge=0, le=2)
    timeout_s: float = Field(20.0, gt=0, le=300)
    max_output_tokens: int = Field(1024, ge=64, le=65536)
    # Per-trade notes for the trades a run opened (ai_trades.md); 0 writes none.
    trade_notes: int = Field(10, ge=0, le=50)


class ChannelConfig(_Strict):
    enabled: bool = True
    min_level: Literal["info", "trade", "warning", "critical"] = "info"


class AlertsConfig(_Strict):
    dedup_window_s: float = Field(300.0, ge=0)
    max_retries: int = Field(3, ge=0, le=10)
    timeout_s: float = Field(10.0, gt=0)
    telegram: ChannelConfig = ChannelConfig()
    discord: ChannelConfig = ChannelConfig()


class IBKRConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(7497, ge=1, le=65535)
    client_id: int = Field(1, ge=0, le=2_147_483_647)
    connect_timeout_s: float = Field(10.0, gt=0, le=300)
    account: str = ""


class CapitalConfig(_Strict):
    demo: bool = True
    account_id: str = ""
    stale_quote_s: float = Field(5.0, ge=0.1, le=300)
    request_timeout_s: float = Field(10.0, gt=0, le=300)
    # Seconds between pings on each streaming WebSocket: Capital.com closes a socket idle for 10 min.
    stream_ping_s: float = Field(60.0, gt=0, le=540)


class FailoverConfig(_Strict):
    """Broker failover (issue 19): when the run's broker cannot give data, instruments both brokers carry
    take their prices from the other one, through `instruments` (IBKR symbol -> Capital.com epic), and
    only when the two agree within `price_tolerance_pct` (a CFD priced on another basis is never taken
    for the cash instrument). `joe.data.failover` holds the rules."""

    enabled: bool = False
    price_tolerance_pct: Decimal = Field(Decimal(1), gt=0, le=50)
    request_timeout_s: float = Field(60.0, ge=1, le=600)  # a primary request slower than this counts as down
    instruments: dict[str, str] = Field(default_factory=dict)

    @field_validator("instruments")
    @classmethod
    def _instrument_map(cls, v: dict[str, str]) -> dict[str, str]:
        """A one-to-one map of real names: prices are taken across it both ways (`InstrumentMap.other`),
        so an empty name, two symbols on one epic, or an epic that is another mapped IBKR symbol would
        price one instrument with another's quotes."""
        epics: dict[str, str] = {}
        for symbol, epic in v.items():
            for what, name in (("IBKR symbol", symbol), ("Capital.com epic", epic)):
                if not _INSTRUMENT.fullmatch(str(name)):
                    raise ValueError(
                        f"{what} {name!r} (in {symbol!r}: {epic!r}) is not a name: 1-40 letters, digits, "
                        "'.', '_', '-', '/', ' ' (no leading/trailing space)"
                    )
            if epic in epics:
                raise ValueError(
                    f"{epics[epic]!r} and {symbol!r} both map to the epic {epic!r}: one epic each"
                )
            epics[epic] = symbol
            if epic in v and epic != symbol:
                raise ValueError(
                    f"{symbol!r} maps to the epic {epic!r}, which is itself the IBKR symbol mapped to "
                    f"{v[epic]!r}: the two would price each other"
                )
        return v


_INSTRUMENT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._/ -]{0,38}[A-Za-z0-9.])?")


class BrokersConfig(_Strict):
    ibkr: IBKRConfig = IBKRConfig()
    capital: CapitalConfig = CapitalConfig()
    failover: FailoverConfig = FailoverConfig()


class ScheduleConfig(_Strict):
    """Scheduled pipeline runs of the daemon, in the exchange's time (null disables one)."""

    exchange: str = "XNYS"

    @field_validator("exchange")
    @classmethod
    def _known_exchange(cls, v: str) -> str:
        """An exchange exchange-calendars knows (a MIC such as XNYS, or one of Joe's aliases such as NYSE):
        an unknown one is a config error (exit 2 naming daemon.schedule.exchange), not a daemon crash."""
        import exchange_calendars as xcals

        from joe.data.calendars import ALIASES

        mic = ALIASES.get(v.upper(), v.upper())
        if mic not in xcals.get_calendar_names(include_aliases=True):
            raise ValueError(f"unknown exchange {v!r}: use a MIC such as XNYS or XLON, or one of "
                             f"{', '.join(sorted(ALIASES))}")  # fmt: skip
        return v

    pre_open_scan_min: int | None = Field(30, ge=0, le=720)  # minutes before the open
    after_open_min: int | None = Field(15, ge=0, le=720)  # minutes after the open
    pre_close_min: int | None = Field(15, ge=0, le=720)  # minutes before the (possibly early) close


class DaemonConfig(_Strict):
    heartbeat_s: float = Field(5.0, ge=0.5, le=300)
    stale_after_s: float = Field(30.0, ge=1, le=3600)
    backup_exit_grace_s: float = Field(5.0, ge=0, le=300)
    # most quotes the PriceStream hands the PositionMonitor at once (README "Running the daemon")
    quote_batch_max: int = Field(8, ge=1, le=65536)
    settle_s: float = Field(10.0, ge=0, le=600)
    reconcile_min: float = Field(5.0, gt=0, le=1440)  # minutes between reconciliation passes (live)
    margin_check_s: float = Field(60.0, ge=1, le=3600)  # seconds between account/margin reads (live, shadow)
    trail_stops: bool = True  # trail each live position's broker stop at its initial stop distance
    trail_step_pct: float = Field(0.5, gt=0, le=50)  # the trailed stop moves in steps of this % of entry
    schedule: ScheduleConfig = ScheduleConfig()


class ExecutionConfig(_Strict):
    """The whole `config/execution.yaml`."""

    # The schema version this Joe reads: a file written for another one is refused, never half-read.
    version: Literal[1] = 1
    live: LiveConfig = LiveConfig()
    paper: PaperConfig = PaperConfig()
    risk: RiskConfig = RiskConfig()
    safety: SafetyConfig = SafetyConfig()
    pipeline: PipelineConfig = PipelineConfig()
    ai: AIConfig = AIConfig()
    alerts: AlertsConfig = AlertsConfig()
    brokers: BrokersConfig = BrokersConfig()
    daemon: DaemonConfig = DaemonConfig()
