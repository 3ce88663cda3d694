"""`TRADING_MODE` resolution: the one switch, and the gates live must pass.

`resolve_mode` never raises and never returns live unless every gate passes:

1. `trading_mode`  TRADING_MODE (stripped, lower-cased) is "live".
2. `settings`      every environment value parsed (no dropped or contradictory variables).
3. `config`        config/execution.yaml loaded and valid.
4. `live_enabled`  yaml `live.enabled: true`.
5. `broker`        JOE_BROKER is capital or ibkr (sim has no live endpoint).
6. `credentials`   capital: CAPITAL_API_KEY + CAPITAL_IDENTIFIER + CAPITAL_PASSWORD;
                   ibkr: host, port, client id and account (env or yaml).
7. `endpoint`      (`joe.config.endpoints`) IBKR: the account agrees with the port (DU…/DF… paper
                   accounts on 7497/4002, live accounts on 7496/4001; another port only for a paper
                   account). Capital: CAPITAL_DEMO (env wins over yaml) picks the environment and
                   CAPITAL_API_URL / CAPITAL_STREAM_URL must be on its host allow-list (or loopback,
                   demo only).
8. `confirmation`  real money only: JOE_LIVE_CONFIRM, or the interactive `confirm` answer, equals the
                   configured account id (CAPITAL_ACCOUNT_ID / IBKR_ACCOUNT, env or yaml).
9. `track_record`  real money only: >= live.min_paper_days days and >= live.min_paper_trades closed
                   paper trades (never less than the roadmap's 30 / 50: a lower yaml value is raised
                   to the floor), or `live.track_record_override` enabled with a reason of >= 10
                   chars (audited as `mode.override`).
10. `demo_record`  real money only: the demo-live record of the same broker (`joe.config.graduation`:
                   >= live.min_demo_days clean days, never less than the floor of 10: a lower yaml
                   value is raised to it; no UNKNOWN order unresolved), or
                   `live.demo_record_override` with a reason (audited as `mode.override`, gate
                   demo_record). Issue 19.

Shadow (live prices, no live orders) needs gates 2, 3, 5, 6 and 7. Where each setting came from
(env, .env, yaml, default: `joe.config.provenance`) is part of the decision and its audit record.
Anything not granted resolves to paper; a refused live/shadow request or an unknown value is
logged as a WARNING and audited as `mode.fallback`. Every decision is audited as `mode.resolved` (no secrets).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from joe.config.provenance import dotenv_selected, mode_provenance

if TYPE_CHECKING:  # keep this module import-light: the store imports TrackRecord from here
    from joe.config.graduation import DemoRecord
    from joe.config.loader import ConfigProblem
    from joe.config.schema import ExecutionConfig
    from joe.config.settings import Settings
    from joe.core.events import AuditSink

from joe.config.endpoints import IBKR_LIVE_PORTS, IBKR_PAPER_PORTS, capital_endpoint, ibkr_endpoint
from joe.config.settings import clash_problem

__all__ = ["IBKR_LIVE_PORTS", "IBKR_PAPER_PORTS"]
MIN_OVERRIDE_REASON = 10
# The roadmap's floor for the paper track record (DESIGN.md "Mode gates for live"): a yaml value
# below it is raised to it; only the audited `live.track_record_override` skips the gate.
FLOOR_PAPER_DAYS = 30
FLOOR_PAPER_TRADES = 50
# The same for the demo-live record (issue 19; review r1119 finding 7): `live.min_demo_days` below it is
# raised to it; only the audited `live.demo_record_override` skips the gate.
FLOOR_DEMO_DAYS = 10


def demo_days_needed(config: ExecutionConfig) -> int:
    """The clean demo-live days real money needs: `live.min_demo_days`, never below `FLOOR_DEMO_DAYS`."""
    return max(int(config.live.min_demo_days), FLOOR_DEMO_DAYS)


class TradingMode(StrEnum):
    """The process's one mode for its whole life."""

    PAPER = "paper"
    LIVE = "live"
    SHADOW = "shadow"


@dataclass(frozen=True, slots=True)
class TrackRecord:
    """The paper track record, as counted by the store (`store.paper_track_record()`)."""

    paper_days: int
    closed_paper_trades: int


# The gates `TRADING_MODE=shadow` needs (live needs every gate): shadow transmits nothing, so the switch
# itself, `live.enabled`, the confirmation and the records are live-only.
SHADOW_GATES = ("settings", "config", "broker", "credentials", "endpoint")


@dataclass(frozen=True, slots=True)
class Gate:
    """One live gate: its name, whether it passed, and why. `needed` is False for a gate the requested
    mode does not ask for (a live-only gate in shadow): shown as n/a, never as a failure."""

    name: str
    passed: bool
    detail: str
    needed: bool = True


@dataclass(slots=True)
class ModeDecision:
    """The resolved mode and everything that led to it (safe to print, log and audit)."""

    requested: str
    mode: TradingMode
    gates: list[Gate] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    real_money: bool = False
    broker: str = "sim"
    account_id: str = ""
    override_used: bool = False
    overrides: list[str] = field(default_factory=list)  # gates passed only by an override
    provenance: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    simulator: bool = False
    # TRADING_MODE itself was contradictory (set twice in different letter case to different values):
    # paper, and said as loudly as a refused live request (principle 2).
    contradictory: bool = False

    @property
    def endpoint_label(self) -> str:
        """What the configured broker endpoint is, in words (`joe mode`'s first line)."""
        if self.broker == "sim":
            return "none (sim broker)"
        if self.simulator:
            return "a local simulator"
        if self.real_money:
            return "a real-money account"
        endpoint = next((g for g in self.gates if g.name == "endpoint"), None)
        if endpoint is not None and not endpoint.passed:
            return "not verified (see the endpoint gate)"
        return "a paper/demo account"

    @property
    def fell_back(self) -> bool:
        """True when a mode other than the resolved one was asked for (shout about it).

        Unset/empty TRADING_MODE is the documented default (paper), not a fallback; a contradictory
        one (`TRADING_MODE=paper` beside `trading_mode=live`) is, whatever value won.
        """
        asked = normalise(self.requested)
        return self.contradictory or (asked != "" and asked != self.mode.value)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (no secrets are ever held here)."""
        out = asdict(self)
        out["mode"] = self.mode.value
        out["fell_back"] = self.fell_back
        return out


def normalise(raw: str | None) -> str:
    """TRADING_MODE as compared: stripped and lower-cased."""
    return (raw or "").strip().lower()


def mask_account(account: str) -> str:
    """Show enough of an account id to recognise it, not enough to copy it into a prompt."""
    if len(account) <= 4:
        return "*" * len(account)
    return account[:2] + "*" * (len(account) - 4) + account[-2:]


def _logger() -> Any:
    try:
        from joe.core.logging import get_logger  # type: ignore[import-not-found,unused-ignore]

        return get_logger("joe.config.mode")
    except Exception:
        return logging.getLogger("joe.config.mode")


def _log(level: str, event: str, **fields: Any) -> None:
    try:
        log = _logger()
        if isinstance(log, logging.Logger):
            log.log(getattr(logging, level.upper()), "%s %s", event, fields)
        else:  # structlog-style: key/value fields
            getattr(log, level)(event, **fields)
    except Exception:
        pass  # logging must never decide the mode


class _Ctx:
    """Effective broker values (env wins over yaml) shared by the gates."""

    def __init__(self, settings: Settings, config: ExecutionConfig) -> None:
        self.broker = settings.broker
        ib, cap = config.brokers.ibkr, config.brokers.capital
        self.ibkr_host = settings.ibkr_host or ib.host
        self.ibkr_port = settings.ibkr_port if settings.ibkr_port is not None else ib.port
        self.ibkr_client_id = settings.ibkr_client_id if settings.ibkr_client_id is not None else ib.client_id
        self.capital_demo = settings.capital_demo if settings.capital_demo is not None else cap.demo
        if self.broker == "ibkr":
            self.account = (settings.ibkr_account or ib.account or "").strip()
        elif self.broker == "capital":
            self.account = (settings.capital_account_id or cap.account_id or "").strip()
        else:
            self.account = ""


def _broker_origin(settings: Settings) -> str:
    """How the broker was chosen, as the user wrote it: `--broker` (the command line) or JOE_BROKER."""
    sources = getattr(settings, "sources", None) or {}
    return "--broker" if sources.get("JOE_BROKER") == "--broker" else "JOE_BROKER"


def _secret_set(value: Any) -> bool:
    return value is not None and bool(value.get_secret_value().strip())


def _credentials(s: Settings, c: _Ctx) -> Gate:
    if c.broker == "capital":
        missing = [
            n
            for n, ok in (
                ("CAPITAL_API_KEY", _secret_set(s.capital_api_key)),
                ("CAPITAL_IDENTIFIER", bool((s.capital_identifier or "").strip())),
                ("CAPITAL_PASSWORD", _secret_set(s.capital_password)),
            )
            if not ok
        ]
    elif c.broker == "ibkr":
        missing = [
            n
            for n, ok in (
                ("IBKR_HOST", bool(c.ibkr_host.strip())),
                ("IBKR_PORT", bool(c.ibkr_port)),
                ("IBKR_CLIENT_ID", c.ibkr_client_id is not None),
                ("IBKR_ACCOUNT", bool(c.account)),
            )
            if not ok
        ]
    else:
        return Gate("credentials", False, "sim broker has no live credentials")
    if missing:
        return Gate("credentials", False, "missing: " + ", ".join(missing))
    return Gate("credentials", True, f"{c.broker} credentials present")


def _endpoint(s: Settings, c: _Ctx) -> tuple[Gate, bool, bool]:
    """The endpoint gate, whether the endpoint is real money, and whether it is a local simulator."""
    if c.broker == "ibkr":
        v = ibkr_endpoint(c.ibkr_port, c.account)
    elif c.broker == "capital":
        v = capital_endpoint(bool(c.capital_demo), s.capital_api_url, s.capital_stream_url)
    else:
        return Gate("endpoint", False, "sim broker has no live endpoint"), False, False
    return Gate("endpoint", v.ok, v.detail), v.ok and v.real_money, v.simulator


def _confirmation(s: Settings, c: _Ctx, real_money: bool, confirm: Callable[[str], str] | None) -> Gate:
    if not real_money:
        return Gate("confirmation", True, "not required (paper/demo account)")
    if not c.account:
        return Gate("confirmation", False, "no account id configured to confirm against")
    given = (s.live_confirm or "").strip()
    if given:
        if given == c.account:
            return Gate("confirmation", True, "JOE_LIVE_CONFIRM matches the configured account")
        return Gate("confirmation", False, "JOE_LIVE_CONFIRM does not match the configured account")
    if confirm is None:
        return Gate(
            "confirmation",
            False,
            "not confirmed: set JOE_LIVE_CONFIRM=<account id> or start interactively and type the account id",
        )
    try:
        answer = confirm(
            f"REAL MONEY on {c.broker} account {mask_account(c.account)}: type the account id to trade live"
        )
    except (Exception, KeyboardInterrupt):
        return Gate("confirmation", False, "interactive confirmation aborted")
    if isinstance(answer, str) and answer.strip() == c.account:
        return Gate("confirmation", True, "confirmed interactively")
    return Gate("confirmation", False, "interactive confirmation did not match the account id")


def _track_record(config: ExecutionConfig, real_money: bool, record: TrackRecord | None) -> tuple[Gate, bool]:
    """The track-record gate and whether it passed only thanks to the override."""
    if not real_money:
        return Gate("track_record", True, "not required (paper/demo account)"), False
    live = config.live
    min_days = max(int(live.min_paper_days), FLOOR_PAPER_DAYS)
    min_trades = max(int(live.min_paper_trades), FLOOR_PAPER_TRADES)
    need = f"needs >= {min_days} days and >= {min_trades} closed paper trades"
    if (min_days, min_trades) != (live.min_paper_days, live.min_paper_trades):
        need += (
            f" (yaml live.min_paper_days={live.min_paper_days} / "
            f"live.min_paper_trades={live.min_paper_trades} is below the floor of "
            f"{FLOOR_PAPER_DAYS} / {FLOOR_PAPER_TRADES}: the floor applies; only "
            "live.track_record_override with a reason skips it)"
        )
    if record is None:
        have, ok = "no store: paper track record unavailable", False
    else:
        days, trades = int(record.paper_days), int(record.closed_paper_trades)
        ok = days >= min_days and trades >= min_trades
        have = f"{days} on-the-day days, {trades} closed paper trades"
    if ok:
        return Gate("track_record", True, f"{have} ({need.removeprefix('needs ')})"), False
    override = live.track_record_override
    if override.enabled and len(override.reason.strip()) >= MIN_OVERRIDE_REASON:
        return Gate("track_record", True, f"OVERRIDDEN ({have}): {override.reason.strip()}"), True
    if override.enabled:
        return Gate(
            "track_record",
            False,
            f"{have}; override enabled but its reason is missing or "
            f"shorter than {MIN_OVERRIDE_REASON} characters",
        ), False
    return Gate("track_record", False, f"{have}; {need}"), False


def _demo_record(config: ExecutionConfig, real_money: bool, record: DemoRecord | None) -> tuple[Gate, bool]:
    """The demo-live record gate (issue 19) and whether it passed only thanks to the override."""
    if not real_money:
        return Gate("demo_record", True, "not required (paper/demo account)"), False
    min_days = demo_days_needed(config)
    floor = ""
    if min_days != config.live.min_demo_days:
        floor = (
            f" (yaml live.min_demo_days={config.live.min_demo_days} is below the floor of {FLOOR_DEMO_DAYS}: "
            "the floor applies; only live.demo_record_override with a reason skips it)"
        )
    if record is None:
        ok, have, missing = False, "no store: demo-live record unavailable", [f">= {min_days} clean days"]
    else:
        ok, have, missing = record.verdict(min_days)
    if ok:
        return Gate("demo_record", True, f"{have} (needs >= {min_days}){floor}"), False
    override = config.live.demo_record_override
    if override.enabled and len(override.reason.strip()) >= MIN_OVERRIDE_REASON:
        return Gate("demo_record", True, f"OVERRIDDEN ({have}): {override.reason.strip()}"), True
    if override.enabled:
        return Gate(
            "demo_record",
            False,
            f"{have}; override enabled but its reason is missing or "
            f"shorter than {MIN_OVERRIDE_REASON} characters",
        ), False
    return Gate("demo_record", False, f"{have}; missing: " + "; ".join(missing) + floor), False


def _evaluate(
    settings: Settings,
    config: ExecutionConfig,
    track_record: TrackRecord | None,
    confirm: Callable[[str], str] | None,
    config_problems: Sequence[ConfigProblem | str],
    demo_record: DemoRecord | None = None,
) -> ModeDecision:
    requested = normalise(settings.trading_mode)
    ctx = _Ctx(settings, config)
    gates: list[Gate] = []
    reasons: list[str] = []
    gates.append(
        Gate("trading_mode", requested == "live", f"TRADING_MODE={settings.trading_mode.strip()[:40]!r}")
    )
    gates.append(
        Gate(
            "settings", not settings.problems, "; ".join(settings.problems) or "all environment values valid"
        )
    )
    gates.append(
        Gate(
            "config",
            not config_problems,
            "; ".join(str(p) for p in config_problems) or "execution.yaml valid",
        )
    )
    gates.append(
        Gate("live_enabled", config.live.enabled, f"live.enabled: {str(config.live.enabled).lower()}")
    )
    gates.append(
        Gate(
            "broker",
            ctx.broker in ("capital", "ibkr"),
            f"{_broker_origin(settings)}={ctx.broker}"
            + ("" if ctx.broker != "sim" else " (sim cannot trade live)"),
        )
    )
    gates.append(_credentials(settings, ctx))
    endpoint, real_money, simulator = _endpoint(settings, ctx)
    # Confirmation and track record are asked of anything that is, or might be, real money: an
    # endpoint that failed its own gate is treated as real money for them (fail closed).
    maybe_real = real_money or (not endpoint.passed and ctx.broker != "sim")
    gates.append(endpoint)
    track, override_used = _track_record(config, maybe_real, track_record)
    demo, demo_override = _demo_record(config, maybe_real, demo_record)
    # Only ask a human when everything else already allows live: never prompt for a doomed request.
    others_ok = requested == "live" and track.passed and demo.passed and all(g.passed for g in gates)
    gates.append(_confirmation(settings, ctx, maybe_real, confirm if others_ok else None))
    gates.append(track)
    gates.append(demo)
    by_name = {g.name: g for g in gates}

    def failed(names: Sequence[str]) -> list[str]:
        return [f"{n}: {by_name[n].detail}" for n in names if not by_name[n].passed]

    if requested == "live":
        reasons = failed([g.name for g in gates])
        mode = TradingMode.PAPER if reasons else TradingMode.LIVE
    elif requested == "shadow":
        reasons = failed(SHADOW_GATES)
        mode = TradingMode.PAPER if reasons else TradingMode.SHADOW
        gates = [g if g.name in SHADOW_GATES else replace(g, needed=False) for g in gates]
    elif requested == "paper":
        mode = TradingMode.PAPER
    elif requested == "":
        mode, reasons = TradingMode.PAPER, ["TRADING_MODE unset or empty: paper by default"]
    else:
        mode = TradingMode.PAPER
        reasons = [f"TRADING_MODE={settings.trading_mode.strip()[:40]!r} is not one of paper, live, shadow"]
    if mode is TradingMode.PAPER and requested in ("live", "shadow"):
        reasons.insert(0, f"{requested} requested but refused: falling back to paper")
    # A live or shadow request already fails the settings gate on it; a paper or empty one must not
    # hide that another spelling asked for something else (hostile review 2026-12-02).
    contradictory = clash_problem("TRADING_MODE") in settings.problems
    if contradictory and requested not in ("live", "shadow"):
        reasons = [f"{clash_problem('TRADING_MODE')}: contradictory, so paper"]
    provenance = mode_provenance(settings, config, ctx.broker)
    warnings: list[str] = []
    if simulator:
        warnings.append(f"{ctx.broker}: {endpoint.detail}")
    from_dotenv = dotenv_selected(provenance, ("TRADING_MODE", "JOE_BROKER", "IBKR_PORT", "CAPITAL_DEMO"))
    if from_dotenv and requested in ("live", "shadow"):
        where = ", ".join(f"{n} from {provenance[n]}" for n in from_dotenv)
        money = " with REAL MONEY" if real_money else ""
        warnings.append(f"a .env file selects {requested.upper()}{money}: {where}")
    return ModeDecision(
        requested=settings.trading_mode,
        mode=mode,
        gates=gates,
        reasons=reasons,
        real_money=real_money if ctx.broker != "sim" else False,
        broker=ctx.broker,
        account_id=ctx.account,
        override_used=(override_used or demo_override) and mode is TradingMode.LIVE,
        contradictory=contradictory,
        overrides=[n for n, used in (("track_record", override_used), ("demo_record", demo_override)) if used]
        if mode is TradingMode.LIVE
        else [],
        provenance=provenance,
        warnings=warnings,
        simulator=simulator,
    )


def _redact(text: str, settings: Any) -> str:
    for name in (
        "capital_api_key",
        "capital_password",
        "gemini_api_key",
        "telegram_bot_token",
        "discord_webhook_url",
    ):
        try:
            secret = getattr(settings, name).get_secret_value()
        except Exception:
            continue
        if secret:
            text = text.replace(secret, "***")
    return text


def _audit_payload(d: ModeDecision) -> dict[str, Any]:
    return {
        "requested": d.requested[:40],
        "mode": d.mode.value,
        "real_money": d.real_money,
        "simulator": d.simulator,
        "broker": d.broker,
        "account_id": d.account_id,
        "gates": [asdict(g) for g in d.gates],
        "reasons": list(d.reasons),
        "provenance": dict(d.provenance),
        "warnings": list(d.warnings),
    }


def resolve_mode(
    settings: Settings,
    config: ExecutionConfig,
    track_record: TrackRecord | None,
    *,
    confirm: Callable[[str], str] | None = None,
    audit: AuditSink | None = None,
    config_problems: Sequence[ConfigProblem | str] = (),
    demo_record: DemoRecord | None = None,
) -> ModeDecision:
    """Decide the process's mode. Never raises; anything unexpected resolves to paper.

    `demo_record` is the broker's demo-live record (`joe.safety.demo_record.read_demo_record`);
    None fails the real-money `demo_record` gate (unless overridden)."""
    requested_raw = str(getattr(settings, "trading_mode", "") or "")
    try:
        decision = _evaluate(settings, config, track_record, confirm, config_problems, demo_record)
    except Exception as exc:
        detail = _redact(f"{type(exc).__name__}: {exc}", settings)[:200]
        decision = ModeDecision(
            requested=requested_raw,
            mode=TradingMode.PAPER,
            gates=[Gate("internal", False, detail)],
            reasons=[f"error while resolving the mode ({detail}): paper"],
        )
    if audit is not None:
        try:
            for gate in decision.overrides:
                live = config.live
                over = live.track_record_override if gate == "track_record" else live.demo_record_override
                audit.record(
                    "mode.override",
                    {
                        "gate": gate,
                        "reason": over.reason.strip(),
                        "broker": decision.broker,
                        "account_id": decision.account_id,
                    },
                )
            audit.record("mode.resolved", _audit_payload(decision))
        except Exception as exc:
            if decision.mode is not TradingMode.PAPER:  # fail closed: no unaudited live/shadow
                decision.reasons.append(f"audit failed ({type(exc).__name__}): falling back to paper")
                decision.mode = TradingMode.PAPER
                decision.override_used = False
                decision.overrides = []
    if decision.fell_back:
        _log(
            "warning",
            "mode.fallback",
            requested=decision.requested[:40],
            mode=decision.mode.value,
            reasons=decision.reasons,
        )
        if audit is not None:
            try:
                audit.record("mode.fallback", _audit_payload(decision))
            except Exception:
                pass  # already paper; nothing safer to fall back to
    else:
        _log(
            "info",
            "mode.resolved",
            requested=decision.requested[:40],
            mode=decision.mode.value,
            reasons=decision.reasons,
            real_money=decision.real_money,
        )
    return decision
