"""What self-pre-training gives each fine-tuning method: the README's comparison (issue 13).

    python bench/pretraining.py                 # about 40 minutes on 2 CPU cores
    python bench/pretraining.py --seeds 1 --out /tmp/pretraining.json

Runs the commands a user runs, each in its own process: `pretrain.py` with
`configs/pretrain_demo.py` (the demo's encoder, masked pre-training on every pixel of Indian
Pines), then `run.py` with `configs/demo_pretrained.py:METHOD` (that encoder fine-tuned on
the paper's 50/15 split) and `:METHOD,random` (the same model from a random backbone) for the
linear probe, LoRA, KronA+ and FFT, and the current demo (`configs/demo.py`: FFT from
scratch, joint zero-initialised position table), all with `--seeds` seeds and no map. Writes
JSON (`--out`: each run's OA ± std over seeds, AA, kappa, trainable parameters, its seconds
and the pre-training's) and prints a Markdown table.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

from hsic_jax.data.io import atomic_write

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ("linear_probe", "lora", "krona_plus", "fft")
NAMES = {"linear_probe": "Linear probe", "lora": "LoRA", "krona_plus": "KronA+", "fft": "FFT"}


def run(script: str, config: str, workdir: str, *overrides: str) -> tuple[dict, float]:
    """`python SCRIPT --config=CONFIG --workdir=WORKDIR OVERRIDES…` from the repository root;
    returns its results.json and wall seconds (a finished workdir is reused as it is)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, script, f"--config={config}", f"--workdir={workdir}",
                           *overrides], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{script} --config={config} failed:\n{proc.stderr[-3000:]}")
    with open(os.path.join(ROOT, workdir, "results.json")) as f:
        return json.load(f), time.perf_counter() - start


def row(name: str, backbone: str, results: dict, seconds: float) -> dict:
    return {"method": name, "backbone": backbone, "oa": results["oa"],
            "oa_std": results.get("oa_std"), "aa": results["aa"], "kappa": results["kappa"],
            "trainable_params": results["trainable_params"], "seeds": len(results["seeds"]),
            "train_s": results["train_seconds"], "wall_s": round(seconds, 1)}


def table(record: dict) -> str:
    pre = record["pretraining"]
    lines = [f"Indian Pines, the paper's 50/15 split ({record['seeds']} seeds, OA % mean ± std); "
             f"pre-training: {pre['epochs']} epochs on {pre['pixels']:,} unlabelled pixels, "
             f"{pre['total_s']:.0f} s, loss {pre['first_loss']:.3f} → {pre['final_loss']:.3f}.",
             "", "| method | backbone | OA (%) | AA (%) | kappa (%) | trainable | run (s) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in record["runs"]:
        std = "" if r["oa_std"] is None else f" ± {100 * r['oa_std']:.2f}"
        lines.append(f"| {r['method']} | {r['backbone']} | {100 * r['oa']:.2f}{std} | "
                     f"{100 * r['aa']:.2f} | {100 * r['kappa']:.2f} | {r['trainable_params']:,} | "
                     f"{r['wall_s']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workdirs", default="workdirs/bench_pretraining")
    parser.add_argument("--out", default="bench/results/pretraining.json")
    args = parser.parse_args(argv)
    base = args.workdirs
    pretrained_dir = f"{base}/pretrain_demo/pretrained"
    pre, pre_s = run("pretrain.py", "configs/pretrain_demo.py", f"{base}/pretrain_demo")
    print(f"pre-training: {pre_s:.0f} s, loss {pre['first_loss']:.3f} → {pre['final_loss']:.3f}",
          file=sys.stderr)
    common = [f"--config.num_seeds={args.seeds}", "--config.save_map=False"]
    runs = []
    for method in METHODS:
        for backbone, suffix in (("self-pre-trained", ""), ("random", ",random")):
            results, seconds = run("run.py", f"configs/demo_pretrained.py:{method}{suffix}",
                                   f"{base}/{method}_{backbone}", *common,
                                   f"--config.pretrained_dir={pretrained_dir}")
            runs.append(row(NAMES[method], backbone, results, seconds))
            print(f"{method} {backbone}: OA {100 * results['oa']:.2f} ({seconds:.0f} s)",
                  file=sys.stderr)
    results, seconds = run("run.py", "configs/demo.py", f"{base}/demo_fft_scratch", *common)
    runs.append(row("FFT (the demo)", "from scratch, joint position table", results, seconds))
    record = {"seeds": args.seeds, "runs": runs,
              "pretraining": {**{k: pre[k] for k in ("epochs", "pixels", "mask_ratio",
                                                     "first_loss", "final_loss")},
                              "total_s": pre["timings"]["total_s"], "wall_s": round(pre_s, 1)},
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "python": platform.python_version()}}
    atomic_write(args.out, lambda f: f.write(json.dumps(record, indent=2).encode()))
    sys.stdout.write(table(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
