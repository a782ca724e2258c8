"""Markdown tables from the JSON files written by the embedding benchmarks.

Run: ``python benchmarks/embedding_report.py docs/benchmarks/embedding_imputation.json [more imputation JSON] [--forward docs/benchmarks/embedding_forward.json]``
"""

import json
from pathlib import Path

from common import argument_parser

from basinsx.io.sample import KRATZERT_ATTRIBUTES


def imputation_tables(paths):
    runs = [(p, json.loads(Path(p).read_text())) for p in paths]
    rows = ["| run | setting | method | r > 0.8 | r > 0.9 | median r | mean r | median RMSE (z) |",
            "|---|---|---|---|---|---|---|---|"]
    for path, res in runs:
        name = path.rsplit("/", 1)[-1].removesuffix(".json")
        for setting in ("period", "unseen"):
            if setting not in res:
                continue
            for method in ("kgssl", "ridge", "forest"):
                s = res[setting][method]
                rows.append(f"| {name} | {setting} | {method} | {s['n_r_gt_0.8']} | {s['n_r_gt_0.9']} | "
                            f"{s['median_r']:.3f} | {s['mean_r']:.3f} | {s['median_rmse_z']:.3f} |")
    print("\n".join(rows))
    print()
    cols = [(name, setting, method) for name, res in [(p.rsplit("/", 1)[-1].removesuffix(".json"), r) for p, r in runs]
            for setting in ("period", "unseen") if setting in res for method in ("kgssl", "forest")]
    by = {p.rsplit("/", 1)[-1].removesuffix(".json"): r for p, r in runs}
    print("| attribute | " + " | ".join(f"{n} {s} {m}" for n, s, m in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for a in KRATZERT_ATTRIBUTES:
        print(f"| {a} | " + " | ".join(f"{by[n][s][m]['r'][a]:.2f}" for n, s, m in cols) + " |")


def forward_tables(path):
    res = json.loads(Path(path).read_text())
    print("| basin-pair distance correlation with attribute distance | Pearson | Spearman |")
    print("|---|---|---|")
    for k, v in res["distances"].items():
        print(f"| {k} | {v['pearson']:.3f} | {v['spearman']:.3f} |")
    print()
    print("| static input of ForwardLSTM | trained on | median NSE | mean NSE | epochs | seconds |")
    print("|---|---|---|---|---|---|")
    for k, v in res["forward"].items():
        trained = v.get("trained_on", k)
        epochs, seconds = v.get("epochs_run", "-"), f"{v['seconds']:.0f}" if "seconds" in v else "-"
        print(f"| {k} | {trained} | {v['median_nse']:.3f} | {v['mean_nse']:.3f} | {epochs} | {seconds} |")
    if "cost" in res:
        print()
        for k, v in res["cost"].items():
            print(f"- {k}: {v:.3g}" if isinstance(v, float) else f"- {k}: {v}")


def main(argv=None):
    ap = argument_parser(__doc__)
    ap.add_argument("imputation", nargs="*")
    ap.add_argument("--forward")
    args = ap.parse_args(argv)
    if args.imputation:
        imputation_tables(args.imputation)
    if args.forward:
        print()
        forward_tables(args.forward)


if __name__ == "__main__":
    main()
