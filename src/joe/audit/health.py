"""The audit chain's health as every consumer sees it: `joe audit verify`, `joe status`, the run.

`chain_health(directory, anchor)` walks the chain (against the store's anchor when there is one)
and sums it up in one line. A broken chain blocks live and shadow trading and is a loud warning in
paper (`joe.safety.preflight`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from joe.audit.anchor import Anchor, StoreAnchor
from joe.audit.chain import VerifyReport, verify


@dataclass(frozen=True, slots=True)
class ChainHealth:
    """`ok` is False when the chain is broken; `summary` says where and why in one line."""

    ok: bool
    summary: str
    report: VerifyReport
    anchored: bool


def chain_health(directory: Path | str, anchor: Anchor | None) -> ChainHealth:
    """Verify `directory` against `anchor` and summarise."""
    report = verify(directory, anchor)
    if report.first_break is not None:
        b = report.first_break
        where = f"{b.file}:{b.line}" if b.line else b.file
        summary = f"BROKEN at {where}: {b.reason}" + (f" ({b.detail})" if b.detail else "")
    else:
        summary = f"whole: {report.records} records, last seq {report.last_seq}"
        if anchor is None and report.records:
            summary += " (no store anchor: a deleted tail would not be detected)"
        elif anchor is not None:
            summary += f", anchored at seq {anchor.seq}"
        if report.warnings:
            summary += f"; {len(report.warnings)} warning(s): " + "; ".join(
                f"{w.reason} ({w.detail})" for w in report.warnings[:3]
            )
    return ChainHealth(report.ok, summary, report, anchor is not None)


def stored_anchor(data_dir: Path | str) -> Anchor | None:
    """The anchor in the store of `data_dir` ($JOE_DB_URL, else ``<data_dir>/joe.db`` if it exists).

    Never creates a database just to look; None when there is no store or no anchor.
    """
    from joe.store import open_store
    from joe.store.db import ENV_URL, default_url

    url = os.environ.get(ENV_URL)
    if not url:
        db = Path(data_dir) / "joe.db"
        if not db.exists():
            return None
        url = default_url(data_dir)
    store = open_store(url, data_dir=data_dir)
    try:
        return StoreAnchor(store).load_anchor()
    finally:
        store.close()
