"""Random forest on the spectra of single pixels (scikit-learn): a classical floor.

A family of task shape 'classical' (`hsic_jax.train.classical` trains it). config.model:
`name='rf'`, `trees`, `max_features` ('sqrt' or a fraction).
"""

from collections.abc import Mapping

from sklearn.ensemble import RandomForestClassifier

DISPLAY_NAME = "RF"  # in reports and tables
REPORT_ORDER = 5  # its place among the families in reports (the paper's columns)
TASK = "classical"


def estimator(model_cfg: Mapping, seed: int, min_class_count: int) -> RandomForestClassifier:
    """A random forest of `model.trees` trees, seeded."""
    del min_class_count  # no cross-validation
    return RandomForestClassifier(n_estimators=int(model_cfg["trees"]),
                                  max_features=model_cfg["max_features"], random_state=seed)


def fitted_size(fitted: RandomForestClassifier) -> int:
    """Numbers the fitted forest holds: per node its feature, threshold and class counts."""
    return int(sum(t.tree_.node_count * (2 + t.tree_.value.shape[-1]) for t in fitted.estimators_))


def describe(fitted: RandomForestClassifier) -> dict:
    return {"trees": len(fitted.estimators_),
            "nodes": int(sum(t.tree_.node_count for t in fitted.estimators_))}
