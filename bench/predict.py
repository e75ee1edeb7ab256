"""Classifying large scenes from a file: speed, peak memory and devices (`hsic_jax.predict`).

    python bench/predict.py WORKDIR --sizes 256 512 1024 --devices 1 2 4 \\
        --out bench/results/predict_cpu.json

WORKDIR is a finished run (e.g. the README's demo). For each size S, a synthetic S × S × 200
uint16 GeoTIFF (tiled 256 × 256, georeferenced; Indian Pines' spectra mirrored across the
scene) is written window by window, then classified by `Predictor.predict_file` in a fresh
worker process per (size, devices) (`--devices`: forced host devices on a CPU
(`--xla_force_host_platform_device_count`); a GPU run uses its own): pixels/s of the
prediction (after a warm-up on a small cube of the same tiling, so compilation is not
timed) and the worker's peak resident set (`ru_maxrss`, the imports and the model
included). `--in-memory` sizes are also classified from an array in memory (`predictor(cube)`,
the whole scene at once: `tile=None`), the reference speed. Writes `--out` (JSON: records,
machine, table) and prints the table.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BANDS = 200


def write_synthetic(path: str, size: int) -> None:
    """An `size × size × 200` uint16 GeoTIFF of Indian Pines' spectra mirrored across it,
    written 256 rows at a time."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from hsic_jax.data.scenes import load_scene

    source = np.clip(load_scene("indian_pines").cube, 0, 65535).astype(np.uint16)
    period = 2 * np.asarray(source.shape[:2])

    def mirrored(start, n, axis):  # indices of the scene mirrored back and forth
        i = np.arange(start, start + n) % period[axis]
        return np.where(i < source.shape[axis], i, period[axis] - 1 - i)

    profile = dict(driver="GTiff", height=size, width=size, count=BANDS, dtype="uint16",
                   tiled=True, blockxsize=256, blockysize=256, BIGTIFF="YES",
                   crs="EPSG:32616", transform=from_origin(500000.0, 4400000.0, 30.0, 30.0))
    with rasterio.open(path, "w", **profile) as ds:
        cols = mirrored(0, size, 1)
        for r0 in range(0, size, 256):
            rows = mirrored(r0, min(256, size - r0), 0)
            block = source[rows][:, cols]
            ds.write(np.moveaxis(block, -1, 0), window=Window(0, r0, size, len(rows)))


def worker(spec: dict) -> dict:
    """One measurement in this process (see the module docstring)."""
    import jax

    from hsic_jax.data.raster import open_cube
    from hsic_jax.predict import Predictor

    predictor = Predictor.from_workdir(spec["workdir"])
    devices = jax.local_devices()
    with tempfile.TemporaryDirectory() as tmp:  # warm-up: compile the tiles' programs
        warm = os.path.join(tmp, "warm.tif")
        write_synthetic(warm, spec["tile"] + 20)
        predictor.predict_file(warm, os.path.join(tmp, "out"), tile=spec["tile"],
                               batch=spec["batch"])
        if spec["in_memory"]:
            with open_cube(spec["cube"]) as cube:
                array = cube.read(slice(0, cube.shape[0]), slice(0, cube.shape[1]))
            predictor(array[:64, :64], tile=None, batch=spec["batch"])
            t0 = time.perf_counter()
            predictor(array, tile=None, batch=spec["batch"])
            seconds = time.perf_counter() - t0
        else:
            t0 = time.perf_counter()
            predictor.predict_file(spec["cube"], os.path.join(tmp, "pred"), tile=spec["tile"],
                                   batch=spec["batch"])
            seconds = time.perf_counter() - t0
    pixels = spec["size"] ** 2
    m = predictor.config.model
    model = f"{m.name} {m.get('width', '')}w {m.get('depth', '')}d".replace(" w d", "")
    return {**{k: spec[k] for k in ("size", "tile", "batch", "in_memory")}, "model": model,
            "devices": len(devices), "platform": devices[0].platform, "seconds": seconds,
            "pixels_per_second": pixels / seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(spec: dict, devices: int) -> dict:
    env = dict(os.environ)
    if devices > 1:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                            f" --xla_force_host_platform_device_count={devices}").strip()
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> dict:
    """The run's machine (`hsic_jax.evaluation.results.machine`) and its load average."""
    from hsic_jax.evaluation.results import machine as described

    return {**described(), "load": os.getloadavg()[0]}


def table(records: list[dict]) -> str:
    rows = ["| model | size | source | devices | platform | tile | batch | pixels/s | s | "
            "peak RSS MB |", "|---|---:|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in records:
        rows.append(f"| {r.get('model', 'demo')} | {r['size']}² | {'array' if r['in_memory'] else 'GeoTIFF'} | "
                    f"{r['devices']} | {r['platform']} | {r['tile']} | {r['batch']} | "
                    f"{r['pixels_per_second']:.0f} | {r['seconds']:.1f} | "
                    f"{r['peak_rss_mb']:.0f} |")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workdir", nargs="?")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    p.add_argument("--devices", type=int, nargs="+", default=[1])
    p.add_argument("--in-memory", type=int, nargs="*", default=[256],
                   help="sizes also classified from an array in memory")
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--tmp", default=None, help="where the synthetic cubes go")
    p.add_argument("--out", required=False)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    records = []

    def save():  # after every record: a run cut short keeps what it measured
        if args.out:
            from hsic_jax.data.io import write_json

            text = table(records)
            write_json(args.out, {"records": records, "machine": machine(), "table": text})
            with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
                f.write(text + "\n")

    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for size in args.sizes:
            cube = os.path.join(tmp, f"synthetic_{size}.tif")
            t0 = time.perf_counter()
            write_synthetic(cube, size)
            print(f"wrote {size}² × {BANDS} in {time.perf_counter() - t0:.1f} s", flush=True)
            spec = dict(workdir=os.path.abspath(args.workdir), cube=cube, size=size,
                        tile=args.tile, batch=args.batch, in_memory=False)
            for devices in args.devices:
                records.append(measure(spec, devices))
                print(table(records[-1:]).splitlines()[-1], flush=True)
                save()
            if size in args.in_memory:
                records.append(measure({**spec, "in_memory": True}, 1))
                print(table(records[-1:]).splitlines()[-1], flush=True)
                save()
            os.remove(cube)
    print(table(records))


if __name__ == "__main__":
    main()
