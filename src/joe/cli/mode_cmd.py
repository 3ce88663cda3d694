"""`joe mode [--json]`: print the resolved trading mode and every live gate with PASS/FAIL and why.

The lead's main app mounts it with `register(app, track_record_provider=..., audit_factory=...)`;
`app` below is a standalone single-command Typer app (used by the tests).
Secret values are never printed: credentials show as "set" or "missing".
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from joe.config.graduation import DemoRecord
from joe.config.loader import load_execution_config_tolerant
from joe.config.mode import ModeDecision, TrackRecord, mask_account, normalise, resolve_mode
from joe.config.settings import Settings, env_names, load_settings, secret_value
from joe.core.events import AuditSink

TrackRecordProvider = Callable[[Settings], TrackRecord | None]
# The broker's demo-live record (issue 19), read from the store and the audit log.
DemoRecordProvider = Callable[[Settings], DemoRecord | None]
RolloutProvider = Callable[[Settings, ModeDecision], list[str]]
AuditFactory = Callable[[Settings], AuditSink | None]

# Credentials shown as set/missing (never their values).
_CREDENTIAL_FIELDS = (
    "capital_api_key",
    "capital_identifier",
    "capital_password",
    "capital_account_id",
    "ibkr_account",
    "gemini_api_key",
    "telegram_bot_token",
    "telegram_chat_id",
    "discord_webhook_url",
)


def tty_confirm() -> Callable[[str], str] | None:
    """An interactive "type the account id" prompt when stdin is a terminal, else None (unattended)."""
    if not sys.stdin.isatty():
        return None

    def ask(prompt: str) -> str:
        return str(typer.prompt(prompt, default="", show_default=False))

    return ask


def credential_status(settings: Settings) -> dict[str, str]:
    """Env var name → "set" / "missing" for the credentials Joe knows about."""
    names = env_names()
    out = {}
    for field in _CREDENTIAL_FIELDS:
        out[names[field]] = "set" if secret_value(getattr(settings, field)) else "missing"
    return out


def decide(
    *,
    track_record_provider: TrackRecordProvider | None = None,
    audit: AuditSink | None = None,
    confirm: Callable[[str], str] | None = None,
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = None,
    demo_record_provider: DemoRecordProvider | None = None,
    demo_lines: list[str] | None = None,
) -> tuple[Settings, ModeDecision, str]:
    """Load settings and the tolerant config, get the track and demo-live records, resolve. Never
    raises. `demo_lines`, when given, receives what the demo-live record holds and lacks."""
    settings = load_settings(environ, env_file)
    config, problems = load_execution_config_tolerant(settings.config_path, audit=audit)
    record: TrackRecord | None = None
    if track_record_provider is not None:
        try:
            record = track_record_provider(settings)
        except Exception:
            record = None  # the track-record gate then fails with "no store"
    demo: DemoRecord | None = None
    if demo_record_provider is not None:
        try:
            demo = demo_record_provider(settings)
        except Exception as exc:  # the demo_record gate then fails with "no store"
            if demo_lines is not None:
                demo_lines.append(f"demo-live record unavailable ({type(exc).__name__})")
    if demo is not None and demo_lines is not None:
        from joe.config.mode import demo_days_needed

        demo_lines += demo.lines(demo_days_needed(config))
    decision = resolve_mode(
        settings, config, record, confirm=confirm, audit=audit, config_problems=problems, demo_record=demo
    )
    return settings, decision, str(settings.config_path)


def render_json(settings: Settings, decision: ModeDecision, config_path: str) -> str:
    """The `--json` document."""
    doc: dict[str, Any] = decision.to_dict()
    doc["account_id"] = mask_account(decision.account_id)
    doc["config_path"] = config_path
    doc["credentials"] = credential_status(settings)
    return json.dumps(doc, indent=2, sort_keys=True)


def render_table(
    console: Console,
    settings: Settings,
    decision: ModeDecision,
    config_path: str,
    rollout_lines: list[str] | None = None,
) -> None:
    """The human-readable view: mode, gates, reasons, credentials."""
    colour = {"paper": "green", "shadow": "yellow", "live": "bold red"}[decision.mode.value]
    mode = decision.mode.value.upper()
    console.print(
        f"Mode: [{colour}]{mode}[/]  (TRADING_MODE={decision.requested[:40]!r}, "
        f"broker={decision.broker}, endpoint: {decision.endpoint_label}, config={config_path})",
        soft_wrap=True,
    )
    if decision.real_money and decision.mode.value != "live":
        what = "reads it but sends no order" if mode == "SHADOW" else "sends it no order"
        console.print(
            f"The endpoint is a real-money account; {mode} {what}. Only TRADING_MODE=live with every gate "
            "below passed trades it.",
            markup=False,
            soft_wrap=True,
        )
    asked = normalise(decision.requested)
    title = "gates for shadow (n/a: live only)" if asked == "shadow" else "live gates"
    if asked not in ("live", "shadow"):
        title += " (what TRADING_MODE=live would need)"
    table = Table("gate", "result", "why", title=title)
    for gate in decision.gates:
        result = "[green]PASS[/]" if gate.passed else "[red]FAIL[/]"
        result = result if gate.needed else "[dim]n/a[/]"
        table.add_row(gate.name, result, Text(gate.detail))
    console.print(table)
    for reason in decision.reasons:
        console.print(f"- {reason}", markup=False, soft_wrap=True)
    for warning in decision.warnings:
        console.print(f"! {warning}", markup=False, soft_wrap=True, style="yellow")
    if decision.provenance:
        shown = ", ".join(f"{k}={v}" for k, v in decision.provenance.items())
        console.print(f"settings from: {shown}", markup=False, soft_wrap=True)
    if rollout_lines is not None:
        for line in rollout_lines:
            console.print(line, markup=False, soft_wrap=True)
    # Grouped by state, names only: "NAME=value" is what the output redaction masks (then every
    # credential read "***" whether set or missing).
    status = credential_status(settings)
    for state in ("set", "missing"):
        names = ", ".join(k for k, v in status.items() if v == state) or "none"
        console.print(f"credentials {state}: {names}", markup=False, soft_wrap=True)


def mode_command(
    json_out: bool = False,
    *,
    track_record_provider: TrackRecordProvider | None = None,
    audit_factory: AuditFactory | None = None,
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = None,
    console: Console | None = None,
    rollout_provider: RolloutProvider | None = None,
    demo_record_provider: DemoRecordProvider | None = None,
) -> ModeDecision:
    """Resolve and print the mode. Read-only: never prompts (confirmation comes from JOE_LIVE_CONFIRM)."""
    audit: AuditSink | None = None
    if audit_factory is not None:
        try:
            audit = audit_factory(load_settings(environ, env_file))
        except Exception:
            audit = None
    demo_lines: list[str] = []
    settings, decision, config_path = decide(
        track_record_provider=track_record_provider,
        audit=audit,
        environ=environ,
        env_file=env_file,
        demo_record_provider=demo_record_provider,
        demo_lines=demo_lines,
    )
    rollout: list[str] = []
    if rollout_provider is not None and decision.broker in ("ibkr", "capital"):
        try:
            rollout = rollout_provider(settings, decision)
        except Exception as exc:  # the mode is decided already; say the count is unavailable
            rollout = [f"rollout: count unavailable ({type(exc).__name__})"]
    if json_out:
        doc = json.loads(render_json(settings, decision, config_path))
        doc["rollout"] = rollout
        doc["demo_record"] = demo_lines
        typer.echo(json.dumps(doc, indent=2, sort_keys=True))
    else:
        render_table(console or Console(), settings, decision, config_path, demo_lines + rollout)
    return decision


def register(
    app: typer.Typer,
    *,
    track_record_provider: TrackRecordProvider | None = None,
    audit_factory: AuditFactory | None = None,
    name: str = "mode",
    rollout_provider: RolloutProvider | None = None,
    demo_record_provider: DemoRecordProvider | None = None,
) -> None:
    """Add the `mode` command to `app` (the lead's main `joe` app)."""

    @app.command(name, help="Show the resolved trading mode and each live gate with PASS/FAIL and why.")
    def _mode(json_out: bool = typer.Option(False, "--json", help="print a JSON object")) -> None:
        mode_command(
            json_out,
            track_record_provider=track_record_provider,
            audit_factory=audit_factory,
            rollout_provider=rollout_provider,
            demo_record_provider=demo_record_provider,
        )


def make_app(
    *, track_record_provider: TrackRecordProvider | None = None, audit_factory: AuditFactory | None = None
) -> typer.Typer:
    """A standalone app whose only command is `mode` (invoked without a sub-command name)."""
    standalone = typer.Typer(add_completion=False)
    register(standalone, track_record_provider=track_record_provider, audit_factory=audit_factory)
    return standalone


app = make_app()
