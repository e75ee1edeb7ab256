"""Paper-style tables of finished runs.

Usage: `python -m hsic_jax.report WORKDIR... [--markdown] [--out DIR]`.

Reads `WORKDIR/results.json` of each run and prints
  * per dataset, a table shaped like the paper's Tables 6–10: one row per class (accuracy, %),
    then #Params (trainable, millions), OA, AA and Kappa (×100), and the number of seeds;
    one column per method, each cell `mean ± std` when the run trained several seeds;
  * a table shaped like Table 11: adapter storage (MiB) per dataset and method, and its mean
    over datasets;
and writes `oa_vs_params.png` (OA against trainable parameters, log scale) to `--out`.
Tables are plain text, or Markdown with `--markdown`.
"""

import argparse
import json
import math
import os
import sys

from hsic_jax.evaluation.maps import save_plot_oa_vs_params

# Display names, in the paper's column order.
METHODS = {"linear_probe": "LP", "bitfit": "BitFit", "lora": "LoRA", "lora_plus": "LoRA+",
           "lokr": "LoKr", "krona": "KronA", "krona_plus": "KronA+", "fft": "FFT"}
DATASETS = {"indian_pines": "Indian Pines", "pavia_university": "Pavia University",
            "houston2013": "Houston 2013", "botswana": "Botswana",
            "whu_hi_longkou": "WHU-Hi-LongKou"}
REQUIRED = ("dataset", "method", "class_names", "oa", "aa", "kappa", "per_class",
            "trainable_params", "adapter_bytes")
MISSING = "–"


class ReportError(ValueError):
    """A workdir without a usable results.json."""


def load_run(workdir: str) -> dict:
    """The results.json of `workdir`, checked for the keys the report uses; adds `path`."""
    path = os.path.join(workdir, "results.json")
    if not os.path.isfile(path):
        raise ReportError(f"{path}: not found; {workdir} is not the workdir of a finished run "
                          "(results.json is written when training ends)")
    try:
        with open(path) as f:
            run = json.load(f)
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(run, dict):
        raise ReportError(f"{path}: expected a JSON object, got {type(run).__name__}")
    missing = [k for k in REQUIRED if k not in run]
    if missing:
        raise ReportError(f"{path}: missing key(s) {', '.join(missing)}")
    for key in ("oa", "aa", "kappa", "trainable_params", "adapter_bytes"):
        _check_number(path, key, run[key])
    for key in ("oa_std", "aa_std", "kappa_std"):
        if key in run:
            _check_number(path, key, run[key])
    num_classes = len(run["class_names"])
    for key in ("per_class", "per_class_std"):
        values = run.get(key, [None] * num_classes)
        if not isinstance(values, list) or len(values) != num_classes:
            raise ReportError(f"{path}: {key} must be a list of {num_classes} numbers (one per "
                              f"class_names entry); got {values!r:.80}")
        for v in values:
            if v is not None:
                _check_number(path, key, v)
    return {**run, "path": path}


def dataset_table(runs: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one dataset's table (Tables 6–10); `runs` are of that dataset."""
    runs = sorted(runs, key=lambda r: _order(METHODS, r["method"]))
    class_names = runs[0]["class_names"]
    for r in runs[1:]:
        if r["class_names"] != class_names:
            raise ReportError(f"{r['path']} and {runs[0]['path']}: same dataset "
                              f"{r['dataset']!r} but different class_names")
    no_std = [None] * len(class_names)
    rows = [[f"{i + 1} {name}",
             *(_cell(r["per_class"][i], r.get("per_class_std", no_std)[i]) for r in runs)]
            for i, name in enumerate(class_names)]
    rows.append(["#Params (M)", *(f"{r['trainable_params'] / 1e6:.3f}" for r in runs)])
    for key, label in (("oa", "OA (%)"), ("aa", "AA (%)"), ("kappa", "Kappa (%)")):
        rows.append([label, *(_cell(r[key], r.get(f"{key}_std")) for r in runs)])
    rows.append(["Seeds", *(str(len(r["seeds"]) if "seeds" in r else 1) for r in runs)])
    return ["Class", *(_name(METHODS, r["method"]) for r in runs)], rows


def storage_table(runs: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of adapter storage in MiB (Table 11): one row per dataset, then the mean."""
    methods = sorted({r["method"] for r in runs}, key=lambda m: _order(METHODS, m))
    datasets = sorted({r["dataset"] for r in runs}, key=lambda d: _order(DATASETS, d))
    mib = {(r["dataset"], r["method"]): r["adapter_bytes"] / 2**20 for r in runs}
    rows = [[_name(DATASETS, d), *(_mib(mib.get((d, m))) for m in methods)] for d in datasets]
    means = []
    for m in methods:
        values = [mib[d, m] for d in datasets if (d, m) in mib]
        means.append(_mib(sum(values) / len(values)))
    rows.append(["Mean AS (MiB)", *means])
    return ["Dataset", *(_name(METHODS, m) for m in methods)], rows


def format_table(title: str, header: list[str], rows: list[list[str]], markdown: bool) -> str:
    """A titled table, as Markdown or as aligned plain text (first column left, others right)."""
    if markdown:
        lines = [f"**{title}**", "", "| " + " | ".join(header) + " |",
                 "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row):
        cells = [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        return "  ".join([row[0].ljust(widths[0]), *cells])
    return "\n".join([title, line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def report(runs: list[dict], markdown: bool = False) -> str:
    """All tables of `runs` (as loaded by `load_run`): one per dataset, then adapter storage."""
    seen = {}
    for r in runs:
        key = (r["dataset"], r["method"])
        if key in seen:
            raise ReportError(f"{seen[key]} and {r['path']} are both {r['dataset']}/{r['method']}; "
                              "pass one workdir per dataset and method")
        seen[key] = r["path"]
    parts = []
    for d in sorted({r["dataset"] for r in runs}, key=lambda d: _order(DATASETS, d)):
        header, rows = dataset_table([r for r in runs if r["dataset"] == d])
        title = f"{_name(DATASETS, d)}: accuracy (%), mean ± std over seeds"
        parts.append(format_table(title, header, rows, markdown))
    header, rows = storage_table(runs)
    parts.append(format_table("Adapter storage (MiB)", header, rows, markdown))
    return "\n\n".join(parts) + "\n"


def plot_rows(runs: list[dict]) -> list[dict]:
    """The points of `save_plot_oa_vs_params`, in table order."""
    runs = sorted(runs, key=lambda r: (_order(METHODS, r["method"]),
                                       _order(DATASETS, r["dataset"])))
    return [{"method": _name(METHODS, r["method"]), "dataset": _name(DATASETS, r["dataset"]),
             "trainable_params": r["trainable_params"], "oa": r["oa"],
             **({"oa_std": r["oa_std"]} if "oa_std" in r else {})} for r in runs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hsic_jax.report",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("workdirs", nargs="+", metavar="WORKDIR", help="workdir of a finished run")
    parser.add_argument("--markdown", action="store_true",
                        help="Markdown tables instead of plain text")
    parser.add_argument("--out", default=".", help="folder for oa_vs_params.png (default: .)")
    args = parser.parse_args(argv)
    try:
        runs = [load_run(w) for w in args.workdirs]
        text = report(runs, args.markdown)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    png = os.path.join(args.out, "oa_vs_params.png")
    save_plot_oa_vs_params(png, plot_rows(runs))
    print(f"wrote {png}", file=sys.stderr)
    return 0


def _cell(value, std=None) -> str:
    """A fraction as a percentage with two decimals, `± std` when given; `–` when absent."""
    if value is None or math.isnan(value):
        return MISSING
    if std is None or math.isnan(std):
        return f"{100 * value:.2f}"
    return f"{100 * value:.2f} ± {100 * std:.2f}"


def _mib(value) -> str:
    return MISSING if value is None else f"{value:.2f}"


def _order(names: dict, key: str) -> tuple:
    """Known keys in the paper's order, then the others alphabetically."""
    return (list(names).index(key), "") if key in names else (len(names), key)


def _name(names: dict, key: str) -> str:
    return names.get(key, key)


def _check_number(path: str, key: str, value) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ReportError(f"{path}: {key} must be a number; got {value!r:.80}")


if __name__ == "__main__":
    sys.exit(main())
