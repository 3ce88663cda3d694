"""Any ``KILL`` entry in the data folder, in any form, is a kill (review of issue 11, point 5).

The check is `os.lstat`, not `exists()`: a dangling symlink, a directory, a fifo or a socket called
KILL all halt, and so does one that cannot be looked at or read. Nothing is read from a non-regular
file (opening a fifo would block the run).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from joe.safety.control import SafetyContext, entry_allowed
from joe.safety.kill_switch import KillLevel, read_kill_file
from joe.safety.trading_state import TradingState


def _dangling(p: Path) -> None:
    p.symlink_to(p.parent / "does-not-exist")


def _symlink_to_dir(p: Path) -> None:
    (p.parent / "somedir").mkdir()
    p.symlink_to(p.parent / "somedir")


def _socket(p: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()


def _symlink_loop(p: Path) -> None:
    p.symlink_to(p)


FORMS: dict[str, tuple[Callable[[Path], None], str]] = {
    "dangling symlink": (_dangling, "symlink that cannot be followed"),
    "symlink loop": (_symlink_loop, "symlink that cannot be followed"),
    "symlink to a directory": (_symlink_to_dir, "symlink to a directory"),
    "directory": (lambda p: p.mkdir(), "is a directory"),
    "fifo": (lambda p: os.mkfifo(p), "is a fifo"),
    "socket": (_socket, "is a socket"),
}


@pytest.mark.parametrize("form", FORMS)
def test_every_form_of_a_kill_entry_halts(ctx: SafetyContext, form: str) -> None:
    make, says = FORMS[form]
    make(ctx.data_dir / "KILL")
    found = read_kill_file(ctx.data_dir)
    assert found is not None and found.level is KillLevel.HALT and says in found.reason
    allowed, rec = entry_allowed(ctx)
    assert not allowed and rec.state is TradingState.HALTED and rec.by == "kill-file"


def test_a_kill_file_that_cannot_be_read_halts(ctx: SafetyContext, monkeypatch: pytest.MonkeyPatch) -> None:
    (ctx.data_dir / "KILL").write_text("reduce please")
    real_open = os.open

    def denied(path: object, *a: object, **k: object) -> int:
        if str(path).endswith("KILL"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", denied)  # root ignores chmod 000; this is what a user would get
    found = read_kill_file(ctx.data_dir)
    assert found is not None and found.level is KillLevel.HALT and "unreadable" in found.reason


def test_a_kill_entry_that_cannot_be_looked_at_halts(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("a file where the data folder should be")
    found = read_kill_file(not_a_dir)  # lstat fails with ENOTDIR: cannot prove there is no KILL
    assert found is not None and found.level is KillLevel.HALT and "cannot be checked" in found.reason


def test_no_kill_entry_and_a_lower_case_name_do_not_halt(ctx: SafetyContext) -> None:
    (ctx.data_dir / "kill").write_text("halt")  # the name is KILL, exactly
    assert read_kill_file(ctx.data_dir) is None
    assert entry_allowed(ctx)[0]


def test_a_symlink_to_a_kill_file_is_read(ctx: SafetyContext) -> None:
    (ctx.data_dir / "real").write_text("reduce maintenance window")
    (ctx.data_dir / "KILL").symlink_to(ctx.data_dir / "real")
    found = read_kill_file(ctx.data_dir)
    assert found is not None and (found.level, found.reason) == (KillLevel.REDUCE, "maintenance window")
