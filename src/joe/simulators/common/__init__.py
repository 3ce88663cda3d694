"""Pieces shared by the simulators: seeded price processes, the fill model and the fault plan."""

from joe.simulators.common.clock import SimClock, clock_move, move_clock_response
from joe.simulators.common.faults import FaultPlan
from joe.simulators.common.fill_model import FillModel, SimOrder, SimOrderType, TriggerResult
from joe.simulators.common.prices import PriceBook, PriceProcess, SimQuote

__all__ = [
    "FaultPlan",
    "FillModel",
    "PriceBook",
    "PriceProcess",
    "SimClock",
    "SimOrder",
    "SimOrderType",
    "SimQuote",
    "TriggerResult",
    "clock_move",
    "move_clock_response",
]
