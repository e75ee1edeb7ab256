"""Benchmark the jitted train step of each fine-tuning method: time per step and throughput.

    python bench/train_step.py                                  # small encoder, CPU-sized
    python bench/train_step.py --variant base --batch 64        # the paper's ViT-B step (GPU)
    python bench/train_step.py --config configs/indian_pines_hypersigma.py --methods fft
    python bench/train_step.py --config configs/indian_pines_mambahsi.py --methods fft

Every method runs the same step as `run.py` (on-device patches, augmentation, forward,
gradients of the trainable subtrees, multi_transform update) on a synthetic scene with
random weights, so no data or checkpoint is needed. Without `--config` the model is a
SpectralGPT encoder on the paper's Indian Pines setting; with it, any experiment config's
model, data geometry and recipe (the method replaced by each of `--methods`), on a synthetic
scene of the config's scene size, in its family's task shape (a whole-scene model's step is
one epoch). Writes `bench/results/train_step.json` (or `--out`) and prints a table.
"""

import argparse
import importlib
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
from hsic_jax.models import task
from hsic_jax.models.spectralgpt import model_kwargs
from hsic_jax.train.state import create_train_state, tuned_model
from hsic_jax.train.step import Geometry, step_functions

from configs import base


# The base config's augmentation (flips, radiation and mixture noise; no mixup).
AUGMENT = dict(flip=True, radiation_noise=0.1, mixture_noise=0.2)
NEIGHBORHOOD = 15  # Indian Pines' (the paper's), resized to the config's input size


def bench_method(method_name: str, args) -> dict:
    if args.config:
        return bench_config(method_name, args)
    config = encoder_config(method_name, args.variant, args.width, args.depth, args.dtype)
    step, state, inputs, _ = encoder_step(config, args.batch)
    return _time(method_name, step, state, inputs, args.batch, args)


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
    """`(step, state, args, tuned)`: `run.py`'s train step of `config` (`step_functions`) for
    one seed at `batch` with `augment_cfg`, jitted with the state donated, on a synthetic
    64 × 64 scene with `pixels` random training pixels; called as `step(state, *args)`, `args`
    being `(frozen, padded (78, 78, 12), coords (pixels, 2), labels (pixels,), valid (pixels,),
    seed, hp)`."""
    config = config.copy_and_resolve_references()
    config.batch_size = batch
    config.augment.update(augment_cfg)
    tuned = tuned_model(config, num_classes=16, bands=config.data.pca)
    setup, state, frozen = create_train_state(config, tuned, [0], steps_per_epoch=pixels // batch)
    state = jax.tree.map(lambda x: x[0], state)  # one seed, unbatched
    rng = np.random.default_rng(0)
    h = w = 64
    r = NEIGHBORHOOD // 2
    padded = jnp.asarray(rng.normal(size=(h + 2 * r, w + 2 * r, 12)), jnp.float32)
    coords = jnp.asarray(rng.integers(0, h, size=(pixels, 2)), jnp.int32)
    ys = jnp.asarray(rng.integers(0, 16, size=pixels), jnp.int32)
    step = step_functions("patch", config, setup, Geometry(NEIGHBORHOOD, config.data.input_size))[0]
    args = (frozen, padded, coords, ys, jnp.ones(pixels, bool), jnp.int32(1), _traced(setup.hp))
    return jax.jit(step, donate_argnums=0), state, args, tuned


def _traced(hp: dict) -> dict:
    """The run's hyper-parameters as the loop passes them: float32 arrays, not constants."""
    return {k: jnp.float32(v) for k, v in hp.items()}


def bench_config(method_name: str, args) -> dict:
    """The step of `args.config`'s experiment with `method_name`, random weights, synthetic scene."""
    config = load_config(args.config)
    if method_name != config.method.name:  # the paper's settings of the method on this scene
        config.method = importlib.import_module(f"configs.{config.data.name}").get_config(
            method_name).method
    config.init = "random"
    config.batch_size = args.batch
    shape = task(config.model.name)
    h, w, raw_bands = SCENES[config.data.name].shape
    bands = config.data.pca or raw_bands
    num_classes = config.data.num_classes or len(SCENES[config.data.name].class_names)
    tuned = tuned_model(config, num_classes=num_classes, bands=bands)
    n = 1024
    setup, state, frozen = create_train_state(
        config, tuned, [0], steps_per_epoch=1 if shape == "scene" else n // config.batch_size)
    state = jax.tree.map(lambda x: x[0], state)
    rng = np.random.default_rng(0)
    r = config.data.neighborhood // 2
    cube = jnp.asarray(rng.normal(size=(h + 2 * r, w + 2 * r, bands)), jnp.float32)
    coords = jnp.asarray(np.stack([rng.integers(0, h, n), rng.integers(0, w, n)], 1), jnp.int32)
    ys = jnp.asarray(rng.integers(0, num_classes, size=n), jnp.int32)
    geo = Geometry(config.data.neighborhood, config.data.input_size, config.data.resize)
    step = jax.jit(step_functions(shape, config, setup, geo)[0], donate_argnums=0)
    per_step = 1 if shape == "scene" else config.batch_size  # a scene step: the scene, once
    return _time(method_name, step, state, (frozen, cube, coords, ys, jnp.ones(n, bool),
                                            jnp.int32(1), _traced(setup.hp)), per_step, args)


def _time(method_name: str, step, state, inputs, samples: int, args) -> dict:
    """Compile time and median time of `args.steps` further steps of `step(state, *inputs)`."""
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
