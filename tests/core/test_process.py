"""`joe.core.process`: a living pid, a reaped one; the parent-death binding in a real child."""

from __future__ import annotations

import os
import subprocess
import sys

from joe.core.process import pid_alive

BOUND_CHILD = (
    "import os, signal, sys, time\n"
    "from joe.core.process import parent_death_binder\n"
    "signal.signal(signal.SIGTERM, lambda *_: (print('SIGTERM', flush=True), sys.exit(0)))\n"
    "parent_death_binder()(int(sys.argv[1]))\n"
    "print('bound', flush=True)\n"
    "time.sleep(30)\n"
)


def test_a_living_pid_is_alive_and_a_reaped_one_is_not() -> None:
    assert pid_alive(os.getpid())
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert not pid_alive(gone.pid)


def test_a_child_bound_to_a_parent_already_gone_gets_sigterm_at_once() -> None:
    # The parent named is not this child's parent (as if it died before the request): SIGTERM at once.
    out = subprocess.run([sys.executable, "-c", BOUND_CHILD, "1"], capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines()[0] == "SIGTERM" and out.returncode == 0
