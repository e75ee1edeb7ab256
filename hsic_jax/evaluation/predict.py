"""Predictions of trained models: metrics on pixel sets, and maps of the whole scene.

`evaluate` runs every seed's model on its pixels in fixed-size batches and accumulates one
confusion matrix per seed on the device; `classify_scene` predicts every pixel of the
scene with one model; `save_maps` writes what a user looks at.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np

from hsic_jax.data.io import save_geotiff
from hsic_jax.data.patches import batch_coords, scene_coords
from hsic_jax.evaluation.maps import map_title, save_classification_map, save_confidence_map
from hsic_jax.evaluation.metrics import summarize, update_confusion
from hsic_jax.progress import progress
from hsic_jax.train.hosts import fetch

EVAL_BATCH = 256

_update_confusions = jax.jit(jax.vmap(update_confusion))  # one (C, C) matrix per seed


def evaluate(predict_fn, params, padded, pixels: dict, num_classes: int,
             batch: int | None = EVAL_BATCH) -> list[dict]:
    """Metrics (`metrics.summarize`) of each seed's `params` `(S, ...)` on its `pixels`
    (`coords` `(S, N, 2)`, `labels` and `valid` `(S, N)`) in batches of `batch` pixels (None:
    all at once, for a whole-scene model); `predict_fn` is vmapped over seeds."""
    n_seeds, n = pixels["labels"].shape
    batch = batch or max(n, 1)
    conf = jnp.zeros((n_seeds, num_classes, num_classes), jnp.int32)
    starts = range(0, n, batch)
    for start in progress(starts, f"evaluate {n_seeds} × {n} pixels", len(starts)):
        sl = slice(start, start + batch)
        coords, labels, valid = (_pad_to(pixels[k][:, sl], batch)
                                 for k in ("coords", "labels", "valid"))
        preds, _ = predict_fn(params, padded, coords)
        conf = _update_confusions(conf, labels, preds, valid)
    return [summarize(c) for c in fetch(conf)]


def classify_scene(predict_fn, params, padded, shape: tuple[int, int],
                   batch: int | None = EVAL_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """Class map `(H, W)` in 1..C and confidence map `(H, W)` (the predicted class's softmax
    probability) of one model (`params`, its cube `padded`) over every pixel of the scene, in
    batches of `batch` pixels (None: all at once)."""
    classes, confidence = np.zeros(shape, np.int32), np.zeros(shape, np.float32)
    batch = batch or shape[0] * shape[1]
    batches = batch_coords(scene_coords(np.zeros(shape)), batch)
    for coords, valid in progress(batches, "map", -(-shape[0] * shape[1] // batch)):
        c = coords[valid]
        pred, prob = (fetch(a)[valid] for a in predict_fn(params, padded, coords))
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


def _pad_to(a: np.ndarray, n: int) -> np.ndarray:
    """Pad axis 1 of `a` with zeros to length `n` (the last, short batch)."""
    return np.pad(a, [(0, 0), (0, n - a.shape[1])] + [(0, 0)] * (a.ndim - 2))
