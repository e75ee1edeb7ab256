"""The classical task shape: scikit-learn classifiers on the spectra of single pixels.

A family of task shape 'classical' (`hsic_jax.models.svm`, `hsic_jax.models.rf`) gets the same data
stage, splits, `results.json`, maps and report rows as the deep families, but no gradient
steps: each seed's estimator is fitted on the spectra of its training pixels (raw bands or
PCA components, normalised as `config.data` says), tested once on its test pixels, and the
first seed's estimator maps the scene. Fitting takes seconds, so there are no checkpoints:
a killed run fits again. The fitted estimator of the first seed is saved as `model.pkl`.
"""

import logging
import os
import pickle
import time

import numpy as np

from hsic_jax.data.io import atomic_write, write_json
from hsic_jax.data.pipeline import Data
from hsic_jax.evaluation.metrics import confusion_matrix, summarize
from hsic_jax.evaluation.predict import save_maps
from hsic_jax.evaluation.results import results as make_results
from hsic_jax.models import family

log = logging.getLogger(__name__)

MODEL_FILE = "model.pkl"


def spectra(data: Data, seed_index: int, coords: np.ndarray) -> np.ndarray:
    """`(N, B)` preprocessed spectra of the pixels `coords` `(N, 2)` in seed `seed_index`'s cube."""
    r = (data.padded.shape[1] - data.scene.gt.shape[0]) // 2
    return data.padded[seed_index][coords[:, 0] + r, coords[:, 1] + r]


def run(config, workdir: str, data: Data, seeds: list[int], primary: bool) -> dict:
    """Fit, test and map `config.model`'s estimator for every seed; write the outputs."""
    fam = family(config.model.name)
    t0 = time.perf_counter()
    fitted = []
    for s, (seed, split) in enumerate(zip(seeds, data.splits)):
        smallest = int(np.bincount(split.train_labels, minlength=data.num_classes).min())
        estimator = fam.estimator(config.model, seed, smallest)
        fitted.append(estimator.fit(spectra(data, s, split.train), split.train_labels))
        log.info("seed %d: fitted %s on %d pixels", seed, config.model.name, len(split.train))
    train_seconds = time.perf_counter() - t0
    per_seed = [summarize(confusion_matrix(split.test_labels,
                                           est.predict(spectra(data, s, split.test)),
                                           data.num_classes))
                for s, (split, est) in enumerate(zip(data.splits, fitted))]
    size = fam.fitted_size(fitted[0])
    results = make_results(config, data, seeds, per_seed, trainable_params=size,
                           total_params=size, train_seconds=train_seconds)
    results["fitted"] = [fam.describe(est) for est in fitted]
    if primary:
        blob = pickle.dumps(fitted[0])
        atomic_write(os.path.join(workdir, MODEL_FILE), lambda f: f.write(blob))
        results["adapter_bytes"] = len(blob)
        write_json(os.path.join(workdir, "results.json"), results)
        if config.save_map:
            h, w = data.scene.gt.shape
            everything = np.argwhere(np.ones((h, w), bool))
            proba = fitted[0].predict_proba(spectra(data, 0, everything))
            classes = (fitted[0].classes_[np.argmax(proba, axis=1)] + 1).reshape(h, w)
            classes = classes.astype(np.int32)
            confidence = proba.max(axis=1).reshape(h, w).astype(np.float32)
            save_maps(workdir, config, data.scene, seeds[0], per_seed[0]["oa"], classes, confidence)
    return results
