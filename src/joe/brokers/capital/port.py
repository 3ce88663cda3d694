"""What the split-out parts of `CapitalExecutionClient` (`OrderAmendments`, `ExitFlow`) use of the
client: its trading endpoints and its reporting (observations, notices, audit records, confirms).
The client implements every method; the parts only declare them here, once.
"""

from __future__ import annotations

from typing import Any

from joe.brokers.capital import observe as ob
from joe.brokers.capital.errors import CapitalError, error_code
from joe.brokers.capital.models import Confirm
from joe.brokers.capital.trading import TradingApi
from joe.core.reports import CodeMeaning, Observation


class ClientPort:
    """The transport and reporting of `CapitalExecutionClient`, for the mixins split out of it."""

    trading: TradingApi

    def _emit(self, obs: Observation) -> None:
        raise NotImplementedError

    def _notice(
        self, code: str, meaning: CodeMeaning, request: str, cid: str | None, bid: str | None = None
    ) -> None:
        raise NotImplementedError

    def _audit(self, event: str, cid: str | None, **payload: Any) -> None:
        raise NotImplementedError

    async def _confirm(self, ref: str) -> Confirm | None:
        raise NotImplementedError

    def _refused(self, exc: CapitalError, request: str, cid: str | None, bid: str | None = None) -> str:
        """Report the broker's refusal of a `request` ("place", "modify", "cancel") as a notice with
        the meaning its code has for that request (`observe.code_meaning`); returns the code."""
        code = error_code(exc)
        self._notice(code, ob.code_meaning(code, request=request), request, cid, bid)
        return code
