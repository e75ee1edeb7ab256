"""Predictions of trained models: metrics on pixel sets, and maps of the whole scene.

`predict_pixels` runs every seed's model on its pixels in fixed-size batches (one compiled
program: every batch has the same shape) and brings the classes back to the host once;
`evaluate` scores them; `classify_scene` predicts the rest of the scene with one model and
puts its test predictions in their places, so that no pixel is predicted twice;
`save_maps` writes what a user looks at.
"""

import os

import numpy as np

from hsic_jax.data.io import save_geotiff
from hsic_jax.data.patches import scene_coords
from hsic_jax.evaluation.maps import map_title, save_classification_map, save_confidence_map
from hsic_jax.evaluation.metrics import confusion_matrix, summarize
from hsic_jax.progress import progress
from hsic_jax.hosts import fetch

EVAL_BATCH = 256


def predict_pixels(predict_fn, params, padded, coords: np.ndarray,
                   batch: int | None = EVAL_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """Classes `(S, N)` in 0..C-1 and confidences `(S, N)` of each seed's model at its pixels
    `coords` `(S, N, 2)`, in batches of `batch` pixels (None: all at once, for a whole-scene
    model). `predict_fn(params, padded, coords)` is vmapped over the seeds."""
    n = coords.shape[1]
    batch = batch or max(n, 1)
    outs = [predict_fn(params, padded, _pad_to(coords[:, start:start + batch], batch))
            for start in range(0, n, batch)]  # dispatched without waiting, fetched below
    s = coords.shape[0]
    classes, confidence = np.zeros((s, n), np.int32), np.zeros((s, n), np.float32)
    for i, (pred, prob) in enumerate(progress(outs, f"predict {s} × {n} pixels", len(outs))):
        sl = slice(i * batch, min((i + 1) * batch, n))
        classes[:, sl] = fetch(pred)[:, :sl.stop - sl.start]
        confidence[:, sl] = fetch(prob)[:, :sl.stop - sl.start]
    return classes, confidence


def evaluate(predict_fn, params, padded, pixels: dict, num_classes: int,
             batch: int | None = EVAL_BATCH) -> tuple[list[dict], tuple[np.ndarray, np.ndarray]]:
    """Metrics (`metrics.summarize`) of each seed's `params` `(S, ...)` on its `pixels`
    (`coords` `(S, N, 2)`, `labels` and `valid` `(S, N)`), and the predictions they come from
    (`predict_pixels`)."""
    classes, confidence = predict_pixels(predict_fn, params, padded, pixels["coords"], batch)
    metrics = [summarize(confusion_matrix(pixels["labels"][s], classes[s], num_classes,
                                          pixels["valid"][s])) for s in range(len(classes))]
    return metrics, (classes, confidence)


def classify_scene(predict_fn, params, padded, shape: tuple[int, int], known=None,
                   batch: int | None = EVAL_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """Class map `(H, W)` in 1..C and confidence map `(H, W)` (the predicted class's softmax
    probability) of one model (`params` and its cube `padded` with a seed axis of 1) over
    every pixel of the scene. `known`, `(coords (N, 2), classes (N,), confidence (N,))`, are
    this model's predictions already made (the test pixels'): they are used, not redone."""
    classes, confidence = np.zeros(shape, np.int32), np.zeros(shape, np.float32)
    todo = np.ones(shape, bool)
    if known is not None:
        coords, known_classes, known_confidence = known
        classes[coords[:, 0], coords[:, 1]] = known_classes + 1
        confidence[coords[:, 0], coords[:, 1]] = known_confidence
        todo[coords[:, 0], coords[:, 1]] = False
    coords = scene_coords(todo, labelled_only=True)
    if len(coords):
        pred, prob = predict_pixels(predict_fn, params, padded, coords[None], batch)
        classes[coords[:, 0], coords[:, 1]], confidence[coords[:, 0], coords[:, 1]] = (
            pred[0] + 1, prob[0])
    return classes, confidence


def save_maps(workdir: str, config, scene, seed: int, oa: float, classes: np.ndarray,
              confidence: np.ndarray) -> None:
    """`classification_map.png` (beside the ground truth; title with OA), `confidence_map.png`,
    and both maps as TIFFs (`classification_map.tif`: classes 1..C; `confidence_map.tif`),
    with the scene's georeference for a GeoTIFF scene."""
    title = map_title(config.data.name, config.method.name, seed, oa)
    save_classification_map(os.path.join(workdir, "classification_map.png"), classes, scene.gt,
                            scene.class_names, title=title,
                            mask_unlabelled=config.map_mask_unlabelled)
    save_confidence_map(os.path.join(workdir, "confidence_map.png"), confidence,
                        title=f"{title} · confidence")
    dtype = np.uint8 if len(scene.class_names) < 256 else np.uint16
    save_geotiff(os.path.join(workdir, "classification_map.tif"), classes.astype(dtype),
                 scene.georef)
    save_geotiff(os.path.join(workdir, "confidence_map.tif"), confidence, scene.georef)


def _pad_to(a: np.ndarray, n: int) -> np.ndarray:
    """Pad axis 1 of `a` with zeros to length `n` (the last, short batch)."""
    return np.pad(a, [(0, 0), (0, n - a.shape[1])] + [(0, 0)] * (a.ndim - 2))
