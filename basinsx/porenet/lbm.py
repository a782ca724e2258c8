"""Voxel-scale permeability by a D3Q19 lattice-Boltzmann Stokes solver (numba).

Two-relaxation-time (TRT) collision with the linear (Stokes) equilibrium
``f_eq = w rho (1 + 3 c.u)``, a uniform body force ``F`` along the flow axis (Guo
forcing), halfway bounce-back on solid voxels and periodic wrap on every face of the image.
With the "magic" parameter ``Lambda = (tau+ - 1/2)(tau- - 1/2) = 3/16`` halfway bounce-back
puts the wall exactly midway between a fluid and a solid voxel for Poiseuille flow, so the
permeability does not depend on the chosen viscosity. Only fluid voxels are stored
(sparse lattice with a neighbour table, bounce-back folded into a flat gather index),
which suits low-porosity rock; the fused stream-collide kernel works on blocks of nodes so
that its inner loops vectorise.

Darcy's law in lattice units: ``K = nu <u> / F`` with ``<u>`` the superficial (whole
image) mean velocity; in m2, ``K dx^2``.
"""

from __future__ import annotations

import numba
import numpy as np

# D3Q19 velocities, weights and the opposite of each direction
C = np.array([[0, 0, 0],
              [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1],
              [1, 1, 0], [-1, -1, 0], [1, -1, 0], [-1, 1, 0],
              [1, 0, 1], [-1, 0, -1], [1, 0, -1], [-1, 0, 1],
              [0, 1, 1], [0, -1, -1], [0, 1, -1], [0, -1, 1]], dtype=np.int64)
W = np.array([1 / 3] + [1 / 18] * 6 + [1 / 36] * 12)
OPP = np.array([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17], dtype=np.int64)


CX, CY, CZ = (C[:, d].astype(np.float64) for d in range(3))
#: nodes processed together: the kernel works on (19, BLOCK) slabs so that the inner loops
#: over nodes are unit-stride and SIMD-vectorised (2-3x faster than one node at a time)
BLOCK = 128


def neighbour_table(image: np.ndarray) -> np.ndarray:
    """Pull-streaming sources: ``nbr[q, n]`` is the fluid node at ``x_n - c_q`` (periodic), or -1 if solid."""
    shape = image.shape
    index = np.full(shape, -1, dtype=np.int32)
    fluid = np.flatnonzero(image.ravel())
    if fluid.size >= 2**31:
        raise ValueError("image too large for 32-bit node indices")
    index.ravel()[fluid] = np.arange(fluid.size)
    ijk = np.stack(np.unravel_index(fluid, shape), axis=0)
    nbr = np.empty((19, fluid.size), dtype=np.int32)
    for q in range(19):
        src = [(ijk[d] - C[q, d]) % shape[d] for d in range(3)]
        nbr[q] = index[src[0], src[1], src[2]]
    return nbr


def source_table(nbr: np.ndarray) -> np.ndarray:
    """Flat index into ``f (19 n)`` that node ``i`` pulls for direction ``q``, bounce-back folded in.

    A solid source becomes the node's own opposite population (halfway bounce-back), so the
    kernel is a branch-free gather.
    """
    n = nbr.shape[1]
    dtype = np.int64 if 19 * n >= 2**31 else np.int32
    q = np.arange(19, dtype=np.int64)[:, None]
    return np.where(nbr >= 0, q * n + nbr, OPP[:, None] * n + np.arange(n)).astype(dtype)


@numba.njit(parallel=True, cache=True)
def _trt_step(f, fnew, vel, src, fx, fy, fz, omega_p, omega_m):
    """One fused pull-stream + TRT collision step on flat ``f`` (19 n); fluid velocity into ``vel`` (3, n)."""
    n = vel.shape[1]
    a = 1.0 - 0.5 * omega_m
    nchunk = (n + 16 * BLOCK - 1) // (16 * BLOCK)
    for c in numba.prange(nchunk):
        fi = np.empty((19, BLOCK))  # scratch per chunk of 16 blocks, not per node
        rho = np.empty(BLOCK)
        ux = np.empty(BLOCK)
        uy = np.empty(BLOCK)
        uz = np.empty(BLOCK)
        for b0 in range(c * 16 * BLOCK, min(n, (c + 1) * 16 * BLOCK), BLOCK):
            m = min(BLOCK, n - b0)
            for q in range(19):
                for k in range(m):
                    fi[q, k] = f[src[q, b0 + k]]
            for k in range(m):
                rho[k] = 0.0
                ux[k] = 0.0
                uy[k] = 0.0
                uz[k] = 0.0
            for q in range(19):
                cx, cy, cz = CX[q], CY[q], CZ[q]
                for k in range(m):
                    v = fi[q, k]
                    rho[k] += v
                    ux[k] += cx * v
                    uy[k] += cy * v
                    uz[k] += cz * v
            for k in range(m):
                r = 1.0 / rho[k]
                ux[k] = (ux[k] + 0.5 * fx) * r
                uy[k] = (uy[k] + 0.5 * fy) * r
                uz[k] = (uz[k] + 0.5 * fz) * r
                vel[0, b0 + k] = ux[k]
                vel[1, b0 + k] = uy[k]
                vel[2, b0 + k] = uz[k]
            for q in range(19):
                o, w = OPP[q], W[q]
                cx, cy, cz = CX[q], CY[q], CZ[q]
                cf = a * 3.0 * w * (cx * fx + cy * fy + cz * fz)  # Guo forcing
                base = q * n + b0
                for k in range(m):
                    cu = cx * ux[k] + cy * uy[k] + cz * uz[k]
                    fp = 0.5 * (fi[q, k] + fi[o, k])
                    fm = 0.5 * (fi[q, k] - fi[o, k])
                    fnew[base + k] = (fi[q, k] - omega_p * (fp - w * rho[k])
                                      - omega_m * (fm - 3.0 * w * rho[k] * cu) + cf)


def lbm_permeability(image, voxel_size: float, axis: str = "x", *, tau: float = 0.7, force: float = 1e-5,
                     tol: float = 1e-5, check_every: int = 100, max_steps: int = 100_000,
                     mirror: bool = False, buffer: int = 0, walls: bool = False, return_info: bool = False,
                     progress: bool = False):
    """Permeability of a binary image by lattice-Boltzmann Stokes flow.

    Parameters
    ----------
    image : bool array (nx, ny, nz)
        True = pore (fluid) voxel. Every face is periodic; a slit or tube is made by closing
        the transverse faces with solid voxels.
    voxel_size : float
        Voxel edge in m.
    axis : {"x", "y", "z"}
        Direction of the body force.
    tau : float
        Symmetric relaxation time (``nu = (tau - 1/2) / 3``); K does not depend on it with
        the TRT magic parameter 3/16. On rock and porespy images with reservoirs, 0.7
        converged in 1.5-3x fewer steps than 1.0 or 1.5 (``benchmarks/porenet_lbm.py --speed``).
    force : float
        Body force in lattice units (the Stokes solution is linear in it).
    tol : float
        Stop when the mean velocity changes by less than ``tol`` (relative) over
        ``check_every`` steps, or when it stays below that of ``K = 1e-10`` voxel^2 (no flow).
    max_steps : int
        Raise RuntimeError when not converged by then.
    mirror : bool
        Append the image mirrored along ``axis`` so that a non-periodic sample becomes
        periodic along the flow (doubles the cost, K is that of the original sample).
    buffer : int
        Add this many layers of free fluid before the inlet and after the outlet face
        (reservoirs): every pore on the inlet face then sees the same pressure, as in a
        pore network with Dirichlet faces, and the periodic wrap no longer joins mismatched
        faces. The buffer's resistance is negligible, so ``K`` is referred to the sample
        length and the whole driving force ``F (L + 2 buffer)``.
    walls : bool
        Close the four transverse faces with a solid layer (no flow across the sample's
        sides, as in a pore network) instead of wrapping them periodically.
    return_info : bool
        Also return a dict with ``steps``, ``porosity``, ``velocity`` (mean superficial
        velocity field along ``axis`` in lattice units, shaped like the image).
    progress : bool
        Show a tqdm bar over the convergence checks.

    Returns
    -------
    float or (float, dict)
        Permeability in m2.

    Examples
    --------
    Plane Poiseuille flow in a slit of 8 fluid voxels between solid walls
    (``K = phi h^2 / 12`` for the superficial velocity):

    >>> im = np.ones((4, 4, 9), bool); im[:, :, 0] = False
    >>> k = lbm_permeability(im, 1.0)
    >>> round(k / (8 / 9 * 8**2 / 12), 6)
    1.0
    """
    image, d, sample_len, porosity, area = _padded_image(image, axis, tau, voxel_size, mirror, buffer, walls)
    total_len = image.shape[d]
    nu = (tau - 0.5) / 3.0
    u, vel, steps = _iterate(source_table(neighbour_table(image)), d, tau, force, nu, area * total_len, tol=tol,
                             check_every=check_every, max_steps=max_steps, progress=progress)
    k = nu * u / force * sample_len / total_len * voxel_size**2
    if not return_info:
        return k
    field = np.zeros(image.size)
    field[np.flatnonzero(image.ravel())] = vel[d]
    field = field.reshape(image.shape)
    if walls:
        field = field[tuple(slice(None) if ax == d else slice(1, -1) for ax in range(3))]
    field = np.take(field, np.arange(buffer, buffer + sample_len // (2 if mirror else 1)), axis=d)
    return k, {"steps": steps, "porosity": porosity, "velocity": field}


def _padded_image(image, axis: str, tau: float, voxel_size: float, mirror: bool, buffer: int, walls: bool):
    """lbm_permeability's arguments checked and its image mirrored, buffered and walled as asked.

    Returns ``(image, d, sample_len, porosity, area)``: the lattice, the flow axis' index, the sample's
    length along it (mirror included), its porosity and cross-section in voxels (both before padding).
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.dtype != bool:
        raise ValueError(f"image must be a 3-D boolean array (True = pore), got {image.dtype} {image.shape}")
    if axis not in ("x", "y", "z"):
        raise ValueError(f"axis must be x, y or z, got {axis!r}")
    if not tau > 0.5:
        raise ValueError(f"tau must exceed 1/2, got {tau}")
    if not voxel_size > 0:
        raise ValueError(f"voxel_size must be positive, got {voxel_size}")
    d = "xyz".index(axis)
    if mirror:
        image = np.concatenate([image, np.flip(image, axis=d)], axis=d)
    if not image.any():
        raise ValueError("image has no pore voxels")
    sample_len = image.shape[d]
    porosity = float(image.mean())
    area = image.size // sample_len  # cross-section of the sample in voxels
    if buffer:
        pad = [(0, 0)] * 3
        pad[d] = (int(buffer), int(buffer))
        image = np.pad(image, pad, constant_values=True)
    if walls:
        pad = [(1, 1)] * 3
        pad[d] = (0, 0)
        image = np.pad(image, pad, constant_values=False)
    return image, d, sample_len, porosity, area


def _iterate(src, d: int, tau: float, force: float, nu: float, volume: int, *, tol: float, check_every: int,
             max_steps: int, progress: bool):
    """TRT steps with the body force ``force`` along axis ``d`` until the mean velocity settles.

    ``volume`` is the voxel count the flux is averaged over. Returns ``(u, vel, steps)``: the mean
    superficial velocity along ``d``, the fluid nodes' velocity ``(3, n)`` and the steps taken.
    """
    n = src.shape[1]
    omega_p = 1.0 / tau
    omega_m = 1.0 / (0.5 + (3.0 / 16.0) / (tau - 0.5))
    fvec = np.zeros(3)
    fvec[d] = force
    f = np.repeat(W, n)
    fnew = np.empty_like(f)
    vel = np.zeros((3, n))
    u_old = 0.0
    steps = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_steps // check_every, desc="LBM", unit="check")
    converged = False
    while steps < max_steps:
        for _ in range(check_every):
            _trt_step(f, fnew, vel, src, fvec[0], fvec[1], fvec[2], omega_p, omega_m)
            f, fnew = fnew, f
        steps += check_every
        u = vel[d].sum() / volume  # mean flux per unit sample cross-section
        change = abs(u - u_old) / max(abs(u), 1e-300)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(change=f"{change:.1e}")
        if not np.isfinite(u):
            raise RuntimeError("lattice-Boltzmann iteration diverged")
        # no flow (K below 1e-10 voxel^2 at two checks in a row): u is roundoff noise, whose
        # relative change never settles
        if change < tol or max(abs(u), abs(u_old)) * nu < 1e-10 * force:
            converged = True
            break
        u_old = u
    if bar is not None:
        bar.close()
    if not converged:
        raise RuntimeError(f"lattice-Boltzmann did not converge in {max_steps} steps (last change {change:.2e})")
    return u, vel, steps
