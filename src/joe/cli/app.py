"""The `joe` commands (typer): one module per concern, mounted here. The entry point is `joe.cli.main`."""

from __future__ import annotations

from pathlib import Path

import typer

from joe import __version__
from joe.cli import mode_cmd
from joe.cli.audit_cmd import audit_app
from joe.cli.backtest_cmd import backtest_command
from joe.cli.daemon_cmd import daemon_command
from joe.cli.doctor_cmd import doctor_command
from joe.cli.kill_cmd import kill_command
from joe.cli.report_cmd import report
from joe.cli.resume_cmd import resume_command
from joe.cli.run_cmd import run_command
from joe.cli.sim_cmd import sim_app
from joe.cli.status_cmd import status_command
from joe.cli.telegram_cmd import telegram_command
from joe.cli.web_cmd import web_command
from joe.config.graduation import DemoRecord
from joe.config.mode import ModeDecision, TrackRecord
from joe.config.settings import Settings
from joe.core.events import AuditSink

app = typer.Typer(
    help="Joe: market research and trading engine (paper by default).",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _redact_console() -> None:
    """Every command's console output (and an uncaught traceback) goes through secret redaction."""
    from joe.audit import streams
    from joe.audit.redaction import register_secrets_from_env

    register_secrets_from_env()
    streams.install()


@app.command()
def version() -> None:
    """Print Joe's version."""
    typer.echo(__version__)


def _track_record(settings: Settings) -> TrackRecord:
    from joe.store import open_store

    store = open_store(settings.database_url, data_dir=settings.data_dir)
    try:
        return store.paper_track_record()
    finally:
        store.close()


def _rollout(settings: Settings, decision: ModeDecision) -> list[str]:
    from joe.config.loader import load_execution_config_tolerant
    from joe.portfolio.rollout import Rollout
    from joe.store import open_store

    config, _ = load_execution_config_tolerant(settings.config_path)
    store = open_store(settings.database_url, data_dir=settings.data_dir)
    try:
        return Rollout(config, store, real_money=decision.real_money, broker=decision.broker).lines()
    finally:
        store.close()


def _audit(settings: Settings) -> AuditSink:
    from joe.audit.log import AuditLog

    return AuditLog(Path(settings.data_dir) / "audit")


app.command("run")(run_command)
app.command("backtest")(backtest_command)
app.command("daemon")(daemon_command)


def _demo_record(settings: Settings) -> DemoRecord | None:
    from joe.safety.demo_record import demo_record_for

    return demo_record_for(settings, settings.broker)


mode_cmd.register(
    app,
    track_record_provider=_track_record,
    audit_factory=_audit,
    rollout_provider=_rollout,
    demo_record_provider=_demo_record,
)
app.add_typer(audit_app, name="audit")
app.command("report")(report)
app.add_typer(sim_app, name="sim")
app.command("kill")(kill_command)
app.command("resume")(resume_command)
app.command("status")(status_command)
app.command("doctor")(doctor_command)
app.command("web")(web_command)
app.command("telegram")(telegram_command)
