"""Fixtures for the store tests: a fresh file-backed store per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from joe.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(data_dir=tmp_path / "data")
    try:
        yield s
    finally:
        s.close()
