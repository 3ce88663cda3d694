"""`joe doctor`'s local checks: Python and packages, config, data folder and disk, database, audit chain,
market calendar, credentials, the daemon's heartbeat.

Each check is a small function returning one `Check` (PASS / WARN / FAIL, what was found, what to do).
None of them changes anything but a probe file in the data folder (written and removed); secrets are
named, never shown. The broker and alert-channel checks (network) are in `doctor_broker`.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.requirements import InvalidRequirement, Requirement

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime

#: (free bytes, total bytes) of the file system holding a path; tests inject a small disk.
FreeSpaceProbe = Callable[[Path], tuple[int, int]]

MIB = 1024 * 1024
#: Below this a FAIL: the audit log (fsynced per record) and the store (WAL) need room to write, and a
#: failed audit write halts trading (fail closed), so a full disk would stop Joe mid-session.
DISK_FAIL_BYTES = 200 * MIB
#: Below this a WARN: a few days of audit log, reports and the bar cache.
DISK_WARN_BYTES = 1024 * MIB


class Status(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the doctor's answer. `fix` says what to do (empty for a PASS)."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        return d


def ok(name: str, detail: str) -> Check:
    return Check(name, Status.PASS, detail)


def warn(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.WARN, detail, fix)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.FAIL, detail, fix)


def disk_usage(path: Path) -> tuple[int, int]:
    u = shutil.disk_usage(path)
    return u.free, u.total


# -- the environment ---------------------------------------------------------------------------------


def check_python() -> Check:
    v = sys.version_info
    shown = f"Python {v.major}.{v.minor}.{v.micro} ({sys.executable})"
    if (v.major, v.minor) < (3, 11):
        return fail("python", shown, "Joe needs Python 3.11 or newer: recreate the venv (make clean install)")
    return ok("python", shown)


def check_packages(dist: str = "joe") -> Check:
    """Every runtime requirement of the installed `joe` distribution present at a version it allows."""
    try:
        reqs = md.requires(dist) or []
        joe_version = md.version(dist)
    except md.PackageNotFoundError:
        return fail("packages", f"{dist} is not installed as a package", "run `make install`")
    missing: list[str] = []
    wrong: list[str] = []
    count = 0
    for raw in reqs:
        try:
            req = Requirement(raw)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an optional extra (test, data)
        count += 1
        try:
            have = md.version(req.name)
        except md.PackageNotFoundError:
            missing.append(req.name)
            continue
        if req.specifier and not req.specifier.contains(have, prereleases=True):
            wrong.append(f"{req.name} {have} (needs {req.specifier})")
    if missing or wrong:
        what = "; ".join([*(f"{m} missing" for m in missing), *wrong])
        return fail(
            "packages", what, "run `make install` (pip install -e .) to bring them to pyproject's versions"
        )
    return ok("packages", f"joe {joe_version}: {count} required packages at allowed versions")


# -- configuration -----------------------------------------------------------------------------------


def check_config(rt: Runtime) -> Check:
    path = rt.settings.config_path
    from joe.cli.config_gate import invalid_config  # the rule `joe run` and `joe daemon` refuse by

    invalid = invalid_config(rt)
    notes = [p for p in rt.config_problems if not getattr(p, "invalid", True)]
    if invalid:
        return fail(
            "config",
            "; ".join(str(p) for p in invalid[:5]),
            f"fix {path} (each problem names the key); until then `joe run` and `joe daemon` refuse to "
            "start (exit 2): nothing trades on a configuration Joe cannot read",
        )
    settings_problems = list(getattr(rt.settings, "problems", []) or [])
    if settings_problems:
        return warn(
            "config",
            "; ".join(str(p) for p in settings_problems[:5]),
            "fix the named environment / .env values (each was dropped to its default)",
        )
    if notes:
        return warn("config", "; ".join(str(p) for p in notes), f"create {path} to choose your own settings")
    return ok("config", f"{path} valid")


def check_mode(rt: Runtime) -> Check:
    d = rt.decision
    failed = [g.name for g in d.gates if not g.passed]
    detail = f"{d.mode.value} ({'; '.join(d.reasons)})"
    if d.fell_back:
        from joe.config.mode import TradingMode, normalise

        if not d.contradictory and normalise(d.requested) not in {m.value for m in TradingMode}:
            return warn(
                "mode",
                detail,
                f"TRADING_MODE={d.requested!r} is no mode: set it to paper, shadow or live (a typo never "
                "means live; until then it is paper)",
            )
        return warn(
            "mode",
            detail,
            f"TRADING_MODE asked for {d.requested!r} but gates {', '.join(failed) or '?'} failed: "
            "`joe mode` shows each gate and why",
        )
    return ok("mode", detail)


# -- data folder, disk, database, audit --------------------------------------------------------------


def check_data_dir(data_dir: Path) -> Check:
    probe = data_dir / f".doctor-probe-{os.getpid()}"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"joe doctor write probe\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        return fail(
            "data_dir",
            f"{data_dir} is not writable: {exc.strerror or exc}",
            "give the user running Joe write access to it, or set JOE_DATA_DIR to a writable folder",
        )
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
    return ok("data_dir", f"{data_dir.resolve()} writable")


def check_disk(
    data_dir: Path,
    probe: FreeSpaceProbe = disk_usage,
    fail_below: int = DISK_FAIL_BYTES,
    warn_below: int = DISK_WARN_BYTES,
) -> Check:
    try:
        free, total = probe(data_dir)
    except OSError as exc:
        return fail("disk", f"cannot read free space of {data_dir}: {exc}", "check the folder exists")
    shown = f"{free / MIB:.0f} MiB free of {total / MIB:.0f} MiB at {data_dir}"
    if free < fail_below:
        return fail(
            "disk",
            shown + f" (below {fail_below // MIB} MiB)",
            "free space now: a failed audit write halts trading. Delete old reports/backtests or the bar "
            "cache (data/cache), or move JOE_DATA_DIR to a larger disk",
        )
    if free < warn_below:
        return warn("disk", shown + f" (below {warn_below // MIB} MiB)", "free some space soon")
    return ok("disk", shown)


def check_database(rt: Runtime) -> Check:
    from sqlalchemy import text

    from joe.store.engine import read_connection
    from joe.store.migrations import database_version, latest_version

    engine = rt.store.engine
    try:
        with read_connection(engine) as conn:
            version = database_version(conn)
            integrity = "not SQLite: integrity is the server's job"
            if conn.dialect.name == "sqlite":
                rows = [str(r[0]) for r in conn.execute(text("PRAGMA integrity_check")).fetchall()]
                if rows != ["ok"]:
                    return fail(
                        "database",
                        f"{rt.store.url}: integrity_check: {'; '.join(rows[:3])}",
                        "stop Joe, keep a copy of the file, restore it from a backup (the audit log and the "
                        "broker are the record to rebuild from)",
                    )
                integrity = "integrity ok"
    except Exception as exc:
        return fail("database", f"{rt.store.url}: {type(exc).__name__}: {exc}", "check JOE_DB_URL / the file")
    latest = latest_version()
    if version != latest:
        return fail(
            "database",
            f"{rt.store.url}: schema version {version}, this Joe expects {latest}",
            "run any joe command once to migrate, or point JOE_DB_URL at the right database",
        )
    return ok("database", f"{rt.store.url}: {integrity}, schema version {version}")


def check_audit(rt: Runtime) -> Check:
    from joe.audit.anchor import StoreAnchor
    from joe.audit.health import chain_health

    try:
        h = chain_health(rt.data_dir / "audit", StoreAnchor(rt.store).load_anchor())
    except Exception as exc:
        return fail("audit", f"cannot verify: {type(exc).__name__}: {exc}", "run `joe audit verify`")
    if not h.ok:
        return fail(
            "audit",
            h.summary,
            "the chain is broken (live and shadow are blocked): keep the files as they are, "
            "find out what changed them (`joe audit verify`), and tell whoever audits the account",
        )
    return ok("audit", h.summary)


# -- market, credentials, daemon ----------------------------------------------------------------------


def check_calendar(rt: Runtime, now: datetime) -> Check:
    from joe.data.calendars import calendar_for

    code = rt.config.daemon.schedule.exchange
    try:
        cal = calendar_for(code)
        day = now.astimezone(cal.tz).date()
        s = cal.session(day)
    except Exception as exc:
        return fail(
            "calendar",
            f"{code}: {type(exc).__name__}: {exc}",
            "set daemon.schedule.exchange to an ISO MIC (XNYS...) and upgrade exchange-calendars",
        )
    if s is None:
        return ok("calendar", f"{cal.code} {day}: no session today (weekend or holiday); no scheduled runs")
    early = " (early close)" if s.early_close else ""
    hours = f"{s.open:%H:%M}–{s.close:%H:%M} UTC"
    return ok("calendar", f"{cal.code} {day}: session {hours}{early}")


def check_credentials(rt: Runtime) -> Check:
    from joe.config.settings import secret_value

    s = rt.settings
    broker = s.broker
    if broker == "sim":
        return ok("credentials", "broker sim (paper on local data): none needed")
    if broker == "capital":
        need = {
            "CAPITAL_API_KEY": secret_value(s.capital_api_key),
            "CAPITAL_IDENTIFIER": s.capital_identifier,
            "CAPITAL_PASSWORD": secret_value(s.capital_password),
        }
    else:
        need = {
            "IBKR_ACCOUNT": s.ibkr_account or rt.config.brokers.ibkr.account,
        }
    missing = [k for k, v in need.items() if not v]
    present = [k for k, v in need.items() if v]
    if missing:
        level = fail if broker == "capital" else warn
        return level(
            "credentials",
            f"{broker}: missing {', '.join(missing)}"
            + (f"; present {', '.join(present)}" if present else ""),
            f"set {', '.join(missing)} in the environment or .env (`joe sim {broker}` prints demo values)",
        )
    return ok("credentials", f"{broker}: {', '.join(present)} present (values not shown)")


def check_web_token(data_dir: Path) -> Check:
    """The dashboard token (`joe web`) must be readable by its owner only: it can halt and flatten."""
    from joe.web.auth import token_path

    path = token_path(data_dir)
    if not path.exists():
        return ok("web_token", "no dashboard token yet (`joe web` creates it, 0600)")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        return fail(
            "web_token",
            f"{path} has mode {mode:04o}: other users can read the dashboard token",
            f"chmod 600 {path} (or delete it: `joe web` makes a new one)",
        )
    return ok("web_token", f"{path} mode 0600 (value not shown)")


def check_daemon(rt: Runtime, now: datetime) -> Check:
    from joe.runtime.daemon import heartbeat_health
    from joe.safety.lock import holder_pid

    h = heartbeat_health(rt.store, now=now)
    pid = holder_pid(rt.data_dir)
    if h["heartbeat"] is None:
        return ok("daemon", "no daemon heartbeat in this store (no daemon has run here)")
    age = h["age_s"]
    if h["stale"]:
        return warn(
            "daemon",
            f"heartbeat {age:.0f} s old, not stopped (pid {h['heartbeat'].get('pid')}); lock holder {pid}",
            "the daemon died or hangs: check its logs (journalctl -u joe), then restart it; "
            "broker-side stops keep protecting positions meanwhile",
        )
    state = "running" if h["running"] else "stopped"
    return ok("daemon", f"{state}, last heartbeat {age:.0f} s ago")
