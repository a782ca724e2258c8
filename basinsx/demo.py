"""``basinsx demo``: calibrate a model on every basin of the bundled sample and show the result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

CALIBRATION = slice("1982", "1995")
VALIDATION = slice("1996", "2014")


def summary(ds: xr.Dataset) -> pd.DataFrame:
    """Mean precipitation, PET, temperature and flow, and the runoff ratio, per basin."""
    mean = ds[["prcp", "pet", "tmean", "streamflow"]].mean("time").compute()
    table = pd.DataFrame({
        "name": [str(n)[:34] for n in ds.gauge_name.values],
        "area_km2": ds.area.values.round(0),
        "P_mm/d": mean.prcp.values.round(2),
        "PET_mm/d": mean.pet.values.round(2),
        "T_degC": mean.tmean.values.astype(float).round(1),
        "Q_mm/d": mean.streamflow.values.round(2),
        "Q/P": (mean.streamflow / mean.prcp).values.round(2),
    }, index=pd.Index(ds.basin.values, name="basin"))
    return table


def run(out: Path, model: str = "gr4j", n_starts: int = 4, snow: bool = True) -> xr.Dataset:
    """Calibrate ``model`` on KGE over 1982-1995 (1981 spin-up), validate on 1996-2014, write a figure.

    PET is Oudin's formula from the sample's temperature: the ERA5-Land PET that
    Caravan ships is several times observation-based PET in most basins.
    """
    from .progress import compute
    from .store import open_dataset

    out.mkdir(parents=True, exist_ok=True)
    ds = open_dataset("sample")
    ds = ds.assign(pet=ds.hydro.pet("oudin"))
    print(f"basinsx sample: {ds.sizes['basin']} basins, {str(ds.time.values[0])[:10]} .. "
          f"{str(ds.time.values[-1])[:10]}  ({ds.attrs['license']})")
    print(summary(ds).to_string(), end="\n\n")

    label = f"{model}{' + snow' if snow else ''}"
    print(f"calibrating {label} on KGE, {CALIBRATION.start}-{CALIBRATION.stop}, {n_starts} starts per basin")
    (result,) = compute(ds.hydro.calibrate(model=model, loss="kge", period=CALIBRATION, warmup=365,
                                           n_starts=n_starts, seed=0, snow=snow), desc="calibrating")
    sim = ds.hydro.simulate(result.params, model=model, snow=snow).compute()
    obs = ds.streamflow.compute()
    validation = sim.hydro.metrics(sim.sel(time=VALIDATION), obs.sel(time=VALIDATION))

    table = result.params.to_pandas().round(3)
    table.insert(0, "KGE_val", validation.kge.values.round(3))
    table.insert(0, "KGE_cal", result.kge.values.round(3))
    print(table.to_string())
    print(f"\nmedian KGE: calibration {np.nanmedian(result.kge):.3f}, validation {np.nanmedian(validation.kge):.3f}")

    result["kge_validation"] = validation.kge
    result.to_netcdf(out / "calibration.nc")
    figure = _figure(obs, sim, result, label)
    figure.savefig(out / "demo.png", dpi=110)
    print(f"wrote {out / 'calibration.nc'} and {out / 'demo.png'}")
    return result


def _figure(obs: xr.DataArray, sim: xr.DataArray, result: xr.Dataset, label: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plot import flow_duration_curve, hydrograph

    best = str(result.kge_validation.idxmax("basin").values)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), gridspec_kw={"width_ratios": [2.2, 1, 1]}, layout="constrained")
    hydrograph(obs, sim, label=f"{label} (validation)", basin=best, time=slice("2004-10-01", "2006-09-30"), ax=axes[0])
    flow_duration_curve(obs.sel(time=VALIDATION), ax=axes[1])
    x = np.arange(result.sizes["basin"])
    axes[2].bar(x - 0.2, result.kge, 0.4, label="calibration")
    axes[2].bar(x + 0.2, result.kge_validation, 0.4, label="validation")
    axes[2].set_xticks(x, result.basin.values, rotation=70, fontsize=7)
    axes[2].set(ylabel="KGE", title=f"{label}: KGE per basin")
    axes[2].legend()
    return fig
