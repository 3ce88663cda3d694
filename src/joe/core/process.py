"""Small facts about processes shared by the lock, the kill switch's flatten route and the watchdog."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` exists (one of another user counts as alive; a zombie too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def parent_death_binder() -> Callable[[int], None]:
    """`bind(parent)`: from then on the calling process gets SIGTERM when its parent dies (Linux
    ``PR_SET_PDEATHSIG``, prctl(2)), and gets it at once if `parent` is already gone (it died before
    the request). ``prctl`` is looked up here, in the process that calls this, so `bind` itself only
    makes system calls: safe as a ``preexec_fn`` between fork and exec. Not Linux: only the at-once
    check (no parent-death signal exists)."""
    try:
        import ctypes

        prctl: Callable[..., int] | None = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        prctl = None

    def bind(parent: int) -> None:
        if prctl is not None:
            prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        if os.getppid() != parent:  # the parent died before the request: same as its death now
            os.kill(os.getpid(), signal.SIGTERM)

    return bind
