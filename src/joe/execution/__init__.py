"""Execution: the `OrderManager` (owns order truth), `PositionMonitor`, `PriceStream`, `Reconciler`."""
