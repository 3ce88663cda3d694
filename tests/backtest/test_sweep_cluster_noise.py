"""A sweep's LocalCluster on a machine where port 8787 is taken (another Dask cluster, a second sweep):
the scheduler's HTTP server takes another port, and distributed's 4-line 'Port 8787 is already in use'
UserWarning (with a site-packages path) no longer reaches the console."""

from __future__ import annotations

import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from joe.cli.backtest_sweep import _start_local


class _Cluster:
    def __init__(self, **kw: Any) -> None:
        warnings.warn(
            "Port 8787 is already in use.\nPerhaps you already have a cluster running?\n"
            "Hosting the HTTP server on port 40001 instead",
            UserWarning,
            stacklevel=2,
        )
        warnings.warn("something else", UserWarning, stacklevel=2)

    def __enter__(self) -> _Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def test_a_busy_dashboard_port_is_not_warned_about(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as seen, ExitStack() as stack:
        warnings.simplefilter("always")
        client = _start_local(stack, 1, tmp_path, lambda cluster: cluster, _Cluster)
    assert isinstance(client, _Cluster)
    assert [str(w.message) for w in seen] == ["something else"]  # other warnings are left alone
