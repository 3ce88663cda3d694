"""Default to paper: over random env vars (split between the process environment and a `.env`
file), yaml contents, accounts, ports, URLs and track records, the mode is live only when an
independent oracle says every gate passes, paper otherwise (or shadow when allowed), real money
only on a real-money endpoint, and `resolve_mode` never raises."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from joe.config.graduation import UNEXPLAINED, DemoRecord, Incident
from joe.config.loader import load_execution_config_tolerant
from joe.config.mode import TrackRecord, TradingMode, resolve_mode
from joe.config.settings import load_settings
from joe.core.events import NullAudit

LIVE_URL = "https://api-capital.backend-capital.com"
DEMO_URL = "https://demo-api-capital.backend-capital.com"
# Each URL with what an independent reading of the allow-list makes of it.
API_URLS = {
    LIVE_URL: "live",
    DEMO_URL: "demo",
    "https://API-Capital.backend-capital.com/api/v1": "live",
    "http://127.0.0.1:8080": "loop",
    "http://localhost:8700/api/v1": "loop",
    "https://api-capital.backend-capital.com./": "bad",  # trailing dot (issue 10)
    "https://demo-api-capital.backend-capital.com.": "bad",
    "http://api-capital.backend-capital.com": "bad",  # not https
    "https://me@demo-api-capital.backend-capital.com": "bad",  # userinfo
    "https://demo-api-capital.backend-capital.com.evil.example": "bad",
    "https://evil.example/api-capital.backend-capital.com": "bad",
    "https://demo-api-capital.backend-capital.com:99999": "bad",  # port out of range
}
STREAM_URLS = {
    "wss://api-streaming-capital.backend-capital.com/connect": "both",
    "wss://demo-api-streaming-capital.backend-capital.com/connect": "demo",
    "ws://127.0.0.1:8701/connect": "loop",
    "wss://api-streaming-capital.backend-capital.com./connect": "bad",
    "https://api-streaming-capital.backend-capital.com/connect": "bad",
}
TRUE = {"1", "on", "t", "true", "y", "yes"}
FALSE = {"0", "off", "f", "false", "n", "no"}
GOOD_REASON = "approved by the risk committee on 2024-05-01"

opt = st.none() | st.just("")
env_strategy = st.fixed_dictionaries(
    {
        "TRADING_MODE": opt
        | st.sampled_from(
            [
                "live",
                "LIVE",
                " Live ",
                "live\n",
                "paper",
                "Paper",
                "shadow",
                " SHADOW",
                "garbage",
                "li ve",
                "paper,live",
                "1",
                "  ",
            ]
        )
        | st.text(max_size=8),
        "trading_mode": st.none() | st.sampled_from(["live", "paper", "shadow"]),  # lower-case duplicate
        "JOE_BROKER": opt | st.sampled_from(["sim", "capital", "ibkr", "IBKR", " capital ", "foo"]),
        "CAPITAL_API_KEY": opt | st.sampled_from(["  ", "k3y"]),
        "CAPITAL_IDENTIFIER": opt | st.sampled_from(["me@example.com"]),
        "CAPITAL_PASSWORD": opt | st.sampled_from(["pw", " "]),
        "CAPITAL_DEMO": opt
        | st.sampled_from(["true", "false", "TRUE", "False", "1", "0", "yes", "off", "maybe"]),
        "CAPITAL_API_URL": st.none() | st.sampled_from(sorted(API_URLS)),
        "CAPITAL_STREAM_URL": st.none() | st.sampled_from(sorted(STREAM_URLS)),
        "CAPITAL_ACCOUNT_ID": opt | st.sampled_from(["ACC123"]),
        "IBKR_HOST": opt | st.sampled_from(["127.0.0.1"]),
        "IBKR_PORT": opt
        | st.sampled_from(["7496", "7497", "4001", "4002", "1234", "17497", "abc", "0", "70000"]),
        "IBKR_CLIENT_ID": opt | st.sampled_from(["7", "-1", "x"]),
        "IBKR_ACCOUNT": opt | st.sampled_from(["DU999", "U7654321", "DF12345", "du777"]),
        "JOE_LIVE_CONFIRM": opt | st.sampled_from(["ACC123", "DU999", " DU999 ", "U7654321", "wrong"]),
    }
)


# Variables the test may move from the environment into .env (the lower-case duplicate stays put).
DOTENV_KEYS = [
    "TRADING_MODE", "JOE_BROKER", "CAPITAL_API_KEY", "CAPITAL_IDENTIFIER", "CAPITAL_PASSWORD",
    "CAPITAL_DEMO", "CAPITAL_API_URL", "CAPITAL_STREAM_URL", "CAPITAL_ACCOUNT_ID", "IBKR_HOST",
    "IBKR_PORT", "IBKR_CLIENT_ID", "IBKR_ACCOUNT", "JOE_LIVE_CONFIRM",
]  # fmt: skip


def _dotenv_safe(value: str) -> bool:
    """A value a single-quoted .env line carries unchanged."""
    return value.isprintable() and "'" not in value and "\\" not in value


@st.composite
def near_passing_env(draw: st.DrawFn) -> dict[str, str | None]:
    """A configuration where every gate passes, then 0-2 variables replaced by random values.

    Pure random combinations almost never pass every gate; this keeps live, shadow and
    real-money outcomes well represented so the oracle is tested on both sides of each gate.
    """
    wide = draw(env_strategy)
    real = draw(st.sampled_from([True, True, False]))
    env: dict[str, str | None] = dict.fromkeys(wide)
    env["TRADING_MODE"] = draw(st.sampled_from(["live", "live", "shadow", "LIVE "]))
    if draw(st.booleans()):
        account = "ACC123"
        env.update(
            JOE_BROKER="capital",
            CAPITAL_API_KEY="k3y",
            CAPITAL_IDENTIFIER="me@example.com",
            CAPITAL_PASSWORD="pw",
            CAPITAL_DEMO="false" if real else "true",
            CAPITAL_ACCOUNT_ID=account,
            CAPITAL_API_URL=draw(st.sampled_from([None, LIVE_URL if real else DEMO_URL, LIVE_URL, DEMO_URL])),
        )
    else:
        account = "U7654321" if real else draw(st.sampled_from(["DU999", "DF12345"]))
        env.update(
            JOE_BROKER="ibkr",
            IBKR_PORT=draw(st.sampled_from(["7496", "4001"] if real else ["7497", "4002", "17497"])),
            IBKR_ACCOUNT=account,
        )
    env["JOE_LIVE_CONFIRM"] = draw(st.sampled_from([account, account, f" {account} ", "wrong", None]))
    for key in draw(st.sets(st.sampled_from(sorted(wide)), max_size=2)):
        env[key] = wide[key]
    return env


passing_yaml = st.fixed_dictionaries(
    {
        "live": st.fixed_dictionaries(
            {
                "enabled": st.just(True) | st.booleans(),
                "min_paper_days": st.integers(0, 40),
                "min_paper_trades": st.integers(0, 60),
                "track_record_override": st.fixed_dictionaries(
                    {"enabled": st.booleans(), "reason": st.sampled_from(["", "short", GOOD_REASON])}
                ),
            },
            optional={
                "min_demo_days": st.integers(1, 14),
                "demo_record_override": st.fixed_dictionaries(
                    {"enabled": st.booleans(), "reason": st.sampled_from(["", "short", GOOD_REASON])}
                ),
            },
        ),
        "brokers": st.fixed_dictionaries(
            {
                "capital": st.fixed_dictionaries({"demo": st.booleans(), "account_id": st.just("")}),
                "ibkr": st.fixed_dictionaries(
                    {"port": st.sampled_from([7497, 5555]), "account": st.just("")}
                ),
            }
        ),
    }
)

yaml_strategy = st.one_of(
    st.just("MISSING"),
    st.sampled_from(
        [
            "live: [unclosed\n",
            "live:\n  enabled: maybe\n",
            "risk:\n  max_positions: ten\n",
            "live:\n  enabled: true\n  enabled: true\n",
            "live:\n  enabled: true\n  surprise: 1\n",
        ]
    ),
    st.fixed_dictionaries(
        {
            "live": st.fixed_dictionaries(
                {
                    "enabled": st.booleans(),
                    "min_paper_days": st.integers(0, 40),
                    "min_paper_trades": st.integers(0, 60),
                    "track_record_override": st.fixed_dictionaries(
                        {
                            "enabled": st.booleans(),
                            "reason": st.sampled_from(["", "short", "  padded  ", GOOD_REASON]),
                        }
                    ),
                }
            ),
            "brokers": st.fixed_dictionaries(
                {
                    "capital": st.fixed_dictionaries(
                        {"demo": st.booleans(), "account_id": st.sampled_from(["", "ACC123"])}
                    ),
                    "ibkr": st.fixed_dictionaries(
                        {
                            "port": st.sampled_from([7496, 7497, 4001, 4002, 5555]),
                            "account": st.sampled_from(["", "DU999", "U555"]),
                        }
                    ),
                }
            ),
        }
    ),
)

record_strategy = st.one_of(
    st.none(),
    st.builds(TrackRecord, st.integers(0, 60), st.integers(0, 100)),
    st.builds(TrackRecord, st.integers(30, 60), st.integers(50, 100)),
)
confirm_strategy = st.sampled_from([None, "ACC123", "DU999", "nope", "RAISE"])


@st.composite
def demo_strategy(draw: st.DrawFn) -> DemoRecord | None:
    """A demo-live record: N days from 2026-11-01, maybe an incident on one, maybe an UNKNOWN order."""
    if draw(st.integers(0, 5)) == 0:
        return None
    n = draw(st.integers(0, 16))
    days = tuple(date(2026, 11, 1) + timedelta(days=i) for i in range(n))
    incidents: tuple[Incident, ...] = ()
    if n and draw(st.booleans()):
        incidents = (Incident(days[draw(st.integers(0, n - 1))], UNEXPLAINED, "x"),)
    unknown = ("cid-1",) if draw(st.integers(0, 4)) == 0 else ()
    problem = "audit chain BROKEN" if draw(st.integers(0, 9)) == 0 else None
    return DemoRecord("any", days, incidents, unknown, problem=problem)


def _blank(v: str | None) -> bool:
    return v is None or not v.strip()


def _capital_endpoint(demo: bool, api: str | None, stream: str | None) -> bool:
    kinds = [API_URLS[api]] if api else []
    kinds += [STREAM_URLS[stream]] if stream else []
    if "bad" in kinds:
        return False
    loops = [k == "loop" for k in kinds]
    if any(loops) and not all(loops):
        return False
    allowed = {"demo", "loop", "both"} if demo else {"live", "both"}
    return all(k in allowed for k in kinds)


def oracle(
    env: dict[str, str], doc: Any, record: TrackRecord | None, answer: str | None, drec: DemoRecord | None
) -> tuple[str, bool]:
    """An independent statement of the rules (deliberately written differently from joe.config.mode)."""
    bad_env = False
    tm = [env[k] for k in ("TRADING_MODE", "trading_mode") if k in env]
    if len(set(tm)) > 1:
        bad_env = True
    requested = (env.get("TRADING_MODE", env.get("trading_mode", "")) or "").strip().lower()

    broker = (env.get("JOE_BROKER") or "").strip().lower() or "sim"
    if broker not in ("sim", "capital", "ibkr"):
        bad_env, broker = True, "sim"
    demo_env: bool | None = None
    if not _blank(env.get("CAPITAL_DEMO")):
        raw = env["CAPITAL_DEMO"].lower()
        demo_env = True if raw in TRUE else False if raw in FALSE else None
        if demo_env is None:
            bad_env, demo_env = True, True
    port_env: int | None = None
    if not _blank(env.get("IBKR_PORT")):
        raw = env["IBKR_PORT"]
        if raw.isdigit() and 1 <= int(raw) <= 65535:
            port_env = int(raw)
        else:
            bad_env = True
    if not _blank(env.get("IBKR_CLIENT_ID")) and not env["IBKR_CLIENT_ID"].isdigit():
        bad_env = True

    config_ok = isinstance(doc, dict)
    cfg = (
        doc
        if config_ok
        else {
            "live": {
                "enabled": False,
                "min_paper_days": 30,
                "min_paper_trades": 50,
                "track_record_override": {"enabled": False, "reason": ""},
            },
            "brokers": {"capital": {"demo": True, "account_id": ""}, "ibkr": {"port": 7497, "account": ""}},
        }
    )
    cfg_: dict[str, Any] = cfg
    live, cap, ib = cfg_["live"], cfg_["brokers"]["capital"], cfg_["brokers"]["ibkr"]

    def val(name: str) -> str:
        return "" if _blank(env.get(name)) else env[name].strip()

    if broker == "capital":
        creds = all(val(n) for n in ("CAPITAL_API_KEY", "CAPITAL_IDENTIFIER", "CAPITAL_PASSWORD"))
        account = val("CAPITAL_ACCOUNT_ID") or cap["account_id"]
        demo = cap["demo"] if demo_env is None else demo_env
        endpoint_ok = _capital_endpoint(demo, val("CAPITAL_API_URL"), val("CAPITAL_STREAM_URL"))
        real = endpoint_ok and not demo
    elif broker == "ibkr":
        account = val("IBKR_ACCOUNT") or ib["account"]
        creds = bool(account)
        port = ib["port"] if port_env is None else port_env
        paper_account = account[:2].upper() in ("DU", "DF")
        if port in (7496, 4001):
            endpoint_ok = real = not paper_account
        elif port in (7497, 4002):
            endpoint_ok, real = paper_account or not account, False
        else:  # a simulator: only for a paper account
            endpoint_ok, real = paper_account, False
    else:
        creds = endpoint_ok = real = False
        account = ""

    confirmed = True
    strict = real or not endpoint_ok  # a failed endpoint is treated as maybe real money
    if strict:
        given = val("JOE_LIVE_CONFIRM")
        confirmed = bool(account) and (
            given == account if given else answer is not None and answer == account
        )
    tracked = True
    if strict:
        enough = (  # the roadmap's 30 days / 50 trades are a floor the yaml cannot lower
            record is not None
            and record.paper_days >= max(live["min_paper_days"], 30)
            and record.closed_paper_trades >= max(live["min_paper_trades"], 50)
        )
        ov = live["track_record_override"]
        tracked = enough or (ov["enabled"] and len(ov["reason"].strip()) >= 10)
    demoed = True
    if strict:  # issue 19: min_demo_days clean days after the last incident, nothing UNKNOWN, readable
        need = max(int(live.get("min_demo_days", 10)), 10)  # the floor the yaml cannot lower
        clean = 0
        if drec is not None and drec.problem is None:
            last = max((i.day for i in drec.incidents), default=None)
            clean = sum(1 for d in drec.days if last is None or d > last)
        enough = drec is not None and drec.problem is None and clean >= need and not drec.unresolved_unknown
        dov = live.get("demo_record_override", {"enabled": False, "reason": ""})
        demoed = enough or (dov["enabled"] and len(dov["reason"].strip()) >= 10)

    base = not bad_env and config_ok and broker != "sim" and creds and endpoint_ok
    if requested == "live" and base and live["enabled"] and confirmed and tracked and demoed:
        return "live", real
    if requested == "shadow" and base:
        return "shadow", real
    return "paper", real


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(env_strategy, near_passing_env(), near_passing_env()),
    st.one_of(yaml_strategy, passing_yaml, passing_yaml),
    record_strategy,
    confirm_strategy,
    st.sets(st.sampled_from(DOTENV_KEYS)),
    demo_strategy(),
)
def test_mode_is_live_only_when_every_gate_passes(
    env_spec: dict[str, str | None],
    yaml_spec: Any,
    record: TrackRecord | None,
    answer: str | None,
    in_dotenv: set[str],
    demo: DemoRecord | None,
) -> None:
    env = {k: v for k, v in env_spec.items() if v is not None}
    # Some variables come from a .env file instead of the environment (the same values: the oracle
    # reads the merged view; the lower-case duplicate stays in the environment).
    in_dotenv = {k for k in in_dotenv if k in env and _dotenv_safe(env[k])}
    process = {k: v for k, v in env.items() if k not in in_dotenv}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "execution.yaml"
        if yaml_spec != "MISSING":
            path.write_text(yaml_spec if isinstance(yaml_spec, str) else yaml.safe_dump(yaml_spec))
        config, problems = load_execution_config_tolerant(path)
        dotenv = Path(tmp) / ".env"
        dotenv.write_text("".join(f"{k}='{env[k]}'\n" for k in sorted(in_dotenv)))
        settings_ = load_settings(process, dotenv)

    def confirm(prompt: str) -> str:
        if answer == "RAISE":
            raise EOFError("no terminal")
        assert answer is not None
        return answer

    audit = NullAudit()
    decision = resolve_mode(
        settings_,
        config,
        record,
        confirm=None if answer is None else confirm,
        audit=audit,
        config_problems=problems,
        demo_record=demo,
    )

    doc = yaml_spec if isinstance(yaml_spec, dict) else None
    expected, real = oracle(env, doc, record, None if answer == "RAISE" else answer, demo)
    event(f"mode={expected} real_money={decision.real_money}")
    assert decision.mode.value == expected, (decision.gates, decision.reasons)
    assert decision.real_money == real, decision.gates  # real money only on a real-money endpoint
    for name in in_dotenv & set(decision.provenance):
        dropped = any(p.startswith(name) for p in settings_.problems)  # invalid: the default applies
        if env[name].strip() and not dropped and not (name == "TRADING_MODE" and "trading_mode" in process):
            assert decision.provenance[name].startswith(".env"), (name, decision.provenance)
    assert (decision.mode is TradingMode.LIVE) == all(g.passed for g in decision.gates)
    events = [e for e, _, _ in audit.records]
    assert events[-1] in ("mode.resolved", "mode.fallback")
    assert "mode.resolved" in events
    asked = (settings_.trading_mode or "").strip().lower()
    # TRADING_MODE spelled twice with different values is contradictory: a fallback whatever value won.
    contradictory = len({env[k] for k in ("TRADING_MODE", "trading_mode") if k in env}) > 1
    assert ("mode.fallback" in events) == (contradictory or asked not in ("", expected))
    if decision.mode is not TradingMode.LIVE and asked == "live":
        assert decision.reasons, "a refused live request must say why"
