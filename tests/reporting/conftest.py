"""Fixtures for reporting tests."""

from __future__ import annotations

import pytest

from joe.reporting.context import ReportContext

from .sample_context import make_context


@pytest.fixture(scope="session")
def ctx() -> ReportContext:
    """A realistic context with 6 signals (1 vetoed), scores, positions, fills and history."""
    return make_context(n_signals=6)
