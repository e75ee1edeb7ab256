"""The whole experiment: data → model → optimizer → jitted steps → evaluation → outputs.

`train_and_evaluate(config, workdir)` reads top to bottom like big_vision's train.py. It
trains `config.num_seeds` seeds side by side: every per-seed array carries a leading seed
axis, the step is `jax.vmap`ped over it, and with several devices that axis is sharded
(`jax.sharding`, mesh axis 'seed'). Rerunning the same command resumes from the latest
checkpoint in `workdir/checkpoints`.

Outputs in `workdir`: `config.json`, `split_seed{N}.json`, `pca.npz`, `metrics.jsonl`,
`checkpoints/`, `results.json`, `classification_map.png`, `training_curves.png`,
`adapters/` (only the trainable subtrees + head, see `hsic_jax.adapters.export`).
"""

import functools
import json
import logging
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from tqdm import tqdm

from hsic_jax.adapters import method_from_config
from hsic_jax.adapters.export import WEIGHTS, export_adapters
from hsic_jax.data.io import atomic_write
from hsic_jax.data.patches import batch_coords, pad_cube, scene_coords
from hsic_jax.data.preprocess import prepare
from hsic_jax.data.scenes import load_scene
from hsic_jax.data.split import make_split
from hsic_jax.evaluation.maps import save_classification_map, save_training_curves
from hsic_jax.evaluation.metrics import summarize, update_confusion
from hsic_jax.model.converted import load_params, read_manifest
from hsic_jax.model.spectralgpt import model_from_config
from hsic_jax.train import checkpoint
from hsic_jax.train.optimizer import make_optimizer, make_schedule, param_labels
from hsic_jax.train.step import Geometry, predict, train_step

log = logging.getLogger(__name__)

EVAL_BATCH = 256

_update_confusions = jax.jit(jax.vmap(update_confusion))  # one (C, C) matrix per seed


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Train and evaluate every seed of `config`; write outputs to `workdir`; return the results."""
    primary = jax.process_index() == 0  # the process that writes the outputs
    os.makedirs(workdir, exist_ok=True)
    if primary:
        _write_json(os.path.join(workdir, "config.json"), config.to_dict())
    seeds = [config.seed + s for s in range(config.num_seeds)]

    # Data: the scene, its PCA + normalisation, and one split per seed.
    scene = load_scene(config.data.name, config.data.data_dir or None, **_file_args(config.data))
    cube, pca = prepare(scene.cube, pca_components=config.data.pca,
                        normalization=config.data.normalize)
    splits = [_split(scene, config.data, seed) for seed in seeds]
    if primary:
        if pca is not None:
            pca.save(os.path.join(workdir, "pca.npz"))
        for seed, split in zip(seeds, splits):
            split.save(os.path.join(workdir, f"split_seed{seed}.json"))
    log.info("split of seed %d:\n%s", seeds[0], splits[0].to_markdown())
    geo = Geometry(config.data.patch_size, config.data.input_size)
    padded = pad_cube(cube, config.data.patch_size // 2)
    train = _stack_pixels([(s.train, s.train_labels) for s in splits])
    test = _stack_pixels([(s.test, s.test_labels) for s in splits])
    num_classes = len(scene.class_names)
    if config.data.get("num_classes", num_classes) != num_classes:
        raise ValueError(f"config.data.num_classes={config.data.num_classes} but scene "
                         f"{scene.name!r} has {num_classes} classes: {list(scene.class_names)}")

    # Model, parameters and optimizer.
    method = method_from_config(config.method)
    model = model_from_config({**config.model, "num_classes": num_classes}, adapter=method.adapter)
    backbone = pretrained_backbone(config, model)
    params = _stack([init_params(model, jax.random.key(seed), backbone) for seed in seeds])
    labels = param_labels(jax.tree.map(lambda x: x[0], params), method)
    steps_per_epoch = int(train["valid"].sum(axis=1).min()) // config.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{int(train['valid'].sum(axis=1).min())} training pixels are fewer than "
                         f"one batch of config.batch_size={config.batch_size}")
    total_steps = steps_per_epoch * config.epochs
    schedule = make_schedule(config.optim, total_steps, steps_per_epoch)
    tx = make_optimizer(config.optim, labels, schedule, method.lam)
    state = {"step": np.zeros((len(seeds),), np.int32), "params": params,
             "opt_state": jax.vmap(tx.init)(params)}

    # Seeds side by side on one device, or sharded over the seed axis of several devices
    # (of several hosts too: every process builds the same arrays and contributes its shards).
    per_seed, replicated = _shardings(len(seeds))
    log.info("training %d seeds on %d devices", len(seeds), per_seed.mesh.size)
    state = _global(state, per_seed)
    data = _global((train["coords"], train["labels"], train["valid"], np.array(seeds, np.int32)),
                   per_seed)
    padded = _global(padded, replicated)

    mngr = checkpoint.manager(workdir)
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    restored = checkpoint.restore_latest(mngr, state)
    if restored is not None:
        state = restored
        log.info("resumed from step %d of %d", int(_fetch(state["step"])[0]), total_steps)
    start = int(_fetch(state["step"])[0])
    if primary:
        checkpoint.truncate_metrics(metrics_path, start)

    step_fn = jax.jit(jax.vmap(functools.partial(
        train_step, model=model, tx=tx, param_labels=labels, geo=geo,
        batch_size=config.batch_size, steps_per_epoch=steps_per_epoch,
        augment_cfg=dict(config.augment), label_smoothing=config.label_smoothing),
        in_axes=(0, None, 0, 0, 0, 0)), donate_argnums=0)
    predict_fn = jax.jit(jax.vmap(functools.partial(predict, model=model, geo=geo),
                                  in_axes=(0, None, 0)))

    t0, totals = time.perf_counter(), []
    bar = tqdm(range(start, total_steps), initial=start, total=total_steps, desc="train",
               disable=None)
    for step in bar:
        state, m = step_fn(state, padded, *data)
        totals.append(m)
        if (step + 1) % steps_per_epoch:
            continue
        epoch = (step + 1) // steps_per_epoch
        row = {"step": step + 1, "epoch": epoch, "lr": float(schedule(step)),
               **{f"train_{k}": float(jnp.mean(jnp.stack([t[k] for t in totals]))) for k in totals[0]}}
        totals = []
        if epoch % config.eval_every_epochs == 0 or epoch == config.epochs:
            row["test_oa"] = float(np.mean([r["oa"] for r in evaluate(predict_fn, state, padded, test,
                                                                      num_classes)]))
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{row['train_accuracy']:.3f}")
        if primary:
            checkpoint.append_metrics(metrics_path, [row])
        if epoch % config.checkpoint_every_epochs == 0 or epoch == config.epochs:
            checkpoint.save(mngr, step + 1, state)
    train_seconds = time.perf_counter() - t0

    # Every process takes part in these computations; the first one writes the outputs.
    per_seed_results = evaluate(predict_fn, state, padded, test, num_classes)
    first = jax.jit(lambda tree: jax.tree.map(lambda x: x[0], tree),
                    out_shardings=replicated)(state["params"])
    pred_map = None
    if config.save_map:
        pred_map = classify_scene(jax.jit(functools.partial(predict, model=model, geo=geo)), first,
                                  padded, scene.gt.shape)
    results = _results(config, scene, splits, seeds, per_seed_results, first, labels, train_seconds)
    if primary:
        export_dir = os.path.join(workdir, "adapters")
        export_adapters(first, config.method, export_dir, base_sha256=_base_sha256(config),
                        class_names=list(scene.class_names))
        results["adapter_bytes"] = os.path.getsize(os.path.join(export_dir, WEIGHTS))
        _write_json(os.path.join(workdir, "results.json"), results)
        if pred_map is not None:
            save_classification_map(
                os.path.join(workdir, "classification_map.png"), pred_map, scene.gt,
                scene.class_names, title=f"{config.data.name} · {config.method.name} · seed {seeds[0]}")
        save_training_curves(os.path.join(workdir, "training_curves.png"), metrics_path)
    return results


# Model fields a converted checkpoint fixes (its manifest records them).
ARCHITECTURE = ("img_size", "patch_size", "tubelet", "bands", "width", "depth", "heads",
                "mlp_ratio", "pos_embed")


def pretrained_backbone(config, model) -> dict | None:
    """The converted backbone of `config.pretrained_dir` (None with `config.init == 'random'`).

    Refused when the checkpoint was converted for another architecture than `model`'s.
    """
    if config.init == "random":
        return None
    if config.init != "pretrained":
        raise ValueError(f"config.init={config.init!r}; expected 'pretrained' or 'random'")
    converted = read_manifest(config.pretrained_dir)["model"]
    differ = {k: (converted.get(k), getattr(model, k)) for k in ARCHITECTURE
              if converted.get(k) != getattr(model, k)}
    if differ:
        raise ValueError(
            f"{config.pretrained_dir} was converted for another model (field: (checkpoint, "
            f"config)): {differ}; convert again with matching --img-size/--pos-embed/--bands")
    return load_params(config.pretrained_dir)["backbone"]


def init_params(model, key, backbone: dict | None) -> dict:
    """Fresh parameters of `model`, with the given pretrained `backbone` in place of its own."""
    x = jnp.zeros((1, model.img_size, model.img_size, model.bands), jnp.float32)
    params = model.init(key, x)["params"]
    return params if backbone is None else {**params, "backbone": backbone}


def evaluate(predict_fn, state, padded, test: dict, num_classes: int) -> list[dict]:
    """Metrics of each seed on its test pixels."""
    n_seeds, n = test["labels"].shape
    conf = jnp.zeros((n_seeds, num_classes, num_classes), jnp.int32)
    for start in range(0, n, EVAL_BATCH):
        sl = slice(start, start + EVAL_BATCH)
        coords, labels, valid = (_pad_to(test[k][:, sl], EVAL_BATCH) for k in ("coords", "labels", "valid"))
        preds = predict_fn(state["params"], padded, coords)
        conf = _update_confusions(conf, labels, preds, valid)
    return [summarize(c) for c in _fetch(conf)]


def classify_scene(predict_fn, params, padded, shape: tuple[int, int]) -> np.ndarray:
    """Class map `(H, W)` in 1..C of one model (`params`) over every pixel of the scene."""
    out = np.zeros(shape, np.int32)
    for coords, valid in batch_coords(scene_coords(np.zeros(shape)), EVAL_BATCH):
        c = coords[valid]
        out[c[:, 0], c[:, 1]] = _fetch(predict_fn(params, padded, coords))[valid] + 1
    return out


def _results(config, scene, splits, seeds, per_seed, first, labels, train_seconds) -> dict:
    trainable = sum(int(np.size(p)) for p, lab in zip(jax.tree.leaves(first), jax.tree.leaves(labels))
                    if lab != "frozen")
    results = {
        "dataset": config.data.name, "method": config.method.name, "config": config.to_dict(),
        "class_names": list(scene.class_names),
        "trainable_params": trainable,
        "total_params": sum(int(np.size(p)) for p in jax.tree.leaves(first)),
        "train_seconds": train_seconds,
        "split": {"rows": splits[0].table()},
    }
    for key in ("oa", "aa", "kappa"):  # kappa is NaN when every pixel falls in one class
        values = np.array([r[key] for r in per_seed], dtype=float)
        results[key] = _nan_to_none(np.mean(values, keepdims=True))[0]
        if len(seeds) > 1:
            results[f"{key}_std"] = _nan_to_none(np.std(values, keepdims=True))[0]
    # A class without test pixels has no accuracy: NaN here, null in the JSON file.
    per_class = np.array([r["per_class"] for r in per_seed], dtype=float)
    results["per_class"] = _nan_to_none(_nanmean(per_class))
    results["confusion"] = per_seed[0]["confusion"]
    if len(seeds) > 1:
        results["per_class_std"] = _nan_to_none(np.sqrt(_nanmean((per_class - _nanmean(per_class)) ** 2)))
        results["seeds"] = [
            {"seed": s, **{k: _nan_to_none(np.array([r[k]], dtype=float))[0] for k in ("oa", "aa", "kappa")},
             "per_class": _nan_to_none(np.array(r["per_class"], dtype=float))}
            for s, r in zip(seeds, per_seed)]
    return results


def _nanmean(a: np.ndarray) -> np.ndarray:
    """Mean over the seed axis ignoring NaN, NaN (without a warning) where every seed is NaN."""
    count = np.sum(~np.isnan(a), axis=0)
    return np.where(count > 0, np.nansum(a, axis=0) / np.maximum(count, 1), np.nan)


def _nan_to_none(a: np.ndarray) -> list:
    return [None if np.isnan(v) else float(v) for v in a]


def _split(scene, data_cfg, seed):
    per_class = data_cfg.train_per_class
    if isinstance(per_class, ml_collections.ConfigDict):
        per_class = per_class.to_dict()
    return make_split(scene, seed=seed, per_class=per_class,
                      spatially_disjoint=data_cfg.spatially_disjoint,
                      patch_size=data_cfg.patch_size)


def _file_args(data_cfg) -> dict:
    """Keyword arguments of `load_scene` for a user scene (`data.name = 'files'`)."""
    keys = ("cube_path", "gt_path", "cube_key", "gt_key")
    return {k: data_cfg[k] for k in keys if data_cfg.get(k)}


def _stack_pixels(pairs) -> dict:
    """Per-seed pixel lists padded to a common length: coords `(S, N, 2)`, labels, valid `(S, N)`."""
    n = max(len(c) for c, _ in pairs)
    out = {"coords": np.zeros((len(pairs), n, 2), np.int32), "labels": np.zeros((len(pairs), n), np.int32),
           "valid": np.zeros((len(pairs), n), bool)}
    for s, (coords, labels) in enumerate(pairs):
        out["coords"][s, :len(coords)] = coords
        out["labels"][s, :len(coords)] = labels
        out["valid"][s, :len(coords)] = True
    return out


def _pad_to(a: np.ndarray, n: int) -> np.ndarray:
    """Pad axis 1 of `a` with zeros to length `n` (the last, short batch)."""
    return np.pad(a, [(0, 0), (0, n - a.shape[1])] + [(0, 0)] * (a.ndim - 2))


def _stack(trees: list) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _global(tree: Any, sharding: jax.sharding.Sharding) -> Any:
    """Host arrays (the same on every process) as global arrays with `sharding`."""
    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])
    return jax.tree.map(put, tree)


def _fetch(x: jax.Array) -> np.ndarray:
    """A global array's value on the host of every process (gathered across hosts if needed)."""
    if jax.process_count() > 1:
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def _shardings(n_seeds: int):
    """Shardings of per-seed arrays (leading seed axis) and of replicated arrays."""
    devices = jax.devices()
    if jax.process_count() > 1 and n_seeds % len(devices):
        raise ValueError(f"config.num_seeds={n_seeds} must be a multiple of the {len(devices)} "
                         f"devices of this {jax.process_count()}-process run")
    n_dev = math.gcd(len(devices), n_seeds)
    mesh = jax.sharding.Mesh(np.array(devices[:n_dev]), ("seed",))
    return (jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seed")),
            jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))


def _base_sha256(config) -> str | None:
    if config.init != "pretrained":
        return None
    return read_manifest(config.pretrained_dir)["source_sha256"]


def _write_json(path: str, obj) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2).encode()))
