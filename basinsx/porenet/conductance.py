"""Hydraulic conductance models of pore-throat-pore conduits (formulas as in OpenPNM 3).

A conduit is half of pore 1, the throat and half of pore 2 in series. Each model computes
the *size factor* ``S`` of the three segments (``Q = S dP / mu``) and the conductance
``g = 1 / (mu (1/S1 + 1/St + 1/S2))`` in m3 s-1 Pa-1.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .geometry import cone_cylinder_lengths, sphere_cylinder_lengths
from .network import checked

_ATTRS = {"units": "m3 s-1 Pa-1", "long_name": "hydraulic conductance of the pore-throat-pore conduit"}


def _series(s1, st, s2, mu):
    return 1.0 / (mu * (1.0 / s1 + 1.0 / st + 1.0 / s2))


def _cylinder_size_factor(d, length):
    return np.pi * d**4 / (128.0 * length)


def sphere_cylinder_size_factors(d1, dt, d2, l_ctc):
    """Size factors (S1, St, S2) of sphere-cylinder-sphere conduits (plain arrays)."""
    l1, lt, l2 = sphere_cylinder_lengths(d1, dt, d2, l_ctc)
    # F = integral of 1/A^2 along the segment; S = 1 / (16 pi^2 I F) with I = 1/(2 pi)
    f1 = 4 / (d1**3 * np.pi**2) * (2 * d1 * l1 / (d1**2 - 4 * l1**2) + np.arctanh(2 * l1 / d1))
    f2 = 4 / (d2**3 * np.pi**2) * (2 * d2 * l2 / (d2**2 - 4 * l2**2) + np.arctanh(2 * l2 / d2))
    ft = lt / (np.pi / 4 * dt**2) ** 2
    c = 16 * np.pi**2 / (2 * np.pi)
    return 1 / (c * f1), 1 / (c * ft), 1 / (c * f2)


def cone_cylinder_size_factors(d1, dt, d2, l_ctc):
    """Size factors (S1, St, S2) of truncated-cone pores and cylindrical throats."""
    l1, lt, l2 = cone_cylinder_lengths(d1, dt, d2, l_ctc)
    f1 = 16 / 3 * (l1 * (d1**2 + d1 * dt + dt**2) / (d1**3 * dt**3 * np.pi**2))
    f2 = 16 / 3 * (l2 * (d2**2 + d2 * dt + dt**2) / (d2**3 * dt**3 * np.pi**2))
    ft = lt / (np.pi * dt**2 / 4) ** 2
    c = 16 * np.pi**2 / (2 * np.pi)
    return 1 / (c * f1), 1 / (c * ft), 1 / (c * f2)


def _conduit_data(net):
    """Diameters of both pores and the throat, and the spacing, of a network that went through ``checked``."""
    missing = [v for v in ("pore_diameter", "throat_diameter", "throat_spacing") if v not in net]
    if missing:
        raise ValueError(f"conductance models need {missing} in the network; a network without geometry "
                         f"is solved with given conductances, permeability(net, g=...)")
    conns = net["throat_conns"].values
    dp = net["pore_diameter"].values
    return dp[conns[:, 0]], net["throat_diameter"].values, dp[conns[:, 1]], net["throat_spacing"].values


def _wrap(g, model, mu, net):
    """The conductances as a DataArray, labelled with the network's throat coordinate when it has one."""
    coords = {"throat": net["throat"].values} if "throat" in net.coords else None
    return xr.DataArray(g, dims="throat", coords=coords, name="conductance",
                        attrs={**_ATTRS, "model": model, "viscosity": mu})


def hagen_poiseuille(net: xr.Dataset, mu: float = 1e-3) -> xr.DataArray:
    """Three Hagen-Poiseuille cylinders in series on the network's own ``conduit_length``.

    Segment ``i`` of diameter ``D_i`` and length ``L_i`` has ``S_i = pi D_i^4 / (128 L_i)``
    (pore diameters for the pore halves, the throat diameter for the throat). This is
    OpenPNM's ``hagen_poiseuille`` fed with these size factors; it is the natural model for
    extracted networks whose conduit lengths come with the data (Statoil format).

    Parameters
    ----------
    net : xarray.Dataset
    mu : float
        Dynamic viscosity in Pa s.

    Returns
    -------
    xarray.DataArray
        Conductance (throat,) in m3 s-1 Pa-1 (with the network's ``throat`` labels, if any).
    """
    net = checked(net)  # lengths in m, whatever units they declare
    d1, dt, d2, _ = _conduit_data(net)
    if "conduit_length" not in net:
        raise ValueError("the hagen_poiseuille model needs 'conduit_length' in the network")
    l1, lt, l2 = net["conduit_length"].values.T
    if np.any(net["conduit_length"].values <= 0):
        raise ValueError("conduit_length must be positive for the hagen_poiseuille model")
    g = _series(_cylinder_size_factor(d1, l1), _cylinder_size_factor(dt, lt), _cylinder_size_factor(d2, l2), mu)
    return _wrap(g, "hagen_poiseuille", mu, net)


def spheres_and_cylinders(net: xr.Dataset, mu: float = 1e-3) -> xr.DataArray:
    """Spherical pores and cylindrical throats (OpenPNM ``spheres_and_cylinders`` size factors).

    Conduit lengths follow from the diameters and ``throat_spacing`` (overlapping spheres
    split at their plane of intersection); the pore halves integrate ``1/A^2`` over the
    sphere cap.
    """
    net = checked(net)
    g = _series(*sphere_cylinder_size_factors(*_conduit_data(net)), mu)
    return _wrap(g, "spheres_and_cylinders", mu, net)


def cones_and_cylinders(net: xr.Dataset, mu: float = 1e-3) -> xr.DataArray:
    """Truncated-cone pore halves narrowing to cylindrical throats (OpenPNM ``cones_and_cylinders``)."""
    net = checked(net)
    g = _series(*cone_cylinder_size_factors(*_conduit_data(net)), mu)
    return _wrap(g, "cones_and_cylinders", mu, net)


MODELS = {"hagen_poiseuille": hagen_poiseuille, "spheres_and_cylinders": spheres_and_cylinders,
          "cones_and_cylinders": cones_and_cylinders}


def conductance(net: xr.Dataset, model: str = "hagen_poiseuille", mu: float = 1e-3) -> xr.DataArray:
    """Conductance of every throat by model name (one of :data:`MODELS`)."""
    if model not in MODELS:
        raise ValueError(f"unknown conductance model {model!r}; choose from {sorted(MODELS)}")
    return MODELS[model](net, mu)
