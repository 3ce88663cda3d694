"""Which broker endpoints a mode may use: IBKR account ↔ port agreement, Capital.com host allow-lists.

Pure functions, no I/O; `joe.config.mode` turns their verdicts into the `endpoint` gate.

IBKR (TWS / IB Gateway defaults): 7496 / 4001 serve the real-money login, 7497 / 4002 the paper
login; 4003 / 4004 are the relays the IB Gateway docker image (``ghcr.io/gnzsnz/ib-gateway``, the one
``deploy/docker-compose.yml`` runs) puts in front of its live / paper API ports. Paper accounts are the
`DU…` (individual) and `DF…` (advisor) ids IBKR gives paper logins. The account must agree with the
port; a non-standard port (a tunnel, another relay) is accepted only for a paper account, because
nothing else tells us what is behind it.

A port never says "simulator" (review r16, defect 4): Joe's IBKR simulator identifies itself on the
wire — among its start-up data-farm notices it announces the farm `IBKR_SIMULATOR_FARM` — and the
connection records it (`IBKRConnection.simulator`, audited in ``ibkr.connected`` and the run's
``run.venue``). The demo-live record counts only runs whose connection was not the simulator. The
Capital.com simulator is recognised by its loopback URLs (a real Capital.com host is never loopback).

Capital.com: the REST and streaming hosts must be on the allow-list of the chosen environment
(demo, live) or be a loopback address (the local simulator, demo only). Hosts are compared exactly
after lower-casing: a trailing dot, a userinfo part, another scheme or a look-alike is refused.
Source: issue 10 "Gates that cannot be fooled"; hosts from `joe.brokers.capital.endpoints` and the
wire specs (`../shared/specs/`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

IBKR_LIVE_PORTS = frozenset({7496, 4001, 4003})  # 4003: the gateway image's relay of 4001
IBKR_PAPER_PORTS = frozenset({7497, 4002, 4004})  # 4004: the gateway image's relay of 4002
# The data farm Joe's IBKR simulator announces at start-up (notice 2104 "...is OK:joe-simulator"); no
# real TWS / IB Gateway has a farm by that name.
IBKR_SIMULATOR_FARM = "joe-simulator"
IBKR_PAPER_PREFIXES = ("DU", "DF")

CAPITAL_REST_HOSTS = {
    "demo": frozenset({"demo-api-capital.backend-capital.com"}),
    "live": frozenset({"api-capital.backend-capital.com"}),
}
CAPITAL_STREAM_HOSTS = {
    "demo": frozenset(
        {"api-streaming-capital.backend-capital.com", "demo-api-streaming-capital.backend-capital.com"}
    ),
    "live": frozenset({"api-streaming-capital.backend-capital.com"}),
}
_SCHEMES = {"rest": ("https",), "stream": ("wss",)}
_LOOPBACK_SCHEMES = {"rest": ("http", "https"), "stream": ("ws", "wss")}


@dataclass(frozen=True, slots=True)
class EndpointVerdict:
    """Whether the endpoint may be used, whether it is real money, and why (safe to print)."""

    ok: bool
    real_money: bool
    detail: str
    simulator: bool = False


def is_ibkr_simulator_notice(req_id: int, code: int, message: str) -> bool:
    """True for the start-up notice by which Joe's IBKR simulator identifies itself."""
    return req_id == -1 and code == 2104 and message.rsplit(":", 1)[-1].strip() == IBKR_SIMULATOR_FARM


def is_ibkr_paper_account(account: str) -> bool:
    """True for an IBKR paper login's account id (`DU…`, `DF…`)."""
    return account.strip().upper().startswith(IBKR_PAPER_PREFIXES)


def ibkr_endpoint(port: int | None, account: str) -> EndpointVerdict:
    """The IBKR port/account verdict. `real_money` is True only for a live port with a live account."""
    acct = account.strip()
    paper_acct = is_ibkr_paper_account(acct)
    kind = "paper account" if paper_acct else "live account"
    shown = f"{acct[:2]}…" if acct else "(none)"
    if port in IBKR_LIVE_PORTS:
        if paper_acct:
            return EndpointVerdict(
                False,
                False,
                f"IBKR port {port} is a REAL-MONEY port but IBKR_ACCOUNT {shown} is a paper account: "
                "contradictory (use 7497/4002/4004 for a paper account)",
            )
        return EndpointVerdict(True, True, f"IBKR port {port}, {kind} {shown}: REAL MONEY")
    if port in IBKR_PAPER_PORTS:
        if acct and not paper_acct:
            return EndpointVerdict(
                False,
                False,
                f"IBKR port {port} is a paper port but IBKR_ACCOUNT {shown} is not a paper (DU…/DF…) "
                "account: contradictory",
            )
        return EndpointVerdict(
            True, False, f"IBKR port {port}, {kind} {shown}: IBKR paper account, no real money"
        )
    if paper_acct:
        return EndpointVerdict(
            True,
            False,
            f"IBKR port {port} is not a standard TWS/Gateway port (a tunnel or relay): allowed only "
            f"because IBKR_ACCOUNT {shown} is a paper account; no real money",
        )
    return EndpointVerdict(
        False,
        False,
        f"IBKR port {port} is neither a paper (7497/4002/4004) nor a live (7496/4001/4003) port, and "
        "IBKR_ACCOUNT "
        f"{shown} is not a paper (DU…/DF…) account: contradictory",
    )


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1): the dashboard binds, simulators."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(url: str, what: str, env: str, var: str) -> tuple[bool, bool, str]:
    """(allowed, loopback, why) for one configured Capital.com URL."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        _ = parts.port  # a malformed port raises ValueError
    except ValueError as exc:
        return False, False, f"{var} cannot be parsed ({exc})"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return False, False, f"{var} carries a user/password part: refused"
    if not host:
        return False, False, f"{var} has no host"
    if is_loopback(host):
        if parts.scheme not in _LOOPBACK_SCHEMES[what]:
            return False, True, f"{var} scheme {parts.scheme!r} is not one of {_LOOPBACK_SCHEMES[what]}"
        return True, True, f"{var} is the local simulator ({host})"
    allowed = (CAPITAL_REST_HOSTS if what == "rest" else CAPITAL_STREAM_HOSTS)[env]
    if host not in allowed:
        return (
            False,
            False,
            f"{var} host {host!r} is not on the Capital.com {env} allow-list {sorted(allowed)}",
        )
    if parts.scheme not in _SCHEMES[what]:
        return False, False, f"{var} must use {_SCHEMES[what][0]}://, not {parts.scheme!r}"
    return True, False, f"{var} host {host} ({env})"


def capital_endpoint(demo: bool, api_url: str | None, stream_url: str | None) -> EndpointVerdict:
    """The Capital.com verdict: every configured URL on the allow-list of `demo`'s environment.

    `real_money` is True only with `demo=False` and both URLs on the live allow-list (or unset).
    """
    env = "demo" if demo else "live"
    details: list[str] = []
    loopback: list[bool] = []
    for what, url, var in (
        ("rest", api_url, "CAPITAL_API_URL"),
        ("stream", stream_url, "CAPITAL_STREAM_URL"),
    ):
        if url is None or not url.strip():
            continue
        ok, lo, why = _check_url(url, what, env, var)
        if not ok:
            other = "live" if demo else "demo"
            if not lo and _check_url(url, what, other, var)[0]:
                why = f"CAPITAL_DEMO is {str(demo).lower()} but {var} is the {other} host: contradictory"
            return EndpointVerdict(False, False, why)
        details.append(why)
        loopback.append(lo)
    if loopback and any(loopback) and not all(loopback):
        return EndpointVerdict(
            False, False, "CAPITAL_API_URL and CAPITAL_STREAM_URL mix the local simulator and a real host"
        )
    sim = bool(loopback) and all(loopback)
    if sim and not demo:
        return EndpointVerdict(
            False,
            False,
            "CAPITAL_DEMO is false (real money) but the URLs point at the local simulator: contradictory",
        )
    where = "; ".join(details) or "default hosts"
    if demo:
        return EndpointVerdict(
            True, False, f"Capital.com demo account ({where}), no real money", simulator=sim
        )
    return EndpointVerdict(True, True, f"Capital.com REAL-MONEY account (CAPITAL_DEMO=false; {where})")
