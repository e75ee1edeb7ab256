"""Benchmark a sweep in one program against the same runs one after another.

    python bench/sweep.py                       # 4 λ × 2 seeds, KronA+ on the demo encoder
    python bench/sweep.py --epochs 60 --out bench/results/sweep.json

The demo's data, encoder and recipe with KronA+ (factors (48, 2) ⊗ (2, 48) at width 96) and a
random backbone: `run.py --sweep=method.lam=1,2,4,8` with `num_seeds=2` (8 runs of one
program) against the 8 runs `(λ, seed)` one after another, each a full `train_and_evaluate`
in this process (data, compilation, training, test, map; a user starting 8 processes would
also pay 8 start-ups). Writes JSON (`--out`) and prints a table. The runs of seed 0 must give
the same OA both ways (the seeds' random backbone is shared in the sweep, so seed 1 differs).
"""

import argparse
import json
import os
import tempfile
import time


from configs import demo
from hsic_jax.cli import keep_freed_memory
from hsic_jax.data.io import atomic_write
from hsic_jax.evaluation.results import machine
from hsic_jax.train.loop import train_and_evaluate

LAMS = (1.0, 2.0, 4.0, 8.0)


def krona_plus_demo(epochs: int, lam: float = 1.0, seed: int = 0, num_seeds: int = 1):
    """The demo config with KronA+ on its 96-wide encoder."""
    config = demo.get_config()
    config.method = dict(name="krona_plus", a_shape=(48, 2), b_shape=(2, 48), scale=1.0,
                         init="gaussian", init_std=0.02, lam=lam)
    config.update(dict(epochs=epochs, seed=seed, num_seeds=num_seeds))
    config.optim.warmup_epochs = min(config.optim.warmup_epochs, epochs / 2)
    return config


def timed(config, workdir: str, **kwargs) -> tuple[dict, float]:
    t0 = time.perf_counter()
    results = train_and_evaluate(config, workdir, **kwargs)
    return results, time.perf_counter() - t0


def main(argv=None) -> dict:
    keep_freed_memory()  # as run.py does, before JAX's first computation
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", default="bench/results/sweep.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sweep, sweep_s = timed(krona_plus_demo(args.epochs, num_seeds=args.seeds),
                               os.path.join(tmp, "sweep"),
                               sweep=["method.lam=" + ",".join(f"{v:g}" for v in LAMS)])
        one_by_one, sequential_s = [], 0.0
        for lam in LAMS:
            for seed in range(args.seeds):
                results, seconds = timed(krona_plus_demo(args.epochs, lam, seed),
                                         os.path.join(tmp, f"lam{lam:g}_seed{seed}"))
                one_by_one.append({"lam": lam, "seed": seed, "oa": results["oa"],
                                   "seconds": seconds, "compiles": results["compiles"]})
                sequential_s += seconds
    record = {
        "what": f"{len(LAMS)}-point λ sweep × {args.seeds} seeds, KronA+ on the demo encoder, "
                f"{args.epochs} epochs",
        "sweep_s": sweep_s, "sequential_s": sequential_s, "speedup": sequential_s / sweep_s,
        "sweep_compiles": sweep["compiles"], "sweep_timings": sweep["timings"],
        "sweep_points": [{"lam": p["values"]["method.lam"], "oa": p["oa"],
                          "seed_oas": [s["oa"] for s in p["seeds"]]} for p in sweep["sweep"]],
        "runs": one_by_one,
        "machine": {**machine(), "load": os.getloadavg()[0]},
    }
    atomic_write(args.out, lambda f: f.write(json.dumps(record, indent=2).encode()))
    print(f"| {record['what']} | seconds |\n|---|---:|\n"
          f"| one program (`--sweep`) | {sweep_s:.1f} |\n"
          f"| {len(one_by_one)} runs one after another | {sequential_s:.1f} |\n"
          f"| speed-up | {record['speedup']:.2f}× |")
    for p in record["sweep_points"]:
        alone = next(r for r in one_by_one if r["lam"] == p["lam"] and r["seed"] == 0)
        print(f"λ={p['lam']:g}: seed 0 OA {100 * p['seed_oas'][0]:.2f} % in the sweep, "
              f"{100 * alone['oa']:.2f} % alone")
    return record


if __name__ == "__main__":
    main()
