"""Start-up: settings → logging → secrets → audit → config → store → mode, in that order.

Everything a command needs is built here once, so each principle is applied in one place:
secrets are registered for redaction before anything is logged, the config load and the mode
decision are audited, and the mode is fixed for the life of the process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from joe.audit.anchor import StoreAnchor
from joe.audit.log import AuditLog
from joe.audit.redaction import register_secret, register_secrets_from_env
from joe.config.loader import ConfigProblem, load_execution_config_tolerant
from joe.config.mode import ModeDecision, normalise, resolve_mode
from joe.config.schema import ExecutionConfig
from joe.config.settings import SECRET_FIELDS, Settings, load_settings, secret_value
from joe.core.logging import configure_logging, get_logger
from joe.safety.demo_record import read_demo_record

if TYPE_CHECKING:
    from joe.store import Store

log = get_logger("joe.runtime")


@dataclass
class Runtime:
    """The process's resolved world: settings, config, audit, store and the one trading mode."""

    settings: Settings
    config: ExecutionConfig
    config_problems: list[ConfigProblem]
    audit: AuditLog
    store: Store
    decision: ModeDecision
    data_dir: Path
    notes: list[str] = field(default_factory=list)

    @property
    def mode(self) -> str:
        return self.decision.mode.value

    def close(self) -> None:
        self.store.close()


def _register_setting_secrets(settings: Settings) -> None:
    """Secrets may come from `.env` rather than the environment: register them for redaction too."""
    for name in SECRET_FIELDS:
        raw = secret_value(getattr(settings, name, None))
        if raw:
            register_secret(raw)


def bootstrap(
    *,
    broker: str | None = None,
    confirm: Callable[[str], str] | None = None,
    log_stream: TextIO | None = None,
) -> Runtime:
    """Build the runtime for one process. Never raises for bad configuration: it resolves to paper."""
    from joe.store import open_store  # SQLAlchemy: here, not at import (a backtest's `Runtime` has none)

    register_secrets_from_env(os.environ)
    settings = load_settings()
    if broker is not None and broker != settings.broker:
        sources = {**settings.sources, "JOE_BROKER": "--broker"}
        settings = settings.model_copy(update={"broker": broker, "sources": sources})
    _register_setting_secrets(settings)
    configure_logging(settings.log_level, json=settings.log_json, stream=log_stream)
    data_dir = Path(settings.data_dir)
    audit = AuditLog(data_dir / "audit")
    for problem in settings.problems if hasattr(settings, "problems") else []:
        log.warning("settings.problem", problem=str(problem))
    config, problems = load_execution_config_tolerant(settings.config_path, audit=audit)
    for p in problems:
        log.warning("config.problem", problem=str(p))
    store = open_store(settings.database_url, data_dir=data_dir)
    # From here on every audit record also advances the chain head kept in the store.
    audit.attach_anchor(StoreAnchor(store))
    tr = store.paper_track_record()
    demo = None
    if normalise(settings.trading_mode) == "live" and settings.broker in ("ibkr", "capital"):
        # Only a live request can need the demo-live record (real money): reading it walks the audit log.
        demo = read_demo_record(store, data_dir / "audit", settings.broker)
    decision = resolve_mode(
        settings,
        config,
        tr,
        confirm=confirm,
        audit=audit,
        config_problems=problems,
        demo_record=demo,
    )
    return Runtime(settings, config, problems, audit, store, decision, data_dir)
