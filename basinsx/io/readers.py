"""Pieces shared by the file-format readers: stacking per-basin files, lazily or not."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

# A loader returns {variable: values on its own dates} and those dates for one basin.
Loader = Callable[[str], tuple[pd.DatetimeIndex, dict[str, np.ndarray]]]


class FileFormatError(ValueError):
    """A data file that does not hold what its format promises; the message starts with its path."""

    def __init__(self, path, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: {problem}")

    def __reduce__(self):  # dask pickles a worker's exception; the default would call __init__(message)
        return type(self), (self.path, self.problem)


@contextlib.contextmanager
def reading(path, what: str):
    """Turn any parse error inside the block into a :class:`FileFormatError` naming ``path``.

    Parsers (h5py, pandas, float()) say what is wrong but not in which file; OS errors
    that already carry a file name (missing file, no permission) pass unchanged.
    """
    try:
        yield
    except FileFormatError:
        raise
    except OSError as err:
        if err.filename:
            raise
        raise FileFormatError(path, f"cannot read as {what}: {err}") from err
    except (ValueError, KeyError, IndexError, RuntimeError) as err:
        raise FileFormatError(path, f"cannot read as {what}: {err}") from err


def read_table(path: Path, what: str, **read_csv) -> pd.DataFrame:
    """An attribute table indexed by its ``gauge_id`` column, ids stripped of surrounding whitespace.

    A stray space in an id would otherwise match no basin, and every value of the table would be lost.
    """
    with reading(path, what):
        dtype = {"gauge_id": str, **read_csv.pop("dtype", {})}
        frame = pd.read_csv(path, dtype=dtype, **read_csv).set_index("gauge_id")
    frame.index = frame.index.str.strip()
    return frame


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Where two columns agree: equal, numerically close, or missing in either (one table fills the other)."""
    missing = a.isna().to_numpy() | b.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
        x, y = a.to_numpy(np.float64), b.to_numpy(np.float64)
        return missing | np.isclose(x, y, rtol=1e-6, atol=0.0)
    return missing | (a.astype(str).to_numpy() == b.astype(str).to_numpy())


def _show(value) -> str:
    return f"{value:.10g}" if isinstance(value, (float, np.floating)) else repr(value)


def merge_tables(tables: dict[Path, pd.DataFrame]) -> pd.DataFrame:
    """Attribute tables (indexed by gauge id) outer-joined into one.

    A column found in several tables is kept once if the tables agree on every basin they
    share (a value missing in one table is taken from the other); if they differ, the error
    names the column, both files and the first basin where they differ.
    """
    merged, source = None, {}
    for path, frame in tables.items():
        if merged is None:
            merged, source = frame, dict.fromkeys(frame.columns, path)
            continue
        shared = [c for c in frame.columns if c in merged.columns]
        common = merged.index.intersection(frame.index)
        for column in shared:
            a, b = merged.loc[common, column], frame.loc[common, column]
            same = _same(a, b)
            if not same.all():
                basin = common[int(np.argmin(same))]
                raise ValueError(f"column {column!r} differs between {source[column].name} and {path.name}: basin "
                                 f"{basin} has {_show(a[basin])} and {_show(b[basin])} (a column in several "
                                 "attribute tables must hold the same values)")
        merged = merged.join(frame.drop(columns=shared), how="outer")
        for column in shared:
            merged[column] = merged[column].fillna(frame[column].reindex(merged.index))
        source.update({c: path for c in frame.columns if c not in source})
    return merged


def require_rows(tables: dict[Path, pd.DataFrame], ids: Sequence[str], hint: str = "") -> None:
    """Raise a :class:`KeyError` naming the table and the basins of ``ids`` it has no row for.

    A missing row would otherwise leave NaN in every column of that table for those basins.
    """
    for path, frame in tables.items():
        missing = [b for b in ids if b not in frame.index]
        if missing:
            shown = ", ".join(repr(b) for b in missing[:10]) + (", ..." if len(missing) > 10 else "")
            raise KeyError(f"{path}: no row for basins [{shown}] ({len(missing)} of the {len(ids)} basins read); "
                           f"every attribute table must hold every basin{hint}")


def _block(loader: Loader, ids: Sequence[str], variables: Sequence[str], time: pd.DatetimeIndex) -> np.ndarray:
    out = np.full((len(variables), len(ids), len(time)), np.nan, dtype=np.float32)
    for j, basin in enumerate(ids):
        dates, values = loader(basin)
        pos = time.get_indexer(dates)
        keep = pos >= 0
        for i, name in enumerate(variables):  # loaders return every variable: a missing one is a bug
            out[i, j, pos[keep]] = np.asarray(values[name], dtype=np.float32)[keep]
    return out


def stack_basins(loader: Loader, ids: Sequence[str], variables: Sequence[str], time: pd.DatetimeIndex,
                 chunks: int | None, desc: str) -> dict[str, np.ndarray | da.Array]:
    """Stack one file per basin into ``{variable: (basin, time) array}``.

    With ``chunks=None`` every file is parsed now (with a progress bar); with an
    integer the result is dask-backed, one task per block of ``chunks`` basins,
    and nothing is read until it is computed.
    """
    if chunks is None:
        out = np.full((len(variables), len(ids), len(time)), np.nan, dtype=np.float32)
        for j, basin in enumerate(tqdm(ids, desc=desc, unit="basin", disable=len(ids) < 20)):
            out[:, j : j + 1] = _block(loader, [basin], variables, time)
        return dict(zip(variables, out))
    blocks = []
    for start in range(0, len(ids), chunks):
        block_ids = list(ids[start : start + chunks])
        shape = (len(variables), len(block_ids), len(time))
        blocks.append(da.from_delayed(dask.delayed(_block, pure=True)(loader, block_ids, list(variables), time),
                                      shape=shape, dtype=np.float32))
    stacked = da.concatenate(blocks, axis=1)
    return {name: stacked[i] for i, name in enumerate(variables)}


def basin_chunk(chunks, n: int) -> int | None:
    """Basin block size from a ``chunks`` argument (None, int, "auto" or a dict with ``basin``)."""
    if chunks is None:
        return None
    if isinstance(chunks, dict):
        chunks = chunks.get("basin", "auto")
    if chunks in ("auto", -1):
        return max(1, min(n, 16)) if chunks == "auto" else n
    return int(chunks)
