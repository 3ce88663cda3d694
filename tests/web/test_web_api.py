"""The dashboard's security and JSON API, in process: token file 0600 and never shown, every route but
/health refused without the token, a wrong token audited, CSRF-safe mutations, typed confirmations,
the controls moving the same persisted trading state as `joe kill` / `joe resume`, and the OpenAPI
schema listing every endpoint."""

from __future__ import annotations

import json
import stat

import pytest
from fastapi.testclient import TestClient

from joe.runtime.bootstrap import Runtime
from joe.safety.control import SafetyContext, entry_allowed
from joe.safety.trading_state import TradingState
from joe.web.auth import COOKIE, CSRF_HEADER, csrf_value, load_or_create_token, token_path

from .conftest import audit_text

API = ["/api/status", "/api/positions", "/api/orders", "/api/fills", "/api/equity", "/api/audit", "/metrics"]
PAGES = ["/", "/positions", "/orders", "/chart", "/report", "/audit", "/controls"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_token_is_created_once_with_0600_and_reused(rt: Runtime) -> None:
    tok, created = load_or_create_token(rt.data_dir)
    again, created2 = load_or_create_token(rt.data_dir)
    assert created and not created2 and tok == again and len(tok) >= 32
    assert stat.S_IMODE(token_path(rt.data_dir).stat().st_mode) == 0o600
    token_path(rt.data_dir).chmod(0o644)  # someone widened it: narrowed back on the next start
    load_or_create_token(rt.data_dir)
    assert stat.S_IMODE(token_path(rt.data_dir).stat().st_mode) == 0o600


@pytest.mark.parametrize("path", API)
def test_api_refuses_without_or_with_a_wrong_token(
    client: TestClient, rt: Runtime, token: str, path: str
) -> None:
    assert client.get(path).status_code == 401
    r = client.get(path, headers=bearer("not-the-token-123456"))
    assert r.status_code == 401
    assert client.get(path, headers=bearer(token)).status_code == 200
    events = [json.loads(line) for line in audit_text(rt).splitlines()]
    failed = [e for e in events if e["event"] == "web.auth_failed"]
    assert failed and failed[-1]["payload"]["path"] == path and failed[-1]["payload"]["via"] == "bearer"
    assert "not-the-token-123456" not in audit_text(rt) and token not in audit_text(rt)


@pytest.mark.parametrize("path", PAGES)
def test_pages_redirect_to_login_without_the_token(client: TestClient, token: str, path: str) -> None:
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    client.cookies.set(COOKIE, token)
    ok = client.get(path)
    assert ok.status_code == 200 and "PAPER" in ok.text


def test_health_is_open_and_says_nothing_about_money(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok", "store": "ok", "daemon": "none"}


def test_halt_through_the_api_moves_the_persisted_state_and_refuses_entries(
    client: TestClient, rt: Runtime, token: str
) -> None:
    wrong = client.post(
        "/api/control/halt", json={"reason": "testing it", "confirm": "halt"}, headers=bearer(token)
    )
    assert wrong.status_code == 400 and "HALT" in wrong.json()["detail"]
    short = client.post("/api/control/halt", json={"reason": "x", "confirm": "HALT"}, headers=bearer(token))
    assert short.status_code == 422
    ctx = SafetyContext.from_runtime(rt)
    assert ctx.states.current().state is TradingState.ACTIVE  # nothing happened

    r = client.post(
        "/api/control/halt", json={"reason": "news at 14:00", "confirm": "HALT"}, headers=bearer(token)
    )
    assert r.status_code == 200, r.text
    assert r.json()["trading_state"]["state"] == "halted"
    allowed, rec = entry_allowed(ctx)
    assert not allowed and rec.by == "web:testclient" and "news at 14:00" in rec.reason
    assert '"safety.kill"' in audit_text(rt)

    r = client.post(
        "/api/control/resume", json={"reason": "news passed", "confirm": "RESUME"}, headers=bearer(token)
    )
    assert r.status_code == 200 and ctx.states.current().state is TradingState.ACTIVE
    # A kill file forbids resuming: the refusal is the control function's, answered 409.
    client.post(
        "/api/control/reduce", json={"reason": "exits only", "confirm": "REDUCE"}, headers=bearer(token)
    )
    (rt.data_dir / "KILL").write_text("halt operator on the phone\n")
    r = client.post(
        "/api/control/resume", json={"reason": "try anyway", "confirm": "RESUME"}, headers=bearer(token)
    )
    assert r.status_code == 409 and "kill file" in r.json()["detail"]


def test_cookie_mutations_need_the_csrf_value(client: TestClient, rt: Runtime, token: str) -> None:
    client.cookies.set(COOKIE, token)
    body = {"reason": "cross-site attempt", "confirm": "HALT"}
    assert client.post("/api/control/halt", json=body).status_code == 403
    form = {"action": "halt", "reason": "cross-site form", "confirm": "HALT"}
    r = client.post("/controls", data=form)
    assert "CSRF" in r.text
    ctx = SafetyContext.from_runtime(rt)
    assert ctx.states.current().state is TradingState.ACTIVE
    # Joe's own page carries it.
    r = client.post("/controls", data={**form, "csrf": csrf_value(token)})
    assert r.status_code == 200 and "HALTED" in r.text
    assert ctx.states.current().state is TradingState.HALTED
    r = client.post(
        "/api/control/resume",
        json={"reason": "page JS", "confirm": "RESUME"},
        headers={CSRF_HEADER: csrf_value(token)},
    )
    assert r.status_code == 200


def test_login_sets_an_httponly_strict_cookie_and_audits_a_wrong_token(
    client: TestClient, rt: Runtime, token: str
) -> None:
    bad = client.post("/login", data={"token": "guess-guess-guess"}, follow_redirects=False)
    assert bad.status_code == 401 and "wrong token" in bad.text
    assert '"via":"login"' in audit_text(rt).replace(" ", "")
    good = client.post("/login", data={"token": token}, follow_redirects=False)
    assert good.status_code == 303
    cookie = good.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_logout_drops_the_cookie_and_the_pages_ask_for_the_token_again(
    client: TestClient, token: str
) -> None:
    assert client.post("/login", data={"token": token}, follow_redirects=False).status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 200  # the cookie opens the pages
    out = client.post("/logout", follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert "max-age=0" in out.headers["set-cookie"].lower()  # the browser forgets it
    client.cookies.clear()  # as the browser does on that answer
    again = client.get("/", follow_redirects=False)
    assert again.status_code in (303, 307) and again.headers["location"].startswith("/login")


def test_openapi_schema_lists_every_api_endpoint(client: TestClient, token: str) -> None:
    assert client.get("/openapi.json").status_code == 401
    schema = client.get("/openapi.json", headers=bearer(token)).json()
    paths = set(schema["paths"])
    assert {
        "/api/status",
        "/api/positions",
        "/api/orders",
        "/api/fills",
        "/api/equity",
        "/api/audit",
        "/api/report",
        "/api/control/{action}",
        "/metrics",
        "/health",
    } <= paths
    assert "ControlRequest" in schema["components"]["schemas"]


def test_plotly_is_served_locally(client: TestClient) -> None:
    r = client.get("/static/plotly.min.js")
    assert r.status_code == 200 and len(r.content) > 1_000_000 and b"plotly" in r.content[:2000].lower()


def test_report_endpoint_and_page_follow_the_latest_finished_run(
    client: TestClient, rt: Runtime, token: str
) -> None:
    assert client.get("/api/report", headers=bearer(token)).status_code == 404
    report = rt.data_dir / "reports" / "run-9"
    report.mkdir(parents=True)
    (report / "report.html").write_text("<html><body><h1 id='r'>the report</h1></body></html>")
    rt.store.start_run("run-9", "paper", "sim", "sample")
    rt.store.finish_run("run-9", "ok", {"signals": 2, "regime": "bull", "timings": {"x": 1}}, str(report))
    body = client.get("/api/report", headers=bearer(token)).json()
    assert body["run_id"] == "run-9" and body["summary"] == {"signals": 2, "regime": "bull"}
    client.cookies.set(COOKIE, token)
    assert "regime: bull" in client.get("/report").text
    assert "the report" in client.get("/report/html").text
    assert client.get("/api/status", headers=bearer(token)).json()["regime"] == "bull"


def test_the_dashboard_shows_a_daemon_killed_a_moment_ago_as_gone(
    client: TestClient, rt: Runtime, token: str
) -> None:
    """Hostile review: a fresh heartbeat with no process on the data folder (SIGKILL, OOM killer) is not
    a running daemon on the dashboard either (as in `joe status`); the folder's lock is the proof of life."""
    from datetime import UTC, datetime

    from joe.runtime.daemon import HEARTBEAT_KEY
    from joe.safety.lock import InstanceLock

    rt.store.set_state(HEARTBEAT_KEY, {"ts": datetime.now(UTC).isoformat(), "status": "running",
                                       "pid": 2**22 + 7, "mode": "paper", "every_s": 600})  # fmt: skip
    gone = client.get("/api/status", headers=bearer(token)).json()["daemon"]
    assert gone["running"] is False and gone["gone"] is True and gone["stale"] is True
    with InstanceLock.for_data_dir(rt.data_dir):
        alive = client.get("/api/status", headers=bearer(token)).json()["daemon"]
    assert alive["running"] is True and "gone" not in alive
