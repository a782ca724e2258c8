"""Per-basin flags in results, summarised once per call instead of one warning per basin.

A warning raised inside a dask task is lost on a distributed cluster and, on a local
scheduler, points at a dask source file and repeats once per basin. Functions that run a
kernel per basin therefore record what they would have warned about in a per-basin
result variable, a *flag*: a ``(basin,)`` count (set where > 0) or string (set where
non-empty) whose attribute ``flag`` says what it means. After the result is computed,
:func:`summarize` gives one line per flag with the number of basins and their names, and
:func:`warn` issues them as warnings attributed to the user's code.
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import xarray as xr

__all__ = ["summarize", "user_stacklevel", "warn"]

#: How many basin names a summary line lists before it says "and N more".
MAX_NAMES = 10


def _category(name: str) -> type[Warning]:
    from .models import NegativePETWarning

    return {"NegativePETWarning": NegativePETWarning}.get(name, UserWarning)


def summarize(result: xr.Dataset) -> list[tuple[str, type[Warning]]]:
    """One ``(line, warning category)`` per flag variable of ``result`` that is set in some basin.

    ``result`` must hold the flags in memory (a computed result): summaries of a lazy
    result would compute it, which library code never does.

    Examples of a line: ``"negative PET clipped to zero (days) in 2 of 5 basins: 01031500 (12),
    03346000 (4)"``.
    """
    lines = []
    for name, var in result.data_vars.items():
        if "flag" not in var.attrs or var.dims != ("basin",):
            continue
        if var.chunks is not None:
            raise ValueError(f"flag {name!r} is lazy; compute the result before summarising it")
        values = np.asarray(var.values)
        is_set = values != "" if values.dtype.kind in "OUS" else np.nan_to_num(values) > 0
        if not is_set.any():
            continue
        basins = [str(b) for b in result["basin"].values[is_set]]
        shown = [f"{b} ({v})" for b, v in zip(basins, values[is_set])][:MAX_NAMES]
        more = f" and {len(basins) - MAX_NAMES} more" if len(basins) > MAX_NAMES else ""
        lines.append((f"{var.attrs['flag']} in {len(basins)} of {values.size} basins: {', '.join(shown)}{more}",
                      _category(var.attrs.get("flag_category", ""))))
    return lines


def user_stacklevel() -> int:
    """The ``stacklevel`` of the innermost frame outside basinsx, xarray and dask: the user's line."""
    skip = tuple(os.path.dirname(m.__file__) for m in (sys.modules[__package__], xr, sys.modules.get("dask"))
                 if m is not None)
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(skip):
        frame, level = frame.f_back, level + 1
    return level  # level 1 is the frame that calls warnings.warn (this module's warn)


def warn(result: xr.Dataset) -> None:
    """Issue :func:`summarize`'s lines as warnings, attributed to the user's code (never to dask)."""
    for line, category in summarize(result):
        warnings.warn(line, category, stacklevel=user_stacklevel())
