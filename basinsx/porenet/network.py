"""Pore networks as labeled arrays: the data model, the cubic constructor and health checks.

A network is an :class:`xarray.Dataset` with dims ``pore``, ``throat``, ``xyz`` (3),
``end`` (2) and ``conduit`` (``pore1``, ``throat``, ``pore2``):

=========================  ====================  =========================================
variable                   dims                  meaning
=========================  ====================  =========================================
``pore_coords``            (pore, xyz)           pore centre, m
``pore_index``             (pore,) int           the pore's position when built: 0, 1, 2, ...
``pore_diameter``          (pore,)               m
``pore_volume``            (pore,)               m3
``pore_xmin`` ... ``zmax`` (pore,) bool          pores on a face of the domain
``throat_conns``           (throat, end) int     the two pores a throat joins
``throat_diameter``        (throat,)             m
``throat_spacing``         (throat,)             centre-to-centre distance, m
``conduit_length``         (throat, conduit)     lengths of pore1 half, throat, pore2 half
=========================  ====================  =========================================

``pore_diameter``, ``throat_diameter`` and ``conduit_length`` may be missing (a network of
coordinates and connections only, solved with given conductances).
Optional: ``throat_hydraulic_conductance`` (m3 s-1 Pa-1, the default ``g`` of the solver),
``pore_shape_factor``, ``throat_shape_factor``, ``throat_volume`` and any other
per-pore or per-throat data. Attributes: ``voxel_size`` (m, extracted networks),
``domain_size`` (3 lengths, m), ``viscosity`` (Pa s, the default ``mu`` of the solver; set by
:func:`basinsx.porenet.from_openpnm` from a phase) and, for lattices, ``lattice_shape`` and ``spacing``.

Units: a length variable (and the volumes) may declare other units in its ``units``
attribute (``um``, ``µm``, ``micrometre``, ``mm``, ``cm``, ...); :func:`checked`, which every
solver and conductance model calls, converts it to m and refuses units that are not a length
with a :class:`basinsx.units.UnitsError` naming the variable. A variable without ``units``
is in m. The dataset attributes carry no units: they are m. Lengths far beyond what a pore
network in metres can have (:data:`MAX_PORE_SIZE`, :data:`MAX_VOXEL`, :data:`MAX_SAMPLE`)
are an error that says the units are m, as micrometres given as metres would be.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import xarray as xr
from scipy.sparse.csgraph import connected_components

from ..units import to_canonical
from .geometry import AXES, axis_index, sphere_cylinder_lengths

FACES = tuple(f"pore_{a}{s}" for a in AXES for s in ("min", "max"))
CONDUIT = ["pore1", "throat", "pore2"]

#: Largest voxel a pore image plausibly has (m): 1 mm (micro-CT of rocks: 0.1-50 um).
MAX_VOXEL = 1e-3
#: Largest pore or throat diameter, conduit length or lattice spacing a network in metres plausibly has:
#: 1 cm (the pores of sandstones are 1-500 um, those of bead and gravel packs a few mm).
MAX_PORE_SIZE = 1e-2
#: Largest sample (``domain_size``) a pore network in metres plausibly describes: 1 m.
MAX_SAMPLE = 1.0
#: Variables whose ``units`` attribute :func:`checked` reads, and the units they are used in.
UNITS = {"pore_coords": "m", "pore_diameter": "m", "throat_diameter": "m", "throat_spacing": "m",
         "conduit_length": "m", "pore_volume": "m3", "throat_volume": "m3",
         "throat_hydraulic_conductance": "m3 s-1 Pa-1"}

ATTRS = {
    "pore_coords": {"units": "m", "long_name": "pore centre coordinates"},
    "pore_index": {"long_name": "position of the pore when the network was built; throat_conns counts by it"},
    "pore_diameter": {"units": "m", "long_name": "pore diameter"},
    "pore_volume": {"units": "m3", "long_name": "pore volume"},
    "pore_shape_factor": {"units": "1", "long_name": "pore shape factor A/P^2"},
    "throat_conns": {"long_name": "indices of the two pores joined by the throat"},
    "throat_diameter": {"units": "m", "long_name": "throat diameter"},
    "throat_spacing": {"units": "m", "long_name": "pore centre-to-centre distance"},
    "throat_volume": {"units": "m3", "long_name": "throat volume"},
    "throat_shape_factor": {"units": "1", "long_name": "throat shape factor A/P^2"},
    "conduit_length": {"units": "m", "long_name": "lengths of the pore1 half, throat and pore2 half of a conduit"},
}


def _per(values, n: int, name: str, what: str) -> np.ndarray:
    """``values`` (a scalar or one per element) as ``n`` positive finite floats, or an error naming ``name``."""
    values = np.asarray(values, dtype=float)
    if values.ndim and values.shape != (n,):
        raise ValueError(f"{name} needs one value per {what[:-1]} ({n} {what}), got shape {values.shape}")
    values = np.broadcast_to(values, (n,)).copy()
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        raise ValueError(f"{name} must be finite and positive (m); got {values[bad][:5]}")
    return values


def plausible_length(values, name: str, limit: float) -> None:
    """Raise when a length in m exceeds ``limit``: micrometres (or millimetres) taken as metres (the one rule of
    :func:`checked`, :func:`make_network` and :func:`basinsx.porenet.from_porespy`)."""
    values = np.asarray(values, dtype=float)
    big = float(np.nanmax(values)) if values.size and not np.isnan(values).all() else 0.0
    if big > limit:
        raise ValueError(f"{name} is in m; {big} m is more than {limit} m, too large for a pore network "
                         f"(micrometres? give {big} um as {big * 1e-6:g})")


def _plausible_attrs(attrs) -> None:
    for key, limit in (("spacing", MAX_PORE_SIZE), ("voxel_size", MAX_VOXEL), ("domain_size", MAX_SAMPLE)):
        if attrs.get(key) is not None:
            plausible_length(attrs[key], f"attribute {key}", limit)


def _given(value, name: str, expected: str = "m"):
    """An input array of :func:`make_network` as a float copy, in ``expected`` units when it declares its own."""
    if value is None:
        return None
    if isinstance(value, xr.DataArray):
        value = to_canonical(value, name, expected=expected)[0].values
    return np.array(value, dtype=float)


def checked(net: xr.Dataset) -> xr.Dataset:
    """``net`` validated (:func:`validate`), with every variable of :data:`UNITS` in those units.

    Each variable's ``units`` attribute is read: lengths in ``um``/``µm``/``micrometre``, ``mm``,
    ``cm``, ``km``, ``in``, ``ft`` (volumes in their cubes) are converted to m (m3), a variable
    without ``units`` is taken as m, and units that are not a length raise a
    :class:`basinsx.units.UnitsError` naming the variable. Diameters, spacings and conduit
    lengths above :data:`MAX_PORE_SIZE`, and the attributes ``spacing``, ``voxel_size`` and
    ``domain_size`` above :data:`MAX_PORE_SIZE`, :data:`MAX_VOXEL` and :data:`MAX_SAMPLE`, raise a
    ValueError saying the units are m. The solvers, conductance models and the GNN call it
    on every network they are given.
    """
    validate(net)
    converted = {}
    for name, expected in UNITS.items():
        if name in net.data_vars:
            da = net[name]
            out = to_canonical(da, name, expected=expected)[0]
            if out is not da:
                converted[name] = out
    if converted:
        net = net.assign(converted)
    for name in ("pore_diameter", "throat_diameter", "throat_spacing", "conduit_length"):
        if name in net.data_vars:
            plausible_length(net[name].values, name, MAX_PORE_SIZE)
    _plausible_attrs(net.attrs)
    return net


def make_network(coords, conns, pore_diameter, throat_diameter, *, conduit_length=None, spacing=None,
                 faces=None, pore_volume=None, throat_volume=None, domain_size=None, attrs=None,
                 **extra) -> xr.Dataset:
    """Assemble a network Dataset from plain arrays.

    Parameters
    ----------
    coords : array (n_pores, 3)
        Pore centres in m. Every length and volume given here may also be a DataArray whose
        ``units`` attribute says its units (see :func:`checked`); plain arrays are m (m3).
        Diameters, spacings and conduit lengths above :data:`MAX_PORE_SIZE` (1 cm) are a
        ValueError saying the units are m (micrometres given as metres, say). The arrays
        are copied.
    conns : int array (n_throats, 2)
        Pore indices of each throat.
    pore_diameter, throat_diameter : array or None
        Diameters in m. ``None`` leaves the variable out: such a network has no geometry and
        is solved with given conductances (``permeability(net, g=...)``); the conductance
        models then raise a ValueError naming the missing variable.
    conduit_length : array (n_throats, 3), optional
        Lengths of the pore1 half, the throat and the pore2 half. Default: the sphere and
        cylinder rule of OpenPNM, as in :func:`basinsx.porenet.conductance.spheres_and_cylinders`,
        when both diameters are given; otherwise left out.
    spacing : array (n_throats,), optional
        Centre-to-centre distance; default the distance between the pore coordinates.
    faces : dict, optional
        ``{"pore_xmin": bool array, ...}``; missing faces are all False.
    pore_volume, throat_volume : array, optional
    domain_size : sequence of 3 floats, optional
        The sample's size in m. Default: for pores on every node of a regular cubic grid,
        the lattice's (``lattice_shape`` and ``spacing`` set as :func:`cubic` sets them);
        otherwise none, and :func:`basinsx.porenet.permeability` asks for it (the pores'
        extent is not the sample's: it misses half a pore at every face).
    attrs : dict, optional
        Extra dataset attributes.
    **extra
        Further variables: arrays of length n_pores become ``(pore,)`` variables, of length
        n_throats ``(throat,)`` variables (names should start with ``pore_`` or ``throat_``).
        ``pore_index`` is reserved: it is set to ``0, 1, 2, ...`` here, so that
        :func:`validate` can tell a network whose pores were reordered by position
        (``net.roll(pore=...)``, ``net.isel(pore=...)``).

    Returns
    -------
    xarray.Dataset
    """
    coords = _given(coords, "pore_coords")
    conns = np.array(conns, dtype=np.int64)  # copies: a view of the caller's array (or a negative stride) is not kept
    if coords.ndim != 2 or coords.shape[1] != 3:
        raise ValueError(f"coords must have shape (n_pores, 3), got {coords.shape}")
    if conns.ndim != 2 or conns.shape[1] != 2:
        raise ValueError(f"conns must have shape (n_throats, 2), got {conns.shape}")
    npore, nthroat = len(coords), len(conns)
    if nthroat and (conns.min() < 0 or conns.max() >= npore):
        raise ValueError(f"throat_conns refer to pores outside 0..{npore - 1}")
    if spacing is None:
        spacing = np.linalg.norm(coords[conns[:, 0]] - coords[conns[:, 1]], axis=1)
    spacing = np.broadcast_to(_given(spacing, "throat_spacing"), (nthroat,)).copy()
    data = {
        "pore_coords": (("pore", "xyz"), coords),
        "throat_conns": (("throat", "end"), conns),
        "throat_spacing": ("throat", spacing),
    }
    if pore_diameter is not None:
        pore_diameter = _per(_given(pore_diameter, "pore_diameter"), npore, "pore_diameter", "pores")
        plausible_length(pore_diameter, "pore_diameter", MAX_PORE_SIZE)
        data["pore_diameter"] = ("pore", pore_diameter)
    if throat_diameter is not None:
        throat_diameter = _per(_given(throat_diameter, "throat_diameter"), nthroat, "throat_diameter", "throats")
        plausible_length(throat_diameter, "throat_diameter", MAX_PORE_SIZE)
        data["throat_diameter"] = ("throat", throat_diameter)
    plausible_length(spacing, "throat_spacing", MAX_PORE_SIZE)
    if conduit_length is None and pore_diameter is not None and throat_diameter is not None:
        conduit_length = np.stack(sphere_cylinder_lengths(pore_diameter[conns[:, 0]], throat_diameter,
                                                          pore_diameter[conns[:, 1]], spacing), axis=1)
    if conduit_length is not None:
        conduit_length = _given(conduit_length, "conduit_length")
        plausible_length(conduit_length, "conduit_length", MAX_PORE_SIZE)
        data["conduit_length"] = (("throat", "conduit"), conduit_length)
    if pore_volume is not None:
        data["pore_volume"] = ("pore", _given(pore_volume, "pore_volume", "m3"))
    if throat_volume is not None:
        data["throat_volume"] = ("throat", _given(throat_volume, "throat_volume", "m3"))
    faces = dict(faces or {})
    unknown = set(faces) - set(FACES)
    if unknown:
        raise ValueError(f"unknown face labels {sorted(unknown)}; use {FACES}")
    for f in FACES:
        data[f] = ("pore", np.array(faces.get(f, np.zeros(npore, bool)), dtype=bool))
    data["pore_index"] = ("pore", np.arange(npore))
    for name, arr in extra.items():
        if name == "pore_index":  # reserved: numbered here
            continue
        arr = np.array(arr)
        if arr.shape[:1] == (npore,) and not name.startswith("throat"):
            data[name] = (("pore",) + tuple(f"{name}_dim{i}" for i in range(1, arr.ndim)), arr)
        elif arr.shape[:1] == (nthroat,):
            data[name] = (("throat",) + tuple(f"{name}_dim{i}" for i in range(1, arr.ndim)), arr)
        else:
            raise ValueError(f"extra variable {name!r} has length {arr.shape[:1]}, "
                             f"expected {npore} pores or {nthroat} throats")
    # the pore coordinate and pore_index number the pores as throat_conns does: validate() refuses a network
    # reordered or subset by position (net.isel, net.roll), whose throat_conns would point at other pores
    ds = xr.Dataset(data, coords={"pore": np.arange(npore), "xyz": list(AXES), "end": [0, 1], "conduit": CONDUIT})
    for name, a in ATTRS.items():
        if name in ds:
            ds[name].attrs.update(a)
    attrs = dict(attrs or {})
    lattice = regular_lattice(coords) if domain_size is None and "lattice_shape" not in attrs else None
    if lattice is not None:
        shape, a = lattice
        attrs = {"lattice_shape": shape, "spacing": a, **attrs}
        domain_size = [n * a for n in shape]
    if domain_size is not None:
        ds.attrs["domain_size"] = [float(v) for v in domain_size]
    ds.attrs.update(attrs)
    _plausible_attrs(ds.attrs)
    return ds


def regular_lattice(coords: np.ndarray) -> tuple[list[int], float] | None:
    """``(shape, spacing)`` where the pores sit on every node of a regular cubic grid, else None."""
    coords = np.asarray(coords, dtype=float)
    if len(coords) < 2:
        return None
    levels = [np.unique(np.round(c, 12)) for c in coords.T]  # to 1e-12 m
    shape = [len(level) for level in levels]
    steps = np.concatenate([np.diff(level) for level in levels])
    if np.prod(shape) != len(coords) or len(np.unique(np.round(coords, 12), axis=0)) != len(coords):
        return None
    a = float(steps.mean())
    return (shape, a) if np.allclose(steps, a, rtol=1e-6, atol=0) else None


def cubic(shape, spacing: float = 1e-4, *, pore_diameter=None, throat_diameter=None) -> xr.Dataset:
    """Cubic lattice network, ordered like OpenPNM's ``Cubic`` (index ``(i * ny + j) * nz + k``).

    Parameters
    ----------
    shape : tuple of 3 ints
        Pores along x, y and z.
    spacing : float
        Lattice constant ``a`` in m; above :data:`MAX_PORE_SIZE` (1 cm) a ValueError (micrometres
        given as metres?).
    pore_diameter, throat_diameter : float or array, optional
        Defaults ``a / 2`` and ``a / 4``.

    Returns
    -------
    xarray.Dataset
        Network with pores at ``(i + 1/2) a``; throats join nearest neighbours; faces
        labelled; ``lattice_shape`` and ``spacing`` attributes set.

    Examples
    --------
    >>> net = cubic((10, 5, 5), 1e-4)
    >>> net.sizes["pore"], net.sizes["throat"]
    (250, 625)
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be 3 positive ints, got {shape}")
    if not spacing > 0:
        raise ValueError(f"spacing must be positive, got {spacing}")
    plausible_length(spacing, "spacing", MAX_PORE_SIZE)  # 100 (um) taken as 100 m: K off by 1e8 and more
    idx = np.arange(np.prod(shape)).reshape(shape)
    ijk = np.stack(np.unravel_index(idx.ravel(), shape), axis=1)
    coords = (ijk + 0.5) * spacing
    conns = np.concatenate([
        np.stack([idx[:-1].ravel(), idx[1:].ravel()], axis=1),
        np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], axis=1),
        np.stack([idx[:, :, :-1].ravel(), idx[:, :, 1:].ravel()], axis=1),
    ])
    faces = {}
    for d, a in enumerate(AXES):
        faces[f"pore_{a}min"] = ijk[:, d] == 0
        faces[f"pore_{a}max"] = ijk[:, d] == shape[d] - 1
    pd_ = 0.5 * spacing if pore_diameter is None else pore_diameter
    td_ = 0.25 * spacing if throat_diameter is None else throat_diameter
    npore = len(coords)
    pvol = np.pi / 6 * np.broadcast_to(np.asarray(pd_, float), (npore,)) ** 3
    return make_network(coords, conns, pd_, td_, spacing=np.full(len(conns), float(spacing)), faces=faces,
                        pore_volume=pvol, domain_size=[s * spacing for s in shape],
                        attrs={"lattice_shape": list(shape), "spacing": float(spacing)})


def validate(net: xr.Dataset) -> None:
    """Raise a ValueError naming what is missing or malformed in a network Dataset."""
    if not isinstance(net, xr.Dataset):
        raise TypeError(f"a network must be an xarray.Dataset, got {type(net).__name__}")
    required = ["pore_coords", "throat_conns", *FACES]
    missing = [v for v in required if v not in net]
    if missing:
        raise ValueError(f"network is missing variables {missing}; build it with basinsx.porenet constructors")
    if net["throat_conns"].dims != ("throat", "end"):
        raise ValueError(f"throat_conns must have dims ('throat', 'end'), got {net['throat_conns'].dims}")
    npore = net.sizes["pore"]
    # the coordinate moves with net.isel, pore_index (a variable) with net.roll too, which keeps the coordinate
    if ("pore" in net.coords and not np.array_equal(net["pore"].values, np.arange(npore))) or (
            "pore_index" in net.data_vars and not np.array_equal(net["pore_index"].values, np.arange(npore))):
        raise ValueError("the pores were reordered or subset by position (e.g. net.isel(pore=...) or net.roll), "
                         "so throat_conns point at other pores; remove pores with basinsx.porenet.trim, which "
                         "renumbers them")
    conns = np.asarray(net["throat_conns"].values)
    if conns.size and (conns.min() < 0 or conns.max() >= npore):
        raise ValueError(f"throat_conns refer to pores outside 0..{npore - 1} (pores removed by position, e.g. "
                         "net.isel? remove them with basinsx.porenet.trim)")


def adjacency(conns: np.ndarray, npore: int, weights=None) -> sp.csr_matrix:
    """Symmetric pore adjacency matrix (plain arrays)."""
    w = np.ones(len(conns)) if weights is None else weights
    a = sp.coo_matrix((w, (conns[:, 0], conns[:, 1])), shape=(npore, npore))
    return (a + a.T).tocsr()


def spanning_pores(conns: np.ndarray, npore: int, inlet: np.ndarray, outlet: np.ndarray) -> np.ndarray:
    """Boolean mask of pores in clusters that touch both the inlet and the outlet."""
    _, lab = connected_components(adjacency(conns, npore), directed=False)
    ok = np.intersect1d(np.unique(lab[inlet]), np.unique(lab[outlet]))
    return np.isin(lab, ok)


def check_health(net: xr.Dataset, axis: str = "x") -> dict:
    """Report structural problems of a network.

    Parameters
    ----------
    net : xarray.Dataset
    axis : {"x", "y", "z"}
        Flow axis: a pore is *disconnected* when its cluster does not reach both the
        ``pore_<axis>min`` and the ``pore_<axis>max`` faces.

    Returns
    -------
    dict
        ``disconnected_pores`` (indices), ``isolated_pores`` (no throat at all),
        ``duplicate_throats`` and ``looped_throats`` (throats joining a pore to itself).
    """
    validate(net)
    axis_index(axis)
    conns = np.asarray(net["throat_conns"].values)
    npore = net.sizes["pore"]
    inlet = np.flatnonzero(net[f"pore_{axis}min"].values)
    outlet = np.flatnonzero(net[f"pore_{axis}max"].values)
    span = spanning_pores(conns, npore, inlet, outlet)
    deg = np.bincount(conns.ravel(), minlength=npore)
    key = np.sort(conns, axis=1)
    _, first = np.unique(key, axis=0, return_index=True)
    dup = np.setdiff1d(np.arange(len(conns)), first)
    return {
        "disconnected_pores": np.flatnonzero(~span),
        "isolated_pores": np.flatnonzero(deg == 0),
        "duplicate_throats": dup,
        "looped_throats": np.flatnonzero(conns[:, 0] == conns[:, 1]),
    }


def _removed(which, n: int, what: str) -> np.ndarray:
    """Boolean mask of the ``what`` to remove, from indices or a boolean mask of length ``n``."""
    which = np.asarray(which)
    if which.dtype == bool:
        if which.shape != (n,):
            raise ValueError(f"a boolean mask of {what} needs {n} entries, got shape {which.shape}")
        return which
    which = which.astype(np.int64).ravel()
    if which.size and (which.min() < -n or which.max() >= n):
        raise ValueError(f"{what} to remove must lie in 0..{n - 1}; got {which[(which < -n) | (which >= n)][:5]}")
    mask = np.zeros(n, bool)
    mask[which] = True
    return mask


def trim(net: xr.Dataset, pores=None, throats=None) -> xr.Dataset:
    """Remove pores (with their throats) and throats, renumbering ``throat_conns``.

    ``pores`` and ``throats`` are indices or boolean masks. The sample's size (``domain_size``)
    is kept; a lattice whose remaining pores fill a smaller full grid (a face layer cropped)
    gets that grid's ``lattice_shape`` and ``domain_size``.
    """
    validate(net)
    npore, nthroat = net.sizes["pore"], net.sizes["throat"]
    keep_p = np.ones(npore, bool) if pores is None else ~_removed(pores, npore, "pores")
    keep_t = np.ones(nthroat, bool) if throats is None else ~_removed(throats, nthroat, "throats")
    conns = np.asarray(net["throat_conns"].values)
    keep_t &= keep_p[conns].all(axis=1)
    new_index = np.cumsum(keep_p) - 1
    out = net.isel(pore=np.flatnonzero(keep_p), throat=np.flatnonzero(keep_t))
    out = out.assign(throat_conns=(("throat", "end"), new_index[conns[keep_t]], net["throat_conns"].attrs))
    out = out.assign_coords(pore=np.arange(out.sizes["pore"]))
    if "pore_index" in out.data_vars:
        out["pore_index"] = out["pore_index"].copy(data=np.arange(out.sizes["pore"]))
    lattice = regular_lattice(out["pore_coords"].values) if "lattice_shape" in net.attrs else None
    if lattice is not None and lattice[0] != list(net.attrs["lattice_shape"]):
        out.attrs.update(lattice_shape=lattice[0], spacing=lattice[1], domain_size=[n * lattice[1] for n in lattice[0]])
    return out


def trim_disconnected(net: xr.Dataset, axis: str = "x") -> xr.Dataset:
    """Remove pores that cannot carry flow along ``axis``, plus looped and duplicate throats.

    Warns with what was removed. Raises a ValueError when no cluster joins the inlet face
    to the outlet face.
    """
    rep = check_health(net, axis)
    if rep["disconnected_pores"].size == net.sizes["pore"]:
        raise ValueError(f"no path from pore_{axis}min to pore_{axis}max: "
                         f"no cluster of throats reaches both faces")
    bad_t = np.union1d(rep["duplicate_throats"], rep["looped_throats"])
    if rep["disconnected_pores"].size or bad_t.size:
        warnings.warn(f"trimmed {rep['disconnected_pores'].size} of {net.sizes['pore']} pores not connected to "
                      f"both pore_{axis}min and pore_{axis}max ({rep['isolated_pores'].size} with no throat), "
                      f"{rep['duplicate_throats'].size} duplicate and {rep['looped_throats'].size} looped throats",
                      stacklevel=2)
        return trim(net, pores=rep["disconnected_pores"], throats=bad_t)
    return net
