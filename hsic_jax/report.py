"""Paper-style tables of finished runs.

Usage: `python -m hsic_jax.report WORKDIR... [--markdown] [--out DIR]`.

Reads `WORKDIR/results.json` of each run and prints
  * per dataset, a table shaped like the paper's Tables 6–10: one row per class (accuracy, %),
    then #Params (trainable, millions), OA, AA and Kappa (×100), and the number of seeds;
    one column per run: SpectralGPT's methods (LP … FFT), then the other model families
    (SpectralFormer, …, SVM, RF), each cell `mean ± std` when the run trained several seeds;
    then the protocol of each run: `Split` (how training pixels were chosen: per class, a
    fraction, or given maps; `, disjoint` when test pixels inside a training window were
    removed), `Window (px)` (the model's input window), `Train / val / test px` (pixel counts of
    the first seed), `Fit on` (PCA/normalisation statistics fitted on the whole `scene` or on the
    `train` pixels), `Selection` (the `last` state or the one with the `best val` OA), and
    `Test px in a train window (%)` (leakage: test pixels lying inside at least one training
    pixel's window, mean over seeds); `–` where a results.json predates these keys;
  * per dataset, a paired comparison of OA over seeds: one row per pair of methods `A − B` (in
    column order) whose runs share at least two seeds (matched by seed number) and the same
    protocol (split, disjointness, window, fit_on, selection and pixel counts), with the number of
    common seeds, the mean ± sample std of ΔOA in percentage points, and the two-sided p-values
    of the paired t-test and the Wilcoxon signed-rank test (`–` where a test is undefined, e.g.
    all differences zero); pairs whose protocols differ are named in a note under it instead;
  * per dataset, under its table, a note on the runs that differ from the others in `epochs`
    (`config.epochs`) or a protocol field: `runs differ in epochs: KronA+ 30, others 50`;
  * for a sweep run (`run.py --sweep`), a table of its grid points: the swept values, OA, AA
    and Kappa, mean ± std over seeds;
  * a table shaped like Table 11: adapter storage (MiB) per dataset and method, and its mean
    over datasets;
and writes `oa_vs_params.png` (OA against trainable parameters, log scale) and, per sweep
run, `sweep_{dataset}_{model}_{method}.png` (OA against the swept value) to `--out` (created
if missing), each marked as its own in the PNG metadata (`Software: hsic-jax report`): a file of
those names that the report did not write is never replaced. Tables are plain text, or Markdown
with `--markdown`. A workdir without results.json (a run that has not finished), or of a
pre-training, is left out with a warning; the command fails when no workdir is left.
"""

import argparse
import itertools
import json
import math
import os
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable

import numpy as np
from scipy import stats

from hsic_jax.adapters.methods import SPECS
from hsic_jax.data.io import atomic_write
from hsic_jax.data.scenes import SCENES
from hsic_jax.evaluation.maps import save_plot_oa_vs_params, save_sweep_plot
from hsic_jax.models import FAMILIES, family
from hsic_jax.models.converted import FIRST_FAMILY
from hsic_jax.train import tasks

# Display names, in the paper's column order: SpectralGPT's fine-tuning methods, then the
# other model families (trained fully; another method is named beside the family).
METHODS = {name: spec.display for name, spec in SPECS.items()}
MODELS = {name: family(name).DISPLAY_NAME for name in FAMILIES}
DATASETS = {name: spec.display_name for name, spec in SCENES.items()}
REQUIRED = ("dataset", "method", "class_names", "oa", "aa", "kappa", "per_class",
            "trainable_params", "adapter_bytes")
MISSING = "–"
# Display names of protocol values; other values are shown as they are.
SPLITS = {"per_class": "per class", "fraction": "fraction", "given": "given maps"}
SELECTIONS = {"last": "last", "best_val": "best val"}
# Protocol fields (and their JSON types) that must agree for two runs to be compared.
PROTOCOL_TYPES = {"split": str, "spatially_disjoint": bool, "window": int, "fit_on": str,
                  "select": str, "train": int, "val": int, "test": int}


PLOT = "oa_vs_params.png"
# The PNG `Software` text of the plot: what marks a file as written by the report.
SOFTWARE = "hsic-jax report"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ReportError(ValueError):
    """A workdir without a usable results.json."""


class UnfinishedRun(ReportError):
    """A workdir without results.json: its run has not finished."""


class PretrainingRun(ReportError):
    """The workdir of a pre-training (`pretrain.py`): no classification to report."""


def load_run(workdir: str) -> dict:
    """The results.json of `workdir`, checked for the keys the report uses; adds `path`."""
    path = os.path.join(workdir, "results.json")
    if not os.path.isdir(workdir):
        raise ReportError(f"{workdir}: no such folder")
    if not os.path.isfile(path):
        raise UnfinishedRun(f"{path}: not found; {workdir} is not the workdir of a finished run "
                            "(results.json is written when training ends)")
    try:
        with open(path) as f:
            run = json.load(f)
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(run, dict):
        raise ReportError(f"{path}: expected a JSON object, got {type(run).__name__}")
    if run.get("task") == "pretrain":
        raise PretrainingRun(f"{workdir} is a pre-training (pretrain.py), not a classification "
                             "run")
    missing = [k for k in REQUIRED if k not in run]
    if missing:
        raise ReportError(f"{path}: missing key(s) {', '.join(missing)}")
    for key in ("oa", "trainable_params", "adapter_bytes"):
        _check_number(path, key, run[key])
    for key in ("aa", "kappa", "oa_std", "aa_std", "kappa_std"):  # null: undefined (e.g. kappa
        if run.get(key) is not None:                             # when all pixels are one class)
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
    if "config" in run:
        _check_type(path, "config", run["config"], dict)
        if "epochs" in run["config"]:
            _check_type(path, "config.epochs", run["config"]["epochs"], int)
    if "seeds" in run:
        _check_seeds(path, run["seeds"])
    if "protocol" in run:
        _check_protocol(path, run["protocol"])
    if "leakage" in run:
        _check_leakage(path, "leakage", run["leakage"])
    return {**run, "path": path}


def dataset_table(runs: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one dataset's table (Tables 6–10), then its protocol rows; `runs` are
    of that dataset."""
    runs = _in_column_order(runs)
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
    rows += protocol_rows(runs)
    return ["Class", *(column(r) for r in runs)], rows


def protocol_rows(runs: list[dict]) -> list[list[str]]:
    """Rows of each run's split protocol and leakage, one cell per run; `–` where a key is
    absent."""
    protocols = [r.get("protocol", {}) for r in runs]

    def split(p):
        if "split" not in p:
            return MISSING
        return _name(SPLITS, p["split"]) + (", disjoint" if p.get("spatially_disjoint") else "")

    def counts(p):
        keys = ("train", "val", "test")
        if not p.keys() & set(keys):
            return MISSING
        return " / ".join(str(p.get(k, MISSING)) for k in keys)
    return [
        ["Split", *map(split, protocols)],
        ["Window (px)", *(str(p.get("window", MISSING)) for p in protocols)],
        ["Train / val / test px", *map(counts, protocols)],
        ["Fit on", *(p.get("fit_on", MISSING) for p in protocols)],
        ["Selection", *(_name(SELECTIONS, p["select"]) if "select" in p else MISSING
                        for p in protocols)],
        ["Test px in a train window (%)",
         *(_cell(r.get("leakage", {}).get("test")) for r in runs)],
    ]


def differences_note(runs: list[dict]) -> str | None:
    """The runs of one table that differ from the others in `epochs` or a protocol field, as
    `runs differ in epochs: KronA+ 30, others 50; in window: FFT 9, LoRA 15`; None when none do.

    A value that more than half of the runs share is `others`; an absent one is `–`.
    """
    runs = _in_column_order(runs)
    trained = [r for r in runs if not _fitted(r)]  # epochs mean nothing to a fit
    fields = {"epochs": (trained, [r.get("config", {}).get("epochs") for r in trained]),
              **{k: (runs, [r.get("protocol", {}).get(k) for r in runs]) for k in PROTOCOL_TYPES}}
    parts = []
    for field, (among, values) in fields.items():
        if len(set(map(_value, values))) < 2:
            continue
        common = max(values, key=values.count)
        usual = values.count(common) > len(values) / 2
        cells = [f"{column(r)} {_value(v)}" for r, v in zip(among, values)
                 if not (usual and v == common)]
        parts.append(f"{field}: " + ", ".join(cells + [f"others {_value(common)}"] * usual))
    return "runs differ in " + "; in ".join(parts) if parts else None


def paired_comparison(a_by_seed: dict[int, float], b_by_seed: dict[int, float]) -> dict:
    """Paired comparison of two runs' per-seed values (e.g. OA) over the seeds both have.

    Returns `seeds` (the common seeds, sorted), `n` (their number), `mean` and `std` (sample std,
    ddof=1) of the differences a − b, and the two-sided p-values `t_p` (paired t-test,
    `scipy.stats.ttest_rel`) and `wilcoxon_p` (Wilcoxon signed-rank test, `scipy.stats.wilcoxon`).
    Undefined values are None: `mean` without common seeds, `std` and `t_p` with fewer than two,
    `t_p` also when all differences are equal (zero variance), `wilcoxon_p` when all are zero.
    Differences are rounded to 1e-12 first, so that float noise (0.95 − 0.93 ≠ 0.96 − 0.94) neither
    hides equal or zero differences nor breaks ties between them.
    """
    seeds = sorted(a_by_seed.keys() & b_by_seed.keys())
    a = np.array([a_by_seed[s] for s in seeds], dtype=float)
    b = np.array([b_by_seed[s] for s in seeds], dtype=float)
    diffs = np.round(a - b, 12)
    n = len(seeds)
    return {"seeds": seeds, "n": n,
            "mean": float(np.mean(diffs)) if n else None,
            "std": float(np.std(diffs, ddof=1)) if n > 1 else None,
            "t_p": float(stats.ttest_rel(a, b).pvalue) if n > 1 and np.ptp(diffs) else None,
            "wilcoxon_p": float(stats.wilcoxon(diffs).pvalue) if np.any(diffs) else None}


def protocol_differences(a: dict, b: dict) -> list[str]:
    """The protocol fields on which runs `a` and `b` differ, each as `field A-value vs B-value`;
    a field absent from one run differs from a value in the other."""
    pa, pb = a.get("protocol", {}), b.get("protocol", {})
    return [f"{k} {_value(pa.get(k))} vs {_value(pb.get(k))}"
            for k in PROTOCOL_TYPES if pa.get(k) != pb.get(k)]


def comparison_table(runs: list[dict]) -> tuple[list[str], list[list[str]], list[str]]:
    """Header and rows of one dataset's paired comparison of OA over seeds, and the pairs left
    out because their protocols differ (`A − B (field A-value vs B-value, ...)`).

    One row per pair of runs, in column order, that share at least two seeds and their protocol:
    `A − B`, the number of common seeds, mean ± std of ΔOA (percentage points) and the p-values of
    `paired_comparison`. Pairs with fewer than two common seeds are neither compared nor listed.
    """
    rows, skipped = [], []
    for a, b in itertools.combinations(_in_column_order(runs), 2):
        oa_a, oa_b = _oa_by_seed(a), _oa_by_seed(b)
        if len(oa_a.keys() & oa_b.keys()) < 2:
            continue
        pair = f"{column(a)} − {column(b)}"
        differences = protocol_differences(a, b)
        if differences:
            skipped.append(f"{pair} ({', '.join(differences)})")
            continue
        c = paired_comparison(oa_a, oa_b)
        rows.append([pair, str(c["n"]), f"{100 * c['mean']:+.2f} ± {100 * c['std']:.2f}",
                     _p_value(c["t_p"]), _p_value(c["wilcoxon_p"])])
    return ["Pair", "n", "ΔOA (pp)", "t-test p", "Wilcoxon p"], rows, skipped


def storage_table(runs: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of adapter storage in MiB (Table 11): one row per dataset, then the mean."""
    columns = [column(r) for r in _in_column_order(runs)]
    methods = list(dict.fromkeys(columns))
    datasets = sorted({r["dataset"] for r in runs}, key=lambda d: _order(DATASETS, d))
    mib = {(r["dataset"], column(r)): r["adapter_bytes"] / 2**20 for r in runs}
    rows = [[_name(DATASETS, d), *(_mib(mib.get((d, m))) for m in methods)] for d in datasets]
    means = []
    for m in methods:
        values = [mib[d, m] for d in datasets if (d, m) in mib]
        means.append(_mib(sum(values) / len(values)))
    rows.append(["Mean AS (MiB)", *means])
    return ["Dataset", *methods], rows


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
    """All tables of `runs` (as loaded by `load_run`): per dataset its table, its paired
    comparison and the note on pairs not compared, then adapter storage."""
    seen = {}
    for r in runs:
        key = (r["dataset"], _model(r), r["method"])
        if key in seen:
            raise ReportError(f"{seen[key]} and {r['path']} are both {'/'.join(key)}; pass one "
                              "workdir per dataset, model and method")
        seen[key] = r["path"]
    parts = []
    for d in sorted({r["dataset"] for r in runs}, key=lambda d: _order(DATASETS, d)):
        header, rows = dataset_table([r for r in runs if r["dataset"] == d])
        title = f"{_name(DATASETS, d)}: accuracy (%), mean ± std over seeds"
        parts.append(format_table(title, header, rows, markdown))
        note = differences_note([r for r in runs if r["dataset"] == d])
        if note:
            parts.append(f"{_name(DATASETS, d)}: {note}")
        header, rows, skipped = comparison_table([r for r in runs if r["dataset"] == d])
        if rows:
            title = f"{_name(DATASETS, d)}: paired comparison of OA over seeds"
            parts.append(format_table(title, header, rows, markdown))
        if skipped:
            parts.append(f"{_name(DATASETS, d)}: not compared, protocol differs: "
                         + "; ".join(skipped))
    for r in _in_column_order([r for r in runs if r.get("sweep")]):
        header, rows = sweep_table(r)
        title = f"{_name(DATASETS, r['dataset'])}, {column(r)}: sweep, mean ± std over seeds"
        parts.append(format_table(title, header, rows, markdown))
    header, rows = storage_table(runs)
    parts.append(format_table("Adapter storage (MiB)", header, rows, markdown))
    return "\n\n".join(parts) + "\n"


def sweep_table(run: dict) -> tuple[list[str], list[list[str]]]:
    """One row per grid point of a sweep run: the swept values, then OA, AA and Kappa (×100)."""
    fields = list(run["sweep"][0]["values"])
    rows = [[f"{p['values'][f]:g}" for f in fields]
            + [_cell(p.get(k), p.get(f"{k}_std")) for k in ("oa", "aa", "kappa")]
            for p in run["sweep"]]
    return fields + ["OA", "AA", "Kappa"], rows


def sweep_plot_name(run: dict) -> str:
    """The file name of a sweep run's plot (OA against the swept values) in `--out`."""
    return f"sweep_{run['dataset']}_{_model(run)}_{run['method']}.png"


def plot_rows(runs: list[dict]) -> list[dict]:
    """The points of `save_plot_oa_vs_params`, in table order."""
    runs = sorted(runs, key=lambda r: (_column_order(r), _order(DATASETS, r["dataset"])))
    return [{"method": column(r), "dataset": _name(DATASETS, r["dataset"]),
             "trainable_params": r["trainable_params"], "oa": r["oa"],
             **({"oa_std": r["oa_std"]} if "oa_std" in r else {})} for r in runs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hsic_jax.report",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("workdirs", nargs="+", metavar="WORKDIR",
                        help="workdir of a run; one without results.json (unfinished) is left out")
    parser.add_argument("--markdown", action="store_true",
                        help="Markdown tables instead of plain text")
    parser.add_argument("--out", default=".",
                        help=f"folder for {PLOT}, created if missing; a {PLOT} there that the "
                             "report did not write is never replaced (default: .)")
    args = parser.parse_args(argv)
    png = os.path.join(args.out, PLOT)
    try:
        runs = load_runs(args.workdirs)
        text = report(runs, args.markdown)
        sweeps = {os.path.join(args.out, sweep_plot_name(r)): r for r in runs if r.get("sweep")}
        for path in (png, *sweeps):
            check_plot_path(path)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    save_plot(png, plot_rows(runs))
    for path, r in sweeps.items():
        save_plot(path, r["sweep"], lambda out, points, r=r: save_sweep_plot(
            out, points, title=f"{_name(DATASETS, r['dataset'])} · {column(r)}"))
    for path in (png, *sweeps):
        print(f"wrote {path}", file=sys.stderr)
    return 0


def load_runs(workdirs: list[str]) -> list[dict]:
    """`load_run` of each workdir, leaving out those whose run has not finished (warned on
    stderr); fails when none is left."""
    runs = []
    for workdir in workdirs:
        try:
            runs.append(load_run(workdir))
        except (UnfinishedRun, PretrainingRun) as e:
            print(f"warning: {e}; left out of the report", file=sys.stderr)
    if not runs:
        raise ReportError(f"no finished run among {' '.join(workdirs)} (none has a results.json)")
    return runs


def check_plot_path(png: str) -> None:
    """Refuse to write `png` where its folder is a file or a file there was not written by the
    report (no `Software: hsic-jax report` in its PNG metadata)."""
    folder = os.path.dirname(png) or "."
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ReportError(f"--out {folder} is a file, not a folder; give --out a folder")
    if not os.path.lexists(png):
        return
    try:
        with open(png, "rb") as f:
            software = png_text(f.read()).get("Software")
    except OSError:
        software = None
    if software != SOFTWARE:
        raise ReportError(f"{png} exists and was not written by this report (its PNG metadata "
                          f"has no 'Software: {SOFTWARE}'); move it away or give --out another "
                          "folder")


def save_plot(png: str, rows: list[dict],
              draw: Callable[[str, list[dict]], None] = save_plot_oa_vs_params) -> None:
    """`draw(path, rows)` (by default `save_plot_oa_vs_params`) to `png` (atomically), marked
    `Software: hsic-jax report`."""
    with tempfile.TemporaryDirectory() as tmp:
        draw(os.path.join(tmp, PLOT), rows)
        with open(os.path.join(tmp, PLOT), "rb") as f:
            data = with_png_text(f.read(), "Software", SOFTWARE)
    atomic_write(png, lambda f: f.write(data))


def png_text(data: bytes) -> dict[str, str]:
    """The `tEXt` entries of PNG `data` ({} when `data` is not a PNG); the last of a key wins."""
    return {key.decode("latin-1"): value.decode("latin-1")
            for kind, body in _png_chunks(data) if kind == b"tEXt"
            for key, _, value in [body.partition(b"\0")]}


def with_png_text(data: bytes, key: str, value: str) -> bytes:
    """PNG `data` with its `tEXt` entries of `key` replaced by one of `value`, after the header."""
    chunks = [(kind, body) for kind, body in _png_chunks(data)
              if not (kind == b"tEXt" and body.partition(b"\0")[0] == key.encode("latin-1"))]
    chunks.insert(1, (b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1")))
    return _PNG_SIGNATURE + b"".join(struct.pack(">I", len(body)) + kind + body
                                     + struct.pack(">I", zlib.crc32(kind + body))
                                     for kind, body in chunks)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, body) of each chunk of PNG `data`; [] when `data` is not a PNG."""
    if not data.startswith(_PNG_SIGNATURE):
        return []
    chunks, i = [], len(_PNG_SIGNATURE)
    while i + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[i:i + 8])
        chunks.append((kind, data[i + 8:i + 8 + length]))
        i += 12 + length
    return chunks


def _cell(value, std=None) -> str:
    """A fraction as a percentage with two decimals, `± std` when given; `–` when absent."""
    if value is None or math.isnan(value):
        return MISSING
    if std is None or math.isnan(std):
        return f"{100 * value:.2f}"
    return f"{100 * value:.2f} ± {100 * std:.2f}"


def _p_value(p) -> str:
    """A p-value with three decimals, in scientific notation below 0.001; `–` when undefined."""
    if p is None:
        return MISSING
    return f"{p:.3f}" if p >= 1e-3 else f"{p:.1e}"


def _value(value) -> str:
    """A protocol value as written in results.json; `–` when absent."""
    if value is None:
        return MISSING
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _oa_by_seed(run: dict) -> dict[int, float]:
    return {s["seed"]: s["oa"] for s in run.get("seeds", [])}


def column(run: dict) -> str:
    """A run's column: the method for SpectralGPT (`KronA+`), the family for the others
    (`SpectralFormer`, or `SpectralFormer LoRA` when fine-tuned with another method than FFT)."""
    model = _model(run)
    if _family_attr(model, "COLUMN_PER_METHOD", False):
        return _name(METHODS, run["method"])
    method = "" if run["method"] == "fft" else f" {_name(METHODS, run['method'])}"
    return _name(MODELS, model) + method


def _model(run: dict) -> str:
    return run.get("model", FIRST_FAMILY)  # results written before models were named


def _family_attr(model: str, attr: str, default):
    """`attr` of model family `model` (`default` for a family this version does not know)."""
    return getattr(family(model), attr, default) if model in FAMILIES else default


def _fitted(run: dict) -> bool:
    """Whether the run's model is fitted once (no epochs) rather than trained."""
    return _model(run) in FAMILIES and tasks.of(_model(run)).fitted


def _column_order(run: dict) -> tuple:
    """SpectralGPT's methods in the paper's order; another family trained fully, then tuned."""
    model = _model(run)
    own = not _family_attr(model, "COLUMN_PER_METHOD", False) and run["method"] == "fft"
    return _order(MODELS, model), not own, _order(METHODS, run["method"])


def _in_column_order(runs: list[dict]) -> list[dict]:
    return sorted(runs, key=_column_order)


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


def _check_type(path: str, key: str, value, kind: type) -> None:
    """`value` is a `kind` (an int is no bool, nor a bool an int)."""
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        expected = {str: "a string", bool: "true or false", int: "an integer", dict: "an object",
                    list: "a list"}[kind]
        raise ReportError(f"{path}: {key} must be {expected}; got {value!r:.80}")


def _check_seeds(path: str, seeds) -> None:
    """`seeds` is a list of objects with an integer `seed` (each once), a numeric `oa`, and a valid
    `leakage` where present."""
    _check_type(path, "seeds", seeds, list)
    for i, entry in enumerate(seeds):
        key = f"seeds[{i}]"
        _check_type(path, key, entry, dict)
        for field in ("seed", "oa"):
            if field not in entry:
                raise ReportError(f"{path}: {key} has no {field}")
        _check_type(path, f"{key}.seed", entry["seed"], int)
        _check_number(path, f"{key}.oa", entry["oa"])
        if "leakage" in entry:
            _check_leakage(path, f"{key}.leakage", entry["leakage"])
    numbers = [entry["seed"] for entry in seeds]
    if len(set(numbers)) != len(numbers):
        raise ReportError(f"{path}: seeds has a seed number twice; got {numbers!r:.80}")


def _check_protocol(path: str, protocol) -> None:
    """`protocol` is an object whose known fields have their JSON types."""
    _check_type(path, "protocol", protocol, dict)
    for field, kind in {**PROTOCOL_TYPES, "summary": str}.items():
        if field == "window" and field in protocol:
            _check_window(path, "protocol.window", protocol[field])
        elif field in protocol:
            _check_type(path, f"protocol.{field}", protocol[field], kind)


def _check_window(path: str, key: str, window) -> None:
    """A model's input window: its size in pixels, or 'scene' (a whole-scene model)."""
    if window != "scene":
        try:
            _check_type(path, key, window, int)
        except ReportError:
            raise ReportError(f"{path}: {key} must be an integer or 'scene'; got {window!r:.80}")


def _check_leakage(path: str, key: str, leakage) -> None:
    """`leakage` is an object with a `window` and numeric (or null) `test`/`val`."""
    _check_type(path, key, leakage, dict)
    if "window" in leakage:
        _check_window(path, f"{key}.window", leakage["window"])
    for field in ("test", "val"):
        if leakage.get(field) is not None:
            _check_number(path, f"{key}.{field}", leakage[field])


if __name__ == "__main__":
    sys.exit(main())
