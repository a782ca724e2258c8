"""Voxel-scale permeability by a D3Q19 lattice-Boltzmann Stokes solver (numba).

Two-relaxation-time (TRT) collision with the linear (Stokes) equilibrium
``f_eq = w rho (1 + 3 c.u)``, a uniform body force ``F`` along the flow axis (Guo
forcing), halfway bounce-back on solid voxels and periodic wrap on every face of the image.
With the "magic" parameter ``Lambda = (tau+ - 1/2)(tau- - 1/2) = 3/16`` halfway bounce-back
puts the wall exactly midway between a fluid and a solid voxel for Poiseuille flow, so the
permeability does not depend on the chosen viscosity. Only fluid voxels are stored
(sparse lattice with a neighbour table), which suits low-porosity rock.

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


@numba.njit(parallel=True, cache=True)
def _trt_step(f, fnew, vel, nbr, force, omega_p, omega_m, cvec, w, opp):
    """One fused pull-stream + TRT collision step; writes the fluid velocity into ``vel`` (3, n)."""
    n = f.shape[1]
    fx, fy, fz = force[0], force[1], force[2]
    nblock = (n + 511) // 512
    for b in numba.prange(nblock):
        fi = np.empty(19)  # one scratch buffer per block, not per node
        for i in range(b * 512, min(n, (b + 1) * 512)):
            _node(f, fnew, vel, nbr, fi, i, fx, fy, fz, omega_p, omega_m, cvec, w, opp)


@numba.njit(inline="always")
def _node(f, fnew, vel, nbr, fi, i, fx, fy, fz, omega_p, omega_m, cvec, w, opp):
    for q in range(19):
        s = nbr[q, i]
        fi[q] = f[q, s] if s >= 0 else f[opp[q], i]  # halfway bounce-back
    rho = 0.0
    jx = 0.0
    jy = 0.0
    jz = 0.0
    for q in range(19):
        rho += fi[q]
        jx += fi[q] * cvec[q, 0]
        jy += fi[q] * cvec[q, 1]
        jz += fi[q] * cvec[q, 2]
    ux = (jx + 0.5 * fx) / rho
    uy = (jy + 0.5 * fy) / rho
    uz = (jz + 0.5 * fz) / rho
    vel[0, i] = ux
    vel[1, i] = uy
    vel[2, i] = uz
    for q in range(19):
        o = opp[q]
        cu = cvec[q, 0] * ux + cvec[q, 1] * uy + cvec[q, 2] * uz
        cf = cvec[q, 0] * fx + cvec[q, 1] * fy + cvec[q, 2] * fz
        feq_p = w[q] * rho
        feq_m = 3.0 * w[q] * rho * cu
        fp = 0.5 * (fi[q] + fi[o])
        fm = 0.5 * (fi[q] - fi[o])
        fnew[q, i] = (fi[q] - omega_p * (fp - feq_p) - omega_m * (fm - feq_m)
                      + (1.0 - 0.5 * omega_m) * 3.0 * w[q] * cf)


def lbm_permeability(image, voxel_size: float, axis: str = "x", *, tau: float = 1.5, force: float = 1e-5,
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
        the TRT magic parameter 3/16, a larger value converges in fewer steps.
    force : float
        Body force in lattice units (the Stokes solution is linear in it).
    tol : float
        Stop when the mean velocity changes by less than ``tol`` (relative) over
        ``check_every`` steps.
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
    total_len = image.shape[d]
    nbr = neighbour_table(image)
    n = nbr.shape[1]
    nu = (tau - 0.5) / 3.0
    omega_p = 1.0 / tau
    omega_m = 1.0 / (0.5 + (3.0 / 16.0) / (tau - 0.5))
    fvec = np.zeros(3)
    fvec[d] = force
    f = np.repeat(W[:, None], n, axis=1)
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
            _trt_step(f, fnew, vel, nbr, fvec, omega_p, omega_m, C, W, OPP)
            f, fnew = fnew, f
        steps += check_every
        u = vel[d].sum() / (area * total_len)  # mean flux per unit sample cross-section
        change = abs(u - u_old) / max(abs(u), 1e-300)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(change=f"{change:.1e}")
        if not np.isfinite(u):
            raise RuntimeError("lattice-Boltzmann iteration diverged")
        if change < tol:
            converged = True
            break
        u_old = u
    if bar is not None:
        bar.close()
    if not converged:
        raise RuntimeError(f"lattice-Boltzmann did not converge in {max_steps} steps (last change {change:.2e})")
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
