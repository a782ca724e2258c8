"""Benchmark 1: gradient of 1 - NSE over 10 years of daily data, three ways, side by side.

* exact: one run of ``basinsx.models`` with forward sensitivities, ``g = J.T @ dL/dq``;
* finite differences: one-sided (d + 1 runs) and central (2 d runs) with the same numba kernel;
* PyTorch autograd through the same model written in torch (float64, reverse mode).

Models: ``gr4j`` (discrete airGR map; torch version written step by step), ``hymod`` and
``gr4j_ode`` (ODEs, fixed Heun steps so that the torch version computes the same discrete map).
Accuracy is the relative error of each gradient against the exact one; times are ratios to
the exact gradient, each the fastest of ``--repeat`` runs in one process (on a shared
machine the minimum is the least disturbed estimate of the cost).

Run: ``python benchmarks/calibration_gradient.py [--basins 5] [--years 10]``
"""

from __future__ import annotations

import numpy as np
from common import argument_parser, best_of, caravan

import basinsx.models as bm


def load(n_basins: int, years: int):
    """(gauge id, forcing (2, T), observed flow (T,)) of the first basins with 95 % of the flow observed."""
    ds = caravan("era5", clip_pet=True).sel(time=slice("1985-01-01", None)).isel(time=slice(0, int(365.25 * years)))
    out = []
    for b in ds["basin"].values:
        one = ds.sel(basin=b)
        q = one["streamflow"].values.astype(float)
        if np.isfinite(q).mean() > 0.95:
            out.append((str(one["gauge_id"].values), np.vstack([one[v].values.astype(float) for v in ("prcp", "pet")]), q))
        if len(out) == n_basins:
            break
    return out


def nse_loss(q, obs):
    """1 - NSE and its derivative with respect to q (missing observations masked)."""
    ok = np.isfinite(obs)
    y = obs[ok]
    denom = np.sum((y - y.mean()) ** 2)
    e = y - q[ok]
    delta = np.zeros_like(q)
    delta[ok] = -2.0 * e / denom
    return np.sum(e**2) / denom, delta


def grad_exact(m, theta, f, obs, warmup, opts):
    q, jac = m.run(theta, f, warmup=warmup, **opts)
    loss, delta = nse_loss(q, obs)
    return jac.T @ delta


def grad_fd(m, theta, f, obs, warmup, opts, central):
    def loss(th):
        return nse_loss(m.run(th, f, warmup=warmup, sensitivities=False, **opts)[0], obs)[0]

    g = np.zeros(len(theta))
    l0 = None if central else loss(theta)
    for j in range(len(theta)):
        h = (1e-6 if central else 1e-8) * max(abs(theta[j]), 1.0)
        tp = theta.copy()
        tp[j] += h
        if central:
            tm = theta.copy()
            tm[j] -= h
            g[j] = (loss(tp) - loss(tm)) / (2 * h)
        else:
            g[j] = (loss(tp) - l0) / h
    return g


# --------------------------------------------------------------------------- torch models


def gr4j_torch(theta, p, e):
    """GR4J in torch, operation for operation as :func:`basinsx.models._grcore.gr_kernel`."""
    import torch

    from basinsx.models._grcore import INIT_LEVELS, NH
    from basinsx.models._grcore import PERC as _PERC
    from basinsx.models._grcore import B as _B
    from basinsx.models._grcore import D as _D

    x1, x2, x3, x4 = theta[0], theta[1], theta[2], theta[3]
    i1 = torch.arange(0, NH + 1, dtype=torch.float64)
    i2 = torch.arange(0, 2 * NH + 1, dtype=torch.float64)
    ss1 = torch.where(i1 < x4, (i1 / x4) ** _D, torch.ones_like(i1))
    ss2 = torch.where(i2 <= x4, 0.5 * (i2 / x4) ** _D,
                      torch.where(i2 < 2 * x4, 1 - 0.5 * torch.clamp(2 - i2 / x4, min=0) ** _D, torch.ones_like(i2)))
    o1, o2 = ss1[1:] - ss1[:-1], ss2[1:] - ss2[:-1]
    s, r = INIT_LEVELS[0] * x1, INIT_LEVELS[1] * x3
    uh1 = torch.zeros(NH, dtype=torch.float64)
    uh2 = torch.zeros(2 * NH, dtype=torch.float64)
    zero1 = torch.zeros(1, dtype=torch.float64)
    out = []
    for k in range(len(p)):
        pk, ek = float(p[k]), float(e[k])
        if pk <= ek:
            tws = torch.tanh(torch.clamp((ek - pk) / x1, max=13.0))
            sr = s / x1
            s = s - s * (2 - sr) * tws / (1 + (1 - sr) * tws)
            pr = 0.0
        else:
            pn = pk - ek
            tws = torch.tanh(torch.clamp(pn / x1, max=13.0))
            sr = s / x1
            ps = x1 * (1 - sr * sr) * tws / (1 + sr * tws)
            s = s + ps
            pr = pn - ps
        s = torch.clamp(s, min=0.0)
        perc = s * (1 - (1 + (s / x1) ** 4 / _PERC) ** -0.25)
        s = s - perc
        pr = pr + perc
        uh1 = torch.cat((uh1[1:], zero1)) + o1 * (pr * _B)
        uh2 = torch.cat((uh2[1:], zero1)) + o2 * (pr * (1 - _B))
        exch = x2 * (r / x3) ** 3.5
        r = torch.clamp(r + uh1[0] + exch, min=0.0)
        qr = r * (1 - (1 + (r / x3) ** 4) ** -0.25)
        r = r - qr
        out.append(qr + torch.clamp(uh2[0] + exch, min=0.0))
    return torch.stack(out)


def hymod_torch(theta, p, e, n_sub):
    """HYMOD ODE in torch with fixed Heun steps, the same discrete map as the numba kernel."""
    import torch

    from basinsx.models.hymod import EPS_U

    cmax, bexp, alpha, ks, kq = theta

    def rhs(x, pk, ek):
        a = 1 - x[0] / cmax
        u = 0.5 * (a + torch.sqrt(a * a + EPS_U**2))
        ub = u**bexp
        pe = pk * (1 - ub)
        return torch.stack((pk * ub - ek * (1 - u), alpha * pe - kq * x[1], kq * (x[1] - x[2]),
                            kq * (x[2] - x[3]), (1 - alpha) * pe - ks * x[4], kq * x[3] + ks * x[4]))

    x = torch.zeros(6, dtype=torch.float64)
    h = 1.0 / n_sub
    mask = torch.tensor([1.0, 1, 1, 1, 1, 0], dtype=torch.float64)
    out = []
    for k in range(len(p)):
        pk, ek = float(p[k]), float(e[k])
        x = x * mask  # daily reset of the cumulative outflow
        for _ in range(n_sub):
            f1 = rhs(x, pk, ek)
            f2 = rhs(x + h * f1, pk, ek)
            x = x + 0.5 * h * (f1 + f2)
        out.append(x[5])
    return torch.stack(out)


def gr4j_ode_torch(theta, p, e, n_sub):
    """gr4j_ode in torch with fixed Heun steps, the same discrete map as the numba kernel."""
    import torch

    from basinsx.models.gr4j import INIT_LEVELS
    from basinsx.models.gr4j_ode import _C4, EPS

    x1, x2, x3, x4 = theta
    k = 2.0 / x4

    def sp(a):
        return 0.5 * (a + torch.sqrt(a * a + EPS**2))

    def rhs(x, pk, ek):
        pn, en = sp(torch.tensor(pk - ek, dtype=torch.float64)), sp(torch.tensor(ek - pk, dtype=torch.float64))
        r = x[0] / x1
        ps, es, perc = pn * (1 - r * r), en * r * (2 - r), x1 * r**5 / _C4
        pr = pn - ps + perc
        rho = sp(x[7] / x3)
        fx = x2 * rho**3.5
        qr = x3 * rho**5 / 4
        return torch.stack((ps - es - perc, 0.9 * pr - k * x[1], k * (x[1] - x[2]), 0.1 * pr - k * x[3],
                            k * (x[3] - x[4]), k * (x[4] - x[5]), k * (x[5] - x[6]), k * x[2] + fx - qr,
                            qr + sp(k * x[6] + fx)))

    zero = torch.zeros((), dtype=torch.float64)
    x = torch.stack([INIT_LEVELS[0] * x1] + [zero] * 6 + [INIT_LEVELS[1] * x3, zero])
    h = 1.0 / n_sub
    mask = torch.tensor([1.0] * 8 + [0.0], dtype=torch.float64)
    out = []
    for kd in range(len(p)):
        pk, ek = float(p[kd]), float(e[kd])
        x = x * mask
        for _ in range(n_sub):
            f1 = rhs(x, pk, ek)
            f2 = rhs(x + h * f1, pk, ek)
            x = x + 0.5 * h * (f1 + f2)
        out.append(x[8])
    return torch.stack(out)


def grad_torch(fn, theta, f, obs, warmup, **kw):
    import torch

    th = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
    q = fn(th, f[0], f[1], **kw)[warmup:]
    ok = torch.from_numpy(np.isfinite(obs))
    y = torch.from_numpy(np.nan_to_num(obs))
    ybar = y[ok].mean()
    loss = torch.sum(((y - q) ** 2)[ok]) / torch.sum(((y - ybar) ** 2)[ok])
    loss.backward()
    return th.grad.numpy().copy()


CASES = {
    "gr4j": (np.array([350.0, 0.3, 90.0, 1.7]), {}, gr4j_torch, {}),
    "hymod": (np.array([250.0, 0.6, 0.7, 0.02, 0.45]), {"method": "fixed", "n_sub": 4}, hymod_torch, {"n_sub": 4}),
    "gr4j_ode": (np.array([350.0, 0.3, 90.0, 1.7]), {"method": "fixed", "n_sub": 4}, gr4j_ode_torch, {"n_sub": 4}),
}


def main(argv=None):
    ap = argument_parser(__doc__)
    ap.add_argument("--basins", type=int, default=5)
    ap.add_argument("--years", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--torch-repeat", type=int, default=1)
    ap.add_argument("--models", nargs="+", default=list(CASES), choices=list(CASES))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    basins = load(args.basins, args.years)
    warmup = 365
    print(f"{len(basins)} basins, {args.years} years ({basins[0][1].shape[1]} days incl. {warmup} warm-up), "
          f"torch {torch.__version__}, 1 thread")
    hdr = f"{'model':9s} {'basin':16s} {'t_exact ms':>10s} {'FD1/exact':>9s} {'FD2/exact':>9s} {'torch/exact':>11s} " \
          f"{'err FD1':>8s} {'err FD2':>8s} {'err torch':>9s}"
    print(hdr)
    summary = {}
    for name in args.models:
        theta, opts, tfn, tkw = CASES[name]
        m = bm.get(name)
        rows = []
        for basin, f, q in basins:
            obs = q[warmup:]
            grad_exact(m, theta, f, obs, warmup, opts)  # compile outside the timing
            t_ex, g = best_of(lambda: grad_exact(m, theta, f, obs, warmup, opts), args.repeat)
            t_1, g1 = best_of(lambda: grad_fd(m, theta, f, obs, warmup, opts, central=False), args.repeat)
            t_2, g2 = best_of(lambda: grad_fd(m, theta, f, obs, warmup, opts, central=True), args.repeat)
            t_t, gt = best_of(lambda: grad_torch(tfn, theta, f, obs, warmup, **tkw), args.torch_repeat)

            def err(x):
                return float(np.max(np.abs(x - g)) / np.max(np.abs(g)))

            row = (t_ex, t_1 / t_ex, t_2 / t_ex, t_t / t_ex, err(g1), err(g2), err(gt))
            rows.append(row)
            print(f"{name:9s} {basin:16s} {row[0] * 1e3:10.2f} {row[1]:9.1f} {row[2]:9.1f} {row[3]:11.0f} "
                  f"{row[4]:8.1e} {row[5]:8.1e} {row[6]:9.1e}")
        summary[name] = np.median(np.array(rows), axis=0)
    print("\nmedian over basins")
    print(hdr.replace("basin           ", ""))
    for name, s in summary.items():
        print(f"{name:9s} {s[0] * 1e3:10.2f} {s[1]:9.1f} {s[2]:9.1f} {s[3]:11.0f} {s[4]:8.1e} {s[5]:8.1e} {s[6]:9.1e}")


if __name__ == "__main__":
    main()
