"""Audit payload kinds (review of issue 11, point 9): written faithfully as standard JSON, or refused with
an `AuditPayloadError` naming where — never another exception, never silently altered data."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.audit.errors import AuditPayloadError, AuditRecordTooLarge
from joe.audit.log import AuditLog, verify


def _strict(line: str) -> Any:
    def bad(c: str) -> None:
        raise ValueError(f"non-standard JSON constant {c}")

    return json.loads(line, parse_constant=bad)


def _written(log: AuditLog, payload: dict[str, Any]) -> Any:
    rec = log.record("t.kind", payload)
    return _strict(rec.file.read_text().splitlines()[-1])["payload"]


class _BadRepr:
    def __repr__(self) -> str:
        raise ValueError("boom")

    __str__ = __repr__


def test_an_object_whose_repr_raises_is_refused_naming_the_key(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=False)
    with pytest.raises(AuditPayloadError, match=r"payload\.order\.w holds a _BadRepr"):
        log.record("t.kind", {"order": {"w": _BadRepr()}})
    with pytest.raises(AuditPayloadError, match="cannot be rendered"):
        log.record("t.kind", {_BadRepr(): 1})  # type: ignore[dict-item]
    assert log.last_seq == 0  # nothing written


@settings(max_examples=50, deadline=None)
@given(raw=st.binary(max_size=64))
def test_bytes_are_written_whole(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    log = AuditLog(tmp_path_factory.mktemp("b"), fsync=False)
    got = _written(log, {"b": raw})["b"]
    assert base64.b64decode(got["$base64"]) == raw


def test_numpy_arrays_are_listed_in_full(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=False)
    arr = np.arange(5000, dtype=float)
    arr[3] = np.nan
    got = _written(log, {"a": arr, "i": np.int64(7), "flag": np.bool_(True)})
    assert len(got["a"]) == 5000 and got["a"][3] == "NaN" and got["a"][4999] == 4999.0
    assert got["i"] == 7 and got["flag"] is True
    with pytest.raises(AuditRecordTooLarge):  # too big for one record: refused, not truncated
        log.record("t.kind", {"a": np.zeros(200_000)})


@settings(max_examples=50, deadline=None)
@given(text=st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF) | st.characters(), max_size=10))
def test_lone_surrogates_are_escaped_and_the_file_stays_utf8(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    d = tmp_path_factory.mktemp("s")
    log = AuditLog(d, fsync=False)
    rec = log.record("t.kind", {"s": text, text: "as a key"})
    raw = rec.file.read_bytes()
    raw.decode("utf-8")  # strict: every byte valid UTF-8
    got = _strict(raw.decode().splitlines()[-1])["payload"]["s"]
    got.encode("utf-8")  # no lone surrogate survives
    assert verify(d).ok
