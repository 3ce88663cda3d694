"""Where each mode-relevant setting came from: the process environment, `.env`, the yaml or a default.

`joe mode` prints it and the mode decision audits it, so "why is this LIVE?" always has an answer
that names a file or the shell (issue 10: a `.env` left behind can select live with real money).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from joe.config.schema import ExecutionConfig
    from joe.config.settings import Settings

# (env var, yaml path it falls back to or None) per broker; the common ones first.
_COMMON: tuple[tuple[str, str | None], ...] = (("TRADING_MODE", None), ("JOE_BROKER", None))
_BROKER: dict[str, tuple[tuple[str, str | None], ...]] = {
    "ibkr": (
        ("IBKR_HOST", "brokers.ibkr.host"),
        ("IBKR_PORT", "brokers.ibkr.port"),
        ("IBKR_CLIENT_ID", "brokers.ibkr.client_id"),
        ("IBKR_ACCOUNT", "brokers.ibkr.account"),
    ),
    "capital": (
        ("CAPITAL_DEMO", "brokers.capital.demo"),
        ("CAPITAL_API_URL", None),
        ("CAPITAL_STREAM_URL", None),
        ("CAPITAL_ACCOUNT_ID", "brokers.capital.account_id"),
    ),
}
_YAML_ONLY = (
    "live.enabled",
    "live.min_paper_days",
    "live.min_paper_trades",
    "live.track_record_override.enabled",
    "live.min_demo_days",
    "live.demo_record_override.enabled",
    "live.rollout.trades",
    "live.rollout.days",
    "live.rollout.size_fraction",
    "live.rollout.max_notional",
)


def _yaml_set(config: Any, dotted: str) -> bool:
    """True when the yaml file itself set `dotted` (pydantic remembers which fields were given)."""
    node = config
    for part in dotted.split("."):
        if node is None or part not in getattr(node, "model_fields_set", set()):
            return False
        node = getattr(node, part, None)
    return True


def _exists(config: Any, dotted: str) -> bool:
    node = config
    for part in dotted.split("."):
        if not hasattr(node, part):
            return False
        node = getattr(node, part)
    return True


def mode_provenance(settings: Settings, config: ExecutionConfig, broker: str) -> dict[str, str]:
    """Setting name -> "env", ".env (<path>)", "yaml (<path>)", "--broker" or "default"."""
    sources = dict(getattr(settings, "sources", {}) or {})
    yaml = f"yaml ({settings.config_path})"
    out: dict[str, str] = {}
    for var, path in (*_COMMON, *_BROKER.get(broker, ()), ("JOE_LIVE_CONFIRM", None)):
        if var in sources:
            out[var] = sources[var]
        elif path is not None and _yaml_set(config, path):
            out[var] = f"{yaml} {path}"
        else:
            out[var] = "default" if var != "JOE_LIVE_CONFIRM" else "unset"
    for path in _YAML_ONLY:
        if _exists(config, path):
            out[path] = yaml if _yaml_set(config, path) else "default"
    return out


def dotenv_selected(provenance: dict[str, str], names: tuple[str, ...]) -> list[str]:
    """The names among `names` whose value came from a `.env` file."""
    return [n for n in names if provenance.get(n, "").startswith(".env")]
