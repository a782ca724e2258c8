"""Network readers and converters: Statoil (Imperial College) files, PoreSpy snow2, OpenPNM."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from ..io.readers import FileFormatError, reading
from .geometry import cone_cylinder_lengths
from .network import FACES, MAX_VOXEL, checked, make_network, plausible_length


def _read_table(path: Path, ncols: int | None, header: int = 0) -> tuple[list[str], np.ndarray]:
    """Header fields (``header`` of them, on line 1) and the numeric rows of one Statoil file.

    Rows must be numbered 1, 2, ... in column 0.

    ``ncols=None`` (node1): a row holds index, x, y, z, coordination number n, n neighbours,
    inlet and outlet flags and n throats, i.e. 7 + 2 n fields; only the first 5 are returned.
    """
    if not path.exists():
        raise FileNotFoundError(f"Statoil network file not found: {path}")
    with reading(path, "a Statoil network file"):
        lines = [(i, ln.split()) for i, ln in enumerate(path.read_text().split("\n"), 1) if ln.strip()]
        head = lines.pop(0)[1] if header and lines else []
        if len(head) != header:
            raise FileFormatError(path, f"header line has {len(head)} fields, expected {header}")
        for i, fields in lines:
            want = ncols or (7 + 2 * int(fields[4]) if len(fields) > 4 else 7)
            if len(fields) != want:
                raise FileFormatError(path, f"line {i} has {len(fields)} fields, expected {want}")
        rows = np.array([fields[:ncols or 5] for _, fields in lines], dtype=float)
    rows = rows.reshape(len(lines), ncols or 5)
    numbered = rows[:, 0] == np.arange(1, len(rows) + 1)
    if not numbered.all():
        k = int(np.argmin(numbered))
        raise FileFormatError(path, f"line {lines[k][0]} is numbered {rows[k, 0]:g}, expected {k + 1}")
    return head, rows


def from_statoil(prefix) -> xr.Dataset:
    """Read a network in the Statoil format of the Imperial College maximal-ball extraction.

    Parameters
    ----------
    prefix : str or Path
        Path plus file prefix, e.g. ``".../statoil/Berea"`` for ``Berea_node1.dat``,
        ``Berea_node2.dat``, ``Berea_link1.dat`` and ``Berea_link2.dat``.

    Returns
    -------
    xarray.Dataset
        Network with flow along x. Links to the inlet reservoir (pore index -1 in the file)
        and the outlet reservoir (index 0) are removed and the pores they touch are labelled
        ``pore_xmin`` and ``pore_xmax`` (the same convention as OpenPNM's
        ``network_from_statoil``). A link that joins the two reservoirs (or a reservoir to
        itself) touches no pore: it is dropped with a warning naming it. Radii become
        diameters; ``conduit_length`` holds the pore1, throat and pore2 lengths of ``link2``;
        ``throat_spacing`` is the total length; shape factors, volumes and clay volumes ride
        along. ``domain_size`` comes from the ``node1`` header.

    Raises
    ------
    basinsx.io.readers.FileFormatError
        (a ``ValueError``) naming the file, when a row count differs from the pore count in
        the ``node1`` header or the throat count in the ``link1`` header, a row has too few
        or too many fields, rows are not numbered 1, 2, ..., a value is not a number, or a
        throat names a pore that does not exist.
    """
    prefix = Path(prefix)
    base = prefix.parent
    name = prefix.name
    head, node1 = _read_table(base / f"{name}_node1.dat", None, header=4)  # pore count, domain size x y z
    head1, link1 = _read_table(base / f"{name}_link1.dat", 6, header=1)  # throat count
    _, node2 = _read_table(base / f"{name}_node2.dat", 5)
    _, link2 = _read_table(base / f"{name}_link2.dat", 8)
    with reading(base / f"{name}_node1.dat", "a Statoil node1 file"):
        npore, domain = int(head[0]), [float(v) for v in head[1:4]]
    with reading(base / f"{name}_link1.dat", "a Statoil link1 file"):
        nthroat = int(head1[0])
    # The header counts are the only check that no rows were cut from the end of a file.
    for file, n, count, what in (("node1", len(node1), npore, "pores"), ("node2", len(node2), npore, "pores"),
                                 ("link1", len(link1), nthroat, "throats"), ("link2", len(link2), nthroat, "throats")):
        if n != count:
            header_file = "node1" if what == "pores" else "link1"
            raise FileFormatError(base / f"{name}_{file}.dat",
                                  f"{n} rows, but the {name}_{header_file}.dat header announces {count} {what}")
    coords = node1[:, 1:4]
    if not np.isin(link1[:, 1:3], np.arange(-1, npore + 1)).all():
        raise FileFormatError(base / f"{name}_link1.dat", f"pore indices outside -1 .. {npore}")
    conns = link1[:, 1:3].astype(np.int64) - 1  # -2 inlet reservoir, -1 outlet reservoir
    no_pore = np.flatnonzero((conns < 0).all(axis=1))  # a link between reservoirs
    if no_pore.size:  # before: conns.max(axis=1) gave -1, and the last pore became an inlet or outlet pore
        where = {-2: "the inlet reservoir (-1)", -1: "the outlet reservoir (0)"}
        said = "; ".join(f"link {k + 1} joins {where[conns[k, 0]]} to {where[conns[k, 1]]}" for k in no_pore[:10])
        warnings.warn(f"{base / f'{name}_link1.dat'}: {said}{' ...' if no_pore.size > 10 else ''}: no pore, "
                      f"{'dropped' if no_pore.size == 1 else f'{no_pore.size} links dropped'}", stacklevel=2)
    between = (conns < 0).all(axis=1)
    inlet_t = np.any(conns == -2, axis=1) & ~between
    outlet_t = np.any(conns == -1, axis=1) & ~between
    faces = {"pore_xmin": np.zeros(npore, bool), "pore_xmax": np.zeros(npore, bool)}
    faces["pore_xmin"][conns[inlet_t].max(axis=1)] = True
    faces["pore_xmax"][conns[outlet_t].max(axis=1)] = True
    keep = ~(inlet_t | outlet_t | between)
    conns, link1, link2 = conns[keep], link1[keep], link2[keep]
    cl = link2[:, [3, 5, 4]]  # pore1 length, throat length, pore2 length
    swap = conns[:, 0] > conns[:, 1]  # store each throat once with ascending pore indices
    conns[swap] = conns[swap][:, ::-1]
    cl[swap] = cl[swap][:, ::-1]
    return make_network(
        coords, conns, 2 * node2[:, 2], 2 * link1[:, 3], conduit_length=cl, spacing=link1[:, 5], faces=faces,
        pore_volume=node2[:, 1], throat_volume=link2[:, 6], domain_size=domain,
        attrs={"source": f"Statoil format network {name}", "boundary_throats_removed": int((~keep).sum())},
        pore_shape_factor=node2[:, 3], pore_clay_volume=node2[:, 4],
        throat_shape_factor=link1[:, 4], throat_clay_volume=link2[:, 7],
    )


def from_porespy(image, voxel_size: float, **snow_kw) -> xr.Dataset:
    """Extract a network from a binary image with PoreSpy's ``snow2``.

    Parameters
    ----------
    image : bool array (nx, ny, nz)
        True = pore space.
    voxel_size : float
        Voxel edge in m.
    **snow_kw
        Passed to :func:`porespy.networks.snow2`; ``boundary_width`` defaults to 0 here.

    Returns
    -------
    xarray.Dataset
        ``pore_diameter`` = inscribed diameter; ``throat_diameter`` = inscribed diameter
        capped at 0.99 of the smaller adjoining pore (so sphere/cone conduits exist);
        ``conduit_length`` by the cone-and-cylinder rule; a pore is on a face when its
        region touches that face of the image (with ``boundary_width > 0`` the snow2
        boundary pores are the faces instead); every other snow2 array rides along
        (``pore.region_volume`` -> ``pore_region_volume``); ``domain_size`` is the image
        extent.
    """
    import porespy as ps

    image = np.asarray(image)
    if image.ndim != 3 or image.dtype != bool:
        raise ValueError(f"image must be a 3-D boolean array (True = pore), got {image.dtype} {image.shape}")
    if not voxel_size > 0:
        raise ValueError(f"voxel_size must be positive, got {voxel_size}")
    plausible_length(voxel_size, "voxel_size", MAX_VOXEL)  # an image in micrometres given as metres: K off by 1e12
    if image.sum() == 0:
        raise ValueError("image has no pore voxels")
    snow_kw.setdefault("boundary_width", 0)
    # one chunk: porespy's default splits the watershed over its settings' divs and stitches
    # the chunks, which raises on some small images ("overlapping thickness is not
    # suitable"); parallel_kw=None returns no regions at all in porespy 3
    snow_kw.setdefault("parallel_kw", {"divs": 1})
    snow = ps.networks.snow2(image, voxel_size=voxel_size, **snow_kw)
    d = snow.network
    regions = np.asarray(snow.regions)
    if regions.shape != image.shape:  # padded by boundary_width: faces are the snow2 boundary pores
        faces = {f: np.asarray(d[f.replace("_", ".", 1)], bool) for f in FACES}
    else:  # a pore lies on a face when its region touches that face of the image
        label_to_pore = np.full(regions.max() + 1, -1)
        label_to_pore[np.asarray(d["pore.region_label"])] = np.arange(len(d["pore.region_label"]))
        faces = {}
        for k, ax in enumerate("xyz"):
            for end, sl in (("min", 0), ("max", -1)):
                on = label_to_pore[np.unique(np.take(regions, sl, axis=k))]
                mask = np.zeros(len(d["pore.region_label"]), bool)
                mask[on[on >= 0]] = True
                faces[f"pore_{ax}{end}"] = mask
    conns = np.asarray(d["throat.conns"], dtype=np.int64)
    dp = np.asarray(d["pore.inscribed_diameter"], dtype=float)
    dt = np.minimum(np.asarray(d["throat.inscribed_diameter"], dtype=float), 0.99 * dp[conns].min(axis=1))
    coords = np.asarray(d["pore.coords"], dtype=float)
    spacing = np.linalg.norm(coords[conns[:, 0]] - coords[conns[:, 1]], axis=1)
    cl = np.stack(cone_cylinder_lengths(dp[conns[:, 0]], dt, dp[conns[:, 1]], spacing), axis=1)
    skip = {"pore.coords", "throat.conns", "pore.all", "throat.all", "pore.volume", "param.voxel_size",
            "param.ndim", *(f.replace("_", ".", 1) for f in FACES)}
    extra = {k.replace(".", "_"): np.asarray(v) for k, v in d.items() if k not in skip and not k.startswith("param")}
    extra = {k if k.startswith(("pore_", "throat_")) else f"pore_{k}": v for k, v in extra.items()}
    return make_network(coords, conns, dp, dt, conduit_length=cl, spacing=spacing, faces=faces,
                        pore_volume=d["pore.volume"], domain_size=[s * voxel_size for s in image.shape],
                        attrs={"voxel_size": float(voxel_size), "source": "porespy snow2",
                               "image_shape": list(image.shape), "porosity": float(image.mean())},
                        **extra)


def from_openpnm(pn, domain_size=None, phase=None) -> xr.Dataset:
    """Convert an OpenPNM network to a network Dataset.

    Face labels are read from ``pore.xmin`` ... ``pore.zmax`` (else ``pore.left``/``right``/
    ``front``/``back``/``bottom``/``top``; ``pore.inlets``/``pore.outlets`` of Statoil
    networks map to the x faces). Diameters: ``pore.diameter``/``throat.diameter`` (or
    twice the radii); a network without them (only ``pore.coords`` and ``throat.conns``)
    imports without ``pore_diameter``/``throat_diameter``/``conduit_length`` and is solved
    with given conductances. Every other 1-D pore or throat array rides along with
    ``.`` -> ``_``; ``throat.hydraulic_conductance`` becomes ``throat_hydraulic_conductance``,
    the default conductance of :func:`basinsx.porenet.permeability`.
    ``domain_size`` defaults to ``pn.params['domain_size']`` (written by :func:`to_openpnm`)
    or the extent of the pore coordinates.

    Parameters
    ----------
    pn : openpnm.network.Network
    domain_size : sequence of 3 floats, optional
    phase : openpnm.phase.Phase, optional
        Phase on ``pn`` whose ``throat.hydraulic_conductance`` (one value per throat) rides
        along; it takes precedence over one stored on the network. Its viscosity
        (``throat.viscosity``, else ``pore.viscosity``), when uniform, becomes the network's
        ``viscosity`` attribute, the default ``mu`` of :func:`basinsx.porenet.permeability`
        (a viscosity that varies is not carried, with a warning: pass ``mu``).

    Raises
    ------
    ValueError
        Only one of the pore and throat diameters is present, or the phase's conductance
        does not have one value per throat of ``pn``.
    """
    coords = np.asarray(pn["pore.coords"], float)
    conns = np.asarray(pn["throat.conns"], np.int64)
    keys = set(pn.keys())
    aliases = {"pore_xmin": ["pore.xmin", "pore.left", "pore.inlets"], "pore_xmax": ["pore.xmax", "pore.right",
               "pore.outlets"], "pore_ymin": ["pore.ymin", "pore.front"], "pore_ymax": ["pore.ymax", "pore.back"],
               "pore_zmin": ["pore.zmin", "pore.bottom"], "pore_zmax": ["pore.zmax", "pore.top"]}
    faces = {}
    for f, names in aliases.items():
        hit = [n for n in names if n in keys]
        if hit:
            faces[f] = np.asarray(pn[hit[0]], bool)

    def diam(el):
        if f"{el}.diameter" in keys:
            return np.asarray(pn[f"{el}.diameter"], float)
        if f"{el}.radius" in keys:
            return 2 * np.asarray(pn[f"{el}.radius"], float)
        return None

    dp, dt = diam("pore"), diam("throat")
    if (dp is None) != (dt is None):
        have, lack = ("pore", "throat") if dt is None else ("throat", "pore")
        raise ValueError(f"OpenPNM network has {have} diameters but no {lack}.diameter or {lack}.radius")
    params = dict(getattr(pn, "params", {}))
    cl = pn["throat.conduit_lengths"] if "throat.conduit_lengths" in keys else None
    spacing = pn["throat.spacing"] if "throat.spacing" in keys else None
    used = {"pore.coords", "throat.conns", "pore.diameter", "throat.diameter", "throat.conduit_lengths",
            "throat.spacing", "pore.volume", "throat.volume", "pore.all", "throat.all", "pore.index",
            *(n for names in aliases.values() for n in names)}
    extra = {}
    for k in keys - used:
        v = np.asarray(pn[k])
        if v.ndim == 1 and v.dtype != object and k.startswith(("pore.", "throat.")):
            extra[k.replace(".", "_")] = v
    if phase is not None and "throat.hydraulic_conductance" in phase.keys():
        g = np.asarray(phase["throat.hydraulic_conductance"], float)
        if g.shape != (len(conns),):
            raise ValueError(f"phase throat.hydraulic_conductance has shape {g.shape}, expected one value per "
                             f"throat of the network ({len(conns)}): is the phase on another network?")
        extra["throat_hydraulic_conductance"] = g
    attrs = {k: params[k] for k in ("lattice_shape", "spacing", "voxel_size") if k in params}
    if phase is not None:
        mu = _uniform_viscosity(phase)
        if mu is not None:
            attrs["viscosity"] = mu
    return make_network(coords, conns, dp, dt, conduit_length=cl, spacing=spacing,
                        faces=faces, pore_volume=pn["pore.volume"] if "pore.volume" in keys else None,
                        throat_volume=pn["throat.volume"] if "throat.volume" in keys else None,
                        domain_size=domain_size if domain_size is not None else params.get("domain_size"),
                        attrs=attrs, **extra)


def _uniform_viscosity(phase) -> float | None:
    """The phase's viscosity (Pa s) when it has one value everywhere, else None (with a warning if it varies)."""
    keys = set(phase.keys())
    for k in ("throat.viscosity", "pore.viscosity"):
        if k in keys:
            mu = np.asarray(phase[k], float).ravel()
            if mu.size and np.all(mu == mu[0]) and np.isfinite(mu[0]) and mu[0] > 0:
                return float(mu[0])
            warnings.warn(f"the phase's {k} is not one positive value ({mu.min():g} .. {mu.max():g} Pa s): not "
                          "carried into the network; pass mu to permeability", stacklevel=3)
            return None
    return None


def to_openpnm(net: xr.Dataset):
    """Convert a network Dataset to an :class:`openpnm.network.Network`.

    Every 1-D ``pore_*``/``throat_*`` variable becomes ``pore.*``/``throat.*``;
    ``conduit_length`` becomes ``throat.conduit_lengths`` (Nt x 3); the dataset attributes
    ``domain_size``, ``lattice_shape``, ``spacing`` and ``voxel_size`` go to ``pn.params``.
    """
    import openpnm as op

    net = checked(net)  # lengths in m
    pn = op.network.Network(coords=net["pore_coords"].values, conns=net["throat_conns"].values)
    for name, var in net.data_vars.items():
        if name in ("pore_coords", "throat_conns", "pore_index"):
            continue
        if name == "conduit_length":
            pn["throat.conduit_lengths"] = var.values
        elif var.dims in (("pore",), ("throat",)):
            pn[name.replace("_", ".", 1)] = var.values
    for k in ("domain_size", "lattice_shape", "spacing", "voxel_size"):
        if k in net.attrs:
            pn.params[k] = net.attrs[k]
    return pn
