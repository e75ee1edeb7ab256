"""The comparison columns of the paper's Table 6, trained to the end of their recipes on CPU.

    nice python bench/paper_table.py                # hours on 2 CPU cores; resumable
    python bench/paper_table.py --seeds 1 --rows svm rf
    python bench/paper_table.py --collect           # the table of the runs finished so far

Indian Pines with the paper's training pixels (50 per class, 15 for the three small classes;
695 in all): SpectralFormer (`configs/indian_pines_spectralformer.py`, 300 epochs), MambaHSI
(`configs/indian_pines_mambahsi.py:paper`, 200 epochs, the whole scene), and the RBF-SVM and
random forest on the same split. Each row is the command a user runs, in its own process:
seed 0 alone (so that its number lands first), then seeds 1 … N-1 side by side in one program
(`--config.seed=1 --config.num_seeds=N-1`). A killed run resumes from its last checkpoint
when the script is run again, and a finished one is kept as it is. `--collect` starts nothing:
it tabulates the programs that have finished (a row's 'seeds' columns then cover the seeds that
did) and names the ones that have not.

Writes to `--out` (default `bench/results/paper_indian_pines/`): each run's `results.json`
(as `{row}_{seeds}.json`), `report.md` (`python -m hsic_jax.report --markdown` of those
runs, seed 0's and the others'), and `table.json` / `table.md`: per row the paper's OA, AA and kappa, seed 0's, the mean
± std over every seed, the split, the test pixels inside a training window, the run time and
the machine. Prints the Markdown table.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

from hsic_jax.data.io import atomic_write
from hsic_jax.evaluation.results import machine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Row → (display name, config, Ligan et al.'s Table 6 (OA, AA, kappa, %) or None).
ROWS = {
    "spectralformer": ("SpectralFormer", "configs/indian_pines_spectralformer.py",
                       (83.79, 88.28, 81.46)),
    "mambahsi": ("MambaHSI", "configs/indian_pines_mambahsi.py:paper", (95.77, 97.30, 94.92)),
    "svm": ("RBF-SVM", "configs/indian_pines_svm.py", None),
    "rf": ("Random forest", "configs/indian_pines_rf.py", None),
}


def programs(seeds: int) -> list[tuple[str, list[str]]]:
    """The runs of each row: `(name, run.py overrides)`: seed 0, then the other seeds together."""
    out = [("seed0", [])]
    if seeds > 1:
        out.append((f"seeds1-{seeds - 1}", ["--config.seed=1", f"--config.num_seeds={seeds - 1}"]))
    return out


def run(config: str, workdir: str, overrides: list[str]) -> dict:
    """`python run.py --config=CONFIG --workdir=WORKDIR OVERRIDES…` from the repository root,
    its output passed through; returns its results.json."""
    command = [sys.executable, "run.py", f"--config={config}", f"--workdir={workdir}", *overrides]
    print("$", " ".join(command[1:]), file=sys.stderr, flush=True)
    if subprocess.run(command, cwd=ROOT).returncode:
        sys.exit(f"run.py --config={config} --workdir={workdir} failed (rerun this script to "
                 "resume it)")
    return read(os.path.join(ROOT, workdir, "results.json"))


def finished(workdir: str) -> dict | None:
    """The results.json of a finished run in `workdir`, or None (not started, or not done)."""
    path = os.path.join(ROOT, workdir, "results.json")
    return read(path) if os.path.exists(path) else None


def read(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def per_seed(results: dict) -> list[dict]:
    """`results['seeds']`: one entry per seed with its seed, oa, aa, kappa and leakage."""
    return results["seeds"]


def row_record(name: str, paper, runs: dict[str, dict]) -> dict:
    """One row of the table from the row's runs (`{program name: results}`)."""
    seeds = [s for results in runs.values() for s in per_seed(results)]
    first = runs["seed0"]
    metric = {k: [100 * s[k] for s in seeds] for k in ("oa", "aa", "kappa")}
    return {
        "row": name, "paper": None if paper is None else dict(zip(("oa", "aa", "kappa"), paper)),
        "seed0": {k: 100 * first[k] for k in ("oa", "aa", "kappa")},
        "seeds": [s["seed"] for s in seeds],
        "mean": {k: float(np.mean(v)) for k, v in metric.items()},
        "std": {k: float(np.std(v)) for k, v in metric.items()},
        "epochs": first["config"]["epochs"] if first["model"] not in ("svm", "rf") else None,
        "protocol": first["protocol"]["summary"],
        "window": first["protocol"]["window"],
        "train_px": first["protocol"]["train"], "test_px": first["protocol"]["test"],
        "test_in_train_window": 100 * first["leakage"]["test"],
        "params": first["trainable_params"],
        "seconds": {program: results.get("timings", {}).get("total_s", results["train_seconds"])
                    for program, results in runs.items()},
        # Where each run ran (results.json records it; the machine of this script for a run
        # written before it did).
        "machine": {program: results.get("machine") or machine()
                    for program, results in runs.items()},
    }


def report(workdirs: list[str], out: str) -> str:
    """`python -m hsic_jax.report WORKDIR… --markdown` (one program of each row: the report
    takes one run per dataset, model and method)."""
    return subprocess.run([sys.executable, "-m", "hsic_jax.report", *workdirs, "--markdown",
                           "--out", out], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout


def table(record: dict) -> str:
    machines = {(m["cpu"], m["cores"]) for r in record["rows"] for m in r["machine"].values()}
    where = "; ".join(f"{cpu}, {cores} cores" for cpu, cores in sorted(machines))
    lines = [f"Indian Pines, the paper's training pixels (50 / 15 per class), full recipes, run "
             f"on {where}. OA, AA, kappa in %; 'seeds' is mean ± std over the seeds listed; "
             "time is each program's (seed 0, then the others side by side).", "",
             "| column | epochs | OA seed 0 | AA seed 0 | kappa seed 0 | seeds | OA seeds | "
             "AA seeds | kappa seeds | paper OA / AA / kappa | window (px) | test px in a train "
             "window (%) | #Params (M) | time |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in record["rows"]:
        paper = "–" if r["paper"] is None else " / ".join(
            f"{r['paper'][k]:.2f}" for k in ("oa", "aa", "kappa"))
        seeds = [f"{r['mean'][k]:.2f} ± {r['std'][k]:.2f}" for k in ("oa", "aa", "kappa")]
        time = " + ".join(f"{s / 60:.0f} min" if s >= 60 else f"{s:.0f} s"
                          for s in r["seconds"].values())
        lines.append(f"| {r['row']} | {r['epochs'] or '–'} | {r['seed0']['oa']:.2f} | "
                     f"{r['seed0']['aa']:.2f} | {r['seed0']['kappa']:.2f} | "
                     f"{', '.join(map(str, r['seeds']))} | {' | '.join(seeds)} | "
                     f"{paper} | {r['window']} | {r['test_in_train_window']:.2f} | "
                     f"{r['params'] / 1e6:.3f} | {time} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--workdirs", default="workdirs/paper_indian_pines")
    parser.add_argument("--out", default="bench/results/paper_indian_pines")
    parser.add_argument("--collect", action="store_true",
                        help="start no run: tabulate the finished ones")
    args = parser.parse_args(argv)
    out = os.path.join(ROOT, args.out)
    os.makedirs(out, exist_ok=True)
    rows, workdirs = [], {}
    for row in args.rows:
        name, config, paper = ROWS[row]
        runs = {}
        for program, overrides in programs(args.seeds):
            workdir = f"{args.workdirs}/{row}_{program}"
            results = finished(workdir) if args.collect else run(config, workdir, overrides)
            if results is None:
                print(f"{row}: {workdir} has not finished; left out", file=sys.stderr)
                continue
            runs[program] = results
            workdirs.setdefault(program, []).append(workdir)
            shutil.copyfile(os.path.join(ROOT, workdir, "results.json"),
                            os.path.join(out, f"{row}_{program}.json"))
        if "seed0" in runs:
            rows.append(row_record(name, paper, runs))
    reports = [f"## {program}\n\n{report(dirs, out)}" for program, dirs in workdirs.items()]
    atomic_write(os.path.join(out, "report.md"), lambda f: f.write("\n".join(reports).encode()))
    record = {"rows": rows}
    atomic_write(os.path.join(out, "table.json"),
                 lambda f: f.write(json.dumps(record, indent=2).encode()))
    text = table(record)
    atomic_write(os.path.join(out, "table.md"), lambda f: f.write(text.encode()))
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
