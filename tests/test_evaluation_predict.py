"""Predictions of pixel sets: fixed-size batches in one compiled program, metrics from them,
and a map that reuses the test predictions instead of predicting those pixels again."""

import jax
import jax.numpy as jnp
import numpy as np
from sklearn import metrics as skm

from hsic_jax.data.pipeline import subsample
from hsic_jax.evaluation.predict import classify_scene, evaluate, predict_pixels
from hsic_jax.train.timings import Timings


def toy_predict():
    """A vmapped 'model' of per-seed params `w` `(S,)`: the class of pixel (r, c) is
    `(r + c + w) % 3`, its confidence `1 / (1 + r)`; records the pixels it is asked for."""
    asked = []

    @jax.jit
    def one_seed(w, cube, coords):
        return (coords[:, 0] + coords[:, 1] + w) % 3, 1.0 / (1.0 + coords[:, 0] + 0 * cube[0, 0, 0])

    def predict_fn(params, cube, coords):
        asked.append(np.asarray(coords))
        return jax.vmap(one_seed)(params, cube, coords)

    return predict_fn, asked


def test_batches_of_one_shape_give_the_one_shot_predictions_with_one_compilation():
    predict_fn, asked = toy_predict()
    rng = np.random.default_rng(0)
    coords = rng.integers(0, 9, size=(2, 23, 2)).astype(np.int32)  # 23 = 2 batches of 10 + 3
    params, cube = jnp.array([0, 1]), jnp.zeros((2, 9, 9, 1))
    with Timings() as clock:
        classes, confidence = predict_pixels(predict_fn, params, cube, coords, batch=10)
    assert clock.compiles <= 1 and {a.shape for a in asked} == {(2, 10, 2)}
    expected = (coords[..., 0] + coords[..., 1] + np.array([[0], [1]])) % 3
    np.testing.assert_array_equal(classes, expected)
    np.testing.assert_allclose(confidence, 1 / (1 + coords[..., 0]))


def test_evaluate_scores_the_valid_pixels_as_sklearn_does():
    predict_fn, _ = toy_predict()
    rng = np.random.default_rng(1)
    coords = rng.integers(0, 9, size=(2, 30, 2)).astype(np.int32)
    labels = rng.integers(0, 3, size=(2, 30)).astype(np.int32)
    valid = np.arange(30)[None] < np.array([[30], [21]])  # seed 1: 9 padding entries
    metrics, (classes, _) = evaluate(predict_fn, jnp.array([0, 1]), jnp.zeros((2, 9, 9, 1)),
                                     {"coords": coords, "labels": labels, "valid": valid}, 3)
    for s in range(2):
        v = valid[s]
        assert metrics[s]["oa"] == skm.accuracy_score(labels[s][v], classes[s][v])
        assert metrics[s]["confusion"] == skm.confusion_matrix(
            labels[s][v], classes[s][v], labels=[0, 1, 2]).tolist()


def test_the_map_reuses_known_predictions_and_predicts_only_the_other_pixels():
    predict_fn, asked = toy_predict()
    known_coords = np.array([[0, 0], [2, 3], [4, 1]], np.int32)
    known_classes = np.array([2, 2, 2])  # not what the model would say: must be kept as given
    classes, confidence = classify_scene(
        predict_fn, jnp.array([1]), jnp.zeros((1, 5, 4, 1)), (5, 4),
        known=(known_coords, known_classes, np.full(3, 0.25, np.float32)), batch=8)
    predicted = {tuple(p) for p in np.concatenate([a[0] for a in asked])[:20 - 3]}  # no padding
    assert len(predicted) == 20 - 3 and not predicted & {tuple(p) for p in known_coords}
    rows, cols = np.indices((5, 4))
    expected = (rows + cols + 1) % 3 + 1
    expected[known_coords[:, 0], known_coords[:, 1]] = 3
    np.testing.assert_array_equal(classes, expected)
    assert confidence[2, 3] == 0.25 and confidence[1, 1] == 0.5


def test_subsample_keeps_a_fixed_subset_of_each_seeds_valid_pixels():
    n = 50
    pixels = {"coords": np.stack([np.arange(2 * n).reshape(2, n)] * 2, -1).astype(np.int32),
              "labels": np.arange(2 * n).reshape(2, n) % 4,
              "valid": np.arange(n)[None] < np.array([[50], [30]])}
    sub = subsample(pixels, 20, seeds=[7, 8])
    assert sub["coords"].shape == (2, 20, 2) and sub["valid"].all()
    for s in range(2):
        kept = sub["coords"][s, :, 0]
        assert set(kept) <= set(pixels["coords"][s, pixels["valid"][s], 0])
        np.testing.assert_array_equal(sub["labels"][s], kept % 4)  # labels follow their pixels
    again = subsample(pixels, 20, seeds=[7, 8])
    np.testing.assert_array_equal(again["coords"], sub["coords"])  # fixed for a seed
    assert subsample(pixels, 50, seeds=[7, 8]) is pixels  # nothing to cut
