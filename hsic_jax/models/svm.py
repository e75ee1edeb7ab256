"""RBF support vector machine on the spectra of single pixels (scikit-learn): the classical floor.

A family of task shape 'classical' (`hsic_jax.train.classical` trains it): no neighbourhood, no
gradient steps; `estimator(model_cfg, seed)` is an RBF `SVC` whose C and γ are chosen by a
small stratified cross-validated grid search on the training pixels only, its scores
calibrated into probabilities (Platt's sigmoid, `CalibratedClassifierCV`) for the
confidence map.

config.model: `name='svm'`, `C` and `gamma` (the grids searched), `folds`.
"""

from collections.abc import Mapping

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.svm import SVC

DISPLAY_NAME = "SVM"  # in reports and tables
REPORT_ORDER = 4  # its place among the families in reports (the paper's columns)
TASK = "classical"


def estimator(model_cfg: Mapping, seed: int, min_class_count: int) -> GridSearchCV:
    """A grid search over `C` × `gamma` of a calibrated RBF SVC; as many folds as the smallest
    class allows (at most `model.folds`)."""
    folds = max(2, min(int(model_cfg["folds"]), min_class_count))
    svc = CalibratedClassifierCV(SVC(kernel="rbf", random_state=seed), ensemble=False,
                                 cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    grid = {"estimator__C": list(model_cfg["C"]), "estimator__gamma": list(model_cfg["gamma"])}
    return GridSearchCV(svc, grid, cv=StratifiedKFold(folds, shuffle=True, random_state=seed))


def fitted_size(fitted: GridSearchCV) -> int:
    """Numbers the fitted model holds: support vectors, dual coefficients, intercepts, and the
    calibration's slope and offset per class."""
    calibrated = fitted.best_estimator_.calibrated_classifiers_[0]
    svc = calibrated.estimator
    sigmoids = 2 * len(calibrated.calibrators)
    return int(sum(np.size(a) for a in (svc.support_vectors_, svc.dual_coef_, svc.intercept_))
               + sigmoids)


def describe(fitted: GridSearchCV) -> dict:
    """What the grid search chose, for results.json."""
    return {"best_params": {k.removeprefix("estimator__"): v for k, v in fitted.best_params_.items()},
            "cv_accuracy": float(fitted.best_score_)}
