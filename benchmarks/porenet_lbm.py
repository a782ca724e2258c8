"""Verification of the D3Q19 lattice-Boltzmann permeability and its application to Berea.

1. Plane Poiseuille flow in a slit of h voxels: K = phi h^2/12 (1 + 1/(2 h^2)) (the
   second factor is the voxel-centre average of the parabola).
2. Simple cubic array of spheres: K = 2 a^2 / (9 c K*(c)) with the drag K* of Sangani &
   Acrivos (1982, Int. J. Multiphase Flow 8:343, eq. 4.9; agrees with Zick & Homsy 1982,
   K* = 4.292 at c = 0.125) for solid fraction c and sphere radius a.
3. A cubic subvolume of the Berea image (reference for the whole 200^3 image:
   Kx = 1360 mD), with periodic faces and with open reservoirs + closed sides, and the
   classical PNM permeability of the snow2 network of the same subvolume.

4. ``--speed``: lattice updates per second (fluid nodes x steps / s, reservoirs included)
   and steps to convergence of the data-set label set-up, for several relaxation times.

Run: python benchmarks/porenet_lbm.py --berea-size 64
     python benchmarks/porenet_lbm.py --skip-checks --berea-size 200 --setup reservoirs --tol 1e-3
     NUMBA_NUM_THREADS=1 python benchmarks/porenet_lbm.py --speed
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from common import ROCKS, argument_parser

from basinsx.porenet import MILLIDARCY, from_porespy, lbm_permeability, permeability, trim_disconnected


def sangani_acrivos_drag(c):
    """Dimensionless drag K* of a simple cubic array of spheres (series, c up to ~0.3)."""
    return 1.0 / (1 - 1.7601 * c ** (1 / 3) + c - 1.5593 * c**2 + 3.9799 * c ** (8 / 3) - 3.0734 * c ** (10 / 3))


def speed():
    """Throughput and steps to convergence (reservoirs + closed sides) per tau and tolerance."""
    import numba

    from basinsx.porenet.dataset import synthetic_image

    numba.set_num_threads(1)
    slit = np.ones((4, 4, 9), bool)
    slit[:, :, 0] = False
    lbm_permeability(slit, 1.0)  # compile outside the timings
    berea = np.load(ROCKS / "berea_100_to_300.npz")["im"]
    cases = {"Berea 40^3": berea[50:90, 60:100, 70:110], "blobs 40^3": synthetic_image("blobs", 40, 0.3, 3),
             "spheres 40^3": synthetic_image("spheres", 40, 0.35, 5, feature=4)}
    print(f"{'case':>13} {'tau':>5} {'tol':>6} {'steps':>6} {'s':>6} {'MLUPS':>6} {'K / K(tol 1e-8) - 1':>20}")
    for name, im in cases.items():
        ref = lbm_permeability(im, 1.0, buffer=3, walls=True, tau=1.0, tol=1e-8)
        nodes = np.pad(im, ((3, 3), (0, 0), (0, 0)), constant_values=True).sum()
        for tau, tol in ((0.7, 1e-3), (0.7, 1e-4), (1.0, 1e-4), (1.5, 1e-4)):
            t0 = time.perf_counter()
            k, info = lbm_permeability(im, 1.0, buffer=3, walls=True, tau=tau, tol=tol, return_info=True)
            dt = time.perf_counter() - t0
            print(f"{name:>13} {tau:5.2f} {tol:6.0e} {info['steps']:6d} {dt:6.1f} "
                  f"{nodes * info['steps'] / dt / 1e6:6.2f} {k / ref - 1:+20.1e}", flush=True)


def main(argv=None):
    ap = argument_parser(__doc__)
    ap.add_argument("--berea-size", type=int, default=64)
    ap.add_argument("--speed", action="store_true", help="only the throughput / convergence table")
    ap.add_argument("--setup", choices=("both", "periodic", "reservoirs"), default="both",
                    help="Berea LBM boundary set-up(s)")
    ap.add_argument("--tol", type=float, default=1e-5, help="LBM convergence tolerance for Berea")
    ap.add_argument("--skip-checks", action="store_true", help="only the Berea part")
    args = ap.parse_args(argv)
    if args.speed:
        return speed()

    if args.skip_checks:
        return berea(args)
    print("1. plane Poiseuille slit (walls at z = 0, periodic)")
    for h in (4, 8, 16):
        im = np.ones((2, 2, h + 1), bool)
        im[:, :, 0] = False
        k = lbm_permeability(im, 1.0, tol=1e-10)
        exact = h / (h + 1) * h**2 / 12 * (1 + 1 / (2 * h**2))
        print(f"   h = {h:2d}: K_lbm / K_exact = {k / exact:.8f}   (K / (phi h^2/12) = "
              f"{k / (h / (h + 1) * h**2 / 12):.5f})")

    print("2. simple cubic array of spheres (periodic cell)")
    for radius, cell in ((6, 20), (8, 26)):
        ax = np.arange(cell) - (cell - 1) / 2
        x, y, z = np.meshgrid(ax, ax, ax, indexing="ij")
        im = x**2 + y**2 + z**2 > radius**2
        c = 1 - im.mean()
        a = (3 * c * cell**3 / (4 * np.pi)) ** (1 / 3)  # volume-equivalent radius of the digital sphere
        t0 = time.perf_counter()
        k = lbm_permeability(im, 1.0, tau=1.0, tol=1e-6)
        ref = 2 * a**2 / (9 * c * sangani_acrivos_drag(c))
        print(f"   a = {a:5.2f} voxels, c = {c:.4f}: K_lbm / K_ref = {k / ref:.4f}  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)

    berea(args)


def berea(args):
    """LBM and classical PNM permeability of a centred cubic Berea subvolume."""
    path = ROCKS / "berea_100_to_300.npz"
    if not path.exists():
        return
    im = np.load(path)["im"]
    n = args.berea_size
    lo = (im.shape[0] - n) // 2
    sub = im[lo:lo + n, lo:lo + n, lo:lo + n]
    vox = 5.345e-6
    print(f"3. Berea centre subvolume {n}^3 (voxels {lo}:{lo + n} on every axis), porosity {sub.mean():.3f}; "
          f"whole-image reference Kx = 1360 mD")
    setups = {"periodic": ("periodic faces", {}), "reservoirs": ("reservoirs + closed sides",
                                                                 {"buffer": 3, "walls": True})}
    for name in (setups if args.setup == "both" else [args.setup]):
        label, kw = setups[name]
        t0 = time.perf_counter()
        k, info = lbm_permeability(sub, vox, "x", tol=args.tol, return_info=True, progress=True, **kw)
        print(f"   LBM {label:>26}: Kx = {k / MILLIDARCY:7.0f} mD  ({info['steps']} steps, "
              f"{time.perf_counter() - t0:.0f} s)", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = trim_disconnected(from_porespy(sub, vox))
    for model in ("cones_and_cylinders", "hagen_poiseuille"):
        k = float(permeability(net, model)["permeability"])
        print(f"   classical PNM ({model}, {net.sizes['pore']} pores): Kx = {k / MILLIDARCY:7.0f} mD")


if __name__ == "__main__":
    main()
