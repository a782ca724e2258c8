"""The reader registry: every source layout basinsx reads, under the name catalogs use, and how to recognise it.

:func:`basinsx.open_dataset` picks the reader of a folder with :func:`detect`; :func:`basinsx.fetch`
takes the one its catalog entry names (``reader:``) with :func:`get_reader`. A new layout is a
module with a ``read_*(path, basins=None, chunks=None, **kwargs)`` function and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from .camels_us import read_camels_us
from .caravan import read_caravan

__all__ = ["READERS", "Reader", "detect", "get_reader"]


@dataclass(frozen=True)
class Reader:
    """A reader of one source layout.

    Attributes
    ----------
    name : str
        The name catalog entries use (``reader: caravan``).
    read : callable
        ``read(path, basins=None, chunks=None, **kwargs) -> xr.Dataset`` (canonical form).
    marker : str
        A folder that every copy of the layout has at its top, by which :func:`detect` knows it.
    """

    name: str
    read: Callable[..., xr.Dataset]
    marker: str


#: The readers by name, in the order :func:`detect` tries them.
READERS: dict[str, Reader] = {r.name: r for r in (
    Reader("caravan", read_caravan, "timeseries"),
    Reader("camels_us", read_camels_us, "basin_mean_forcing"),
)}


def get_reader(name: str) -> Reader:
    """The reader called ``name``; a ``KeyError`` lists the known ones."""
    if name not in READERS:
        raise KeyError(f"unknown reader {name!r}; known: {', '.join(READERS)}")
    return READERS[name]


def detect(path) -> Reader | None:
    """The reader of the folder ``path`` (the first whose marker folder it holds), or None."""
    path = Path(path)
    return next((r for r in READERS.values() if (path / r.marker).is_dir()), None)
