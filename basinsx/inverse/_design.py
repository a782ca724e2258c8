"""The range of a surrogate's training design, and the warning where an inversion's bounds reach beyond it."""

from __future__ import annotations

import xarray as xr


def design_range(surrogate, transform=None):
    """``(lower, upper)`` of the surrogate's training inputs where they are the parameters (no transform), else None."""
    if transform is not None or surrogate.x_template.ndim != 1 or not hasattr(surrogate, "x_hi"):
        return None  # x_hi: not recorded by older basinsx
    return surrogate.x_lo, surrogate.x_hi


def warn_beyond_design(bounds: xr.DataArray, design) -> None:
    """Warn naming the parameters whose ``bounds`` reach beyond the surrogate's training ``design`` range by more
    than a tenth of it (a design's samples stop short of its own bounds, by about a range over their number)."""
    if design is None:
        return
    lo, hi = design
    span = hi - lo
    beyond = (bounds.values[:, 0] < lo - 0.1 * span) | (bounds.values[:, 1] > hi + 0.1 * span)
    if beyond.any():
        import warnings

        named = ", ".join(f"{p} [{a:g}, {b:g}] (trained on [{c:g}, {d:g}])" for p, a, b, c, d in
                          zip(bounds["param"].values[beyond], *bounds.values[beyond].T, lo[beyond], hi[beyond]))
        warnings.warn(f"the bounds reach beyond the surrogate's training design: {named}; its predictions there "
                      "are extrapolations", UserWarning, stacklevel=3)
