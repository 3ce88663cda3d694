"""The dashboard against a hostile caller: bad input to every API filter and to the controls form is a
422/refusal naming the field (never an empty answer that reads as "nothing there", never a bypass of the
API's limits), and a flood of wrong tokens is counted without flooding the audit log."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from joe.runtime.bootstrap import Runtime
from joe.safety.control import SafetyContext
from joe.safety.trading_state import TradingState
from joe.web.app import create_app
from joe.web.auth import AUDIT_BURST, AUDIT_WINDOW_S, COOKIE, csrf_value

from .conftest import audit_text


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/orders?mode=papr", "mode"),
        ("/api/orders?state=FILED", "state"),
        ("/api/orders?symbol=" + "A" * 100, "symbol"),
        ("/api/orders?symbol=%3Cscript%3E", "symbol"),
        ("/api/orders?broker=IBKR;drop", "broker"),
        ("/api/fills?mode=LIVE!", "mode"),
        ("/api/equity?mode=everything", "mode"),
        ("/api/audit?n=0", "n"),
        ("/api/audit?n=100000", "n"),
        ("/api/audit?n=ten", "n"),
    ],
)
def test_a_bad_api_filter_is_a_422_naming_it(client: TestClient, token: str, path: str, field: str) -> None:
    r = client.get(path, headers=bearer(token))
    assert r.status_code == 422, r.text
    assert field in r.text


def test_good_filters_still_answer(client: TestClient, token: str) -> None:
    good = ["/api/orders?mode=live&state=working&symbol=AAPL&broker=ibkr", "/api/orders?state=filled",
            "/api/fills?mode=paper&symbol=BRK.B", "/api/equity?mode=shadow", "/api/audit?n=1000"]  # fmt: skip
    for path in good:
        assert client.get(path, headers=bearer(token)).status_code == 200, path


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({"action": "halt", "reason": "x" * 501, "confirm": "HALT"}, "reason"),
        ({"action": "halt", "reason": "abc", "confirm": "HALT"}, "reason"),
        ({"action": "halt", "reason": "a fine reason", "confirm": "halt"}, "HALT"),
        ({"action": "flatten", "reason": "a fine reason", "confirm": "HALT"}, "FLATTEN"),
    ],
)
def test_the_controls_form_has_the_apis_limits(
    client: TestClient, rt: Runtime, token: str, form: dict[str, str], says: str
) -> None:
    client.cookies.set(COOKIE, token)
    r = client.post("/controls", data={**form, "csrf": csrf_value(token)})
    assert r.status_code == 200 and says in r.text
    assert SafetyContext.from_runtime(rt).states.current().state is TradingState.ACTIVE
    assert '"safety.kill"' not in audit_text(rt)


def test_unknown_actions_and_bodies_are_refused(client: TestClient, rt: Runtime, token: str) -> None:
    assert client.post("/api/control/liquidate", json={"reason": "a reason", "confirm": "LIQUIDATE"},
                       headers=bearer(token)).status_code == 422  # fmt: skip
    assert client.post("/api/control/halt", content=b"not json", headers=bearer(token)).status_code == 422
    no_confirm = {"reason": "no confirm"}
    assert client.post("/api/control/halt", json=no_confirm, headers=bearer(token)).status_code == 422
    assert SafetyContext.from_runtime(rt).states.current().state is TradingState.ACTIVE


def test_a_wrong_token_flood_is_counted_not_written_one_by_one(rt: Runtime, token: str) -> None:
    now = [0.0]
    app = create_app(rt, token)
    app.state.auth.throttle.monotonic = lambda: now[0]
    with TestClient(app, base_url="http://127.0.0.1") as c:
        for _ in range(AUDIT_BURST + 30):
            assert c.get("/api/status", headers=bearer("wrong-" * 4)).status_code == 401
        records = [json.loads(x) for x in audit_text(rt).splitlines()]
        assert len([r for r in records if r["event"] == "web.auth_failed"]) == AUDIT_BURST
        now[0] += AUDIT_WINDOW_S
        assert c.get("/api/status", headers=bearer("wrong-" * 4)).status_code == 401
        assert c.get("/api/status", headers=bearer(token)).status_code == 200  # the real one still works
    failed = [json.loads(x) for x in audit_text(rt).splitlines() if '"web.auth_failed"' in x]
    assert len(failed) == AUDIT_BURST + 1 and failed[-1]["payload"]["suppressed"] == 30
    assert "wrong-wrong" not in audit_text(rt)


@pytest.mark.parametrize("path", ["/", "/controls", "/api/status", "/login", "/health", "/metrics"])
def test_every_answer_refuses_framing_and_caching(client: TestClient, token: str, path: str) -> None:
    for headers in ({}, bearer(token)):
        r = client.get(path, headers=headers, follow_redirects=False)
        assert r.headers["x-frame-options"] == "SAMEORIGIN"  # the report page frames its own report
        assert "frame-ancestors 'self'" in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"


def test_a_flatten_left_for_this_very_daemon_says_so(
    client: TestClient, rt: Runtime, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served by `joe daemon --web`, the Joe holding the data folder is this process: the 423 must not
    advise stopping "the other Joe"; when another process holds it, its refusal is passed on as is."""
    import joe.safety.operator as operator
    from joe.safety.kill_switch import KillLevel
    from joe.safety.lock import InstanceLock
    from joe.web.controls import IN_DAEMON_FLATTEN

    refusal = "another Joe is running on data (pid 1): stop it (SIGTERM) and run `joe kill --flatten` again"

    async def left_pending(
        rt_: Runtime, ctx: SafetyContext, level: KillLevel, *, reason: str, by: str
    ) -> Any:
        rec = operator.kill(ctx, level, reason=reason, by=by)
        return operator.KillOutcome(rec, level, "live", {"error": refusal, "transmitted": False}, 3,
                                    [f"Broker flatten refused: {refusal}"])  # fmt: skip

    monkeypatch.setattr(operator, "pull_kill_switch_async", left_pending)
    body = {"reason": "get out now", "confirm": "FLATTEN"}
    other = client.post("/api/control/flatten", json=body, headers=bearer(token))
    assert other.status_code == 423 and other.json()["errors"] == [f"Broker flatten refused: {refusal}"]
    import joe.safety.halt_enforcer as halt_enforcer

    with InstanceLock.for_data_dir(rt.data_dir):  # this process holds it, but runs no order managers
        shell = client.post("/api/control/flatten", json=body, headers=bearer(token))
    assert shell.status_code == 423 and shell.json()["errors"] == [f"Broker flatten refused: {refusal}"]
    # As `joe daemon --web`: this process holds the data folder AND runs a HaltEnforcer with order managers.
    enforcer = halt_enforcer.HaltEnforcer(SafetyContext.from_runtime(rt), [object()])  # type: ignore[list-item]
    halt_enforcer._installed.add(enforcer)
    try:
        with InstanceLock.for_data_dir(rt.data_dir):
            ours = client.post("/api/control/flatten", json=body, headers=bearer(token))
    finally:
        halt_enforcer._installed.discard(enforcer)
    assert ours.status_code == 423
    assert ours.json()["errors"] == [IN_DAEMON_FLATTEN]
    assert ours.json()["flatten"]["error"] == IN_DAEMON_FLATTEN
