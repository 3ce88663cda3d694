"""Watchlists of the simulator (spec §6.7): two system lists plus user-created ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from joe.simulators.capital.catalog import BY_EPIC, CATALOG
from joe.simulators.capital.exchange import Exchange
from joe.simulators.capital.rules import ApiError
from joe.simulators.capital.views import HistoryStore, market_summary


@dataclass
class _List:
    id: str
    name: str
    epics: list[str]
    editable: bool = True
    system: bool = False


@dataclass
class Watchlists:
    ex: Exchange
    hist: HistoryStore
    lists: dict[str, _List] = field(default_factory=dict)
    _next: int = 1003

    def __post_init__(self) -> None:
        popular = ["US500", "US100", "GOLD", "OIL_CRUDE", "EURUSD", "BTCUSD", "AAPL", "TSLA", "NVDA", "DE40"]
        self.lists["1001"] = _List("1001", "Most traded", popular, editable=False, system=True)
        self.lists["1002"] = _List("1002", "Joe universe", [m.epic for m in CATALOG])

    def handle(self, method: str, rest: list[str], body: Any) -> tuple[int, Any, dict[str, str]]:
        if not rest and method == "GET":
            return (
                200,
                {
                    "watchlists": [
                        {
                            "id": w.id,
                            "name": w.name,
                            "editable": w.editable,
                            "deleteable": w.editable,
                            "defaultSystemWatchlist": w.system,
                        }
                        for w in self.lists.values()
                    ]
                },
                {},
            )
        if not rest and method == "POST":
            name = body.get("name") if isinstance(body, dict) else None
            if not isinstance(name, str) or not 1 <= len(name) <= 20:
                raise ApiError(400, "error.size.createwatchlistrequest.name")
            epics = [e for e in (body.get("epics") or []) if isinstance(e, str)]
            known = [e for e in epics if e in BY_EPIC]
            wid = str(self._next)
            self._next += 1
            self.lists[wid] = _List(wid, name, known)
            status = "SUCCESS" if len(known) == len(epics) else "SUCCESS_NOT_ALL_INSTRUMENTS_ADDED"
            return 200, {"watchlistId": wid, "status": status}, {}
        wl = self.lists.get(rest[0]) if rest else None
        if len(rest) == 1 and method == "GET":
            if wl is None:
                raise ApiError(404, "error.invalid.watchlist")
            return 200, {"markets": [market_summary(self.ex, e, self.hist) for e in wl.epics]}, {}
        if wl is None:
            raise ApiError(404, "error.not-found.watchlist")
        if len(rest) == 1 and method == "PUT":
            epic = body.get("epic") if isinstance(body, dict) else None
            if epic not in BY_EPIC:
                raise ApiError(404, "error.not-found.epic")
            if epic not in wl.epics:
                wl.epics.append(epic)
            return 200, {"status": "SUCCESS"}, {}
        if len(rest) == 1 and method == "DELETE":
            del self.lists[wl.id]
            return 200, {"status": "SUCCESS"}, {}
        if len(rest) == 2 and method == "DELETE":
            if rest[1] not in wl.epics:
                raise ApiError(404, "error.not-found.epic")
            wl.epics.remove(rest[1])
            return 200, {"status": "SUCCESS"}, {}
        raise ApiError(404, "error.not-found.path")
