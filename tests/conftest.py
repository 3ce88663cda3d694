"""Suite-wide settings. In CI (CI=true) hypothesis is derandomized so a run is reproducible; locally
it explores new examples every run (and keeps failures in .hypothesis/ to replay them)."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from market_clock import OPEN_MINUTE

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


# Every test runs with the clock of a Tuesday 10:00 New York (tests/market_clock.py); tests of the closed
# market set their own.


@pytest.fixture(autouse=True)
def _market_open_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOE_CLOCK_START", OPEN_MINUTE)


# -- scheduling under xdist (`make test`: --dist loadgroup) ---------------------------------------------
# Each test file is one xdist group (as --dist loadfile: a file's module fixtures are built once), unless
# a test names its own group (the chaos smoke subset's chunks). Groups are handed out longest first
# (the file's seconds in a clean-clone run, tests/durations.json), so the suite does not end waiting on
# one long file that started last.
_DURATIONS = os.path.join(os.path.dirname(__file__), "durations.json")


def _weights() -> dict[str, float]:
    import json

    try:
        with open(_DURATIONS) as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if getattr(config.option, "dist", "no") != "loadgroup":
        return
    weights = _weights()
    group_of: dict[pytest.Item, str] = {}
    for item in items:
        own = item.get_closest_marker("xdist_group")
        if own is None:
            name = item.nodeid.split("::", 1)[0]
            item.add_marker(pytest.mark.xdist_group(name))
        else:
            name = str(own.args[0] if own.args else own.kwargs.get("name", ""))
        group_of[item] = name
    order = {name: k for k, name in enumerate(dict.fromkeys(group_of[i] for i in items))}
    items.sort(key=lambda i: (-weights.get(group_of[i], 0.0), order[group_of[i]]))
