"""The whole experiment: data → model → optimizer → jitted steps → evaluation → outputs.

`train_and_evaluate(config, workdir)` reads top to bottom like big_vision's train.py. It
trains `config.num_seeds` seeds side by side: every per-seed array carries a leading seed
axis, the step is `jax.vmap`ped over it, and with several devices that axis is sharded
(`jax.sharding`, mesh axis 'seed'). Rerunning the same command resumes from the latest
checkpoint in `workdir/checkpoints`.

Honest evaluation. In-loop evaluation (every `eval_every_epochs`, `val_oa` in
`metrics.jsonl`) sees the validation pixels only, and only when there are some
(`data.val_per_class`); with `select='best_val'` the state with the best validation OA is
kept (`hsic_jax.train.selection`). The test pixels are predicted once, after training, with
the selected state (`select='last'`: the final one). `results.json` records the protocol
(split, window, pixel counts, `data.fit_on`, selection) and the leakage: the fraction of
test (and validation) pixels inside some training pixel's input window.

Outputs in `workdir`: `config.json`, `log.txt`, `split_seed{N}.json`, `pca.npz` (or
`pca_seed{N}.npz` with `fit_on='train'`), `metrics.jsonl`, `checkpoints/`, `results.json`,
`classification_map.png` and `confidence_map.png` (and `.tif` twins with the input's
georeference for a GeoTIFF scene), `training_curves.png`, `adapters/` (only the trainable
subtrees + head, see `hsic_jax.adapters.export`).
"""

import contextlib
import dataclasses
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

from hsic_jax.adapters import method_from_config
from hsic_jax.adapters.export import WEIGHTS, export_adapters
from hsic_jax.data.io import atomic_write, save_geotiff
from hsic_jax.data.patches import batch_coords, pad_cube, scene_coords
from hsic_jax.data.preprocess import prepare
from hsic_jax.data.scenes import load_scene
from hsic_jax.data.split import leakage, make_split
from hsic_jax.evaluation.maps import (map_title, save_classification_map, save_confidence_map,
                                      save_training_curves)
from hsic_jax.evaluation.metrics import summarize, update_confusion
from hsic_jax.models.converted import load_params, read_manifest
from hsic_jax.models.spectralgpt import layer_index, model_from_config
from hsic_jax.progress import progress
from hsic_jax.train import checkpoint, selection
from hsic_jax.train.checks import check_config, training_pixels
from hsic_jax.train.optimizer import (layer_decay_scales, make_optimizer, make_schedule,
                                      param_labels)
from hsic_jax.train.step import Geometry, predict, train_step
from hsic_jax.train.workdir import WorkdirError, claim

log = logging.getLogger(__name__)

EVAL_BATCH = 256

_update_confusions = jax.jit(jax.vmap(update_confusion))  # one (C, C) matrix per seed


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       restart: bool = False) -> dict:
    """Train and evaluate every seed of `config`; write outputs to `workdir`; return the results.

    The config is checked before any work (`hsic_jax.train.checks`) and the workdir claimed
    for this experiment (`hsic_jax.train.workdir`): a rerun of a finished experiment returns
    its saved results, another experiment in the same workdir is refused unless `restart`
    (which moves the old run aside).
    """
    check_config(config)
    primary = jax.process_index() == 0  # the process that takes the workdir and writes outputs
    with contextlib.ExitStack() as stack:
        finished = None
        if primary:
            try:
                claimed = stack.enter_context(claim(workdir, config.to_dict(), restart=restart))
            except BaseException:
                _agree(REFUSED)
                raise
            finished = claimed.finished
        decision = _agree(GO if finished is None else FINISHED)
        if decision == REFUSED:
            raise WorkdirError(f"process 0 refused workdir {workdir} (see its output)")
        if decision == FINISHED:
            log.info("%s holds this experiment, finished: its results are kept", workdir)
            return finished if primary else _read_json(os.path.join(workdir, "results.json"))
        return _run(config, workdir, primary)


# What process 0 decided about the workdir, told to every process of a multi-host run.
GO, FINISHED, REFUSED = 0, 1, 2


def _agree(decision: int) -> int:
    """Process 0's `decision`, on every process."""
    if jax.process_count() == 1:
        return decision
    return int(multihost_utils.broadcast_one_to_all(np.int32(decision)))


def _run(config: ml_collections.ConfigDict, workdir: str, primary: bool) -> dict:
    """The experiment itself, in a workdir claimed for it.

    Nothing is written before the data and the model are set up, so that a run refused for
    bad input leaves no trace that a corrected rerun would take for another experiment.
    """
    seeds = [config.seed + s for s in range(config.num_seeds)]

    # Data: the scene, one split and one preprocessed, padded cube per seed.
    data = load_data(config, seeds)
    log.info("split of seed %d:\n%s", seeds[0], data.splits[0].to_markdown())
    num_classes = len(data.scene.class_names)

    # Model, parameters and optimizer.
    method = method_from_config(config.method)
    model = model_from_config({**config.model, "num_classes": num_classes}, adapter=method.adapter)
    backbone = pretrained_backbone(config, model)
    params = _stack([init_params(model, jax.random.key(seed), backbone) for seed in seeds])
    labels = param_labels(jax.tree.map(lambda x: x[0], params), method)
    steps_per_epoch = int(data.train["valid"].sum(axis=1).min()) // config.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{int(data.train['valid'].sum(axis=1).min())} training pixels are fewer "
                         f"than one batch of config.batch_size={config.batch_size}")
    total_steps = steps_per_epoch * config.epochs
    schedule = make_schedule(config.optim, total_steps, steps_per_epoch)
    tx = make_optimizer(config.optim, labels, schedule, method.lam,
                        lr_scales=_layer_decay(config.optim.layer_decay, model, labels))
    state = {"step": np.zeros((len(seeds),), np.int32), "params": params,
             "opt_state": jax.vmap(tx.init)(params)}
    if primary:
        _write_json(os.path.join(workdir, "config.json"), config.to_dict())
        _write_data_records(workdir, data, seeds, per_seed_pca=config.data.fit_on == "train")

    # Seeds side by side on one device, or sharded over the seed axis of several devices
    # (of several hosts too: every process builds the same arrays and contributes its shards).
    per_seed, replicated = _shardings(len(seeds))
    log.info("training %d seeds on %d devices", len(seeds), per_seed.mesh.size)
    state = _global(state, per_seed)
    train_pixels = _global((data.train["coords"], data.train["labels"], data.train["valid"],
                            np.array(seeds, np.int32)), per_seed)
    padded = _global(data.padded, per_seed)
    # The trainable leaves of the state with the best validation OA (config.select='best_val').
    best = None
    if config.select == "best_val":
        best = _global(selection.init_best(params, labels, len(seeds)), per_seed)

    mngr = checkpoint.manager(workdir)
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    restored = checkpoint.restore_latest(mngr, _checkpointed(state, best))
    if restored is not None:
        state, best = restored["state"], restored.get("best")
        log.info("resumed from step %d of %d", int(_fetch(state["step"])[0]), total_steps)
    start = int(_fetch(state["step"])[0])
    if primary:
        checkpoint.truncate_metrics(metrics_path, start)

    step_fn = jax.jit(jax.vmap(functools.partial(
        train_step, model=model, tx=tx, param_labels=labels, geo=data.geo,
        batch_size=config.batch_size, steps_per_epoch=steps_per_epoch,
        augment_cfg=dict(config.augment), label_smoothing=config.label_smoothing)), donate_argnums=0)
    predict_fn = jax.jit(jax.vmap(functools.partial(predict, model=model, geo=data.geo)))

    # Training. In-loop evaluation sees the validation pixels only (none without a validation
    # split). Checkpoints every `checkpoint_every_epochs`, and at the end of any epoch that
    # comes `checkpoint_every_seconds` after the last one (slow epochs: every epoch).
    t0, totals, status = time.perf_counter(), [], {}
    last_save = time.monotonic()
    for step in progress(range(start, total_steps), "train", total_steps, initial=start,
                         status=status):
        state, m = step_fn(state, padded, *train_pixels)
        totals.append(m)
        if (step + 1) % steps_per_epoch:
            continue
        epoch = (step + 1) // steps_per_epoch
        row = {"step": step + 1, "epoch": epoch, "lr": float(schedule(step)),
               **{f"train_{k}": float(jnp.mean(jnp.stack([t[k] for t in totals]))) for k in totals[0]}}
        totals = []
        if data.has_val and (epoch % config.eval_every_epochs == 0 or epoch == config.epochs):
            val_oa = np.array([r["oa"] for r in evaluate(predict_fn, state["params"], padded,
                                                         data.val, num_classes)], np.float32)
            row["val_oa"] = float(val_oa.mean())
            if best is not None:
                best = selection.update_best(best, selection.trainable(state["params"], labels),
                                             _global(val_oa, per_seed),
                                             _global(np.full(len(seeds), epoch, np.int32), per_seed))
        status.update(epoch=epoch, loss=f"{row['train_loss']:.3f}", acc=f"{row['train_accuracy']:.3f}")
        if primary:
            checkpoint.append_metrics(metrics_path, [row])
        if (epoch % config.checkpoint_every_epochs == 0 or epoch == config.epochs
                or time.monotonic() - last_save >= config.checkpoint_every_seconds):
            checkpoint.save(mngr, step + 1, _checkpointed(state, best))
            last_save = time.monotonic()
    train_seconds = time.perf_counter() - t0

    # The test pixels, once: the selected state (and, when that is the best validation state,
    # the last one too, for the record). Every process takes part; the first one writes.
    selected = selection.selected_params(state["params"], best)
    per_seed_results = evaluate(predict_fn, selected, padded, data.test, num_classes)
    last_results = None if best is None else evaluate(predict_fn, state["params"], padded, data.test,
                                                      num_classes)
    first_params, first_cube = jax.jit(lambda tree: jax.tree.map(lambda x: x[0], tree),
                                       out_shardings=replicated)((selected, padded))
    maps = None
    if config.save_map:
        maps = classify_scene(jax.jit(functools.partial(predict, model=model, geo=data.geo)),
                              first_params, first_cube, data.scene.gt.shape)
    results = _results(config, data, seeds, per_seed_results, last_results, best, first_params,
                       labels, train_seconds)
    if primary:
        export_dir = os.path.join(workdir, "adapters")
        export_adapters(first_params, config.method, export_dir, base_sha256=_base_sha256(config),
                        class_names=list(data.scene.class_names))
        results["adapter_bytes"] = os.path.getsize(os.path.join(export_dir, WEIGHTS))
        _write_json(os.path.join(workdir, "results.json"), results)
        if maps is not None:
            save_maps(workdir, config, data.scene, seeds[0], per_seed_results[0]["oa"], *maps)
        save_training_curves(os.path.join(workdir, "training_curves.png"), metrics_path)
    return results


def _layer_decay(decay: float, model, labels):
    """Per-leaf learning-rate scales of layer-wise decay (official: 0.75), or None when 1."""
    if decay == 1:
        return None
    return layer_decay_scales(labels, functools.partial(layer_index, depth=model.depth),
                              model.depth + 1, decay)


def _checkpointed(state: dict, best: dict | None) -> dict:
    """What a checkpoint holds: the train state, and the best validation state when selecting."""
    return {"state": state} if best is None else {"state": state, "best": best}


@dataclasses.dataclass(frozen=True)
class Data:
    """A scene prepared for training, per seed.

    Attributes:
      scene: the loaded scene.
      splits: one split per seed.
      pcas: the PCA of each seed (one shared object when fitted on the scene; None without PCA).
      padded: `(S, H + 2r, W + 2r, k)` each seed's preprocessed cube, reflect-padded by
        r = patch_size // 2.
      geo: how a pixel becomes a model input.
      train, val, test: each seed's pixels, padded to a common length: `coords` `(S, N, 2)`,
        `labels` and `valid` `(S, N)`.
      leakage: per seed, `split.leakage` of the model's input window.
    """

    scene: Any
    splits: list
    pcas: list
    padded: np.ndarray
    geo: Geometry
    train: dict
    val: dict
    test: dict
    leakage: list

    @property
    def has_val(self) -> bool:
        return bool(self.val["valid"].any())


def load_data(config: ml_collections.ConfigDict, seeds: list[int]) -> Data:
    """The scene of `config.data`, split for each seed, its PCA and normalisation fitted on the
    scene or on each seed's training pixels (`data.fit_on`), padded for patch extraction."""
    cfg = config.data
    scene = load_scene(cfg.name, cfg.data_dir or None, **_file_args(cfg))
    num_classes = len(scene.class_names)
    if cfg.get("num_classes") not in (None, num_classes):
        raise ValueError(f"config.data.num_classes={cfg.num_classes} but scene {scene.name!r} has "
                         f"{num_classes} classes: {list(scene.class_names)}")
    splits = [_split(scene, cfg, seed) for seed in seeds]
    radius = cfg.patch_size // 2
    if cfg.fit_on == "scene":
        cube, pca = prepare(scene.cube, pca_components=cfg.pca, normalization=cfg.normalize)
        pcas, padded = [pca] * len(seeds), np.stack([np.asarray(pad_cube(cube, radius))] * len(seeds))
    else:
        prepared = [prepare(scene.cube, pca_components=cfg.pca, normalization=cfg.normalize,
                            fit_pixels=split.train) for split in splits]
        pcas = [pca for _, pca in prepared]
        padded = np.stack([np.asarray(pad_cube(cube, radius)) for cube, _ in prepared])
    return Data(
        scene=scene, splits=splits, pcas=pcas, padded=padded,
        geo=Geometry(cfg.patch_size, cfg.input_size, cfg.resize),
        **{part: _stack_pixels([(getattr(s, part), getattr(s, f"{part}_labels")) for s in splits])
           for part in ("train", "val", "test")},
        leakage=[leakage(s, cfg.patch_size, scene.gt.shape) for s in splits])


def _write_data_records(workdir: str, data: Data, seeds: list[int], per_seed_pca: bool) -> None:
    """`split_seed{N}.json`, and `pca.npz` (fitted on the scene) or `pca_seed{N}.npz` (per seed)."""
    for seed, split, pca in zip(seeds, data.splits, data.pcas):
        split.save(os.path.join(workdir, f"split_seed{seed}.json"))
        if pca is not None and per_seed_pca:
            pca.save(os.path.join(workdir, f"pca_seed{seed}.npz"))
    if data.pcas[0] is not None and not per_seed_pca:
        data.pcas[0].save(os.path.join(workdir, "pca.npz"))


# Model fields a converted checkpoint fixes (its manifest records them).
ARCHITECTURE = ("img_size", "patch_size", "tubelet", "bands", "width", "depth", "heads",
                "mlp_ratio", "pos_embed")
# The fields the converter can change (the others are fixed by the pretrained weights).
CONVERT_FLAGS = {"img_size": "--img-size", "pos_embed": "--pos-embed", "bands": "--bands"}


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
        fixes = [f"--config.model.{k}={v!r}" for k, (v, _) in differ.items()]
        reconvert = [CONVERT_FLAGS[k] for k in differ if k in CONVERT_FLAGS]
        hint = f"; or convert again with {'/'.join(reconvert)} to fit the config" if (
            len(reconvert) == len(differ)) else ""
        raise ValueError(
            f"{config.pretrained_dir} was converted for another model (field: (checkpoint, "
            f"config)): {differ}; set {' '.join(fixes)}{hint}")
    return load_params(config.pretrained_dir)["backbone"]


def init_params(model, key, backbone: dict | None) -> dict:
    """Fresh parameters of `model`, with the given pretrained `backbone` in place of its own."""
    x = jnp.zeros((1, model.img_size, model.img_size, model.bands), jnp.float32)
    params = model.init(key, x)["params"]
    return params if backbone is None else {**params, "backbone": backbone}


def evaluate(predict_fn, params, padded, pixels: dict, num_classes: int) -> list[dict]:
    """Metrics of each seed's `params` `(S, ...)` on its `pixels` (`coords` `(S, N, 2)`, ...)."""
    n_seeds, n = pixels["labels"].shape
    conf = jnp.zeros((n_seeds, num_classes, num_classes), jnp.int32)
    starts = range(0, n, EVAL_BATCH)
    for start in progress(starts, f"evaluate {n_seeds} × {n} pixels", len(starts)):
        sl = slice(start, start + EVAL_BATCH)
        coords, labels, valid = (_pad_to(pixels[k][:, sl], EVAL_BATCH) for k in ("coords", "labels", "valid"))
        preds, _ = predict_fn(params, padded, coords)
        conf = _update_confusions(conf, labels, preds, valid)
    return [summarize(c) for c in _fetch(conf)]


def classify_scene(predict_fn, params, padded, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Class map `(H, W)` in 1..C and confidence map `(H, W)` (the predicted class's softmax
    probability) of one model (`params`, its cube `padded`) over every pixel of the scene."""
    classes, confidence = np.zeros(shape, np.int32), np.zeros(shape, np.float32)
    batches = batch_coords(scene_coords(np.zeros(shape)), EVAL_BATCH)
    for coords, valid in progress(batches, "map", -(-shape[0] * shape[1] // EVAL_BATCH)):
        c = coords[valid]
        pred, prob = (_fetch(a)[valid] for a in predict_fn(params, padded, coords))
        classes[c[:, 0], c[:, 1]], confidence[c[:, 0], c[:, 1]] = pred + 1, prob
    return classes, confidence


def save_maps(workdir: str, config, scene, seed: int, oa: float, classes: np.ndarray,
              confidence: np.ndarray) -> None:
    """`classification_map.png` (beside the ground truth; title with OA), `confidence_map.png`
    and, for a georeferenced scene (a GeoTIFF input), both as GeoTIFFs with its georeference."""
    title = map_title(config.data.name, config.method.name, seed, oa)
    save_classification_map(os.path.join(workdir, "classification_map.png"), classes, scene.gt,
                            scene.class_names, title=title,
                            mask_unlabelled=config.map_mask_unlabelled)
    save_confidence_map(os.path.join(workdir, "confidence_map.png"), confidence,
                        title=f"{title} · confidence")
    if scene.georef is not None:
        dtype = np.uint8 if len(scene.class_names) < 256 else np.uint16
        save_geotiff(os.path.join(workdir, "classification_map.tif"), classes.astype(dtype),
                     scene.georef)
        save_geotiff(os.path.join(workdir, "confidence_map.tif"), confidence, scene.georef)


def _results(config, data, seeds, per_seed, last, best, first, labels, train_seconds) -> dict:
    trainable = sum(int(np.size(p)) for p, lab in zip(jax.tree.leaves(first), jax.tree.leaves(labels))
                    if lab != "frozen")
    results = {
        "dataset": config.data.name, "method": config.method.name, "config": config.to_dict(),
        "class_names": list(data.scene.class_names),
        "trainable_params": trainable,
        "total_params": sum(int(np.size(p)) for p in jax.tree.leaves(first)),
        "train_seconds": train_seconds,
        "protocol": protocol(config, data),
        "leakage": {"window": int(config.data.patch_size),
                    **{part: _mean_or_none([lk[part] for lk in data.leakage]) for part in ("test", "val")}},
        "split": {"rows": data.splits[0].table()},
        **_means(per_seed, len(seeds) > 1),
    }
    # A class without test pixels has no accuracy: NaN here, null in the JSON file.
    per_class = np.array([r["per_class"] for r in per_seed], dtype=float)
    results["per_class"] = _nan_to_none(_nanmean(per_class))
    results["confusion"] = per_seed[0]["confusion"]
    if len(seeds) > 1:
        results["per_class_std"] = _nan_to_none(np.sqrt(_nanmean((per_class - _nanmean(per_class)) ** 2)))
    results["seeds"] = [
        {"seed": s, **{k: _nan_to_none(np.array([r[k]], dtype=float))[0] for k in ("oa", "aa", "kappa")},
         "per_class": _nan_to_none(np.array(r["per_class"], dtype=float)), "leakage": lk}
        for s, r, lk in zip(seeds, per_seed, data.leakage)]
    if best is not None:  # the selected state of each seed, and the test metrics of the last state
        val_oa, epochs = _fetch(best["val_oa"]), _fetch(best["epoch"])
        for entry, oa, epoch in zip(results["seeds"], val_oa, epochs):
            entry.update(val_oa=float(oa), selected_epoch=int(epoch))
        results["last"] = _means(last, len(seeds) > 1)
    return results


def protocol(config, data: Data) -> dict:
    """How the numbers were obtained: split, window, pixel counts, fitting and selection."""
    split = data.splits[0]
    kind = ("per_class" if split.config["per_class"] is not None else
            "fraction" if split.config["fraction"] is not None else "given")
    counts = {part: len(getattr(split, part)) for part in ("train", "val", "test")}
    disjoint = bool(config.data.spatially_disjoint)
    select = "the last state" if config.select == "last" else "the state with the best validation OA"
    leak = np.mean([lk["test"] for lk in data.leakage]) if counts["test"] else float("nan")
    summary = (f"{'spatially disjoint ' if disjoint else ''}{kind.replace('_', ' ')} split, "
               f"{counts['train']} train / {counts['val']} val / {counts['test']} test pixels, "
               f"{100 * leak:.2f} % of test pixels inside a {config.data.patch_size}-pixel training "
               f"window; PCA and normalisation fitted on the {config.data.fit_on} pixels; "
               f"tested once, with {select}")
    return {"split": kind, "spatially_disjoint": disjoint, "window": int(config.data.patch_size),
            **counts, "fit_on": config.data.fit_on, "select": config.select, "summary": summary}


def _means(per_seed: list[dict], with_std: bool) -> dict:
    """`oa`, `aa`, `kappa` means over seeds (and their `_std`); None for NaN (kappa of one class)."""
    out = {}
    for key in ("oa", "aa", "kappa"):
        values = np.array([r[key] for r in per_seed], dtype=float)
        out[key] = _nan_to_none(np.mean(values, keepdims=True))[0]
        if with_std:
            out[f"{key}_std"] = _nan_to_none(np.std(values, keepdims=True))[0]
    return out


def _mean_or_none(values: list) -> float | None:
    return None if any(v is None for v in values) else float(np.mean(values))


def _nanmean(a: np.ndarray) -> np.ndarray:
    """Mean over the seed axis ignoring NaN, NaN (without a warning) where every seed is NaN."""
    count = np.sum(~np.isnan(a), axis=0)
    return np.where(count > 0, np.nansum(a, axis=0) / np.maximum(count, 1), np.nan)


def _nan_to_none(a: np.ndarray) -> list:
    return [None if np.isnan(v) else float(v) for v in a]


def _split(scene, data_cfg, seed):
    return make_split(scene, seed=seed, **training_pixels(data_cfg.train_per_class),
                      cap=data_cfg.cap, spatially_disjoint=data_cfg.spatially_disjoint,
                      patch_size=data_cfg.patch_size, val=data_cfg.val_per_class)


def _file_args(data_cfg) -> dict:
    """Keyword arguments of `load_scene` for a user scene (`data.name = 'files'`); class names
    are a list or a comma-separated string (`data.class_names`), or a file of one per line."""
    keys = ("cube_path", "gt_path", "cube_key", "gt_key", "class_names_path")
    args = {k: data_cfg[k] for k in keys if data_cfg.get(k)}
    names = data_cfg.get("class_names")
    if names:
        args["class_names"] = ([n.strip() for n in names.split(",")] if isinstance(names, str)
                               else list(names))
    return args


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


def _read_json(path: str):
    with open(path) as f:
        return json.load(f)


def _write_json(path: str, obj) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2).encode()))
