"""Metrics against scikit-learn, the independent oracle."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from hsic_jax.evaluation.metrics import confusion_matrix, summarize


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


def test_masked_entries_are_not_counted():
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 5, 256), rng.integers(0, 5, 256)
    mask = np.arange(256) < 203                  # the last 53 entries are padding
    conf = confusion_matrix(y_true, y_pred, 5, mask)
    np.testing.assert_array_equal(conf, skm.confusion_matrix(y_true[:203], y_pred[:203]))


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


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"y_true \(4,\), y_pred \(3,\)"):
        confusion_matrix(np.zeros(4, int), np.zeros(3, int), 2)
