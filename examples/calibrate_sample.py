"""Calibrate GR4J on KGE for three sample basins, validate, and look at the result.

    python examples/calibrate_sample.py [OUTDIR]

Runs offline on the bundled sample in well under a minute.
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import basinsx

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
out.mkdir(parents=True, exist_ok=True)

ds = basinsx.open_dataset("sample", basins=["01440000", "03346000", "12010000"])
# Caravan's ERA5-Land PET is several times observation-based PET: use Oudin's formula instead
ds = ds.assign(pet=ds.hydro.pet("oudin"))

# one dask task per basin: nothing runs until .compute()
cal = ds.hydro.calibrate(model="gr4j", loss="kge", period=slice("1982", "1995"), warmup=365, n_starts=4).compute()
print(cal[["kge", "nse", "n_evals"]].to_dataframe()[["kge", "nse", "n_evals"]])

sim = ds.hydro.simulate(cal.params, model="gr4j").compute()
validation = slice("1996", "2014")
val = sim.hydro.metrics(sim.sel(time=validation), ds.streamflow.sel(time=validation).compute())
print("validation KGE:", val.kge.round(3).to_series().to_dict())

# exact sensitivities of daily flow to the four parameters, for one basin and one water year
shown = slice("2004-10-01", "2005-09-30")
jac = ds.hydro.sensitivity(cal.params, model="gr4j").sel(basin=["12010000"], time=shown).compute()

# one time axis: each peak of the hydrograph sits above the sensitivities that shape it
fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True, layout="constrained")
ds.compute().hydro.plot.hydrograph(sim, basin="12010000", time=shown, ax=axes[0], label="GR4J (validation)")
jac.hydro.plot.sensitivity(ax=axes[1])
fig.savefig(out / "calibrate_sample.png", dpi=100)
print(f"wrote {out / 'calibrate_sample.png'}")
