"""How far a whole-scene model's tiled map differs from its whole-scene map, by halo.

    python bench/predict_halo.py WORKDIR --tile 48 --halos 0 8 16 32 \\
        --out bench/results/predict_halo_mambahsi.json

WORKDIR is a finished run of a whole-scene family (MambaHSI) on Indian Pines. The scene is
classified at once (`Predictor(cube, tile=None)`) and tile by tile with each halo; the record
gives, per halo, the share of pixels (all, and the labelled ones) whose class differs from
the whole-scene map and the OA of each map on the run's test pixels. A run from before
hsic-jax saved its normalisation gets it fitted again from its config (`--refit`: the same
fit the run made, on a copy of the workdir).
"""

import argparse
import json
import os
import shutil
import tempfile

import numpy as np

from hsic_jax.data.io import write_json
from hsic_jax.data.preprocess import prepare
from hsic_jax.data.scenes import load_scene
from hsic_jax.predict import Predictor


def refit(workdir: str, into: str) -> str:
    """A copy of `workdir` with `normalization.npz` fitted as the run fitted it."""
    shutil.copytree(workdir, into)
    with open(os.path.join(into, "config.json")) as f:
        data = json.load(f)["data"]
    scene = load_scene(data["name"])
    _, fitted = prepare(scene.cube, pca_components=data["pca"], normalization=data["normalize"])
    fitted.save(into)
    return into


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workdir")
    p.add_argument("--tile", type=int, default=48)
    p.add_argument("--halos", type=int, nargs="+", default=[0, 8, 16, 32])
    p.add_argument("--refit", action="store_true")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = refit(args.workdir, os.path.join(tmp, "run")) if args.refit else args.workdir
        predictor = Predictor.from_workdir(workdir)
        with open(os.path.join(workdir, f"split_seed{predictor.seeds[0]}.json")) as f:
            test = np.asarray(json.load(f)["test"])
    scene = load_scene(predictor.config.data.name)
    whole, _ = predictor(scene.cube, tile=None)
    truth = scene.gt[test[:, 0], test[:, 1]]

    def oa(classes):
        return float(np.mean(classes[test[:, 0], test[:, 1]] == truth))

    records = [{"halo": None, "tile": None, "differ": 0.0, "differ_labelled": 0.0,
                "test_oa": oa(whole)}]
    labelled = scene.gt > 0
    for halo in args.halos:
        tiled, _ = predictor(scene.cube, tile=args.tile, halo=halo)
        records.append({"halo": halo, "tile": args.tile,
                        "differ": float(np.mean(tiled != whole)),
                        "differ_labelled": float(np.mean(tiled[labelled] != whole[labelled])),
                        "test_oa": oa(tiled)})
    rows = ["| tile | halo | pixels differing | labelled differing | test OA |",
            "|---|---:|---:|---:|---:|"]
    rows += [f"| {r['tile'] or 'whole scene'} | {'' if r['halo'] is None else r['halo']} | "
             f"{100 * r['differ']:.2f} % | {100 * r['differ_labelled']:.2f} % | "
             f"{100 * r['test_oa']:.2f} |" for r in records]
    text = "\n".join(rows)
    print(text)
    write_json(args.out, {"workdir": args.workdir, "model": predictor.config.model.name,
                          "records": records, "table": text})


if __name__ == "__main__":
    main()
