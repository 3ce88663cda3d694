"""Port/mode gate: live ports (7496, 4001) only in live mode; a mismatch is refused and audited."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joe.brokers.ibkr import IBKRExecutionClient, PortModeMismatch, check_port, create_ibkr, default_port
from joe.brokers.ibkr.ports import LIVE_PORTS, PAPER_PORTS
from joe.core.events import NullAudit
from joe.simulators.ibkr import IBKRSimulator

from .helpers import audit_types


@pytest.mark.parametrize("port", [7497, 4002, 17497])
@pytest.mark.parametrize("mode", ["paper", "live", "shadow", "", "LIVE"])
def test_paper_and_other_ports_allowed_in_every_mode(port: int, mode: str) -> None:
    check_port(port, mode)  # no exception


@pytest.mark.parametrize("port", [7496, 4001])
@pytest.mark.parametrize("mode", ["paper", "shadow", "", "unknown", "Live ", "real"])
def test_live_port_outside_live_mode_refused(port: int, mode: str) -> None:
    if mode.strip().lower() == "live":
        check_port(port, mode)  # no exception
        return
    with pytest.raises(PortModeMismatch, match=f"refusing IBKR port {port}"):
        check_port(port, mode)


@pytest.mark.parametrize("port", [7496, 4001])
def test_live_port_in_live_mode_accepted(port: int) -> None:
    check_port(port, "live")  # no exception


@given(port=st.integers(1, 65535), mode=st.text(max_size=8))
def test_only_live_mode_unlocks_live_ports(port: int, mode: str) -> None:
    live = mode.strip().lower() == "live"
    if port in LIVE_PORTS and not live:
        with pytest.raises(PortModeMismatch):
            check_port(port, mode)
    else:
        check_port(port, mode)  # no exception


@pytest.mark.parametrize("port", [0, -1, 70000])
def test_invalid_port(port: int) -> None:
    with pytest.raises(PortModeMismatch):
        check_port(port, "live")


def test_defaults_are_paper_ports() -> None:
    assert default_port() == 7497 and default_port(gateway=True) == 4002
    # The defaults are paper ports; 4004 is the IB Gateway docker image's relay of 4002 (deploy/), also paper.
    assert {default_port(), default_port(True)} | {4004} == PAPER_PORTS
    assert not PAPER_PORTS & LIVE_PORTS


def test_factory_refuses_live_port_in_paper_mode() -> None:
    audit = NullAudit()
    with pytest.raises(PortModeMismatch, match="paper mode"):
        create_ibkr(audit=audit, mode="paper", port=7496)
    assert audit_types(audit) == ["ibkr.port_refused"]
    md, ex = create_ibkr(audit=audit, mode="live", port=7496)  # live mode may use the live port
    assert md.conn is ex.conn and ex.conn.port == 7496


async def test_connect_refused_and_audited_before_any_socket(sim178: IBKRSimulator) -> None:
    """A live port in paper mode never opens a socket; the refusal is in the audit log."""
    audit = NullAudit()
    ex = IBKRExecutionClient("127.0.0.1", 4001, 1, "", "paper", audit)
    with pytest.raises(PortModeMismatch, match="4001"):
        await ex.connect()
    assert audit_types(audit) == ["ibkr.port_refused"]
    rec = audit.records[0][1]
    assert rec["port"] == 4001 and rec["mode"] == "paper"
    assert not ex.conn.connected and not ex.ready
    assert sim178.messages == []
