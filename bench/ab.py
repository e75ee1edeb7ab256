"""A lever's speed-up: a benchmark of a base revision and of the working tree, interleaved.

    python bench/ab.py --base af06e37 --rounds 5 --out bench/results/ab_hypersigma.json -- \\
        bench/train_step.py --config configs/indian_pines_hypersigma.py --methods fft lora

The command after `--` is any benchmark that takes `--out FILE` and writes JSON with `rows`
(dicts with a `--key` and a `--metric`, e.g. `bench/train_step.py`'s `method` and `step_ms`).
It runs `--rounds` times in each tree, alternating (base, new, base, new, ...), each run a fresh
process, so that a machine's drift (load, thermals, another process) falls on both sides alike.
The base revision is checked out in a temporary git worktree and run with that tree first on
`PYTHONPATH`, so its own `hsic_jax` and `configs` are imported. Per key: the median metric
of each side, its spread (min–max), and the ratio base / new (above 1: the working tree is
faster, for a time metric). Writes `--out` (JSON: the base revision and its commit, the
working tree's commit and whether it held uncommitted changes, records, rows, machine) and
prints the table.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_once(tree: str, command: list[str], out: str) -> list[dict]:
    """`command --out out` in `tree` (its cwd and first import path): the JSON's rows."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (tree, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([sys.executable, *command, "--out", out], cwd=tree, env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"error: {' '.join(command)} failed in {tree}:\n{proc.stderr[-3000:]}")
    with open(out) as f:
        return json.load(f)["rows"]


def summarise(runs: dict[str, list[list[dict]]], key: str, metric: str) -> list[dict]:
    """Per key, in the order of the first run: each side's median and range, and base / new."""
    rows = []
    for k in [r[key] for r in runs["base"][0]]:
        side = {s: [r[metric] for run in runs[s] for r in run if r[key] == k] for s in runs}
        base, new = statistics.median(side["base"]), statistics.median(side["new"])
        rows.append({key: k, "base": base, "new": new, "base_range": [min(side["base"]), max(side["base"])],
                     "new_range": [min(side["new"]), max(side["new"])], "ratio": base / new})
    return rows


def table(rows: list[dict], key: str, metric: str, base: str) -> str:
    lines = [f"| {key} | {metric} at {base} [range] | {metric} now [range] | {base} / now |",
             "|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r[key]} | {r['base']:.1f} [{r['base_range'][0]:.1f}–{r['base_range'][1]:.1f}] | "
                     f"{r['new']:.1f} [{r['new_range'][0]:.1f}–{r['new_range'][1]:.1f}] | "
                     f"{r['ratio']:.2f}× |")
    return "\n".join(lines)


def revisions(base: str) -> dict:
    """What the two sides ran: `base` and its commit, and the working tree's commit with
    whether it held uncommitted changes to tracked files (a name like HEAD moves on)."""
    def git(*cmd):
        out = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True).stdout
        return out.strip()
    return {"base": base, "base_commit": git("rev-parse", "--verify", "-q", f"{base}^{{commit}}"),
            "new_commit": git("rev-parse", "HEAD"),
            "new_uncommitted": bool(git("status", "--porcelain", "--untracked-files=no"))}


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        raise SystemExit("error: give the benchmark command after `--`")
    split = argv.index("--")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", required=True, help="the git revision to compare against")
    p.add_argument("--rounds", type=int, default=3, help="runs of each side, alternating")
    p.add_argument("--key", default="method", help="the rows' field that names a row")
    p.add_argument("--metric", default="step_ms", help="the rows' field compared")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv[:split])
    command = argv[split + 1:]
    sides = revisions(args.base)
    with tempfile.TemporaryDirectory() as tmp:
        base_tree = os.path.join(tmp, "base")
        added = subprocess.run(["git", "worktree", "add", "--detach", "-q", base_tree, args.base],
                               cwd=ROOT, capture_output=True, text=True)
        if added.returncode:
            raise SystemExit(f"error: --base {args.base}: not a revision of {ROOT} "
                             f"({added.stderr.strip().splitlines()[-1]})")
        try:
            runs = {"base": [], "new": []}
            for i in range(args.rounds):
                for side, tree in (("base", base_tree), ("new", ROOT)):
                    runs[side].append(run_once(tree, command, os.path.join(tmp, f"{side}{i}.json")))
                    print(f"round {i + 1}/{args.rounds}: {side} done", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", base_tree], cwd=ROOT)
    rows = summarise(runs, args.key, args.metric)
    text = table(rows, args.key, args.metric, args.base)
    if args.out:
        sys.path.insert(0, ROOT)
        from hsic_jax.data.io import write_json
        from hsic_jax.evaluation.results import machine

        write_json(args.out, {**sides, "command": command, "rounds": args.rounds,
                              "rows": rows, "runs": runs,
                              "machine": {**machine(), "load": os.getloadavg()[0]},
                              "table": text})
    print(text)


if __name__ == "__main__":
    main()
