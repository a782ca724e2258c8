"""KGSSL basin embeddings of the sample basins, with two static attributes imputed.

    python examples/embed_sample.py [OUTDIR]

A short training run (CPU, well under a minute): enough to see the pipeline, not to
reproduce the paper (see docs/benchmarks.md for the 100-basin experiments).
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import basinsx
from basinsx.embedding import KGSSL, evaluate

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
out.mkdir(parents=True, exist_ok=True)

ds = basinsx.open_dataset("sample")
attributes = ["aridity", "frac_snow"]
model = KGSSL(dim=8, hidden=16, epochs=150, seed=0).fit(ds, attributes=attributes, period=("1999", "2008"))
emb = model.transform(ds, period=("1989", "1998")).compute()  # another decade than training
print(evaluate(emb.attributes_pred, ds[attributes].to_array("attribute")).to_dataframe().round(3))

model.save(out / "kgssl.pt")
fig, ax = plt.subplots(figsize=(5, 4), layout="constrained")
emb.hydro.plot.embedding(color=ds.aridity, ax=ax)
fig.savefig(out / "embed_sample.png", dpi=100)
print(f"wrote {out / 'kgssl.pt'} and {out / 'embed_sample.png'}")
