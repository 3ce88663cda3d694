"""`CapitalExecutionClient`: the thin Capital.com adapter the `OrderManager` drives (`ExecutionClient`).

It translates and reports; it decides nothing (DESIGN "Order truth"):

* `submit` sends `POST /positions` (MARKET, the stop and target as `stopLevel` / `profitLevel`) or
  `POST /workingorders` (LIMIT / STOP), with `dealReference` = Joe's `client_order_id`, reads the
  confirm, and reports what the broker holds: an `OrderStatusReport` for the entry and for each
  attached leg, a `FillReport` per fill (read from the activity history, so it has the same identity
  as in `mass_status`), a `BrokerNotice` with the errorCode and its meaning for any error answer.
* Nothing here lives only in memory: every order can be found again at the broker by its
  `dealReference` (`order_status`), so a restart, a second process or a lost answer never needs a
  resend. The in-memory maps (attached legs, closed deals) are hints that save requests.
* No blind retries. Only an answer that proves the request was not processed (401 with a re-login,
  429) allows sending again, and that is the caller's call (`SendFailed`). A request that may have
  arrived and cannot be confirmed raises `OrderOutcomeUnknown`; the same id is never sent twice by
  one client, it is asked for.
* Reduce-only exits are capped at the live size of Joe's own deals and close them by dealId
  (`exits.py`). On a netting account an entry against an open opposite position is refused: it
  would close that position instead of opening one (spec §5.1).
* Audit writes never abort an order in flight: a failed write is kept and written again on the
  next one (the order itself is found again at the broker by its reference).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from joe.audit.redaction import redact
from joe.brokers.base import (
    BrokerError,
    BrokerUnavailable,
    InvalidOrder,
    OrderLink,
    OrderOutcomeUnknown,
    SendFailed,
    SubmitAck,
)
from joe.brokers.capital import observe as ob
from joe.brokers.capital.accounts import AccountsApi
from joe.brokers.capital.amend import OrderAmendments
from joe.brokers.capital.errors import (
    AmbiguousWrite,
    CapitalAuthError,
    CapitalError,
    CapitalTransient,
    InvalidRequest,
    NotFound,
    RateLimited,
    SessionExpired,
    error_code,
)
from joe.brokers.capital.exit_flow import ExitFlow
from joe.brokers.capital.http import CapitalClient
from joe.brokers.capital.instruments import check_intent, rules_from_market
from joe.brokers.capital.mapping import account_info
from joe.brokers.capital.models import Activity, Confirm
from joe.brokers.capital.queries import CapitalQueries
from joe.brokers.capital.trading import TradingApi, entry_body
from joe.brokers.capital.watch import Watcher, report_key
from joe.core import ids
from joe.core.events import AuditSink
from joe.core.models import AccountInfo, OrderIntent, OrderLeg
from joe.core.reports import (
    BrokerNotice,
    CodeMeaning,
    FillReport,
    InstrumentRules,
    MassStatus,
    Observation,
    OrderStatusReport,
    PositionReport,
    VenueOrderStatus,
)

log = logging.getLogger(__name__)
_CHILD_LEGS = (OrderLeg.STOP_LOSS, OrderLeg.TAKE_PROFIT)


class CapitalExecutionClient(OrderAmendments, ExitFlow):
    """`ExecutionClient` for Capital.com over one logged-in `CapitalClient` (see module docstring)."""

    # An attached stop/target is always its deal's size: the broker resizes it with the deal (a
    # partial close by the owner included), so the OrderManager never asks to resize one.
    legs_follow_position = True
    # Every close names the deal it changed (`FillReport.changes`): the OrderManager attributes the
    # owner's executions exactly, never by the net position (a hedging account's own deals differ).
    names_changed_positions = True

    name = "capital"

    def __init__(
        self,
        client: CapitalClient,
        *,
        audit: AuditSink,
        confirm_timeout_s: float = 15.0,
        confirm_interval_s: float = 0.2,
        fill_wait_s: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.client = client
        self.audit = audit
        self.trading = TradingApi(client)
        self.accounts = AccountsApi(client)
        self.confirm_timeout_s = confirm_timeout_s
        self.confirm_interval_s = confirm_interval_s
        self.fill_wait_s = fill_wait_s
        self.clock = clock or (lambda: datetime.now(UTC))
        self._queue: asyncio.Queue[Observation] = asyncio.Queue()  # the backlog / first listener's
        self._listeners: list[asyncio.Queue[Observation]] = []
        self._rules: dict[str, InstrumentRules] = {}
        self._sent: set[str] = set()  # ids whose request may have reached the broker: never resent
        self._children: dict[str, tuple[str, OrderLeg]] = {}  # leg id -> (entry id, leg); a hint
        self._exits: dict[str, list[str]] = {}  # exit id -> deal ids it closed; a hint
        self._preclose: dict[str, set[str]] = {}  # exit by dealId -> its deals' fill ids before it
        self._netted: set[str] = set()  # exits sent as a netting POST named by their id
        self._seen_fills: set[str] = set()
        self._absent: set[str] = set()  # ids `presend_check` found not filed (consumed by `submit`)
        self._pending_audit: list[tuple[str, dict[str, Any], str | None]] = []
        self._last: dict[str, OrderStatusReport] = {}
        self._watcher: Watcher | None = None
        self.queries = CapitalQueries(
            self.trading, self.accounts, self.clock, self._children, self._exits, self._preclose, self._netted
        )

    # ------------------------------------------------------------------ lifecycle / reads
    def remember_children(self, links: Iterable[tuple[str, str, OrderLeg]]) -> None:
        """(child id, entry id, leg) of brackets a previous process sent, from Joe's store: without
        them a deal closed by its attached stop or target between runs has no owner (a new process
        knows only the brackets it sent itself)."""
        for child, entry, leg in links:
            if leg in _CHILD_LEGS:
                self._children.setdefault(child, (entry, leg))

    @property
    def connected(self) -> bool:
        return self.client.session.active

    async def connect(self) -> None:
        if not self.client.session.active:
            await self.client.open()

    async def close(self) -> None:
        if self._watcher is not None:
            await self._watcher.stop()
        await self.client.close()

    async def account(self) -> AccountInfo:
        return account_info(await self.accounts.current_account())

    async def positions(self) -> list[PositionReport]:
        now = self.clock()
        return [ob.position_report(r, now) for r in await self.trading.positions()]

    async def instrument_rules(self, symbol: str) -> InstrumentRules:
        """`dealingRules` of `GET /markets/{epic}` (cached per client: rules change rarely)."""
        if symbol not in self._rules:
            body = await self.client.request("GET", f"/markets/{symbol}")
            self._rules[symbol] = rules_from_market(symbol, body if isinstance(body, dict) else {})
        return self._rules[symbol]

    async def observations(self) -> AsyncIterator[Observation]:
        """Every observation, to every listener; the first listener also gets what came before it."""
        q: asyncio.Queue[Observation] = self._queue if not self._listeners else asyncio.Queue()
        self._listeners.append(q)
        try:
            while True:
                yield await q.get()
        finally:
            self._listeners.remove(q)

    def _emit(self, obs: Observation) -> None:
        if isinstance(obs, FillReport):
            if obs.fill.fill_id in self._seen_fills:
                return
            self._seen_fills.add(obs.fill.fill_id)
        elif isinstance(obs, OrderStatusReport) and obs.client_order_id:
            self._last[obs.client_order_id] = obs
        for q in self._listeners or [self._queue]:
            q.put_nowait(obs)

    emit = _emit  # for the `Watcher`

    @property
    def seen_fills(self) -> set[str]:
        return self._seen_fills

    async def presend_check(self, client_order_id: str) -> bool:
        """Whether Capital.com filed a request under this dealReference: one GET /confirms/{ref}
        (`SupportsPresendCheck`). A "no" spares `submit` its own identical check right after."""
        try:
            await self.trading.confirm(client_order_id)
        except (NotFound, InvalidRequest):
            self._absent.add(client_order_id)
            return False
        except CapitalError as exc:
            raise BrokerUnavailable(f"capital: cannot check {client_order_id} ({error_code(exc)})") from None
        return True

    def link(self, links: Sequence[OrderLink]) -> None:
        """Restore attribution from Joe's store after a restart (`SupportsOrderLinks`): attached legs
        to their entry (and the entry's dealId), an exit to the deal it closed (`p_<dealId>`), or — an
        exit sent but never acknowledged (no broker id) — to its signal's entry (`in_doubt`)."""
        for k in links:
            if k.leg in _CHILD_LEGS and k.symbol and k.side and k.quantity is not None:
                self.queries.leg_facts.setdefault(k.client_order_id, (k.symbol, k.side, k.quantity))
            if k.leg is OrderLeg.STOP_LOSS and not k.parent_client_order_id and k.signal_id:
                # A stop attached alone to a held position (`attach_stop`): its signal's entry's stop leg.
                entry = ids.client_order_id(k.signal_id, OrderLeg.ENTRY.value)
                self._children.setdefault(k.client_order_id, (entry, k.leg))
            elif k.leg in _CHILD_LEGS and k.parent_client_order_id:
                self._children.setdefault(k.client_order_id, (k.parent_client_order_id, k.leg))
                if k.parent_broker_order_id:
                    self.queries.entry_deals.setdefault(k.parent_broker_order_id, k.parent_client_order_id)
            elif k.leg is OrderLeg.EXIT and k.broker_order_id and k.broker_order_id.startswith("p_"):
                self._exits.setdefault(k.client_order_id, [k.broker_order_id[2:]])
            elif k.leg is OrderLeg.EXIT and not k.broker_order_id and k.signal_id:
                # Sent (or about to be) but never acknowledged: a close by dealId names no request,
                # so the exit is known by its signal's entry (`CapitalQueries._claim`).
                entry = ids.client_order_id(k.signal_id, OrderLeg.ENTRY.value)
                self.queries.in_doubt.setdefault(k.client_order_id, entry)
            elif k.leg is OrderLeg.ENTRY and k.broker_order_id:
                self.queries.entry_deals.setdefault(k.broker_order_id, k.client_order_id)

    def known_orders(self) -> set[str]:
        """Ids this adapter sent or attached (what the `Watcher` follows)."""
        return self._sent | set(self._children)

    def last_key(self, cid: str) -> tuple[object, ...] | None:
        r = self._last.get(cid)
        return None if r is None else report_key(r)

    def last_status(self, cid: str) -> VenueOrderStatus | None:
        r = self._last.get(cid)
        return None if r is None else r.status

    def watch(self, interval_s: float = 1.0) -> Watcher:
        """Start polling for events nobody asked about (stops, targets, fills of working orders)."""
        if self._watcher is None:
            self._watcher = Watcher(self, interval_s=interval_s)
        self._watcher.start()
        return self._watcher

    def _notice(
        self, code: str, meaning: CodeMeaning, request: str, cid: str | None, bid: str | None = None
    ) -> None:
        self._emit(
            BrokerNotice("capital", code, ob.describe(code), meaning, self.clock(), cid, bid, request=request)
        )

    def _audit(self, event: str, cid: str | None, **payload: Any) -> None:
        """Write one audit record; a failure is kept and retried with the next write, never raised."""
        self._pending_audit.append((event, redact(payload), cid))
        while self._pending_audit:
            ev, body, c = self._pending_audit[0]
            try:
                self.audit.record(ev, body, client_order_id=c)
            except Exception as exc:  # the order must go on; the record is written again later
                log.warning("capital: audit write of %s failed (%s); kept for retry", ev, type(exc).__name__)
                return
            self._pending_audit.pop(0)

    # ------------------------------------------------------------------ submit
    async def submit(self, intents: Sequence[OrderIntent]) -> list[SubmitAck]:
        """Send one order, or an entry with its stop and target (the position's stopLevel/profitLevel).

        Raises `InvalidOrder` (nothing sent) for non-conforming input or an entry that would reverse a
        netting position, `SendFailed` when provably nothing was processed, `OrderOutcomeUnknown` when
        the request may exist and could not be confirmed.
        """
        if not intents:
            return []
        entry = intents[0]
        legs = list(intents[1:])
        if not self.connected:
            raise SendFailed(f"capital: not connected; {entry.client_order_id} not sent")
        try:
            rules = await self.instrument_rules(entry.symbol)
        except NotFound:
            raise InvalidOrder(
                f"capital: unknown market {entry.symbol} for {entry.client_order_id}"
            ) from None
        except CapitalError as exc:
            raise SendFailed(f"capital: market rules unreadable ({error_code(exc)})") from None
        for intent in intents:
            check_intent(intent, rules)
        if entry.reduce_only and entry.leg is OrderLeg.STOP_LOSS and not legs:
            return await self.attach_stop(entry)  # a position's stop is its stopLevel: never a close
        if entry.reduce_only:
            return await self._exit(entry)
        for leg in legs:
            if leg.leg in _CHILD_LEGS:
                self._children[leg.client_order_id] = (entry.client_order_id, leg.leg)
                self.queries.leg_facts[leg.client_order_id] = (leg.symbol, leg.side, leg.quantity)
        cid = entry.client_order_id
        if cid in self._sent:
            return await self._acks_from_broker(entry, legs)
        path, body = entry_body(entry, legs)
        # Checked absent by `presend_check` just before (the OrderManager's first send): not again.
        existing = None if cid in self._absent else await self._existing(cid)
        self._absent.discard(cid)
        if existing is not None:  # another process (or an earlier life of this one) sent it
            return await self._report_confirm(entry, legs, existing, working=path == "/workingorders")
        await self._refuse_netting_reversal(entry)
        self._sent.add(cid)  # before sending: a failure after this point never leads to a resend
        self._audit("capital.order.submit", cid, path=path, body=body)
        ref = await self._send_order(entry, legs, path, body)
        if ref is None:
            return [SubmitAck(i.client_order_id, None) for i in intents]
        self._audit("capital.order.sent", cid, deal_reference=ref)
        if ref != cid:
            # The broker named the request itself: Joe's id is not on the order, so after a restart it
            # can only be found through the OrderManager's store. Said loudly, once per order.
            log.error("capital: %s was filed as %s; the broker ignored Joe's dealReference", cid, ref)
            self._notice("joe.reference_ignored", CodeMeaning.NOTICE, "place", cid, ref)
        confirm = await self._confirm(ref)
        if confirm is None:
            return await self._acks_from_broker(entry, legs)
        return await self._report_confirm(entry, legs, confirm, working=path == "/workingorders")

    async def _existing(self, cid: str) -> Confirm | None:
        """The confirm already filed under `cid`, if any (one GET; the OrderManager's store is the
        first line, this is the second: no id is sent twice even by two processes)."""
        try:
            return await self.trading.confirm(cid)
        except (NotFound, InvalidRequest):
            return None
        except CapitalError as exc:
            raise SendFailed(f"capital: cannot check {cid} before sending ({error_code(exc)})") from None

    async def _refuse_netting_reversal(self, entry: OrderIntent) -> None:
        """On a netting account an entry against an open opposite position would close it (spec §5.1),
        and an opposite working order on the epic (Joe's resting limit entry of another signal, or the
        owner's) would close the new position when it fills instead of opening its own: Joe would
        book two positions while the broker holds none (review r9, finding 4). Both refused."""
        try:
            hedging = (await self.accounts.preferences()).hedgingMode
            rows = [] if hedging else await self.trading.positions()
            working = [] if hedging else await self.trading.working_orders()
        except CapitalError as exc:
            raise SendFailed(f"capital: account state unreadable ({error_code(exc)})") from None
        opposite = [
            r
            for r in rows
            if r.market.epic == entry.symbol and r.position.direction.upper() != entry.side.value
        ]
        where = f"capital: {entry.client_order_id} {entry.side} {entry.quantity} {entry.symbol} refused"
        if opposite:
            held = sum((r.position.size for r in opposite), Decimal(0))
            raise InvalidOrder(
                f"{where}: this netting account holds {opposite[0].position.direction} {held}, which the "
                "deal would close instead of opening a new position; exit that position first (reduce-only) "
                "or use a hedging account"
            )
        against = [
            w.workingOrderData
            for w in working
            if w.workingOrderData.epic == entry.symbol
            and w.workingOrderData.direction.upper() != entry.side.value
        ]
        if against:
            w = against[0]
            raise InvalidOrder(
                f"{where}: this netting account has a working {w.direction} order {w.dealId} of "
                f"{w.orderSize} at {w.orderLevel}, which would close the new position when it fills instead "
                "of opening its own; cancel that order first or use a hedging account"
            )

    async def _send_order(
        self, entry: OrderIntent, legs: Sequence[OrderIntent], path: str, body: dict[str, Any]
    ) -> str | None:
        """POST once (again only after a 401 proved it was not processed). None = refused by the broker."""
        cid = entry.client_order_id
        send = self.trading.open_position if path == "/positions" else self.trading.create_working_order
        for attempt in range(2):
            try:
                return await send(body)
            except SessionExpired as exc:
                if exc.relogged and attempt == 0:
                    continue
                self._sent.discard(cid)
                raise SendFailed(f"capital: session refused {cid} ({exc.code})") from None
            except RateLimited:
                self._sent.discard(cid)
                raise SendFailed(f"capital: rate limited; {cid} was not processed") from None
            except (InvalidRequest, NotFound, CapitalAuthError) as exc:
                self._sent.discard(cid)  # refused as sent: sending it again cannot make a second order
                code = error_code(exc)
                self._audit("capital.order.refused", cid, code=code, value=exc.value)
                self._notice(code, ob.code_meaning(code, request="place"), "place", cid)
                for i in [entry, *legs]:
                    self._emit(ob.rejected(i, code, self.clock()))
                return None
            except AmbiguousWrite as exc:
                self._audit("capital.order.ambiguous", cid, error=type(exc).__name__, code=exc.code)
                return cid  # our own reference names the request: the confirm can still be read
            except CapitalTransient as exc:
                self._sent.discard(cid)  # only a request that never left gets here
                raise SendFailed(f"capital: {cid} not sent ({type(exc).__name__})") from None
        raise AssertionError("unreachable")

    async def _confirm(self, ref: str) -> Confirm | None:
        try:
            return await self.trading.wait_confirm(
                ref, timeout_s=self.confirm_timeout_s, interval_s=self.confirm_interval_s
            )
        except CapitalError as exc:
            log.info("capital: confirm %s unreadable (%s)", ref, type(exc).__name__)
            return None

    async def _acks_from_broker(self, entry: OrderIntent, legs: Sequence[OrderIntent]) -> list[SubmitAck]:
        """The request may exist: ask the broker by reference; raise `OrderOutcomeUnknown` if it can't say."""
        cid = entry.client_order_id
        try:
            reports = await self.order_status(cid)
        except BrokerError as exc:
            raise OrderOutcomeUnknown(
                f"capital: {cid} may exist; the broker could not be asked ({type(exc).__name__})"
            ) from None
        if not reports:
            raise OrderOutcomeUnknown(f"capital: {cid} was sent and is not visible at the broker (yet)")
        for r in reports:
            self._emit(r)
        for leg in legs:
            for r in await self.order_status(leg.client_order_id):
                self._emit(r)
        main = reports[0]
        return [SubmitAck(cid, main.broker_order_id, main.broker_order_id)] + [
            SubmitAck(leg.client_order_id, None) for leg in legs
        ]

    async def _report_confirm(
        self, entry: OrderIntent, legs: Sequence[OrderIntent], c: Confirm, *, working: bool
    ) -> list[SubmitAck]:
        cid = entry.client_order_id
        self._audit(
            "capital.order.confirm", cid, deal_reference=c.dealReference, deal_status=c.dealStatus,
            status=c.status, reason=c.rejectReason or c.reason, level=str(c.level),
            affected=[d.model_dump() for d in c.affectedDeals],
        )  # fmt: skip
        report = ob.confirm_report(c, cid, working=working, ts=self.clock())
        if report.status is VenueOrderStatus.REJECTED:
            code = c.rejectReason or c.reason or "REJECTED"
            self._notice(code, ob.code_meaning(code, request="place"), "place", cid)
            self._emit(report)
            for leg in legs:
                self._emit(ob.rejected(leg, code, self.clock()))
            return [SubmitAck(i.client_order_id, None) for i in [entry, *legs]]
        opened = ob.opened_deal(c)
        if not working:  # the fills first: a FILLED status then finds them already applied
            deals = [*([opened] if opened else []), *ob.closed_deals(c)]
            await self._report_fills(deals, cid, ob.of_request(cid, opened))
        self._emit(report)
        acks = [SubmitAck(cid, report.broker_order_id, None if working else opened)]
        for leg in legs:
            child = ob.leg_report(leg, opened, c, self.clock())
            self._emit(child)
            acks.append(SubmitAck(leg.client_order_id, child.broker_order_id, opened))
        return acks

    async def _deal_rows(self, deal_id: str) -> list[Activity]:
        try:
            return await self.accounts.activity(deal_id=deal_id, last_period_s=3600, fiql="type==POSITION")
        except CapitalError:
            return []

    async def _report_fills(
        self, deal_ids: Sequence[str], cid: str, keep: Callable[[Activity], bool]
    ) -> None:
        """Emit this request's fills (`keep` picks its rows) from the activity history — their one
        identity — waiting briefly for rows to appear; what is late is found by `mass_status`."""
        deadline = time.monotonic() + self.fill_wait_s
        for deal_id in deal_ids:
            while True:
                rows = [r for r in await self._deal_rows(deal_id) if keep(r)]
                fills = [f for f in (ob.fill_from_activity(r, cid) for r in rows) if f is not None]
                for f in fills:
                    self._emit(f)
                if fills or time.monotonic() >= deadline:
                    break
                await asyncio.sleep(self.confirm_interval_s)

    # ------------------------------------------------------------------ asking the broker
    async def order_status(self, client_order_id: str) -> list[OrderStatusReport]:
        """Every order at Capital.com carrying this id; [] only when the broker answered with none
        (`queries.CapitalQueries.order_status`)."""
        return await self.queries.order_status(client_order_id)

    async def mass_status(self, since: datetime | None = None, *, joes_clock: bool = False) -> MassStatus:
        """Working orders, live deals with their attached legs, fills since `since` (on the broker's
        clock, or on Joe's with `joes_clock`: `ExecutionClient.mass_status`), positions, account."""
        return await self.queries.mass_status(since, joes_clock=joes_clock)
