"""Session lifecycle: login (plain and encrypted), token adoption, expiry → re-login, keep-alive,
login rate limit, account switch, and audit records free of secrets."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest

from idle_clock import IdleClock
from joe.brokers.capital import CapitalAuthError, SessionExpired
from joe.brokers.capital.accounts import AccountsApi
from joe.brokers.capital.markets import MarketsApi
from joe.core.events import NullAudit
from joe.simulators.capital import CapitalSimulator, SimLimits
from joe.simulators.capital import server as sim_server

from .conftest import make_client


@pytest.mark.parametrize("encrypted", [False, True])
async def test_login_plain_and_encrypted(sim: CapitalSimulator, encrypted: bool) -> None:
    c = make_client(sim, encrypted=encrypted)
    await c.open()
    try:
        assert c.session.active
        assert c.session.account_id == "12345678901234567"
        login = [r for r in sim.requests if r.path == "/session" and r.method == "POST"][-1]
        assert login.body["encryptedPassword"] is encrypted
        assert (login.body["password"] == sim.login.password) is (not encrypted)
        assert not login.auth["cst"] and not login.auth["xst"]  # never stale tokens on login
        assert await AccountsApi(c).ping() == "OK"
    finally:
        await c.close()


async def test_bad_credentials_are_typed_and_not_retried(sim: CapitalSimulator) -> None:
    c = make_client(sim)
    sim.login.password = "something-else"
    with pytest.raises(CapitalAuthError):
        await c.open()
    await c.close()
    assert sim.count("/session", method="POST") == 1


async def test_expiry_mid_run_relogs_and_run_completes(sim: CapitalSimulator, client) -> None:  # type: ignore[no-untyped-def]
    markets = MarketsApi(client)
    first = client.session.cst
    results = []
    for i in range(6):
        if i == 2:
            sim.faults.arm("session_invalidate", 1)
        if i == 4:
            for s in sim.gate.sessions.values():
                s.last_used -= 601  # idle for longer than the 10-minute expiry
        results.append(len(await markets.sentiment(["GOLD", "SILVER"])))
    assert results == [2] * 6
    assert client.logins == 3
    assert client.session.cst != first
    assert sim.count("/clientsentiment", status=401) == 2


async def test_write_is_not_retried_after_session_error(sim: CapitalSimulator, client) -> None:  # type: ignore[no-untyped-def]
    sim.faults.arm("session_invalidate", 1, path="/watchlists", method="POST")
    with pytest.raises(SessionExpired) as info:
        await client.request("POST", "/watchlists", json_body={"name": "x"})
    assert info.value.relogged
    assert sim.count("/watchlists", method="POST") == 1
    assert client.session.active  # already logged in again for the caller's decision


async def test_concurrent_expiry_gives_one_relogin_within_login_limit(sim: CapitalSimulator, client) -> None:  # type: ignore[no-untyped-def]
    markets = MarketsApi(client)
    sim.gate.invalidate_all()
    out = await asyncio.gather(*(markets.sentiment_one(e) for e in ["GOLD", "SILVER", "US500", "EURUSD"]))
    assert len(out) == 4
    assert client.logins == 2
    assert sim.count("/session", status=429) == 0


async def test_login_rate_limit_respected_on_repeated_logins(sim: CapitalSimulator) -> None:
    c = make_client(sim)
    for _ in range(5):
        await c.login()
    logins = [r.ts for r in sim.requests if r.path == "/session" and r.method == "POST"]
    assert len(logins) == 5
    assert sim.count("/session", status=429) == 0
    spacing = SimLimits().scaled(10).login_spacing_s
    assert all(b - a >= spacing * 0.95 for a, b in itertools.pairwise(logins))
    await c.close()


async def test_server_429_on_login_is_backed_off(sim: CapitalSimulator) -> None:
    sim.faults.arm("http_429", 2, path="/session", method="POST")
    c = make_client(sim)
    await c.open()
    assert c.session.active
    assert sim.count("/session", status=429) == 2
    await c.close()


async def test_keepalive_pings_keep_an_idle_session(
    sim: CapitalSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.gate.idle_s = 0.3
    c = make_client(sim, keepalive_s=0.1)
    await c.open()
    # Idle longer than the server's idle expiry, on the simulator's clock moved with the pings (a pause of
    # the wall clock between two pings expired the session: tests/idle_clock.py).
    idle = IdleClock(monkeypatch, sim_server)
    await idle.run_past(0.3, lambda: any(s.last_used == idle.now for s in sim.gate.sessions.values()))
    await AccountsApi(c).accounts()
    assert c.logins == 1
    assert sim.count("/ping") >= 2
    await c.close()


async def test_refreshed_tokens_are_adopted(sim: CapitalSimulator, client) -> None:  # type: ignore[no-untyped-def]
    old = client.tokens
    sim.faults.arm("rotate_tokens", 1)
    await AccountsApi(client).accounts()  # answered with new tokens in the headers
    assert client.tokens != old
    sim.gate.aliases.clear()  # the old pair is dead from now on
    await AccountsApi(client).accounts()
    assert client.logins == 1


async def test_account_switch(sim: CapitalSimulator, client) -> None:  # type: ignore[no-untyped-def]
    await client.switch_account("12345678901234568")
    acc = await AccountsApi(client).current_account()
    assert acc.accountId == "12345678901234568"
    assert (await AccountsApi(client).session_details()).accountId == "12345678901234568"


async def test_wanted_account_survives_relogin(sim: CapitalSimulator, audit: NullAudit) -> None:
    c = make_client(sim, audit=audit, account_id="12345678901234568")
    await c.open()
    sim.gate.invalidate_all()
    acc = await AccountsApi(c).session_details()
    assert acc.accountId == "12345678901234568"
    await c.close()


async def test_audit_has_no_secrets(sim: CapitalSimulator, client, audit: NullAudit) -> None:  # type: ignore[no-untyped-def]
    await client.request("POST", "/watchlists", json_body={"name": "w", "epics": ["GOLD"]})
    await AccountsApi(client).accounts()
    secrets_ = [sim.login.api_key, sim.login.password, *client.tokens]
    text = json.dumps([r for r in audit.records], default=str)
    assert audit.records and "capital.request" in {r[0] for r in audit.records}
    for secret in secrets_:
        assert secret not in text
