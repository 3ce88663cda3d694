"""Which TWS / IB Gateway port may be used in which trading mode.

IBKR's defaults: TWS live 7496, TWS paper 7497; IB Gateway live 4001, paper 4002 (relayed on 4003 /
4004 by the IB Gateway docker image). A live port is
accepted only when the resolved trading mode is ``live``; any other mode (paper, shadow, or an
unknown value, which resolves to paper) connecting to a live port is refused. Paper ports and other
ports (e.g. a local simulator) are allowed in every mode: live trading against IBKR's own paper
account is how the roadmap's live phases are exercised.
"""

from __future__ import annotations

from joe.brokers.base import BrokerError

TWS_LIVE_PORT = 7496
TWS_PAPER_PORT = 7497
GATEWAY_LIVE_PORT = 4001
GATEWAY_PAPER_PORT = 4002
# The IB Gateway docker image (deploy/docker-compose.yml) relays 4001 on 4003 and 4002 on 4004.
GATEWAY_IMAGE_LIVE_RELAY = 4003
GATEWAY_IMAGE_PAPER_RELAY = 4004

LIVE_PORTS = frozenset({TWS_LIVE_PORT, GATEWAY_LIVE_PORT, GATEWAY_IMAGE_LIVE_RELAY})
PAPER_PORTS = frozenset({TWS_PAPER_PORT, GATEWAY_PAPER_PORT, GATEWAY_IMAGE_PAPER_RELAY})
MODES = frozenset({"paper", "live", "shadow"})


class PortModeMismatch(BrokerError):
    """The configured port does not fit the resolved trading mode (a live port outside live mode)."""


def default_port(gateway: bool = False) -> int:
    """The paper port: TWS 7497, or IB Gateway 4002."""
    return GATEWAY_PAPER_PORT if gateway else TWS_PAPER_PORT


def normalise_mode(mode: str | None) -> str:
    """Lower-case mode; anything missing or unknown resolves to paper (never to live)."""
    m = (mode or "").strip().lower()
    return m if m in MODES else "paper"


def is_live_port(port: int) -> bool:
    return int(port) in LIVE_PORTS


def check_port(port: int, mode: str) -> None:
    """Raise `PortModeMismatch` unless `port` may be used in `mode`; return None when it may.

    Only the exact string "live" (case-insensitive) unlocks the live ports 7496 and 4001.
    """
    p = int(port)
    if not 0 < p < 65536:
        raise PortModeMismatch(f"IBKR port {port} is not a valid TCP port")
    resolved = normalise_mode(mode)
    if p in LIVE_PORTS and resolved != "live":
        kind = "TWS" if p == TWS_LIVE_PORT else "IB Gateway"
        paper = TWS_PAPER_PORT if p == TWS_LIVE_PORT else GATEWAY_PAPER_PORT
        raise PortModeMismatch(
            f"refusing IBKR port {p} ({kind} LIVE) in {resolved} mode (configured mode {mode!r}); "
            f"use the paper port {paper}, or switch TRADING_MODE=live deliberately"
        )
