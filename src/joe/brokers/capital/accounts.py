"""Account endpoints: server time, session details, accounts, preferences, activity and transactions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from joe.brokers.capital.errors import ProtocolError
from joe.brokers.capital.http import CapitalClient
from joe.brokers.capital.markets import fmt_ts
from joe.brokers.capital.models import (
    Account,
    AccountsResponse,
    Activity,
    ActivityResponse,
    Preferences,
    ServerTime,
    SessionDetails,
    StatusResponse,
    Transaction,
    TransactionsResponse,
    parse,
)
from joe.brokers.capital.rows import merge_reads, number_rows

MAX_ACTIVITY_SPAN = timedelta(days=1)


class AccountsApi:
    """Typed access to the account and history endpoints of one `CapitalClient`."""

    def __init__(self, client: CapitalClient) -> None:
        self.client = client

    async def server_time(self) -> int:
        return parse(ServerTime, await self.client.request("GET", "/time"), "time").serverTime

    async def ping(self) -> str:
        return parse(StatusResponse, await self.client.request("GET", "/ping"), "ping").status

    async def session_details(self) -> SessionDetails:
        return parse(SessionDetails, await self.client.request("GET", "/session"), "session")

    async def accounts(self) -> list[Account]:
        return parse(AccountsResponse, await self.client.request("GET", "/accounts"), "accounts").accounts

    async def current_account(self) -> Account:
        """The active financial account (the session's `currentAccountId`, else the preferred one)."""
        accounts = await self.accounts()
        wanted = self.client.session.account_id
        for acc in accounts:
            if acc.accountId == wanted:
                return acc
        preferred = [a for a in accounts if a.preferred] or accounts
        if not preferred:
            raise ProtocolError("accounts list is empty", code="protocol")
        return preferred[0]

    async def preferences(self) -> Preferences:
        return parse(Preferences, await self.client.request("GET", "/accounts/preferences"), "preferences")

    async def set_preferences(
        self, *, leverages: dict[str, int] | None = None, hedging_mode: bool | None = None
    ) -> str:
        body: dict[str, Any] = {}
        if leverages is not None:
            body["leverages"] = leverages
        if hedging_mode is not None:
            body["hedgingMode"] = hedging_mode
        resp = await self.client.request("PUT", "/accounts/preferences", json_body=body)
        return parse(StatusResponse, resp, "preferences").status

    async def activity(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        last_period_s: int | None = None,
        detailed: bool = True,
        deal_id: str | None = None,
        fiql: str | None = None,
    ) -> list[Activity]:
        """Activity history, each row numbered by its identity (`rows`: a row has no id of its own).

        `start`..`end`: both bounds inclusive, in whole seconds (the query's precision, spec §2: a
        bound with a fraction is floored, so a row in `start`'s own second is read); a range longer
        than one day is fetched one day at a time (spec §4.5), the windows sharing their boundary
        second, and the answers merged by identity: a row on a boundary is neither lost nor read
        twice. Without `start`: the last `last_period_s` seconds (default 600, at most a day)."""
        base: dict[str, Any] = {"detailed": "true" if detailed else "false"}
        if deal_id:
            base["dealId"] = deal_id
        if fiql:
            base["filter"] = fiql
        if start is None:
            params = dict(base, lastPeriod=min(max(last_period_s or 600, 1), 86400))
            body = await self.client.request("GET", "/history/activity", params=params)
            return number_rows(parse(ActivityResponse, body, "activity").activities)
        reads: list[list[Activity]] = []
        end = end or datetime.now(UTC)
        lo = start.replace(microsecond=0)
        if lo > end:
            return []
        while True:
            hi = min(lo + MAX_ACTIVITY_SPAN, end)
            params = dict(base, **{"from": fmt_ts(lo), "to": fmt_ts(hi)})
            body = await self.client.request("GET", "/history/activity", params=params)
            reads.append(parse(ActivityResponse, body, "activity").activities)
            if hi >= end:
                return merge_reads(reads)
            lo = hi

    async def transactions(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        last_period_s: int | None = None,
        kind: str | None = None,
    ) -> list[Transaction]:
        params: dict[str, Any] = {}
        if start is not None:
            params["from"] = fmt_ts(start)
            params["to"] = fmt_ts(end or datetime.now(UTC))
        elif last_period_s:
            params["lastPeriod"] = last_period_s
        if kind:
            params["type"] = kind
        body = await self.client.request("GET", "/history/transactions", params=params)
        return parse(TransactionsResponse, body, "transactions").transactions
