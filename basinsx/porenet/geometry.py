"""Geometry of pore-throat-pore conduits on plain arrays: the flow axes and the conduit-length rules.

Shared by :mod:`~basinsx.porenet.network` (default conduit lengths), :mod:`~basinsx.porenet.conductance`
(size factors) and ``basinsx.porenet.io`` (Statoil networks), which import it and never each other's
internals.
"""

from __future__ import annotations

import numpy as np

#: The flow axes of a network, in the order of ``pore_coords``' ``xyz``.
AXES = ("x", "y", "z")


def axis_index(axis: str) -> int:
    """Position of ``axis`` in :data:`AXES`; a ValueError names the valid ones."""
    if axis not in AXES:
        raise ValueError(f"axis must be one of {AXES}, got {axis!r}")
    return AXES.index(axis)


def sphere_cylinder_lengths(d1, dt, d2, l_ctc):
    """Lengths ``(l1, lt, l2)`` of the pore1 half, throat and pore2 half: spherical pores, cylindrical throats.

    OpenPNM's rule: a pore of diameter ``d`` reaches ``sqrt(d^2 - dt^2) / 2`` along the
    throat; overlapping spheres are split at their plane of intersection. Plain arrays
    in metres; ``l_ctc`` is the centre-to-centre distance.
    """
    if np.any(dt > d1) or np.any(dt > d2):
        raise ValueError("throat diameter exceeds an adjoining pore diameter: the sphere and cylinder "
                         "conduit is undefined (use cones_and_cylinders or cap the throat diameters)")
    l1 = np.sqrt(d1**2 - dt**2) / 2
    l2 = np.sqrt(d2**2 - dt**2) / 2
    lt = l_ctc - (l1 + l2)
    if np.any(lt < 0):  # overlapping spheres: split at the plane of intersection
        r1, r2, d = d1 / 2, d2 / 2, l_ctc
        l1_int = (d**2 - r2**2 + r1**2) / (2 * d)
        if np.any(l1_int < 0) or np.any(l1_int > l_ctc):
            raise ValueError("pores overlap too much for the sphere and cylinder conduit model")
        d_int = np.sqrt(np.maximum(4 * d**2 * r1**2 - (d**2 - r2**2 + r1**2) ** 2, 0)) / d
        m = d_int > dt
        l1 = np.where(m, l1_int, l1)
        l2 = np.where(m, l_ctc - l1_int, l2)
        lt = np.where(m, 1e-15, lt)
    return l1, lt, l2


def cone_cylinder_lengths(d1, dt, d2, l_ctc):
    """Lengths ``(l1, lt, l2)`` for truncated-cone pores (half a diameter long) and cylindrical throats.

    Overlapping pores are split where their cones meet; a throat keeps at least 1e-15 m.
    """
    l1, l2 = d1 / 2, d2 / 2
    overlap = l_ctc - 0.5 * (d1 + d2) < 0
    l1_ov = (4 * l_ctc**2 + d1**2 - d2**2) / (8 * l_ctc)
    l1 = np.where(overlap, l1_ov, l1)
    l2 = np.where(overlap, l_ctc - l1_ov, l2)
    lt = np.maximum(l_ctc - (l1 + l2), 1e-15)
    return l1, lt, l2
