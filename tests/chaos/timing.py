"""The chaos suite's timing: every wait a Joe process of the suite makes is set here, through the
clients' and the `OrderManager`'s own configuration (never a patched clock), so the harness process
and the SIGKILLed child (`kill_child.py`) run the same order path at the same (short) scale.

Seconds, wall clock. The simulators answer in milliseconds; each figure still leaves a fault's delay
room to land inside it (a slow ack of 0.4 s inside a 2 s confirmation wait) or beyond it (a response
delayed 1 s past a 0.6 s confirmation wait: the executed-but-timed-out case).
"""

from __future__ import annotations

from typing import Any

# OrderManager: how long a send waits for the broker's acknowledgement; how long (and how often) an
# order whose send may have happened is looked up before it is called UNKNOWN.
OM: dict[str, Any] = {"confirm_timeout": 2.0, "in_doubt_window": 1.0, "in_doubt_interval": 0.1}
# IBKRExecutionClient: reconnect backoff, connect and request timeouts.
IBKR: dict[str, Any] = {
    "backoff_initial": 0.05, "backoff_max": 0.2, "connect_timeout": 2.0, "request_timeout": 3.0,
}  # fmt: skip
# CapitalClient (HTTP): a request's timeout and the retry backoff; the rate limits' windows are
# divided by CAPITAL_SCALE on both sides (client and simulator).
CAPITAL_HTTP: dict[str, Any] = {"timeout_s": 3.0, "backoff_s": 0.01}
CAPITAL_SCALE = 10.0
# CapitalExecutionClient: the deal confirmation's poll interval and timeout, the wait for a fill.
CAPITAL_XC: dict[str, Any] = {"confirm_interval_s": 0.02, "confirm_timeout_s": 0.6, "fill_wait_s": 0.5}
# A supervisor's pause before it starts a Joe process whose start was refused (broker unreachable).
RESTART_PAUSE_S = 0.2
