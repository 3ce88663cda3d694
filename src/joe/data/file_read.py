"""Reading one price file's cells into a raw frame (no validation: `joe.data.files` does that).

Parquet through `pyarrow.parquet.ParquetFile` on the calling thread; CSV through `pd.read_csv` with the
encoding (UTF-8, or UTF-16 with a byte-order mark) and separator (',', ';', tab, '|', decimal commas)
sniffed from the file's first lines. Every function here is safe to call from several threads at once
(`joe.data.files` reads a folder's files in a thread pool).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from joe.data.errors import DataError

SEPARATORS = {";": "semicolon ';'", "\t": "tab", "|": "pipe '|'"}
_DECIMAL_COMMA = re.compile(r"^-?\d+,\d+$")


def text_encoding(path: Path) -> str:
    """utf-16 for a file that starts with a UTF-16 byte-order mark (Excel's "Unicode Text"), else utf-8
    (a UTF-8 byte-order mark is skipped)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(2)
    except OSError:
        return "utf-8"
    return "utf-16" if head in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"


def sniff_separator(path: Path) -> tuple[str, bool]:
    """(the field separator of a CSV file, whether its numbers use decimal commas), from its first lines.

    A comma in the header means ','; otherwise the most frequent of ';', tab and '|'. Decimal commas
    (``12,5``) are only possible with another separator.
    """
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding=text_encoding(path), errors="replace") as fh:
            lines = [fh.readline() for _ in range(6)]
    except OSError:
        return ",", False
    header = lines[0]
    counts = {sep: header.count(sep) for sep in SEPARATORS}
    best = max(counts, key=lambda k: counts[k])
    if "," in header or counts[best] == 0:
        return ",", False
    fields = [f.strip().strip('"') for line in lines[1:] for f in line.split(best)]
    return best, any(_DECIMAL_COMMA.match(f) for f in fields)


def read_parquet(path: Path) -> pd.DataFrame:
    """`pd.read_parquet(path)` for one local file: the same frame (pandas' metadata: index, dtypes, time
    zones), read through `pyarrow.parquet.ParquetFile` on this thread instead of pandas' route through
    pyarrow's dataset layer, which costs twice the read itself on a small file (~1.5 ms of ~3 ms: 0.7 s
    CPU of a 500-file folder); converted on this thread too (pyarrow's pool for a few columns costs
    more than it saves: 0.2 s CPU, 0.4 s wall of 500 files). Test: tests/data/test_read_parquet.py."""
    with pq.ParquetFile(path) as fh:
        table = fh.read(use_threads=False, use_pandas_metadata=True)
    return table.to_pandas(use_threads=False)


def read_raw(path: Path) -> tuple[pd.DataFrame, str | None]:
    """The file as a frame, and a note when it is not a plain comma-separated CSV."""
    note = None
    try:
        if path.name.lower().endswith((".parquet", ".pq")):
            df = read_parquet(path)
            if isinstance(df.index, pd.DatetimeIndex):
                df = df.reset_index(names=df.index.name or "date")
            return df, None
        sep, decimal_comma = sniff_separator(path)
        if sep != ",":
            note = f"read as a {SEPARATORS[sep]}-separated file" + (
                " with decimal commas (12,5 = 12.5)" if decimal_comma else ""
            )
        encoding = text_encoding(path)
        return pd.read_csv(path, sep=sep, decimal="," if decimal_comma else ".", encoding=encoding), note
    except Exception as exc:  # any reader failure becomes a message about this file
        raise DataError(
            f"{path.name}: cannot be read as {'Parquet' if 'parq' in path.name else 'CSV'} "
            f"({type(exc).__name__}: {exc}"
            + (f"; {note}" if note else "")
            + "); check the file is not truncated or mislabelled"
        ) from exc
