"""Structured logging: every path to a log line is redacted (fields, message, exceptions, libraries)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

import joe.core.logging as joe_logging
from joe.audit.redaction import clear_secrets, register_secret
from joe.core.logging import configure_logging, get_logger

SECRET = "sk-live-0123456789abcdef"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    clear_secrets()
    register_secret(SECRET)
    yield
    clear_secrets()
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    joe_logging._configured = False


class Creds:
    """An object whose repr leaks a secret (as careless third-party objects do)."""

    def __repr__(self) -> str:
        return f"Creds(key={SECRET})"


def _emit_everything() -> None:
    log = get_logger("joe.test")
    log.info(
        f"connecting with {SECRET}",
        api_key=SECRET,
        password="not-registered-pw",
        creds=Creds(),
        url=f"https://api.telegram.org/bot{SECRET}/sendMessage",
        nested={"x": [SECRET]},
    )
    logging.getLogger("httpx").info(
        "HTTP Request: POST %s", f"https://api.example.com/session?token={SECRET}"
    )
    try:
        raise RuntimeError(f"login failed for {SECRET}")
    except RuntimeError:
        log.exception("broker login failed", broker="capital")
        logging.getLogger("ib_async.client").exception("library failure")


@pytest.mark.parametrize("as_json", [False, True])
def test_no_secret_reaches_a_log_line(as_json: bool) -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", json=as_json, stream=stream)
    _emit_everything()
    out = stream.getvalue()
    assert SECRET not in out
    assert "not-registered-pw" not in out  # caught by its field name alone
    # ...while the useful parts survive.
    for kept in (
        "connecting with ***",
        "broker login failed",
        "RuntimeError: login failed for ***",
        "library failure",
        "HTTP Request: POST",
        "bot***/sendMessage",
        "capital",
    ):
        assert kept in out, kept
    if as_json:
        events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        first = events[0]
        assert first["api_key"] == "***" and first["password"] == "***"
        assert first["logger"] == "joe.test" and first["level"] == "info"
        assert any(e.get("logger") == "httpx" for e in events)
        assert "exception" in events[2]


def test_level_filtering_and_reconfiguration_replaces_the_handler() -> None:
    first = io.StringIO()
    configure_logging("WARNING", stream=first)
    log = get_logger("joe.x")
    log.info("quiet")
    log.warning("loud")
    second = io.StringIO()
    configure_logging("INFO", json=True, stream=second)
    log.info("now json")
    assert "quiet" not in first.getvalue() and "loud" in first.getvalue()
    assert "now json" not in first.getvalue()  # the old handler is gone
    assert json.loads(second.getvalue().splitlines()[-1])["event"] == "now json"


def test_get_logger_without_configuration_still_redacts(capsys: pytest.CaptureFixture[str]) -> None:
    joe_logging._configured = False
    get_logger("joe.early").warning("early", token=SECRET)
    err = capsys.readouterr().err
    assert "early" in err
    assert SECRET not in err


def test_configure_registers_env_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-gemini-env-secret")
    stream = io.StringIO()
    configure_logging(stream=stream)
    get_logger("joe.ai").info("calling gemini with AIza-gemini-env-secret")
    assert "AIza-gemini-env-secret" not in stream.getvalue()
    assert "calling gemini with ***" in stream.getvalue()


def test_httpx_lines_are_scrubbed_at_the_source_without_the_alert_channels_imported() -> None:
    """The httpx/httpcore scrub filter is installed by `joe.core.logging` (which every Joe process
    imports), not only when the alert channels are: a run or backtest that never loads them (httpx
    requests from a broker or the AI analyst) still has it, and a handler that bypasses Joe's
    formatting never sees a registered secret."""
    code = f"""
import logging, sys
import joe.core.logging
from joe.audit.redaction import register_secret
assert "joe.reporting.alerts.channel" not in sys.modules
register_secret({SECRET!r})
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(self.format(record))
from joe.core.logging import SCRUBBED_LOGGERS
for name in SCRUBBED_LOGGERS:
    log = logging.getLogger(name)
    log.propagate = False  # each logger's own record once (a child's would reach its parent's handler too)
    log.addHandler(Keep())
    log.setLevel(logging.INFO)
    log.info("HTTP Request: POST %s", "https://api.example.com/session?token={SECRET}")
print(records)
assert len(records) == len(SCRUBBED_LOGGERS), records
assert all({SECRET!r} not in r and "token=***" in r for r in records), records
"""
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr + out.stdout


async def test_capital_session_tokens_never_reach_a_debug_log() -> None:
    """Before: at DEBUG, httpcore's trace of the login answer printed its response headers, the
    Capital.com session pair (CST, X-SECURITY-TOKEN) in clear: the line is written while the answer is
    read, before Joe registers the new tokens as secrets, and the httpx/httpcore scrub filter sat on
    the `httpcore` logger, which its child loggers (`httpcore.http11`...) do not consult. Now a header
    pair whose name is secret-like is masked by its shape, and the filter sits on every httpcore
    logger. The truth: the simulator's session tokens and the login password, looked for in the whole
    DEBUG output of a login and a request, in Joe's handler and in a bare handler of the library's."""
    from capital.conftest import make_client
    from joe.simulators.capital import CapitalSimulator

    clear_secrets()  # nothing registered up front: the tokens are new at the login
    stream, bare = io.StringIO(), io.StringIO()
    configure_logging("DEBUG", stream=stream, register_env_secrets=False)
    raw = logging.StreamHandler(bare)  # a handler that bypasses Joe's formatting (a host app's)
    http11 = logging.getLogger("httpcore.http11")
    http11.addHandler(raw)
    sim = CapitalSimulator(seed=1)
    await sim.start()
    try:
        client = make_client(sim)
        await client.open()
        cst, xst = client.tokens
        await client.request("GET", "/accounts")
        await client.close()
    finally:
        http11.removeHandler(raw)
        await sim.stop()
    for out in (stream.getvalue(), bare.getvalue()):
        assert "receive_response_headers.complete" in out  # the trace ran: the check is not vacuous
        assert cst not in out and xst not in out, [ln for ln in out.splitlines() if cst in ln or xst in ln]
        assert sim.login.password not in out
