"""Error answers as the real service gives them (issue 18, review point 2).

* every error answer of an authenticated route carries the session's `CST` / `X-SECURITY-TOKEN`
  (the recorded 4xx answers do), whatever produced it: validation, the rate limit, or any error
  the fault plan injects (5xx, 429, a gateway HTML page);
* an unknown path is a 404 (before any session check), a known path with a method it does not
  answer a 405;
* a refused API key reaches the user as a clear `CapitalAuthError` ("API key rejected
  (error.invalid.api.key)", naming CAPITAL_API_KEY), never as an expired session, and never with the key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from joe.brokers.capital import CapitalAuthError, CapitalClient, Credentials, SessionExpired
from joe.brokers.capital.errors import is_session_error, map_error
from joe.core.events import NullAudit
from joe.simulators.capital import CapitalSimulator, SimLimits

from .test_wire_shapes import Wire, open_wire

ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/accounts", {}),
    ("GET", "/accounts/preferences", {}),
    ("PUT", "/accounts/preferences", {"json": {"hedgingMode": False}}),
    ("GET", "/history/activity", {}),
    ("GET", "/history/transactions", {}),
    ("GET", "/positions", {}),
    ("POST", "/positions", {"json": {"epic": "SILVER", "direction": "BUY", "size": 1}}),
    ("GET", "/positions/nope", {}),
    ("PUT", "/positions/nope", {"json": {}}),
    ("DELETE", "/positions/nope", {}),
    ("GET", "/workingorders", {}),
    (
        "POST",
        "/workingorders",
        {"json": {"epic": "SILVER", "direction": "BUY", "size": 1, "level": 1.0, "type": "LIMIT"}},
    ),
    ("PUT", "/workingorders/nope", {"json": {}}),
    ("DELETE", "/workingorders/nope", {}),
    ("GET", "/confirms/o_nope", {}),
    ("GET", "/markets", {}),
    ("GET", "/markets/SILVER", {}),
    ("GET", "/marketnavigation", {}),
    ("GET", "/prices/SILVER", {}),
    ("GET", "/clientsentiment/SILVER", {}),
    ("GET", "/watchlists", {}),
    ("GET", "/session", {}),
    ("GET", "/ping", {}),
]
FAULTS = [
    ("http_5xx", {"status": 500}),
    ("http_5xx", {"status": 503, "code": "error.service.unavailable"}),
    ("http_504_html", {}),
    ("http_429", {}),
]


@pytest.fixture
async def wire(sim: CapitalSimulator) -> AsyncIterator[Wire]:
    http, w = await open_wire(sim)
    yield w
    await http.aclose()


def carries_tokens(resp: Any, wire: Wire) -> bool:
    return bool(
        resp.headers.get("CST") == wire.headers["CST"]
        and resp.headers.get("X-SECURITY-TOKEN") == wire.headers["X-SECURITY-TOKEN"]
    )


@pytest.mark.parametrize(("fault", "params"), FAULTS, ids=[f"{f}-{p.get('status', '')}" for f, p in FAULTS])
async def test_every_injected_error_on_every_route_carries_the_tokens(
    sim: CapitalSimulator, wire: Wire, fault: str, params: dict[str, Any]
) -> None:
    for method, path, kw in ROUTES:
        sim.faults.arm(fault, 1, path=path, method=method, **params)
        resp = await wire.http.request(method, "/api/v1" + path, headers=wire.headers, **kw)
        assert resp.status_code >= 400 and sim.requests[-1].fault == fault, (method, path, resp.status_code)
        assert carries_tokens(resp, wire), (fault, method, path, dict(resp.headers))
        sim.faults.disarm(fault)


async def test_the_rate_limit_answer_carries_the_tokens(sim: CapitalSimulator, wire: Wire) -> None:
    sim.gate.limits = SimLimits(window_s=3600.0)  # 10 requests per hour: the 11th is refused, however slow
    statuses = []
    for _ in range(15):
        resp = await wire.http.get("/api/v1/accounts", headers=wire.headers)
        statuses.append(resp.status_code)
        if resp.status_code == 429:
            assert resp.json() == {"errorCode": "error.too-many.requests"}
            assert carries_tokens(resp, wire)
    assert 429 in statuses


async def test_validation_errors_on_every_route_carry_the_tokens(sim: CapitalSimulator, wire: Wire) -> None:
    bad = [
        ("GET", "/positions/nope", {}),
        ("POST", "/positions", {"json": {"epic": "SILVER", "direction": "UP", "size": 1}}),
        (
            "POST",
            "/workingorders",
            {"json": {"epic": "SILVER", "direction": "BUY", "size": 1, "level": 1.0001}},
        ),
        ("GET", "/prices/SILVER", {"params": {"max": "5000"}}),
        ("GET", "/marketnavigation/nope", {}),
        ("GET", "/history/activity", {"params": {"lastPeriod": "x"}}),
        ("PUT", "/accounts/preferences", {"json": {"leverages": {"SHARES": 7}}}),
        ("POST", "/markets", {}),  # a known path, a method it does not answer
    ]
    for method, path, kw in bad:
        resp = await wire.call(method, path, **kw)
        assert 400 <= resp.status_code < 500, (method, path, resp.status_code)
        assert carries_tokens(resp, wire), (method, path)


@pytest.mark.parametrize(
    "path", ["/nothing", "/positionz", "/fault", "/pipeline", "/confirm_delay", "/", "/api"]
)
async def test_unknown_paths_are_404_with_or_without_a_session(
    sim: CapitalSimulator, wire: Wire, path: str
) -> None:
    for headers in (wire.headers, {}):
        resp = await wire.http.get("/api/v1" + path, headers=headers)
        assert (resp.status_code, resp.json()) == (404, {"errorCode": "error.not-found.path"}), path
    assert sim.internal_errors == []


async def test_a_known_path_with_a_wrong_method_is_405(wire: Wire) -> None:
    for method, path in (
        ("POST", "/markets"),
        ("DELETE", "/prices/SILVER"),
        ("PUT", "/confirms/x"),
        ("POST", "/history/activity"),
    ):
        resp = await wire.call(method, path)
        assert (resp.status_code, resp.json()) == (405, {"errorCode": "error.method"}), (method, path)


# ------------------------------------------------------------------ the client's words for a bad key
@pytest.mark.parametrize("encrypted", [False, True])
async def test_a_wrong_api_key_is_reported_as_such(sim: CapitalSimulator, encrypted: bool) -> None:
    key = "wrong-key-3f9a1c"
    client = CapitalClient(
        sim.url, Credentials(key, sim.login.identifier, sim.login.password, encrypted), audit=NullAudit()
    )
    try:
        with pytest.raises(CapitalAuthError) as info:
            await client.open()
    finally:
        await client.close()
    err = info.value
    assert not isinstance(err, SessionExpired)
    assert err.code == "error.invalid.api.key"
    assert "API key rejected (error.invalid.api.key" in str(err) and "CAPITAL_API_KEY" in str(err)
    assert key not in str(err) and sim.login.password not in str(err)


async def test_a_wrong_password_names_identifier_and_password(sim: CapitalSimulator) -> None:
    client = CapitalClient(
        sim.url, Credentials(sim.login.api_key, sim.login.identifier, "nope", False), audit=NullAudit()
    )
    try:
        with pytest.raises(CapitalAuthError) as info:
            await client.open()
    finally:
        await client.close()
    assert "error.invalid.details" in str(info.value)
    assert "CAPITAL_IDENTIFIER" in str(info.value) and "CAPITAL_PASSWORD" in str(info.value)


@pytest.mark.parametrize(
    ("status", "body", "login"),
    [
        (401, b'{"errorCode": "error.invalid.api.key"}', False),  # a key revoked mid-session
        (403, b'{"errorCode": "error.invalid.api.key"}', True),
        (401, b'{"errorCode": "error.security.api-key-invalid"}', False),
        (401, b'{"errorCode": "error.invalid.apikey"}', True),
        (401, b"", True),  # a login refused without a body
        (403, b"<html>Forbidden</html>", True),
        (401, b'{"errorCode": "error.invalid.details"}', True),
    ],
)
def test_credential_answers_are_auth_errors_not_expired_sessions(
    status: int, body: bytes, login: bool
) -> None:
    err = map_error(status, body, path="/session", login=login)
    assert isinstance(err, CapitalAuthError) and not isinstance(err, SessionExpired), (type(err), str(err))
    assert "check CAPITAL_" in str(err)
    assert not err.code or not is_session_error(status, err.code)  # never "fixed" by a re-login loop


def test_session_answers_stay_session_errors() -> None:
    assert isinstance(
        map_error(401, b'{"errorCode": "error.invalid.session.token"}', path="/positions"), SessionExpired
    )
    assert isinstance(map_error(401, b"", path="/positions"), SessionExpired)
