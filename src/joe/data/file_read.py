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

import numpy as np
import pandas as pd
import pyarrow as pa
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


def numbers(column: pd.Series) -> np.ndarray:
    """A column as float64: numbers as they are, anything else through `pd.to_numeric` (text that is not
    a number becomes NaN, which the caller reports with its row)."""
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "fiu":
        return column.to_numpy(dtype="float64", copy=True)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64")


class Cells:
    """A file's cells by column, as `read_raw` gives them: the column names as written, each column as
    the Series `pd.read_parquet`/`pd.read_csv` would give, and its values as float64 with the cells that
    are not numbers marked.

    A Parquet file of plain columns (numbers and times, no stored index) is kept as its Arrow table:
    numbers go straight to numpy and only the time column becomes a Series - a pandas frame of the file
    and a Series per column cost ~1.4 ms a file, 0.7 s CPU of a 500-file folder. Test:
    tests/data/test_file_cells.py (the same values, Series and `read_file` results as through pandas).
    """

    def __init__(self, frame: pd.DataFrame | None = None, table: pa.Table | None = None) -> None:
        self._frame, self._table = frame, table
        self._series: dict[object, pd.Series] = {}
        if table is not None:
            self.names: list[object] = list(table.column_names)
            self._rows = table.num_rows
        else:
            assert frame is not None
            self.names, self._rows = list(frame.columns), len(frame)

    def __len__(self) -> int:
        return self._rows

    @property
    def empty(self) -> bool:
        """No rows or no columns (`DataFrame.empty`)."""
        return self._rows == 0 or not self.names

    def series(self, name: object) -> pd.Series:
        """The column as pandas reads it."""
        if name not in self._series:
            if self._table is not None:
                self._series[name] = self._table.column(str(name)).to_pandas().rename(name)
            else:
                assert self._frame is not None
                self._series[name] = self._frame[name]
        return self._series[name]

    def time_key(self, name: object) -> tuple[str, bytes] | None:
        """The column's type and values as bytes when it is an Arrow timestamp column with no empty cell
        (its dating depends on nothing else: `joe.data.files` dates equal columns once); else None."""
        if self._table is None:
            return None
        column = self._table.column(str(name))
        if not pa.types.is_timestamp(column.type) or column.null_count:
            return None
        return str(column.type), column.to_numpy().tobytes()

    def numbers(self, name: object) -> tuple[np.ndarray, np.ndarray]:
        """(the column as float64 - a copy the caller may change -, the cells that are no number: text
        that `pd.to_numeric` cannot read; an empty cell is NaN, not bad)."""
        if self._table is not None:
            column = self._table.column(str(name))
            if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
                values = np.asarray(column.to_numpy(), dtype="float64")
                if not values.flags.writeable or values.base is not None:
                    values = values.copy()
                return values, np.zeros(len(values), dtype=bool)
        column = self.series(name)
        values = numbers(column)
        nan = np.isnan(values)
        # A NaN that was no empty cell is text that is not a number (no NaN: nothing to ask pandas).
        return values, (nan & column.notna().to_numpy() if nan.any() else nan)


def _plain(table: pa.Table) -> bool:
    """Columns pandas reads as they are: numbers (no booleans) and times, under their own names, and no
    index stored in the file (then `read_parquet` and its pandas metadata decide)."""
    for field in table.schema:
        t = field.type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_timestamp(t)):
            return False
    if len(set(table.column_names)) != len(table.column_names):
        return False
    meta = table.schema.pandas_metadata
    if meta is None:
        return True
    if any(not isinstance(i, dict) for i in meta.get("index_columns", [])):
        return False  # an index stored as a column
    if len(meta.get("column_indexes", [])) > 1:
        return False
    return all(c.get("name") == c.get("field_name") for c in meta.get("columns", []))


def read_cells(path: Path) -> tuple[Cells, str | None]:
    """The file's cells, and a note when it is not a plain comma-separated CSV: `read_raw`'s frame, or a
    plain Parquet file's Arrow table (`Cells`)."""
    if path.name.lower().endswith((".parquet", ".pq")):
        try:
            with pq.ParquetFile(path) as fh:
                table = fh.read(use_threads=False, use_pandas_metadata=True)
        except Exception as exc:
            raise _unreadable(path, exc, None) from exc
        if _plain(table):
            return Cells(table=table), None
    frame, note = read_raw(path)
    return Cells(frame=frame), note


def _unreadable(path: Path, exc: Exception, note: str | None) -> DataError:
    return DataError(
        f"{path.name}: cannot be read as {'Parquet' if 'parq' in path.name else 'CSV'} "
        f"({type(exc).__name__}: {exc}"
        + (f"; {note}" if note else "")
        + "); check the file is not truncated or mislabelled"
    )


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
        raise _unreadable(path, exc, note) from exc
