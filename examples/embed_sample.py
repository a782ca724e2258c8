"""KGSSL basin embeddings of the sample basins, and two static attributes imputed out of sample.

    python examples/embed_sample.py [OUTDIR]

Two-fold leave-basins-out imputation: each model trains on all ten basins' series but sees
the attributes of only five; the other five are imputed from their embeddings. The printout
gives those out-of-sample scores next to the in-sample ones (the basins whose attributes the
model was trained on), over another decade than training. Short training runs (CPU, about a
minute): enough to see the pipeline and the gap, not to reproduce the paper (see
docs/embedding.md for the 100-basin experiments).
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

import basinsx
from basinsx.embedding import KGSSL, evaluate

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
out.mkdir(parents=True, exist_ok=True)

ds = basinsx.open_dataset("sample")
attributes = ["aridity", "frac_snow"]
truth = ds[attributes].to_dataarray("attribute").compute()
fold = np.arange(ds.sizes["basin"]) % 2
imputed, fitted = [], []
for k in (0, 1):
    hidden = ds.basin.values[fold == k]
    seen = ds.assign({a: ds[a].where(~ds.basin.isin(hidden)) for a in attributes})  # hidden basins: NaN attributes
    model = KGSSL(dim=8, hidden=16, epochs=40, seed=0, progress=False).fit(seen, attributes=attributes,
                                                                            period=("1999", "2008"))
    emb = model.transform(ds, period=("1989", "1998")).compute()  # another decade than training
    imputed.append(emb.attributes_pred.sel(basin=hidden))
    fitted.append(emb.attributes_pred.sel(basin=ds.basin.values[fold != k]))
    if k == 0:
        model.save(out / "kgssl.pt")
        first = emb
imputed = xr.concat(imputed, "basin").sel(basin=ds.basin)
fitted = xr.concat(fitted, "basin").sel(basin=ds.basin)
scores = xr.concat([evaluate(imputed, truth), evaluate(fitted, truth)],
                   xr.DataArray(["out-of-sample", "in-sample"], dims="scored"))
print("attribute scores over 10 basins, 1989-1998 (rmse in standard deviations of the attribute: 1 is no better "
      "than the mean)")
print(scores[["r", "rmse"]].to_dataframe().unstack("scored").round(3).to_string())
print("out-of-sample: basins whose attributes the model never saw (their series it did); "
      "in-sample: basins it was trained on")

fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
first.hydro.plot.embedding(color=ds.aridity, ax=axes[0])
axes[0].set_title("basin embeddings (fold 1 model), colour: aridity")
basinsx.plot.parity(imputed.sel(attribute="aridity"), truth.sel(attribute="aridity"), label="aridity (PET/P)",
                    ax=axes[1])
axes[1].set_title(f"aridity imputed out of sample: {axes[1].get_title()}")
fig.savefig(out / "embed_sample.png", dpi=100)
print(f"wrote {out / 'kgssl.pt'} and {out / 'embed_sample.png'}")
