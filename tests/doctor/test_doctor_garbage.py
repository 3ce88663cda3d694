"""Review r16, defect 9: `joe doctor` turns every check into a line, never a traceback.

An alert channel answering garbage (a captive portal's HTML labelled JSON, JSON that is not an object,
an object whose ``result`` is not one) is a FAIL line on ``alerts.telegram``; a check that raises for
any other reason is a FAIL line naming it, and the other checks still run (``--json`` stays a document).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from joe.cli.main import app

TOKEN = "424242:r16-doctor-secret-token-abcdef"
CLEARED = ("CAPITAL_", "IBKR_", "TELEGRAM_", "DISCORD_", "GEMINI_", "TRADING_MODE", "JOE_")


def serve(body: bytes) -> HTTPServer:
    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    srv = HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for k in list(os.environ):
        if k.startswith(CLEARED):
            monkeypatch.delenv(k)
    (tmp_path / "execution.yaml").write_text("version: 1\nai:\n  enabled: false\n")
    monkeypatch.setenv("JOE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JOE_CONFIG", str(tmp_path / "execution.yaml"))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_CHAT_ID", "42")
    monkeypatch.chdir(tmp_path)
    yield tmp_path


@pytest.mark.parametrize(
    "body", [b"<html>captive portal</html>", b"[1, 2]", b'{"ok": true, "result": "x"}', b"null"]
)
def test_garbage_from_the_telegram_api_is_a_fail_line(
    folder: Path, monkeypatch: pytest.MonkeyPatch, body: bytes
) -> None:
    srv = serve(body)
    try:
        monkeypatch.setenv("TELEGRAM_API_URL", f"http://127.0.0.1:{srv.server_address[1]}")
        r = CliRunner().invoke(app, ["doctor", "--json", "--timeout", "5", "--broker", "sim"])
    finally:
        srv.shutdown()
    doc = json.loads(r.stdout)
    tg = [c for c in doc["checks"] if c["name"] == "alerts.telegram"]
    assert tg and tg[0]["status"] == "FAIL", tg
    assert r.exit_code == 1 and TOKEN not in r.output


def test_a_check_that_raises_is_a_fail_line_and_the_rest_still_run(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import joe.cli.doctor_cmd as doctor

    def broken(_rt: object) -> object:
        raise AttributeError("'list' object has no attribute 'get'")

    monkeypatch.setattr(doctor, "check_credentials", broken)
    r = CliRunner().invoke(app, ["doctor", "--json", "--offline"])
    doc = json.loads(r.stdout)
    by_name = {c["name"]: c for c in doc["checks"]}
    assert by_name["credentials"]["status"] == "FAIL"
    assert "AttributeError" in by_name["credentials"]["detail"]
    assert len(doc["checks"]) == 12 and by_name["python"]["status"] == "PASS"  # every other check ran
    assert r.exit_code == 1
