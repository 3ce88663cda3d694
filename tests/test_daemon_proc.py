"""The shared process helpers of the end-to-end tests (tests/daemon_proc.py), against the real `joe sim`.

CI flake (a test passing on a quiet machine only): the tests picked a "free port" (bind 0, close), passed
the number to `joe sim`, then polled until something accepted a connection there. Between the close and
the simulator's bind another xdist worker could take the port; the simulator then exited ("already in
use") while the poll connected to the OTHER process, and the test ran against another test's simulator.
Now the simulator binds port 0 itself and the test reads the port from its banner."""

from __future__ import annotations

import socket

import pytest

from daemon_proc import refused_port, sim_process


def test_a_simulator_that_cannot_listen_is_never_taken_for_ready() -> None:
    """Another process listens on the port first (what a second xdist worker did between free_port()
    and `joe sim`'s bind). Before: the connect poll reached that process and called the simulator ready.
    Now: the simulator's own banner is the readiness, so its exit is the failure, with its message."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        in_use = f"port {port} on 127.0.0.1 is already in use"
        with pytest.raises(AssertionError, match=in_use), sim_process("ibkr", port=port):
            pass


def test_port_zero_is_read_back_from_the_banner_and_listens() -> None:
    with sim_process("ibkr", "--control-port", "0") as ibkr, sim_process("capital") as capital:
        ports = {ibkr.port, ibkr.control_port, capital.port}
        assert len(ports) == 3 and 0 not in ports
        assert ibkr.exports["IBKR_PORT"] == str(ibkr.port)
        assert capital.exports["CAPITAL_API_URL"] == f"http://127.0.0.1:{capital.port}"
        for port in ports:
            socket.create_connection(("127.0.0.1", port), timeout=10).close()


def test_a_refused_port_refuses_while_held() -> None:
    """`refused_port` stays bound (not listening) for the block: nobody else can take it meanwhile."""
    with refused_port() as port:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=10)
        with socket.socket() as s, pytest.raises(OSError):
            s.bind(("127.0.0.1", port))
