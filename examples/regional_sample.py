"""Parameters for ungauged basins: train a parameter network on eight sample basins, predict two others.

    python examples/regional_sample.py [OUTDIR]

Runs offline on the bundled sample in under a minute. The two held-out basins' flow is never
seen: their parameters come from their attributes alone.
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import basinsx
from basinsx.regional import ParameterLearner

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
out.mkdir(parents=True, exist_ok=True)

ds = basinsx.open_dataset("sample", chunks=None).sel(time=slice("1989-10-01", "2000-09-30")).load()
ds = ds.assign(pet=ds.hydro.pet("oudin"))  # Oudin PET (Caravan's ERA5-Land PET is biased)
ungauged = ["01440000", "12010000"]
gauged = ds.drop_sel(basin=ungauged)

attributes = ["p_mean", "pet_mean", "aridity", "frac_snow", "elev_mean", "slope_mean", "frac_forest",
              "soil_depth_pelletier", "max_water_content"]
learner = ParameterLearner("gr4j", snow=True, attributes=attributes, hidden=16, epochs=40, seed=0)
learner.fit(gauged, period=("1990-10-01", "1995-09-30"), pet="pet", warmup=365, window=365, batch_basins=8)
print(f"training loss (1 - NSE) first / last epoch: {learner.history[0]:.3f} / {learner.history[-1]:.3f}")

target = ds.sel(basin=ungauged).drop_vars("streamflow")  # no flow: ungauged
params = learner.params(target)
print(params.to_pandas().round(3))

validation = slice("1996-10-01", "2000-09-30")
sim = ds.sel(basin=ungauged, time=slice("1995-10-01", None)).hydro.simulate(params, warmup=365, pet="pet")
obs = ds.streamflow.sel(basin=ungauged, time=validation)
scores = ds.hydro.metrics(sim, obs)
for b in ungauged:
    print(f"{b} ungauged, validation {validation.start[:4]}-{validation.stop[:4]}: "
          f"KGE {float(scores.kge.sel(basin=b)):.2f}, NSE {float(scores.nse.sel(basin=b)):.2f}")

b = ungauged[1]
fig, ax = plt.subplots(figsize=(9, 3.5))
days = slice("1998-10-01", "1999-09-30")
ax.plot(obs.sel(basin=b, time=days).time, obs.sel(basin=b, time=days), color="k", lw=1, label="observed")
ax.plot(sim.sel(basin=b, time=days).time, sim.sel(basin=b, time=days), color="C1", lw=1,
        label="GR4J + snow, parameters from attributes")
ax.set_title(f"{b} {str(ds.gauge_name.sel(basin=b).values)[:30]}: never gauged in training")
ax.set_ylabel("streamflow (mm/d)")
ax.set_xlabel("water year 1999")
ax.legend()
fig.tight_layout()
fig.savefig(out / "regional_sample.png", dpi=100)
