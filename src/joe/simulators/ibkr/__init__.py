"""A wire-faithful TWS/IB Gateway simulator for the real `ib_async` client (see docs/specs ibkr-tws)."""

from joe.simulators.ibkr.server import ClientMessage, IBKRSimulator, run_ibkr_sim

__all__ = ["ClientMessage", "IBKRSimulator", "run_ibkr_sim"]
