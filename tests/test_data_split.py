"""Splits: the paper's Indian Pines split, counts, caps, given maps, persistence, spatial disjointness,
validation pixels and leakage."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hsic_jax.data.io import DataError
from hsic_jax.data.scenes import Scene, load_scene
from hsic_jax.data.split import Split, leakage, make_split

SMALL = {"Alfalfa", "Grass-pasture-mowed", "Oats"}  # the paper trains on 15 of these, 50 of the others


@pytest.fixture(scope="module")
def indian_pines():
    return load_scene("indian_pines")


def paper_counts(scene):
    return {n: 15 if n in SMALL else 50 for n in scene.class_names}


def toy_scene(gt, train_gt=None, test_gt=None):
    gt = np.asarray(gt, np.int32)
    c = int(gt.max())
    cube = np.zeros(gt.shape + (2,), np.float32)
    return Scene("toy", cube, gt, tuple(f"c{k}" for k in range(1, c + 1)), tuple(range(1, c + 1)), "test",
                 train_gt, test_gt)


def chebyshev_min(a, b):
    """Smallest Chebyshev distance between any pixel of a (N, 2) and any of b (M, 2): brute force."""
    if not len(a) or not len(b):
        return np.inf
    return np.abs(a[:, None, :].astype(int) - b[None, :, :]).max(-1).min()


def as_set(coords):
    return set(map(tuple, coords.tolist()))


def test_indian_pines_paper_split(indian_pines):
    split = make_split(indian_pines, seed=0, per_class=paper_counts(indian_pines))
    assert len(split.train) == 695 and len(split.test) == 10249 - 695
    assert not as_set(split.train) & as_set(split.test)
    gt = indian_pines.gt
    np.testing.assert_array_equal(gt[tuple(split.train.T)] - 1, split.train_labels)
    np.testing.assert_array_equal(gt[tuple(split.test.T)] - 1, split.test_labels)
    want = [15 if n in SMALL else 50 for n in indian_pines.class_names]
    assert np.bincount(split.train_labels, minlength=16).tolist() == want
    assert split.train.dtype == np.int32 and split.train.shape == (695, 2)
    same = make_split(indian_pines, seed=0, per_class=paper_counts(indian_pines))
    other = make_split(indian_pines, seed=1, per_class=paper_counts(indian_pines))
    np.testing.assert_array_equal(split.train, same.train)
    np.testing.assert_array_equal(split.test, same.test)
    assert as_set(split.train) != as_set(other.train)
    md = split.to_markdown()
    assert "| 1 | Alfalfa | 15 | 31 |" in md and "|  | Total | 695 | 9554 |" in md


def test_indian_pines_spatially_disjoint(indian_pines):
    split = make_split(indian_pines, seed=3, per_class=paper_counts(indian_pines), spatially_disjoint=True,
                       patch_size=15)
    assert len(split.train) == 695
    assert chebyshev_min(split.train, split.test) > 7
    assert len(split.test) + int(split.excluded.sum()) == 10249 - 695
    assert "Excluded" in split.to_markdown()


def test_fraction_and_int_per_class():
    gt = np.zeros((10, 10), np.int32)
    gt[:3], gt[5:9] = 1, 2  # 30 and 40 pixels
    split = make_split(toy_scene(gt), seed=0, fraction=0.25)
    assert np.bincount(split.train_labels).tolist() == [8, 10]  # round(7.5) = 8, round(10) = 10
    split = make_split(toy_scene(gt), seed=0, per_class=29)
    assert np.bincount(split.train_labels).tolist() == [29, 29]
    assert np.bincount(split.test_labels).tolist() == [1, 11]


@pytest.mark.parametrize("per_class", [2.7, -1, True, {"c1": 3, "c2": 2.5}])
def test_training_counts_must_be_non_negative_integers(per_class):
    gt = np.zeros((10, 10), np.int32)
    gt[:3], gt[5:9] = 1, 2
    with pytest.raises(DataError, match="training count must be a non-negative integer"):
        make_split(toy_scene(gt), seed=0, per_class=per_class)


def test_too_few_pixels_is_an_error_unless_capped():
    gt = np.zeros((10, 10), np.int32)
    gt[:3], gt[5:6] = 1, 2  # 30 and 10 pixels
    with pytest.raises(DataError, match=r"class 'c2' has 10 labelled pixels but 12 were asked"):
        make_split(toy_scene(gt), seed=0, per_class=12)
    split = make_split(toy_scene(gt), seed=0, per_class=12, cap=True)
    assert np.bincount(split.train_labels).tolist() == [12, 5]


def test_per_class_dict_must_name_every_class(indian_pines):
    counts = paper_counts(indian_pines)
    del counts["Oats"]
    with pytest.raises(DataError, match=r"missing: \['Oats'\]"):
        make_split(indian_pines, seed=0, per_class=counts)
    with pytest.raises(DataError, match=r"unknown: \['Oat'\]"):
        make_split(indian_pines, seed=0, per_class={**counts, "Oat": 3, "Oats": 3})
    with pytest.raises(DataError, match="not both"):
        make_split(indian_pines, seed=0, per_class=5, fraction=0.1)
    with pytest.raises(DataError, match="no given train/test maps"):
        make_split(indian_pines, seed=0)
    with pytest.raises(DataError, match="odd patch_size"):
        make_split(indian_pines, seed=0, per_class=5, spatially_disjoint=True, patch_size=4)


def test_given_maps():
    train = np.zeros((6, 8), np.int32)
    test = np.zeros((6, 8), np.int32)
    train[0, :2], test[5, :3] = [1, 2], [2, 1, 1]
    split = make_split(toy_scene(train + test, train, test), seed=0)
    assert as_set(split.train) == {(0, 0), (0, 1)} and as_set(split.test) == {(5, 0), (5, 1), (5, 2)}
    assert split.test_labels.tolist() == [1, 0, 0]
    buffered = make_split(toy_scene(train + test, train, test), seed=0, spatially_disjoint=True, patch_size=11)
    assert len(buffered.test) == 0 and buffered.excluded.tolist() == [2, 1]


def test_save_load_roundtrip_and_check(tmp_path, indian_pines):
    split = make_split(indian_pines, seed=0, per_class=paper_counts(indian_pines), val=5)
    path = tmp_path / "split.json"
    split.save(path)
    loaded = Split.load(path)
    for name in ("train", "train_labels", "val", "val_labels", "test", "test_labels", "excluded"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(split, name))
    assert loaded.class_names == split.class_names and loaded.config["seed"] == 0
    assert loaded.table() == split.table()
    loaded.check(indian_pines)
    other = toy_scene(np.ones((3, 3)))
    with pytest.raises(DataError, match="has classes"):
        loaded.check(other)
    assert [p.name for p in tmp_path.iterdir()] == ["split.json"]  # no temporary left behind


def test_load_rejects_bad_files(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match=r"s\.json: not a readable split file"):
        Split.load(path)
    doc = {"format": "hsic-jax split v1", "scene": "x", "class_names": ["a"], "config": {}, "train": [[0, 0]],
           "train_labels": [0], "test": [[0, 0]], "test_labels": [0], "excluded": [0]}
    path.write_text(json.dumps({k: v for k, v in doc.items() if k != "test"}))
    with pytest.raises(DataError, match=r"lacks key\(s\) \['test'\]"):
        Split.load(path)
    path.write_text(json.dumps({**doc, "train_labels": [3]}))
    with pytest.raises(DataError, match=r"train_labels must be 1 values in 0\.\.0"):
        Split.load(path)
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match="train and test pixels overlap"):
        Split.load(path)
    doc = {**doc, "format": "hsic-jax split v2", "test": [[1, 1]], "val": [[1, 1]], "val_labels": [0]}
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match="val and test pixels overlap"):
        Split.load(path)


def test_version_1_files_load_without_validation_pixels(tmp_path):
    doc = {"format": "hsic-jax split v1", "scene": "x", "class_names": ["a"], "config": {}, "train": [[0, 0]],
           "train_labels": [0], "test": [[0, 1]], "test_labels": [0], "excluded": [0]}
    (tmp_path / "s.json").write_text(json.dumps(doc))
    split = Split.load(tmp_path / "s.json")
    assert split.val.shape == (0, 2) and split.table()[-1]["val"] == 0


@settings(max_examples=60, deadline=None)
@given(
    gt=st.integers(1, 3).flatmap(
        lambda c: st.tuples(st.integers(3, 14), st.integers(3, 14)).flatmap(
            lambda hw: st.lists(st.integers(0, c), min_size=hw[0] * hw[1], max_size=hw[0] * hw[1]).map(
                lambda v: np.array(v).reshape(hw)))),
    per_class=st.integers(1, 6),
    radius=st.integers(0, 3),
    seed=st.integers(0, 2**31 - 1),
)
def test_spatially_disjoint_split_never_shows_a_test_pixel(gt, per_class, radius, seed):
    present = np.unique(gt[gt > 0])
    codes = np.zeros(gt.max() + 1, np.int32)
    codes[present] = np.arange(1, len(present) + 1)
    gt = codes[gt]  # classes 1..C, none empty
    if gt.max() == 0:
        return
    split = make_split(toy_scene(gt), seed=seed, per_class=per_class, cap=True, spatially_disjoint=True,
                       patch_size=2 * radius + 1)
    assert chebyshev_min(split.train, split.test) > radius
    counts = np.bincount(gt.ravel(), minlength=gt.max() + 1)[1:]
    want = np.where(counts <= per_class, counts // 2, per_class)
    assert np.bincount(split.train_labels, minlength=len(counts)).tolist() == want.tolist()
    everything = len(split.train) + len(split.test) + int(split.excluded.sum())
    assert everything == int((gt > 0).sum()) and not as_set(split.train) & as_set(split.test)


def test_validation_pixels_come_out_of_the_training_pixels(indian_pines):
    counts = paper_counts(indian_pines)
    plain = make_split(indian_pines, seed=4, per_class=counts)
    split = make_split(indian_pines, seed=4, per_class=counts, val=5)
    np.testing.assert_array_equal(split.test, plain.test)  # the test set does not depend on val
    assert as_set(split.train) | as_set(split.val) == as_set(plain.train)
    assert not as_set(split.train) & as_set(split.val)
    assert np.bincount(split.val_labels, minlength=16).tolist() == [5] * 16
    assert len(split.train) == 695 - 80
    np.testing.assert_array_equal(indian_pines.gt[tuple(split.val.T)] - 1, split.val_labels)
    md = split.to_markdown()
    assert "Validation Pixels" in md and "| 1 | Alfalfa | 10 | 5 | 31 |" in md
    assert "Validation Pixels" not in plain.to_markdown()


def test_validation_fraction_and_given_maps():
    gt = np.zeros((10, 10), np.int32)
    gt[:3], gt[5:9] = 1, 2  # 30 and 40 pixels
    split = make_split(toy_scene(gt), seed=0, per_class=20, val=0.25)
    assert np.bincount(split.val_labels).tolist() == [5, 5]
    assert np.bincount(split.train_labels).tolist() == [15, 15]
    split = make_split(toy_scene(gt), seed=0, per_class=4, val=0.1)
    assert np.bincount(split.val_labels).tolist() == [1, 1]  # at least one
    train = np.zeros((6, 8), np.int32)
    train[0, :4], train[1, :4] = 1, 2
    test = np.zeros((6, 8), np.int32)
    test[5, :3] = 1
    test[4, :3] = 2
    split = make_split(toy_scene(train + test, train, test), seed=0, val=1)
    assert np.bincount(split.val_labels).tolist() == [1, 1]
    assert as_set(split.train) | as_set(split.val) == as_set(np.argwhere(train > 0))


@pytest.mark.parametrize("val,message", [(-1, "got -1"), (1.5, "got 1.5"), ("3", "got '3'"),
                                         (True, "got True"), (20, "'c1' has 20 training pixels")])
def test_bad_validation_counts_name_the_value(val, message):
    gt = np.zeros((10, 10), np.int32)
    gt[:3], gt[5:9] = 1, 2
    with pytest.raises(DataError, match=message):
        make_split(toy_scene(gt), seed=0, per_class=20, val=val)


def brute_force_leakage(split, window):
    r = window // 2
    inside = [chebyshev_min(np.array([p]), split.train) <= r for p in split.test]
    return float(np.mean(inside))


def test_leakage_of_the_papers_random_split_and_of_a_disjoint_one(indian_pines):
    counts = paper_counts(indian_pines)
    random = make_split(indian_pines, seed=0, per_class=counts, val=3)
    got = leakage(random, 15, indian_pines.gt.shape)
    assert 0.95 < got["test"] < 1.0 and 0.5 < got["val"] <= 1.0
    disjoint = make_split(indian_pines, seed=0, per_class=counts, spatially_disjoint=True, patch_size=15)
    assert leakage(disjoint, 15, indian_pines.gt.shape) == {"test": 0.0, "val": None}
    assert leakage(random, 1, indian_pines.gt.shape)["test"] == 0.0  # a 1-pixel window shows no neighbour


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), per_class=st.integers(1, 8), radius=st.integers(0, 3))
def test_leakage_equals_a_brute_force_count(seed, per_class, radius):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 3, (12, 9)).astype(np.int32)
    gt[0, :2] = [1, 2]  # both classes present
    split = make_split(toy_scene(gt), seed=seed, per_class=per_class, cap=True)
    want = brute_force_leakage(split, 2 * radius + 1) if len(split.test) else None
    assert leakage(split, 2 * radius + 1, gt.shape)["test"] == pytest.approx(want)
