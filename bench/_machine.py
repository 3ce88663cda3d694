"""Describe the machine a benchmark ran on (quoted with every figure)."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable


def machine() -> str:
    cpu = platform.processor() or "unknown cpu"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def clock_gaps(clock: Callable[[], float], seconds: float = 1.0) -> str:
    """What the machine itself adds to a latency tail: a loop that does nothing but read `clock` (seconds)
    for about `seconds` of it, and the gaps between consecutive readings. On a shared virtual machine a
    thread's CPU clock also jumps (time the hypervisor took the core while the thread was running counts
    as the thread's): any figure at p99 and beyond sits on top of these gaps."""
    gaps = []
    end = clock() + seconds
    prev = clock()
    while prev < end:
        t = clock()
        if t - prev > 50e-6:
            gaps.append(t - prev)
        prev = t
    over_100 = sum(g > 100e-6 for g in gaps)
    over_1ms = sum(g > 1e-3 for g in gaps)
    top = max(gaps, default=0.0) * 1e6
    return (
        f"{over_100 / seconds:.0f} gaps > 100 µs and {over_1ms / seconds:.0f} > 1 ms per second "
        f"(longest {top:,.0f} µs), {sum(gaps) / seconds:.2%} of the time"
    )
