"""Classification metrics from a confusion matrix: OA, AA, Cohen's kappa, per-class accuracy.

The predictions come back to the host once per pixel set (`hsic_jax.evaluation.predict`);
`confusion_matrix` counts them there (one `np.bincount`, no compilation) and `summarize`
turns the matrix into Python numbers. Labels are class indices in `[0, C)`; rows of the
matrix are true classes and columns predicted classes, as in `sklearn.metrics.confusion_matrix`.
"""

import numpy as np


def confusion_matrix(y_true, y_pred, num_classes: int, mask=None) -> np.ndarray:
    """`(C, C)` int64 counts of (true, predicted) pairs of `(N,)` labels.

    Entries with `mask` `(N,)` False (padding) are not counted, and neither are labels
    outside `[0, num_classes)`.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"expected y_true and y_pred of one shape (N,); got y_true "
                         f"{y_true.shape}, y_pred {y_pred.shape}")
    c = num_classes
    keep = (y_true >= 0) & (y_true < c) & (y_pred >= 0) & (y_pred < c)
    if mask is not None:
        keep &= np.asarray(mask, bool)
    flat = y_true[keep].astype(np.int64) * c + y_pred[keep]
    return np.bincount(flat, minlength=c * c).reshape(c, c)


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
