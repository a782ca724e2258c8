"""Caravan-size calibration: a synthetic store of Caravan's 6,830 basins x 40 years, calibrated with the CLI.

``--generate`` writes the store (basinsx.to_zarr, 16 basins per chunk, computed chunk by chunk, so the full
6,830 basins never sit in memory). Each synthetic basin takes one of the 100 real CAMELS-US basins of
``../shared/data/caravan`` (Oudin PET from its temperature): its forcing years reshuffled (block bootstrap of
whole calendar years, a leap year from a leap year) onto 1981-2020, and a streamflow simulated by GR4J with
the real basin's calibrated parameters (GR4J, KGE, the library defaults, computed once and cached in the
workdir) plus noise (sd ``--param-noise`` in log x1, x2 / 5, log x3, log x4), times lognormal daily noise
(sd ``--flow-noise``). The truth is stored as ``true_x1 .. true_x4``. A basin's data depend only on the seed
and its index: the first N basins of a larger store are those of a smaller one.

``--run`` starts a 2-process ``LocalCluster`` (one thread each) and runs, as a subprocess for each size,

    basinsx calibrate STORE --out OUT --model gr4j --loss kge --basins <first N> --scheduler <cluster>

after restarting the workers and a warm-up run of 8 basins (imports, numba cache loads). It reports the CPU
seconds of the worker processes (psutil, user + system: on a shared machine wall time is inflated, CPU time
much less), basins per core-second, the peak RSS of each worker (sampled every 0.1 s) and the extrapolation
to 6,830 basins. Then the restart: the largest run's command again into a new store, killed (SIGKILL) once
``--kill-at`` of its blocks are marked done, rerun unchanged; the marked blocks must keep their marks
(untouched) and the finished store must equal the uninterrupted run's. Last, the truth check: calibrated
KGE and parameters against the truth.

    nice -n 10 python benchmarks/caravan_scale.py --workdir /tmp/caravan-scale --generate --n-basins 6830
    nice -n 10 python benchmarks/caravan_scale.py --workdir /tmp/caravan-scale --run --sizes 64,256
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr
from common import ROOT, PeakMemory, argument_parser, caravan

import basinsx

CARAVAN_BASINS = 6830
START, END = "1981-01-01", "2020-12-31"  # 40 years, as Caravan's record
PARAMS = ("x1", "x2", "x3", "x4")


def to_z(theta: np.ndarray) -> np.ndarray:
    """GR4J parameters on the scale their noise is drawn on: log x1, x2 / 5, log x3, log x4."""
    theta = np.asarray(theta, dtype=float)
    return np.stack([np.log(theta[..., 0]), theta[..., 1] / 5, np.log(theta[..., 2]), np.log(theta[..., 3])], -1)


def from_z(z: np.ndarray) -> np.ndarray:
    return np.stack([np.exp(z[..., 0]), 5 * z[..., 1], np.exp(z[..., 2]), np.exp(z[..., 3])], -1)


def real_basins(workdir: Path) -> tuple[xr.Dataset, xr.Dataset]:
    """The 100 real basins (prcp, tmean, Oudin PET) and their GR4J/KGE calibration (cached in ``workdir``)."""
    real = caravan("oudin")[["prcp", "tmean", "pet", "streamflow"]].load()
    path = workdir / "real_calibration.nc"
    if not path.exists():
        from basinsx.calibration import calibrate

        print("calibrating GR4J on the 100 real basins once (the parameter distribution)", flush=True)
        fit = calibrate(real, model="gr4j", loss="kge")[["params", "kge"]].load()
        fit.to_netcdf(path)
    return real, xr.load_dataset(path)


class Generator:
    """Synthetic basins from the real ones: forcing years bootstrapped, GR4J truth plus noise."""

    def __init__(self, real: xr.Dataset, fit: xr.Dataset, seed: int, param_noise: float, flow_noise: float):
        ok = np.isfinite(fit.params.values).all(1)
        self.sources = np.flatnonzero(ok)  # real basins with a calibration
        self.forcing = np.stack([real[v].values for v in ("prcp", "tmean", "pet")], 1)  # (basin, var, time)
        self.theta = fit.params.transpose("basin", "param").values
        self.source_ids = real.basin.values
        years = real.time.dt.year.values
        self.days = {y: np.flatnonzero(years == y) for y in np.unique(years)}
        self.pools = {leap: [y for y, d in self.days.items() if (len(d) == 366) == leap] for leap in (False, True)}
        self.time = xr.date_range(START, END, freq="D", use_cftime=False)
        self.target_leap = [(self.time.year == y).sum() == 366 for y in np.unique(self.time.year)]
        self.seed, self.param_noise, self.flow_noise = seed, param_noise, flow_noise
        self.model = basinsx.models.get("gr4j")
        lo, hi = np.array([self.model.bounds[p] for p in PARAMS]).T
        self.lo, self.hi = lo + 0.01 * (hi - lo), hi - 0.01 * (hi - lo)  # off the bounds

    def draw(self, i: int) -> tuple[int, np.ndarray, np.ndarray]:
        """Source basin index, true parameters and the day index into the source record of basin ``i``."""
        rng = np.random.default_rng([self.seed, i, 0])
        src = int(rng.choice(self.sources))
        theta = np.clip(from_z(to_z(self.theta[src]) + self.param_noise * rng.standard_normal(4)), self.lo, self.hi)
        days = [self.days[int(rng.choice(self.pools[leap]))] for leap in self.target_leap]
        return src, theta, np.concatenate(days)

    def basin(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Forcing (3, time) and observed flow (time,) of basin ``i``."""
        src, theta, days = self.draw(i)
        forcing = self.forcing[src][:, days]
        q = self.model.run(theta, forcing[[0, 2]].astype(float), sensitivities=False)[0]
        rng = np.random.default_rng([self.seed, i, 1])
        return forcing, q * np.exp(self.flow_noise * rng.standard_normal(q.size) - self.flow_noise**2 / 2)

    def block(self, start: int, stop: int) -> tuple[np.ndarray, ...]:
        """prcp, tmean, pet, streamflow of basins ``start:stop``, each (basins, time) float32."""
        rows = [self.basin(i) for i in range(start, stop)]
        forcing = np.stack([r[0] for r in rows]).astype(np.float32)
        flow = np.stack([r[1] for r in rows]).astype(np.float32)
        return forcing[:, 0], forcing[:, 1], forcing[:, 2], flow

    def dataset(self, n: int, chunk: int, real: xr.Dataset) -> xr.Dataset:
        """The lazy store of ``n`` basins: each chunk of ``chunk`` basins is one task."""
        import dask
        import dask.array as da

        nt = len(self.time)
        columns = {v: [] for v in ("prcp", "tmean", "pet", "streamflow")}
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            block = dask.delayed(self.block, pure=True)(start, stop)
            for k, v in enumerate(columns):
                columns[v].append(da.from_delayed(block[k], (stop - start, nt), np.float32))
        heads = [self.draw(i)[:2] for i in range(n)]  # the statics: small, drawn as the blocks draw them
        ds = xr.Dataset({v: (("basin", "time"), da.concatenate(c), real[v].attrs) for v, c in columns.items()},
                        coords={"basin": [f"syn{i:05d}" for i in range(n)], "time": self.time})
        ds["source_basin"] = ("basin", np.array([self.source_ids[h[0]] for h in heads], dtype=object))
        theta = np.stack([h[1] for h in heads])
        for j, p in enumerate(PARAMS):
            ds[f"true_{p}"] = ("basin", theta[:, j], {"long_name": f"GR4J {p} that made the streamflow"})
        return ds.assign_attrs(source="synthetic Caravan-size store (benchmarks/caravan_scale.py)",
                               seed=self.seed, param_noise=self.param_noise, flow_noise=self.flow_noise)


def generate(args, workdir: Path) -> Path:
    import dask

    real, fit = real_basins(workdir)
    gen = Generator(real, fit, args.seed, args.param_noise, args.flow_noise)
    store = workdir / f"synthetic_{args.n_basins}.zarr"
    t0, c0 = time.perf_counter(), time.process_time()
    ds = gen.dataset(args.n_basins, 16, real)
    with dask.config.set(scheduler="threads", num_workers=2):
        basinsx.to_zarr(ds, store, basin_chunk=16, overwrite=True, progress=True)
    size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) / 2**20
    print(f"wrote {store}: {args.n_basins} basins x {len(gen.time)} days, {size:.0f} MiB on disk, "
          f"{time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} CPU s", flush=True)
    return store


def cli_command(store: Path, out: Path, basins: list[str], address: str) -> list[str]:
    exe = Path(sys.executable).with_name("basinsx")
    head = [str(exe)] if exe.exists() else [sys.executable, "-m", "basinsx.cli"]
    return [*head, "calibrate", str(store), "--out", str(out), "--model", "gr4j", "--loss", "kge",
            "--basins", *basins, "--scheduler", address]


class Workers:
    """The worker processes of a LocalCluster: their CPU seconds and RSS, by pid."""

    def __init__(self, client):
        import psutil

        self.procs = [psutil.Process(pid) for pid in client.run(os.getpid).values()]

    def cpu(self) -> dict[int, float]:
        return {p.pid: p.cpu_times().user + p.cpu_times().system for p in self.procs}

    def rss(self) -> dict[int, int]:
        return {p.pid: p.memory_info().rss for p in self.procs}


def measured(command: list[str], workers: Workers, log: Path, kill_when=None) -> dict:
    """Run ``command``; CPU seconds of each worker and of the client, wall time, peak RSS of each worker.

    ``kill_when()`` is polled every 0.2 s; once true the client is killed (SIGKILL).
    """
    cpu0, child0 = workers.cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with PeakMemory(workers.rss, interval=0.1) as mem, open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        killed = False
        while proc.poll() is None:
            if kill_when is not None and not killed and kill_when():
                proc.send_signal(signal.SIGKILL)
                killed = True
            time.sleep(0.2)
    wall = time.perf_counter() - t0
    cpu1, child1 = workers.cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
    if not killed and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... exited {proc.returncode}: {log.read_text()[-2000:]}")
    client = child1.ru_utime + child1.ru_stime - child0.ru_utime - child0.ru_stime
    return {"wall_s": wall, "worker_cpu_s": {pid: cpu1[pid] - cpu0[pid] for pid in cpu0}, "client_cpu_s": client,
            "peak_rss_mib": {pid: v / 2**20 for pid, v in mem.peaks.items()}, "returncode": proc.returncode,
            "killed": killed, "load": os.getloadavg()[0]}


def marks(out: Path) -> dict[str, int]:
    done = out / ".basinsx-done"
    return {m.name: m.stat().st_mtime_ns for m in done.iterdir()} if done.is_dir() else {}


def truth_check(store: Path, out: Path) -> dict:
    """Calibrated KGE and parameters against the truth that made each basin's flow."""
    done = basinsx.open_dataset(out).compute()
    syn = basinsx.open_dataset(store, basins=list(done.basin.values)).compute()
    model = basinsx.models.get("gr4j")
    true = np.stack([syn[f"true_{p}"].values for p in PARAMS], 1)
    cal = (syn.time.dt.year >= 1982) & (syn.time.dt.year <= 1995)  # the CLI's default period
    kge_true = []
    for b in range(syn.sizes["basin"]):
        q = model.run(true[b], np.stack([syn.prcp.values[b], syn.pet.values[b]]).astype(float),
                      sensitivities=False)[0][cal.values]
        obs = syn.streamflow.values[b][cal.values].astype(float)
        r = np.corrcoef(q, obs)[0, 1]
        kge_true.append(1 - np.sqrt((r - 1) ** 2 + (q.std() / obs.std() - 1) ** 2 + (q.mean() / obs.mean() - 1) ** 2))
    est = done.params.transpose("basin", "param").sel(param=list(PARAMS)).values
    error = np.abs(est - true) / np.where(np.arange(4) == 1, 1.0, true)  # relative, x2 (mm/d, may be 0) absolute
    return {"kge_cal_median": float(np.median(done.kge.values)), "kge_truth_median": float(np.median(kge_true)),
            "kge_cal_minus_truth_quartiles": np.percentile(done.kge.values - np.array(kge_true), [5, 25, 50, 75]).tolist(),
            "param_error_median": {p: float(np.median(error[:, j])) for j, p in enumerate(PARAMS)},
            "param_error_q90": {p: float(np.percentile(error[:, j], 90)) for j, p in enumerate(PARAMS)},
            "failed": int(np.isnan(est).any(1).sum())}


def identical(a: Path, b: Path) -> list[str]:
    """Variables that differ between two result stores (NaN equal to NaN); empty if all equal."""
    x, y = basinsx.open_dataset(a).compute(), basinsx.open_dataset(b).compute()
    differ = [n for n in x.variables if n not in y or not x[n].equals(y[n])]
    return differ + [n for n in y.variables if n not in x]


def run(args, workdir: Path) -> dict:
    from distributed import Client, LocalCluster

    store = Path(args.store) if args.store else workdir / f"synthetic_{args.n_basins}.zarr"
    ids = basinsx.open_dataset(store).basin.values.tolist()
    sizes = [int(s) for s in args.sizes.split(",")]
    report = {"store": str(store), "store_basins": len(ids), "sizes": {}}
    @contextlib.contextmanager
    def fresh_cluster():
        """A new 2-process cluster (fresh worker memory), warmed up by a CLI run on 8 basins."""
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            workers = Workers(client)
            warm = [*cli_command(store, workdir / "warmup.zarr", ids[:8], cluster.scheduler_address), "--overwrite"]
            measured(warm, workers, workdir / "warmup.log")
            yield cluster.scheduler_address, workers

    for n in sizes:
        with fresh_cluster() as (address, workers):
            out = workdir / f"calibrated_{n}.zarr"
            shutil.rmtree(out, ignore_errors=True)
            m = measured(cli_command(store, out, ids[:n], address), workers, workdir / f"calibrate_{n}.log")
        m["command"] = " ".join(cli_command(store, out, [f"<first {n} ids>"], "<scheduler>"))
        report["sizes"][n] = m
        cpu = sum(m["worker_cpu_s"].values())
        print(f"{n:5d} basins: {m['wall_s']:7.1f} s wall, worker CPU {cpu:7.1f} s "
              f"({n / cpu:.2f} basins per core-second), client CPU {m['client_cpu_s']:.1f} s, peak RSS per "
              f"worker {', '.join(f'{v:.0f}' for v in m['peak_rss_mib'].values())} MiB, load {m['load']:.1f}",
              flush=True)

    n = max(sizes)
    per_basin = sum(report["sizes"][n]["worker_cpu_s"].values()) / n
    total = per_basin * CARAVAN_BASINS
    report["extrapolation"] = {"worker_cpu_s_per_basin": per_basin, "caravan_core_s": total,
                               "caravan_core_h": total / 3600, "caravan_100_cores_min": total / 100 / 60}
    print(f"all of Caravan ({CARAVAN_BASINS} basins): {total:.0f} core-seconds = {total / 3600:.2f} core-hours; "
          f"on 100 cores {total / 100 / 60:.1f} min (at {per_basin:.3f} CPU s per basin)", flush=True)
    if args.no_restart:
        return report
    # the restart: the largest run again, killed part-way, then rerun unchanged
    out = workdir / f"restarted_{n}.zarr"
    shutil.rmtree(out, ignore_errors=True)
    blocks = -(-n // 8)  # the CLI's default --basin-chunk 8
    with fresh_cluster() as (address, workers):
        command = cli_command(store, out, ids[:n], address)
        first = measured(command, workers, workdir / "restart_killed.log",
                         kill_when=lambda: len(marks(out)) >= args.kill_at * blocks)
        time.sleep(2)  # tasks the scheduler had started finish on the workers, unmarked
        before = marks(out)
        second = measured(command, workers, workdir / "restart_rerun.log")
    after = marks(out)
    kept = all(after.get(k) == v for k, v in before.items())
    differ = identical(out, workdir / f"calibrated_{n}.zarr")
    report["restart"] = {"blocks": blocks, "marked_at_kill": len(before), "marks_untouched": kept,
                         "complete_after_rerun": len(after) == blocks, "differ_from_uninterrupted": differ,
                         "killed_run": first, "rerun": second}
    cpu1, cpu2 = sum(first["worker_cpu_s"].values()), sum(second["worker_cpu_s"].values())
    full = sum(report["sizes"][n]["worker_cpu_s"].values())
    print(f"restart: killed with {len(before)} of {blocks} blocks marked (worker CPU {cpu1:.1f} s); the rerun "
          f"computed the other {blocks - len(before)} in {cpu2:.1f} worker CPU s ({cpu2 / full:.2f} of the "
          f"uninterrupted run's {full:.1f} s); marked blocks untouched: {kept}; result equal to the "
          f"uninterrupted run: {not differ}{'' if not differ else f' (differ: {differ})'}", flush=True)
    report["truth"] = truth_check(store, workdir / f"calibrated_{n}.zarr")
    print("truth check:", json.dumps(report["truth"]), flush=True)
    return report


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument("--workdir", required=True, help="folder for the stores and logs (never inside the repo)")
    parser.add_argument("--generate", action="store_true", help="write the synthetic store")
    parser.add_argument("--run", action="store_true", help="calibrate subsets of it with the CLI")
    parser.add_argument("--n-basins", type=int, default=CARAVAN_BASINS, help="basins in the synthetic store")
    parser.add_argument("--store", help="store to calibrate (default the workdir's synthetic_<n-basins>.zarr)")
    parser.add_argument("--sizes", default="64,256", help="numbers of basins to calibrate (first of the store)")
    parser.add_argument("--kill-at", type=float, default=0.4, help="fraction of blocks marked before the kill")
    parser.add_argument("--no-restart", action="store_true", help="only the sizes and the extrapolation: no restart, no truth check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--param-noise", type=float, default=0.2, help="sd of the parameter noise (z scale)")
    parser.add_argument("--flow-noise", type=float, default=0.2, help="sd of the lognormal daily flow noise")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir).expanduser().resolve()
    if ROOT in [workdir, *workdir.parents]:
        raise SystemExit(f"--workdir {workdir} is inside the repository; use a temporary folder")
    workdir.mkdir(parents=True, exist_ok=True)
    if args.generate:
        generate(args, workdir)
    if args.run:
        report = run(args, workdir)
        (workdir / f"report_{args.sizes.replace(',', '_')}.json").write_text(json.dumps(report, indent=1, default=str))
        print(f"report: {workdir}/report_{args.sizes.replace(',', '_')}.json")


if __name__ == "__main__":
    main()
