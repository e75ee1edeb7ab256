"""Classification metrics from a confusion matrix: OA, AA, Cohen's kappa, per-class accuracy.

The confusion matrix is accumulated in JAX, batch by batch, on the device (`update_confusion`
is jittable and vmappable over seeds); `summarize` turns the final matrix into Python numbers
on the host. Labels are class indices in `[0, C)`; rows of the matrix are true classes and
columns predicted classes, as in `sklearn.metrics.confusion_matrix`.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np


def update_confusion(conf: jax.Array, y_true: jax.Array, y_pred: jax.Array,
                     mask: jax.Array | None = None) -> jax.Array:
    """Adds one batch to a confusion matrix.

    Args:
      conf: `(C, C)` integer counts so far.
      y_true: `(N,)` true classes in `[0, C)`.
      y_pred: `(N,)` predicted classes in `[0, C)`.
      mask: `(N,)` bool, False for padding entries (a short last batch); None counts all.

    Returns:
      `(C, C)` counts, `conf` plus this batch. Entries with `mask` False are not counted, and
      neither are labels outside `[0, C)` (this runs under `jit`, where it cannot raise).
    """
    c = conf.shape[0]
    if conf.shape != (c, c) or y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"expected conf (C, C) and y_true, y_pred (N,); got conf {conf.shape}, "
                         f"y_true {y_true.shape}, y_pred {y_pred.shape}")
    keep = (y_true >= 0) & (y_true < c) & (y_pred >= 0) & (y_pred < c)
    if mask is not None:
        keep &= mask.astype(bool)
    flat = jnp.where(keep, y_true * c + y_pred, c * c)  # c * c: out of bounds, dropped
    counts = jnp.zeros(c * c, conf.dtype).at[flat].add(1, mode="drop")
    return conf + counts.reshape(c, c)


@functools.partial(jax.jit, static_argnames="num_classes")
def confusion_matrix(y_true: jax.Array, y_pred: jax.Array, num_classes: int) -> jax.Array:
    """`(C, C)` int32 counts of (true, predicted) pairs of `(N,)` labels in `[0, num_classes)`."""
    conf = jnp.zeros((num_classes, num_classes), jnp.int32)
    return update_confusion(conf, jnp.asarray(y_true), jnp.asarray(y_pred))


def summarize(conf) -> dict:
    """OA, AA, kappa and per-class accuracy of a `(C, C)` confusion matrix (rows = true class).

    Returns a JSON-able dict of Python numbers, all fractions in [0, 1]:
      oa: correct / total.
      aa: mean of `per_class` over the classes that have test pixels.
      kappa: Cohen's kappa; NaN when chance agreement is 1 (everything in one class).
      per_class: `(C,)` recall of each class; NaN for a class with no test pixels, which
        is left out of AA (as in `sklearn.metrics.balanced_accuracy_score`).
      confusion: the matrix as a list of lists of ints.
    """
    conf = np.asarray(conf)
    if conf.ndim != 2 or conf.shape[0] != conf.shape[1]:
        raise ValueError(f"confusion matrix must be square (C, C); got shape {conf.shape}")
    if not np.issubdtype(conf.dtype, np.integer) or (conf < 0).any():
        raise ValueError(f"confusion matrix must hold non-negative integer counts; got dtype "
                         f"{conf.dtype}, min {conf.min() if conf.size else None}")
    conf = conf.astype(np.int64)
    n = conf.sum()
    if n == 0:
        raise ValueError("confusion matrix is empty: no test pixels were counted")
    true_counts, pred_counts = conf.sum(axis=1), conf.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(conf) / true_counts
        oa = np.trace(conf) / n
        chance = (true_counts * pred_counts).sum() / n**2
        kappa = (oa - chance) / (1 - chance)
    return {"oa": float(oa), "aa": float(np.nanmean(per_class)), "kappa": float(kappa),
            "per_class": [float(x) for x in per_class], "confusion": conf.tolist()}
