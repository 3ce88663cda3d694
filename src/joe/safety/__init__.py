"""The guard between portfolio and execution: trading state, kill switch, pre-trade risk gate,
margin monitor, circuit breakers, protections, the single-instance lock.

Public face: `joe.safety.control` (the operations the CLI, the dashboard and Telegram call),
`TradingState`, `RiskGate`, `MarginMonitor`, `CircuitBreaker`, `InstanceLock`.
"""
