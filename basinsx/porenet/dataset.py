"""Training data for learned conductances: networks extracted from images, labelled by LBM.

All samples live in one Dataset, batched like graph libraries do: the pores (throats) of
every sample are concatenated along ``pore`` (``throat``) with ``pore_sample`` /
``throat_sample`` telling which sample they belong to (``throat_conns`` stay local to the
sample), and per-sample variables along ``sample``: ``k_lbm`` (label, m2), ``k_pnm``
(classical PNM, m2), ``porosity``, ``size`` (voxels per edge), ``source``,
``domain_size(sample, xyz)``, ``voxel_size``.
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr

from .io import from_porespy
from .lbm import lbm_permeability
from .network import make_network, trim_disconnected
from .solver import permeability

BEREA_VOXEL = 5.345e-6
#: LBM set-up of the labels: open reservoirs before and after the sample and closed sides,
#: the boundary conditions of a pore network with Dirichlet inlet/outlet faces; tau 0.7
#: converges fastest and tol 1e-3 stays within 0.6 % of the converged K on 36-40^3 images
#: (``benchmarks/porenet_lbm.py --speed``).
LBM_DEFAULTS = {"buffer": 3, "walls": True, "tau": 0.7, "tol": 1e-3, "max_steps": 30_000}
KEEP = ("pore_coords", "pore_diameter", "pore_volume", "pore_equivalent_diameter", "pore_surface_area",
        "throat_conns", "throat_diameter", "throat_spacing", "conduit_length", "throat_total_length",
        "throat_cross_sectional_area", "throat_perimeter", "pore_xmin", "pore_xmax", "pore_ymin", "pore_ymax",
        "pore_zmin", "pore_zmax")


def synthetic_image(kind: str, size: int, porosity: float, seed: int, feature: float = 1.0) -> np.ndarray:
    """A porespy image of edge ``size`` voxels whose structure does not scale with ``size``.

    ``"blobs"``: Gaussian random field smoothed over ``feature`` voxels (porespy's blobiness
    is relative to the image size, so it is rescaled here); ``"spheres"``: overlapping solid
    spheres of radius ``feature`` voxels. A larger image is thus a larger piece of the same
    material, which is what a cross-scale test needs.
    """
    import porespy as ps

    shape = [size] * 3
    if kind == "blobs":
        # porespy: sigma = mean(shape) / (40 blobiness)
        blobiness = size / (40.0 * feature)
        return np.asarray(ps.generators.blobs(shape=shape, porosity=porosity, blobiness=blobiness, seed=seed), bool)
    if kind == "spheres":
        np.random.seed(seed)  # porespy's overlapping_spheres draws from the global generator
        return np.asarray(ps.generators.overlapping_spheres(shape=shape, r=max(2, round(feature)),
                                                            porosity=porosity), bool)
    raise ValueError(f"unknown synthetic image kind {kind!r}; use 'blobs' or 'spheres'")


def plan(n_berea: int, n_synthetic: int, size: int, seed: int = 0, berea_shape=(200, 200, 200),
         berea_z=None) -> list[dict]:
    """Sample descriptions: Berea subvolume corners and synthetic image parameters (reproducible).

    ``berea_z = (lo, hi)`` confines the Berea subvolumes to that slab of z (so that training
    and cross-scale samples come from disjoint parts of the image); synthetic images draw
    porosity in 0.25-0.45 and a feature size of 1.5-3 voxels (blobs) or 3-6 voxels (spheres).
    """
    rng = np.random.default_rng(seed)
    lo, hi = berea_z or (0, berea_shape[2])
    if hi - lo < size:
        raise ValueError(f"Berea slab z {lo}:{hi} is thinner than the sample edge {size}")
    out = []
    for _ in range(n_berea):
        corner = [int(rng.integers(0, s - size + 1)) for s in berea_shape[:2]] + [int(rng.integers(lo, hi - size + 1))]
        out.append({"source": "berea", "corner": corner, "size": size})
    for i in range(n_synthetic):
        kind = "blobs" if i % 2 == 0 else "spheres"
        feature = rng.uniform(1.5, 3.0) if kind == "blobs" else rng.uniform(3.0, 6.0)
        out.append({"source": kind, "size": size, "porosity": float(rng.uniform(0.25, 0.45)),
                    "feature": float(feature), "seed": int(rng.integers(0, 2**31 - 1))})
    return out


def spans(image: np.ndarray, axis: int) -> bool:
    """Whether a pore cluster joins the two faces normal to ``axis`` through face or edge
    neighbours (the D3Q19 links), i.e. whether a sample with closed sides can carry flow."""
    from scipy import ndimage

    labels, _ = ndimage.label(image, structure=ndimage.generate_binary_structure(3, 2))
    first = np.take(labels, 0, axis=axis)
    last = np.take(labels, -1, axis=axis)
    return bool(np.intersect1d(first[first > 0], last[last > 0]).size)


def make_sample(spec: dict, berea=None, lbm_kw=None):
    """Image, network and labels of one sample.

    None when the network does not span along x, a single pore touches both x faces, or
    the image does not percolate at voxel scale (no D3Q19-connected path across x: the
    LBM would only relax to zero flow, slowly).
    """
    import warnings

    size, voxel = spec["size"], BEREA_VOXEL
    if spec["source"] == "berea":
        c = spec["corner"]
        image = berea[c[0]:c[0] + size, c[1]:c[1] + size, c[2]:c[2] + size]
    else:
        image = synthetic_image(spec["source"], size, spec["porosity"], spec["seed"], spec["feature"])
    if not spans(image, 0):  # no D3Q19-connected path across x: no flow, K = 0
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = from_porespy(image, voxel)
        try:  # no spanning cluster, or a pore touching both faces (a short circuit)
            net = trim_disconnected(net, "x")
            net = net[[v for v in KEEP if v in net]]
            k_pnm = float(permeability(net, "cones_and_cylinders")["permeability"])
        except ValueError:
            return None
    try:
        k_lbm = lbm_permeability(image, voxel, "x", **{**LBM_DEFAULTS, **(lbm_kw or {})})
    except RuntimeError:  # not converged within max_steps: no trustworthy label
        return None
    if k_lbm <= 0:
        return None
    return net, {"k_lbm": k_lbm, "k_pnm": k_pnm, "porosity": float(image.mean()), "size": size,
                 "source": spec["source"], "voxel_size": voxel, "domain_size": net.attrs["domain_size"]}


def build(path=None, *, n_berea: int = 40, n_synthetic: int = 40, size: int = 40, n_large: int = 8,
          large_size: int = 64, seed: int = 0, lbm_kw=None, berea_path=None, progress: bool = True,
          overwrite: bool = False) -> xr.Dataset:
    """Build the data set: Berea subvolumes and synthetic images, snow2 networks, LBM labels.

    Parameters
    ----------
    path : str or Path, optional
        Write the result as netCDF here, atomically (a sibling temporary file renamed into place).
        An existing file is an error, checked before any work; with ``overwrite`` a data set this
        function wrote is replaced, anything else never.
    n_berea, n_synthetic : int
        Training-scale samples (edge ``size`` voxels) from the Berea image and from porespy
        generators (alternating blobs and overlapping spheres, porosity 0.25-0.45).
    n_large, large_size : int
        Cross-scale samples: Berea subvolumes and synthetic images (half each) of edge
        ``large_size``. Training Berea subvolumes come from the lower half of the image (z),
        cross-scale ones from the upper half; synthetic images keep their feature size.
    seed : int
        Seed of every random choice.
    lbm_kw : dict, optional
        Options of :func:`basinsx.porenet.lbm_permeability`.
    berea_path : path, optional
        ``berea_100_to_300.npz`` (key ``im``); default ``../shared/data/rocks`` next to the
        working directory.
    progress : bool
        tqdm progress bar over samples.

    Returns
    -------
    xarray.Dataset
        See the module docstring; ``split`` is ``"train"`` or ``"large"``. Samples whose
        network has no path across x are skipped (counted in ``attrs["skipped"]``).
    """
    from pathlib import Path

    from tqdm.auto import tqdm

    if path is not None:
        _check_destination(Path(path), overwrite)
    berea_path = Path(berea_path or Path.cwd().parent / "shared" / "data" / "rocks" / "berea_100_to_300.npz")
    if not berea_path.exists():
        raise FileNotFoundError(f"Berea image not found at {berea_path} (pass berea_path=)")
    berea = np.load(berea_path)["im"]
    half = berea.shape[2] // 2  # training and cross-scale Berea samples from disjoint halves (z)
    specs = [dict(s, split="train") for s in plan(n_berea, n_synthetic, size, seed, berea.shape, (0, half))]
    specs += [dict(s, split="large") for s in plan(n_large - n_large // 2, n_large // 2, large_size, seed + 1,
                                                   berea.shape, (half, berea.shape[2]))]
    nets, rows, skipped = [], [], 0
    t0 = time.perf_counter()
    for spec in tqdm(specs, desc="porenet data set", disable=not progress):
        res = make_sample(spec, berea, lbm_kw)
        if res is None:
            skipped += 1
            continue
        nets.append(res[0])
        rows.append(dict(res[1], split=spec["split"]))
    ds = concat_networks(nets, rows)
    ds.attrs.update({"skipped": skipped, "seed": seed, "build_seconds": time.perf_counter() - t0,
                     "lbm": f"D3Q19 TRT, body force along x, {LBM_DEFAULTS | (lbm_kw or {})}",
                     "pnm_model": "cones_and_cylinders"})
    if path is not None:
        from ..io.store import write_file

        write_file(path, ds.to_netcdf)
    return ds


def _check_destination(path, overwrite: bool) -> None:
    """Raise unless ``path`` is absent, or ``overwrite`` and it holds a data set :func:`build` wrote."""
    if not path.exists():
        return
    if not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    try:
        with xr.open_dataset(path) as old:
            ours = old.attrs.get("pnm_model") == "cones_and_cylinders" and "lbm" in old.attrs
    except (OSError, ValueError):
        ours = False
    if not ours:
        raise ValueError(f"{path} is not a data set of basinsx porenet-dataset: overwrite replaces only those")


def concat_networks(nets, rows) -> xr.Dataset:
    """Batch networks and per-sample records into one Dataset (see module docstring)."""
    if not nets:
        raise ValueError("no samples to store")
    nets = [n.drop_vars("pore") for n in nets]  # each numbers its pores from 0; the batch by pore_sample
    pores = [n.drop_vars([v for v in n.data_vars if "pore" not in n[v].dims]) for n in nets]
    throats = [n.drop_vars([v for v in n.data_vars if "throat" not in n[v].dims]) for n in nets]
    ds = xr.merge([xr.concat(pores, "pore"), xr.concat(throats, "throat")], combine_attrs="drop")
    ds["pore_sample"] = ("pore", np.repeat(np.arange(len(nets)), [n.sizes["pore"] for n in nets]))
    ds["throat_sample"] = ("throat", np.repeat(np.arange(len(nets)), [n.sizes["throat"] for n in nets]))
    for key in ("k_lbm", "k_pnm", "porosity", "size", "voxel_size", "source", "split"):
        ds[key] = ("sample", np.array([r[key] for r in rows]))
    ds["domain_size"] = (("sample", "xyz"), np.array([r["domain_size"] for r in rows]))
    ds["k_lbm"].attrs.update(units="m2", long_name="lattice-Boltzmann permeability along x")
    ds["k_pnm"].attrs.update(units="m2", long_name="classical PNM permeability (cones and cylinders)")
    return ds


def networks(ds: xr.Dataset) -> list[xr.Dataset]:
    """Split a data set built by :func:`build` back into one network Dataset per sample."""
    ps = ds["pore_sample"].values
    ts = ds["throat_sample"].values
    out = []
    for s in range(ds.sizes["sample"]):
        ip, it = np.flatnonzero(ps == s), np.flatnonzero(ts == s)
        sub = ds.isel(pore=ip, throat=it)
        data = {v: sub[v].values for v in sub.data_vars if set(sub[v].dims) <= {"pore", "throat", "xyz", "end",
                                                                               "conduit"}
                and v not in ("pore_sample", "throat_sample")}
        extra = {k: v for k, v in data.items() if k not in ("pore_coords", "throat_conns", "pore_diameter",
                                                            "throat_diameter", "conduit_length", "throat_spacing",
                                                            "pore_volume")
                 and not (k.startswith("pore_") and k[5:] in ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax"))}
        faces = {f"pore_{a}{e}": data[f"pore_{a}{e}"] for a in "xyz" for e in ("min", "max")}
        out.append(make_network(data["pore_coords"], data["throat_conns"], data["pore_diameter"],
                                data["throat_diameter"], conduit_length=data["conduit_length"],
                                spacing=data["throat_spacing"], faces=faces, pore_volume=data["pore_volume"],
                                domain_size=ds["domain_size"].values[s],
                                attrs={"voxel_size": float(ds["voxel_size"].values[s])}, **extra))
    return out
