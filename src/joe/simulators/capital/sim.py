"""`CapitalSimulator`: a loopback Capital.com (REST + WebSocket on one port) for tests and demos.

Usage::

    sim = CapitalSimulator(seed=7)          # port 0 = a free port
    await sim.start()
    ... sim.url, sim.stream_url, sim.login, sim.faults.arm("http_504_html", path="/positions") ...
    await sim.stop()

Faults (armed on `sim.faults` or via `POST /_sim/faults {"name", "count", "skip", "params"}`);
`path` / `method` params restrict a REST fault to matching requests (path without `/api/v1`):

* `latency` (seconds) — sleep before handling;  `delay_response` (seconds) — handle, then sleep
  (an order is executed although the client times out);
* `http_5xx` (status, code) — JSON error;  `http_504_html` — gateway HTML page;  `http_429`;
* `garbage` (kind = invalid_json | html | missing_fields | wrong_types) — a 200 with a bad body,
  after the request was processed;
* `session_invalidate` — every session dies before this request;
* `rotate_tokens` — new CST / X-SECURITY-TOKEN for every session, returned on this answer;
* `confirm_delay` (polls) — the next order's confirm answers 404 `polls` times first;
* `ws_drop` — abort one subscribed WebSocket;  `ws_garble` — send it a truncated frame;
* `stale_quotes` (epics, seconds) — stop quoting those epics for a while.

Time: every timestamp and every price step comes from `clock` (a `SimClock`; default: the wall
clock). Prices are a function of (seed, clock): the pump moves each market to step
`floor((clock() - start) / tick_s)`, so a frozen clock (`SimClock.frozen()`) freezes prices until the
test advances it. Trading semantics (hedging vs netting, the account owner's own trades made on the
platform) are set with `set_hedging` and `manual_trade` / `manual_close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from joe.simulators.capital.catalog import CATALOG
from joe.simulators.capital.exchange import Exchange
from joe.simulators.capital.gate import Gate, Login, SimLimits
from joe.simulators.capital.path import daily_vol
from joe.simulators.capital.server import RecordedRequest, RestApi
from joe.simulators.capital.stream import StreamHub
from joe.simulators.capital.views import HistoryStore
from joe.simulators.capital.watchlists import Watchlists
from joe.simulators.common import FaultPlan, SimClock


class CapitalSimulator:
    """A seeded, fault-injectable Capital.com server on 127.0.0.1."""

    def __init__(
        self,
        seed: int = 1,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        limits: SimLimits | None = None,
        login: Login | None = None,
        idle_s: float = 600.0,
        max_age_s: float | None = None,
        tick_s: float = 0.1,
        demo: bool = True,
        ws_idle_s: float = 600.0,
        tz_offset_h: int = 2,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.seed = seed
        self.host, self.port = host, port
        self.demo = demo
        self.tick_s = tick_s
        self.faults = FaultPlan()
        self.requests: list[RecordedRequest] = []
        self.clock = clock or SimClock()
        self._clock_start = self.clock()
        self._steps = 0
        self.exchange = Exchange(seed, tz_offset_h=tz_offset_h, now=self.clock)
        for spec in CATALOG:  # a realistic step: a minute moves ~ daily vol / sqrt(1440), not 1-3 %
            self.exchange.prices[spec.epic].vol = daily_vol(spec) * math.sqrt(tick_s / 86400)
        self.gate = Gate(
            limits=limits or SimLimits(), login=login or Login(), idle_s=idle_s, max_age_s=max_age_s
        )
        self.history = HistoryStore(self.exchange)
        self.watchlists = Watchlists(self.exchange, self.history)
        self.stream = StreamHub(self, idle_s=ws_idle_s)
        self._runner: web.AppRunner | None = None
        self._pump: asyncio.Task[None] | None = None
        self.paused = False
        self.internal_errors: list[str] = []  # simulator bugs caught at the edges (should stay empty)

    @property
    def login(self) -> Login:
        """The credentials the simulator accepts (api_key, identifier, password)."""
        return self.gate.login

    @property
    def url(self) -> str:
        """REST base URL (without `/api/v1`)."""
        return f"http://{self.host}:{self.port}"

    @property
    def stream_url(self) -> str:
        return f"ws://{self.host}:{self.port}/connect"

    @property
    def stream_host(self) -> str:
        """What `streamingHost` says: the WS root with a trailing slash, like the real service."""
        return f"ws://{self.host}:{self.port}/"

    def login_body(self, account_id: str) -> dict[str, Any]:
        ex = self.exchange
        acc = ex.accounts[account_id]
        return {
            "accountType": "CFD",
            "accountInfo": ex.account_balance(acc),
            "currencyIsoCode": acc.currency,
            "currencySymbol": "$",
            "currentAccountId": account_id,
            "streamingHost": self.stream_host,
            "accounts": [
                {
                    "accountId": a.account_id,
                    "accountName": a.name,
                    "preferred": a.preferred,
                    "accountType": "CFD",
                    "currency": a.currency,
                    "symbol": "$",
                    "balance": ex.account_balance(a),
                }
                for a in ex.accounts.values()
            ],
            "clientId": "12345678",
            "timezoneOffset": int(ex.tz_offset.total_seconds() // 3600),
            "hasActiveDemoAccounts": True,
            "hasActiveLiveAccounts": False,
            "trailingStopsEnabled": True,
        }

    async def start(self) -> None:
        app = RestApi(self).app()
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._pump = asyncio.create_task(self._run_pump(), name="capital-sim-pump")

    async def stop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        await self.stream.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> CapitalSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def step(self) -> list[str]:
        """Advance every market one tick and fire triggers; returns the epics that moved."""
        moved = []
        for epic, proc in self.exchange.prices.items():
            if self.exchange.status.get(epic) != "TRADEABLE":
                continue
            proc.step()
            self.history.observe(epic)
            self.exchange.on_price(epic)
            moved.append(epic)
        return moved

    def steps_due(self) -> int:
        """How many price steps the clock says are due (prices are a function of seed and clock)."""
        elapsed = (self.clock() - self._clock_start).total_seconds()
        return max(0, int(elapsed / self.tick_s) - self._steps)

    def catch_up(self, max_steps: int = 5) -> list[str]:
        """Advance the markets to where the clock says they are; returns the epics that moved.

        At most `max_steps` per call: after a stall of the event loop (a loaded machine) the steps
        over the cap are skipped rather than replayed in one burst that would stall it further.
        """
        due = self.steps_due()
        moved: set[str] = set()
        for _ in range(min(due, max_steps)):
            moved.update(self.step())
        self._steps += due  # after a long stall the steps over the cap are skipped, not queued
        return sorted(moved)

    # ------------------------------------------------------------------ the account owner's hand
    def account(self, account_id: str | None = None) -> Any:
        """The simulated account (default: the preferred one, where logins land)."""
        ex = self.exchange
        if account_id is None:
            return next(a for a in ex.accounts.values() if a.preferred)
        return ex.accounts[account_id]

    def set_hedging(self, hedging: bool, account_id: str | None = None) -> None:
        """Switch an account between hedging and netting (`hedgingMode` in /accounts/preferences)."""
        self.account(account_id).hedging = hedging

    def manual_trade(
        self, epic: str, direction: str, size: float | str | Decimal, *, account_id: str | None = None
    ) -> dict[str, Any]:
        """The account owner deals on the platform (not through the API): a market deal at the touch,
        netted like any other on a netting account. Returns its confirm."""
        acc = self.account(account_id)
        ref = self.exchange.open_position(acc, {"epic": epic, "direction": direction, "size": float(size)})
        return self.exchange.get_confirm(ref)

    def manual_close(self, deal_id: str, *, account_id: str | None = None) -> dict[str, Any]:
        """The account owner closes one deal on the platform."""
        ref = self.exchange.close_position(self.account(account_id), deal_id)
        return self.exchange.get_confirm(ref)

    def manual_remove_stop(self, epic: str, *, account_id: str | None = None) -> list[str]:
        """The account owner removes the stop of each of `epic`'s positions on the platform (the
        take-profit stays): an amend that replaces the leg set (`PUT /positions/{dealId}`'s rule),
        recorded in the activity as the user's. Returns the deal ids changed."""
        acc = self.account(account_id)
        changed = []
        for p in [p for p in acc.positions if p.epic == epic and p.bracket.stop_level is not None]:
            keep = {k: v for k, v in p.bracket.levels_json().items() if k == "profitLevel"}
            if keep:
                self.exchange.amend_position(acc, p.deal_id, keep)
            else:  # no take-profit: an empty amend changes nothing, so the legs are cleared directly
                b = p.bracket
                p.bracket = dataclasses.replace(b, stop_level=None, stop_distance=None, trailing=False)
                self.exchange._attach(p)
            changed.append(p.deal_id)
        return changed

    def move_clock(self, when: datetime) -> datetime:
        """Move the clock forward to `when` (aware UTC; ValueError if before now, or if the clock is a
        plain callable). Every tradeable market is quoted at the new time at once, so the live tape
        (the bars `GET /prices` serves) opens the new session's bar at the price it had; open
        positions keep their stops and limits. The pump skips the price steps of the jump."""
        if not isinstance(self.clock, SimClock):
            raise ValueError("this simulator's clock is not movable (a plain callable was given)")
        now = self.clock.move_to(when)
        self._steps += self.steps_due()  # a jump is not a burst of steps: prices resume from here
        for epic in self.exchange.prices:
            if self.exchange.status.get(epic) == "TRADEABLE":
                self.history.observe(epic)
        return now

    def set_mid(self, epic: str, mid: float) -> None:
        """Script a price (tests: push through a stop or a target) and fire triggers at once."""
        self.exchange.prices[epic].set_mid(mid)
        self.history.observe(epic)
        self.exchange.on_price(epic)

    async def _run_pump(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            if self.paused:
                continue
            try:
                await self.stream.pump(self.catch_up())
            except Exception as exc:  # the pump must survive a bad tick; tests check `internal_errors`
                self.internal_errors.append(repr(exc))

    def count(self, path: str, *, status: int | None = None, method: str | None = None) -> int:
        """How many recorded requests hit `path` (prefix), optionally with `status` / `method`."""
        return sum(
            1
            for r in self.requests
            if r.path.startswith(path)
            and (status is None or r.status == status)
            and (method is None or r.method == method)
        )


def capital_banner(sim: CapitalSimulator, seed: int, from_env: frozenset[str] = frozenset()) -> str:
    """What to export to point Joe at this simulator. The demo credentials are printed (they are the
    simulator's own, not secrets); a value taken from the environment is only named, never shown."""
    login = sim.login
    creds = {
        "CAPITAL_API_KEY": login.api_key,
        "CAPITAL_IDENTIFIER": login.identifier,
        "CAPITAL_PASSWORD": login.password,
    }
    lines = [
        f"Capital.com simulator on {sim.url} (REST {sim.url}/api/v1, streaming {sim.stream_url}, "
        f"seed {seed}); Ctrl-C stops. To point Joe at it:",
        f"  export CAPITAL_API_URL={sim.url}",
        f"  export CAPITAL_STREAM_URL={sim.stream_url}",
    ]
    for name, value in creds.items():
        lines.append(
            f"  # {name} is taken from your environment" if name in from_env else f"  export {name}={value}"
        )
    # A data folder of its own: a paper book is tied to its source (the sample's `make run` made one).
    lines.append("  JOE_DATA_DIR=data-capital .venv/bin/joe run --once --broker capital")
    return "\n".join(lines)


def run_capital_sim(
    port: int = 8700,
    *,
    seed: int = 1,
    host: str = "127.0.0.1",
    login: Login | None = None,
    login_from_env: frozenset[str] = frozenset(),
    clock_start: datetime | None = None,
) -> None:
    """Blocking entry for `joe sim capital --port N`: serve until interrupted.

    `login` sets the credentials the simulator accepts (default `Login()`: api key "sim-api-key",
    identifier "trader@example.com", password "sim-password"); pass the CAPITAL_* values to let an
    existing configuration log in unchanged. The banner prints the demo credentials and the URLs to
    export; values from the environment (`login_from_env` names them) are never printed.
    `clock_start` (`--clock-start`) starts the clock at that instant (default: the wall clock's now);
    it runs on at the real rate. Raises `OSError` when the port cannot be bound.
    """

    async def main() -> None:
        sim = CapitalSimulator(seed=seed, port=port, host=host, login=login, clock=SimClock(clock_start))
        await sim.start()
        print(capital_banner(sim, seed, login_from_env), flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await sim.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
