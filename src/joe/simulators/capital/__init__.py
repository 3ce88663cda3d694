"""Loopback Capital.com simulator: REST + WebSocket with the real paths, shapes, limits and faults."""

from joe.simulators.capital.gate import Login, SimLimits
from joe.simulators.capital.sim import CapitalSimulator, run_capital_sim
from joe.simulators.capital.wire import RecordedRequest

__all__ = ["CapitalSimulator", "Login", "RecordedRequest", "SimLimits", "run_capital_sim"]
