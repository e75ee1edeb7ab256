"""Metrics against scikit-learn, the independent oracle."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from hsic_jax.evaluation.metrics import confusion_matrix, summarize, update_confusion


def assert_matches_sklearn(y_true, y_pred, num_classes):
    with warnings.catch_warnings():            # sklearn warns about absent classes
        warnings.simplefilter("ignore")
        expected = skm.confusion_matrix(y_true, y_pred, labels=np.arange(num_classes))
        accuracy = skm.accuracy_score(y_true, y_pred)
        kappa = skm.cohen_kappa_score(y_true, y_pred)
        balanced = skm.balanced_accuracy_score(y_true, y_pred)
        recall = skm.recall_score(y_true, y_pred, labels=np.arange(num_classes), average=None,
                                  zero_division=np.nan)
    conf = confusion_matrix(y_true, y_pred, num_classes)
    np.testing.assert_array_equal(np.asarray(conf), expected)
    s = summarize(conf)
    assert s["confusion"] == expected.tolist()
    assert s["oa"] == pytest.approx(accuracy)
    np.testing.assert_allclose(s["kappa"], kappa, rtol=1e-9, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(s["per_class"], recall, rtol=1e-12, equal_nan=True)
    present = np.isin(np.arange(num_classes), y_true)
    np.testing.assert_array_equal(np.isnan(s["per_class"]), ~present)
    assert s["aa"] == pytest.approx(balanced)
    assert s["aa"] == pytest.approx(np.mean(np.asarray(recall)[present]))
    for key in ("oa", "aa", "kappa"):
        assert type(s[key]) is float


def test_random_labels_with_a_missing_class():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 6, 500)
    y_true[y_true == 3] = 4                     # class 3 has no test pixels ...
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 6, 500))  # ... but is predicted
    assert (y_pred == 3).any()
    assert_matches_sklearn(y_true, y_pred, 6)
    s = summarize(confusion_matrix(y_true, y_pred, 6))
    assert np.isnan(s["per_class"][3])
    recall = skm.recall_score(y_true, y_pred, labels=[0, 1, 2, 4, 5], average=None)
    assert s["aa"] == pytest.approx(recall.mean())


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 7).flatmap(lambda c: st.tuples(
    st.just(c),
    st.lists(st.tuples(st.integers(0, c - 1), st.integers(0, c - 1)), min_size=1, max_size=40))))
def test_against_sklearn_on_generated_inputs(case):
    num_classes, pairs = case
    y_true, y_pred = (np.array(v) for v in zip(*pairs))
    assert_matches_sklearn(y_true, y_pred, num_classes)


def test_masked_batches_accumulate_to_the_full_matrix():
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 5, 203), rng.integers(0, 5, 203)
    update = jax.jit(update_confusion)
    conf = jnp.zeros((5, 5), jnp.int32)
    for start in range(0, 203, 64):             # last batch: 11 real entries, 53 padding
        t, p = y_true[start:start + 64], y_pred[start:start + 64]
        mask = np.arange(64) < len(t)
        pad = (0, 64 - len(t))
        conf = update(conf, np.pad(t, pad), np.pad(p, pad, constant_values=4), mask)
    np.testing.assert_array_equal(conf, skm.confusion_matrix(y_true, y_pred))


def test_vmapped_over_seeds():
    rng = np.random.default_rng(2)
    y_true, y_pred = rng.integers(0, 4, (3, 50)), rng.integers(0, 4, (3, 50))
    conf = jax.vmap(update_confusion)(jnp.zeros((3, 4, 4), jnp.int32), y_true, y_pred,
                                      np.ones((3, 50), bool))
    for s in range(3):
        np.testing.assert_array_equal(conf[s], skm.confusion_matrix(y_true[s], y_pred[s]))


def test_labels_out_of_range_are_not_counted():
    conf = confusion_matrix(np.array([0, 1, 2, -1, 3]), np.array([0, 1, 1, 0, 0]), 3)
    np.testing.assert_array_equal(conf, [[1, 0, 0], [0, 1, 0], [0, 1, 0]])


def test_kappa_is_nan_when_everything_is_one_class():
    s = summarize(np.array([[5, 0], [0, 0]]))
    assert s["oa"] == 1.0 and s["aa"] == 1.0 and np.isnan(s["kappa"])
    assert np.isnan(s["per_class"][1])


@pytest.mark.parametrize("conf, match", [
    (np.zeros((3, 3), int), "empty"),
    (np.ones((3, 2), int), r"square \(C, C\); got shape \(3, 2\)"),
    (np.full((2, 2), 0.5), "integer counts; got dtype float64"),
    (np.array([[1, -1], [0, 2]]), "non-negative"),
])
def test_summarize_rejects_bad_matrices(conf, match):
    with pytest.raises(ValueError, match=match):
        summarize(conf)


def test_update_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"y_true \(4,\), y_pred \(3,\)"):
        update_confusion(jnp.zeros((2, 2), jnp.int32), jnp.zeros(4, int), jnp.zeros(3, int))
