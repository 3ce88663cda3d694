"""`joe doctor`'s network checks: the broker (endpoint agrees with port/account/mode, reachable, the
account is the login's) and the clock against the broker's server time (IBKR ``reqCurrentTime``,
Capital.com ``GET /time``), and the alert channels (Telegram ``getMe``, Discord webhook ``GET``).

The broker is reached through the same client code a run uses (ib_async's `IBKRConnection`, the
Capital.com `CapitalClient`). IBKR is asked with the configured clientId + `DOCTOR_CLIENT_ID_OFFSET`,
so the doctor never collides with a running daemon's clientId (TWS refuses a second connection
with the same id).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from joe.cli.doctor_checks import Check, fail, ok, warn

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime

Clock = Callable[[], datetime]
DOCTOR_CLIENT_ID_OFFSET = 900
#: Above this the clock is WARNed: two seconds is far beyond NTP's usual error.
SKEW_WARN_S = 2.0


def skew_check(
    broker: str, server: datetime, t0: datetime, t1: datetime, fail_s: float, res_s: float
) -> Check:
    """Compare the broker's `server` time with the local clock read before (`t0`) and after (`t1`) the
    request. `res_s` is the server's resolution (IBKR answers in whole seconds), forgiven; `fail_s` is
    the stale-quote limit (`risk.max_quote_age_s`): past it every quote age Joe measures is wrong."""
    local_mid = t0 + (t1 - t0) / 2
    skew = (server - local_mid).total_seconds()
    slack = res_s + (t1 - t0).total_seconds() / 2
    excess = max(0.0, abs(skew) - slack)
    detail = (
        f"local clock {'behind' if skew > 0 else 'ahead of'} {broker}'s server time by {abs(skew):.1f} s "
        f"(round trip {(t1 - t0).total_seconds() * 1000:.0f} ms)"
    )
    fix = "synchronise the clock (systemd-timesyncd / chrony / `timedatectl set-ntp true`)"
    if excess > fail_s:
        return fail("clock", detail + f": beyond the {fail_s:g} s stale-quote limit", fix)
    if excess > SKEW_WARN_S:
        return warn("clock", detail, fix)
    return ok("clock", detail)


async def broker_checks(rt: Runtime, clock: Clock, timeout_s: float = 10.0) -> list[Check]:
    """[endpoint, broker, clock] for the configured broker (`JOE_BROKER` / `--broker`)."""
    broker = rt.settings.broker
    if broker == "ibkr":
        return await _ibkr(rt, clock, timeout_s)
    if broker == "capital":
        return await _capital(rt, clock, timeout_s)
    return [ok("broker", "sim: paper on local data, no broker to reach")]


async def _ibkr(rt: Runtime, clock: Clock, timeout_s: float) -> list[Check]:
    from joe.brokers.base import BrokerError, BrokerUnavailable
    from joe.brokers.ibkr.connection import IBKRConnection
    from joe.brokers.ibkr.ports import PortModeMismatch, check_port
    from joe.config.endpoints import ibkr_endpoint

    s, cfg = rt.settings, rt.config.brokers.ibkr
    host = s.ibkr_host or cfg.host
    port = s.ibkr_port if s.ibkr_port is not None else cfg.port
    account = s.ibkr_account or cfg.account
    client_id = (
        s.ibkr_client_id if s.ibkr_client_id is not None else cfg.client_id
    ) + DOCTOR_CLIENT_ID_OFFSET
    out: list[Check] = []
    try:
        check_port(port, rt.mode)
    except PortModeMismatch as exc:
        return [
            fail("endpoint", str(exc), "set IBKR_PORT to the paper port, or TRADING_MODE=live deliberately")
        ]
    verdict = ibkr_endpoint(port, account) if account else None
    if verdict is not None and not verdict.ok:
        out.append(fail("endpoint", verdict.detail, "make IBKR_PORT and IBKR_ACCOUNT agree (`joe mode`)"))
    conn = IBKRConnection(
        host, port, client_id, account, rt.mode, rt.audit, connect_timeout=min(timeout_s, 10)
    )
    try:
        try:
            await conn.connect()
        except BrokerUnavailable as exc:
            out.append(
                fail(
                    "broker",
                    f"IBKR at {host}:{port} not reachable: {exc}",
                    "start TWS / IB Gateway (or `joe sim ibkr`), enable its API socket on that port and "
                    "allow 127.0.0.1 as a trusted IP",
                )
            )
            return out
        except BrokerError as exc:
            out.append(fail("account", str(exc), "set IBKR_ACCOUNT to an account this TWS login manages"))
            return out
        managed = conn.ib.managedAccounts()
        if verdict is None:  # no account configured: judge the one the login gives
            verdict = ibkr_endpoint(port, conn.account)
            if not verdict.ok:
                out.append(fail("endpoint", verdict.detail, "log TWS into the account matching the port"))
        if verdict.ok:
            note = "" if account else " (IBKR_ACCOUNT unset: the login's first account)"
            out.append(ok("endpoint", f"{verdict.detail}; mode {rt.mode}{note}"))
        from joe.config.mode import mask_account

        out.append(
            ok("account", f"{mask_account(conn.account)}: managed by this TWS login ({len(managed)} in all)")
        )
        sv = conn.ib.client.serverVersion()
        out.append(
            ok("broker", f"IBKR {host}:{port} reachable, server version {sv}, {len(managed)} account(s)")
        )
        t0 = clock()
        server = await conn.ib.reqCurrentTimeAsync()
        t1 = clock()
        server = server if server.tzinfo else server.replace(tzinfo=UTC)
        out.append(skew_check("IBKR", server, t0, t1, rt.config.risk.max_quote_age_s, res_s=1.0))
    except Exception as exc:
        out.append(fail("broker", f"IBKR check failed: {type(exc).__name__}: {exc}", "see the audit log"))
    finally:
        await conn.close()
    return out


async def _capital(rt: Runtime, clock: Clock, timeout_s: float) -> list[Check]:
    from joe.brokers.capital.accounts import AccountsApi
    from joe.config.endpoints import capital_endpoint
    from joe.runtime.broker_capital import capital_credentials, open_capital_from_settings

    s, cfg = rt.settings, rt.config.brokers.capital
    demo = cfg.demo if s.capital_demo is None else bool(s.capital_demo)
    verdict = capital_endpoint(demo, s.capital_api_url, s.capital_stream_url)
    out: list[Check] = []
    if not verdict.ok:
        return [fail("endpoint", verdict.detail, "fix CAPITAL_API_URL / CAPITAL_STREAM_URL / CAPITAL_DEMO")]
    if not demo and rt.mode != "live":
        return [
            fail(
                "endpoint",
                f"CAPITAL_DEMO=false selects real money but the mode is {rt.mode}: Joe would use the demo "
                "environment",
                "set CAPITAL_DEMO=true for paper/shadow, or pass every live gate (`joe mode`)",
            )
        ]
    out.append(ok("endpoint", f"{verdict.detail}; mode {rt.mode}"))
    key, ident, pw = capital_credentials(rt)
    if not (key and ident and pw):
        out.append(
            fail("broker", "cannot log in: credentials missing (see the credentials line)", "set them")
        )
        return out
    try:
        client, _md, _ex = await open_capital_from_settings(rt, timeout_s=timeout_s)
    except Exception as exc:
        out.append(
            fail(
                "broker",
                f"Capital.com login failed: {type(exc).__name__}: {exc}",
                "check the API key, identifier and password (a demo key needs CAPITAL_DEMO=true), and that "
                "CAPITAL_API_URL is reachable",
            )
        )
        return out
    try:
        out.append(
            ok("broker", f"Capital.com {client.api_url} reachable, account {client.session.account_id}")
        )
        out.append(ok("account", f"{client.session.account_id}: the logged-in session's account"))
        t0 = clock()
        ms = await AccountsApi(client).server_time()
        t1 = clock()
        server = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
        out.append(skew_check("Capital.com", server, t0, t1, rt.config.risk.max_quote_age_s, res_s=0.0))
    except Exception as exc:
        out.append(
            fail("broker", f"Capital.com check failed: {type(exc).__name__}: {exc}", "see the audit log")
        )
    finally:
        await client.close()
    return out


def _json_object(r: Any) -> dict[str, Any]:
    """The response's JSON object, or {} when it is not JSON or not an object (a proxy's HTML page)."""
    try:
        body = r.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def alert_checks(rt: Runtime, timeout_s: float = 10.0) -> list[Check]:
    """Telegram `getMe` and Discord webhook `GET`, for each configured channel."""
    import httpx

    from joe.config.settings import secret_value
    from joe.reporting.alerts.telegram import TELEGRAM_API

    s = rt.settings
    token = secret_value(s.telegram_bot_token)
    hook = secret_value(s.discord_webhook_url)
    if not token and not hook:
        return [
            warn(
                "alerts",
                "no alert channel configured: alerts go to the log only",
                "set TELEGRAM_BOT_TOKEN + TELEGRAM_CHAT_ID and/or DISCORD_WEBHOOK_URL",
            )
        ]
    out: list[Check] = []
    async with httpx.AsyncClient(timeout=timeout_s) as http:
        if token:
            base = (s.telegram_api_url or TELEGRAM_API).rstrip("/")
            try:
                r = await http.get(f"{base}/bot{token}/getMe")
                body = _json_object(r)
                result = body.get("result")
                if r.is_success and body.get("ok") is True and isinstance(result, dict):
                    name = str(result.get("username", "?"))[:64]
                    if s.telegram_chat_id:
                        out.append(ok("alerts.telegram", f"Telegram bot @{name} reachable"))
                    else:
                        out.append(
                            warn(
                                "alerts.telegram",
                                f"Telegram bot @{name} reachable; TELEGRAM_CHAT_ID unset: nowhere to post",
                                "set TELEGRAM_CHAT_ID",
                            )
                        )
                else:
                    what = "" if body else " (not a Bot API answer: a proxy or captive portal?)"
                    out.append(
                        fail(
                            "alerts.telegram",
                            f"getMe answered HTTP {r.status_code}{what}",
                            "check TELEGRAM_BOT_TOKEN (from @BotFather)",
                        )
                    )
            except httpx.HTTPError as exc:
                out.append(
                    fail(
                        "alerts.telegram",
                        f"unreachable: {type(exc).__name__}",
                        "check the network / TELEGRAM_API_URL",
                    )
                )
        if hook:
            try:
                r = await http.get(hook)
                if r.is_success:
                    out.append(ok("alerts.discord", "Discord webhook reachable"))
                else:
                    out.append(
                        fail(
                            "alerts.discord",
                            f"webhook answered HTTP {r.status_code}",
                            "check DISCORD_WEBHOOK_URL (the webhook may have been deleted)",
                        )
                    )
            except httpx.HTTPError as exc:
                out.append(fail("alerts.discord", f"unreachable: {type(exc).__name__}", "check the network"))
    return out
