"""Benchmark the jitted train step of each fine-tuning method: time per step and throughput.

    python bench/train_step.py                                  # small encoder, CPU-sized
    python bench/train_step.py --variant base --batch 64        # the paper's ViT-B step (GPU)
    python bench/train_step.py --config configs/indian_pines_hypersigma.py --methods fft --batch 8
    python bench/train_step.py --config configs/indian_pines_mambahsi.py --methods fft

Every method runs the same step as `run.py` (on-device patches, augmentation, forward,
gradients of the trainable subtrees, multi_transform update) on a synthetic scene with
random weights, so no data or checkpoint is needed. Without `--config` the model is a
SpectralGPT encoder on the paper's Indian Pines setting; with it, any experiment config's
model, data geometry and recipe (the method replaced by each of `--methods`), on a synthetic
scene of the config's scene size, in its family's task shape (a whole-scene model's step is
one epoch; HyperSIGMA's ViT-B needs about 15 GB at `--batch 8`, 64 GB at the default 64).
Writes `bench/results/train_step.json` (or `--out`) and prints a table.
"""

import argparse
import importlib
import importlib.util
import json
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from hsic_jax.adapters import METHODS
from hsic_jax.cli import keep_freed_memory
from hsic_jax.count import load_config
from hsic_jax.data.io import atomic_write
from hsic_jax.data.scenes import SCENES
from hsic_jax.models.spectralgpt import model_kwargs
from hsic_jax.train.state import create_train_state, tuned_model
from hsic_jax.train import loop, tasks
from hsic_jax.train.step import Geometry, compiler_options

from configs import base


# The base config's augmentation (flips, radiation and mixture noise; no mixup).
AUGMENT = dict(flip=True, radiation_noise=0.1, mixture_noise=0.2)
NEIGHBORHOOD = 15  # Indian Pines' (the paper's), resized to the config's input size


def bench_method(method_name: str, args) -> dict:
    if args.config:
        return bench_config(method_name, args)
    config = encoder_config(method_name, args.variant, args.width, args.depth, args.dtype)
    step, state, inputs, _, options = encoder_step(config, args.batch)
    return _time(method_name, loop.epoch_program(step, 1, options), state, inputs, args.batch,
                 args)


def encoder_config(method_name: str, variant: str = "small", width: int = 192, depth: int = 6,
                   dtype: str = "float32", heads: int | None = None):
    """The Indian Pines config of `method_name` on a SpectralGPT encoder: `variant` 'small'
    (`width` wide, `depth` blocks, `heads` heads (default one per 64 channels), 3-band
    tubelets) or a named one; KronA's factors are the paper's Indian Pines shapes at this width."""
    config = base.get_config("indian_pines", method_name)
    config.model.dtype = dtype
    if variant == "small":
        config.model.update(dict(variant=None, width=width, depth=depth,
                                 heads=heads or max(width // 64, 1), tubelet=3))
    else:
        config.model.variant = variant
    if method_name.startswith("krona"):  # the paper's Indian Pines shapes, at this width
        width = model_kwargs(config.model)["width"]
        config.method.a_shape, config.method.b_shape = (width // 2, 2), (2, width // 2)
    return config


def encoder_step(config, batch: int, augment_cfg: dict = AUGMENT, pixels: int = 1024):
    """`(step, state, args, tuned, options)`: `run.py`'s train step of `config`
    (`tasks.PATCH`) at `batch` with `augment_cfg`, for one seed, on a synthetic 64 × 64 scene
    with `pixels` random training pixels, with the run's XLA options (`options`,
    `step.compiler_options`). `loop.epoch_program(step, steps, options)` compiles it as
    `run.py` does; `state` and `args` carry its leading seed axis (1): `args` is `(frozen, padded
    (1, 78, 78, 12), coords (1, pixels, 2), labels (1, pixels), valid (1, pixels), seed (1,),
    hp)`."""
    config = config.copy_and_resolve_references()
    config.batch_size = batch
    config.augment.update(augment_cfg)
    tuned = tuned_model(config, num_classes=16, bands=config.data.pca)
    setup, state, frozen = create_train_state(config, tuned, [0], steps_per_epoch=pixels // batch)
    rng = np.random.default_rng(0)
    h = w = 64
    r = NEIGHBORHOOD // 2
    padded = rng.normal(size=(h + 2 * r, w + 2 * r, 12))
    coords = rng.integers(0, h, size=(pixels, 2))
    ys = rng.integers(0, 16, size=pixels)
    step = tasks.PATCH.step_functions(config, setup,
                                      Geometry(NEIGHBORHOOD, config.data.input_size))[0]
    args = (frozen, *_one_run(padded, coords, ys, np.ones(pixels, bool), 1, setup.hp))
    return step, state, args, tuned, compiler_options(setup.labels)


def _one_run(cube, coords, labels, valid, seed: int, hp: dict) -> tuple:
    """The loop's per-run inputs of one run (leading axis 1): float32 cube, int32 coordinates
    and labels, the seed, and the hyper-parameters as traced float32 arrays, not constants."""
    return (jnp.asarray(cube, jnp.float32)[None], jnp.asarray(coords, jnp.int32)[None],
            jnp.asarray(labels, jnp.int32)[None], jnp.asarray(valid)[None],
            jnp.full(1, seed, jnp.int32),
            {k: jnp.full(1, v, jnp.float32) for k, v in hp.items()})


def bench_config(method_name: str, args) -> dict:
    """The step of `args.config`'s experiment with `method_name`, random weights, synthetic scene."""
    config = load_config(args.config)
    if method_name != config.method.name:
        config.method = method_config(config, method_name)
    config.init = "random"
    config.batch_size = args.batch
    task = tasks.of(config.model.name)
    h, w, raw_bands = SCENES[config.data.name].shape
    bands = config.data.pca or raw_bands
    num_classes = config.data.num_classes or len(SCENES[config.data.name].class_names)
    tuned = tuned_model(config, num_classes=num_classes, bands=bands)
    n = 1024
    setup, state, frozen = create_train_state(
        config, tuned, [0], steps_per_epoch=task.steps_per_epoch(config, np.ones((1, n), bool)))
    rng = np.random.default_rng(0)
    r = config.data.neighborhood // 2
    cube = rng.normal(size=(h + 2 * r, w + 2 * r, bands))
    coords = np.stack([rng.integers(0, h, n), rng.integers(0, w, n)], 1)
    ys = rng.integers(0, num_classes, size=n)
    geo = Geometry(config.data.neighborhood, config.data.input_size, config.data.resize)
    program = loop.epoch_program(task.step_functions(config, setup, geo)[0], 1,
                            compiler_options(setup.labels))
    per_step = 1 if task.whole_scene else config.batch_size  # a scene step: the scene, once
    return _time(method_name, program, state,
                 (frozen, *_one_run(cube, coords, ys, np.ones(n, bool), 1, setup.hp)), per_step,
                 args)


def method_config(config, method_name: str):
    """The settings of `method_name` for `config`'s model on its scene: its family's config
    module's (`configs/<family>.py`, e.g. MambaHSI's targets) or, for SpectralGPT, the scene's."""
    family = f"configs.{config.model.name}"
    if importlib.util.find_spec(family):
        return importlib.import_module(family).get_config(config.data.name, method_name).method
    return importlib.import_module(f"configs.{config.data.name}").get_config(method_name).method


def _time(method_name: str, step, state, inputs, samples: int, args) -> dict:
    """Compile time and median time of `args.steps` further calls of `step(state, *inputs)`
    (an epoch program of one step)."""
    t0 = time.perf_counter()
    state, m = step(state, *inputs)
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        state, m = step(state, *inputs)
        jax.block_until_ready(m)
        times.append(time.perf_counter() - t0)
    trainable = sum(int(np.size(a)) for a in jax.tree.leaves(state["params"]))
    ms = 1000 * statistics.median(times)
    return {"method": method_name, "trainable": trainable, "step_ms": ms,
            "samples_per_s": samples / (ms / 1000), "compile_s": compile_s}


def main(argv=None):
    keep_freed_memory()  # as run.py does, before JAX's first computation
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=None, metavar="CONFIG.py",
                   help="time this experiment config's step (any model family) instead")
    p.add_argument("--variant", default="small", choices=("small", "base", "large", "huge"))
    p.add_argument("--width", type=int, default=192, help="width of the small encoder")
    p.add_argument("--depth", type=int, default=6, help="depth of the small encoder")
    p.add_argument("--batch", type=int, default=64, help="batch size (with --config too)")
    p.add_argument("--steps", type=int, default=10, help="timed steps after the compiling one")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--out", default=os.path.join("bench", "results", "train_step.json"))
    args = p.parse_args(argv)

    rows = [bench_method(m, args) for m in args.methods]
    record = {"device": str(jax.devices()[0]), "backend": jax.default_backend(),
              "jax": jax.__version__, "args": vars(args), "rows": rows}
    atomic_write(args.out, lambda f: f.write(json.dumps(record, indent=2).encode()))

    what = args.config or f"{args.variant} · batch {args.batch} · {args.dtype}"
    print(f"{record['device']} · {what}")
    print(f"{'method':<14}{'trainable':>12}{'ms/step':>10}{'samples/s':>11}{'compile s':>11}")
    for r in rows:
        print(f"{r['method']:<14}{r['trainable']:>12,}{r['step_ms']:>10.1f}{r['samples_per_s']:>11.1f}"
              f"{r['compile_s']:>11.1f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
