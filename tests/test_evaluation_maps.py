"""PNG figures: what they show (colours, series) and how they fail."""

import json
import os

import matplotlib
import matplotlib.image
import numpy as np
import pytest

from hsic_jax.evaluation.maps import (map_title, metric_series, palette, read_metrics, save_classification_map,
                                      save_confidence_map, save_plot_oa_vs_params, save_training_curves)


def _has_colour(image: np.ndarray, rgb) -> bool:
    return bool((np.abs(image[..., :3] - np.asarray(rgb)) < 1 / 255).all(axis=-1).any())


def test_palette_is_black_then_distinct_colours():
    colours = palette(20)
    assert colours.shape == (21, 3)
    np.testing.assert_array_equal(colours[0], 0)
    gaps = np.linalg.norm(colours[:, None] - colours[None], axis=-1) + np.eye(21)
    assert gaps.min() > 0.15
    assert len({tuple(c) for c in palette(30)}) == 31


def test_classification_map_shows_the_same_colour_for_a_class_in_both_panels(tmp_path):
    gt = np.zeros((40, 40), int)
    gt[:20, :20], gt[20:, 20:], gt[:20, 20:] = 1, 2, 3       # class 3 only in the ground truth
    pred = np.where(gt == 3, 0, gt)
    pred[30:, :10] = 1
    path = tmp_path / "map.png"
    save_classification_map(str(path), pred, gt, ["Water", "Grass", "Trees"], title="t")
    image = matplotlib.image.imread(path)
    colours = palette(3)
    left = image[:, : int(image.shape[1] * 0.4)]                  # the prediction panel
    assert _has_colour(left, colours[1]) and _has_colour(left, colours[2])
    assert not _has_colour(left, colours[3])
    assert _has_colour(image, colours[3])
    assert os.listdir(tmp_path) == ["map.png"]                     # no temporary file left


def test_classification_map_replaces_an_existing_file(tmp_path):
    path = tmp_path / "map.png"
    path.write_bytes(b"old")
    gt = np.arange(12).reshape(3, 4) % 3
    save_classification_map(str(path), gt, gt, ["a", "b"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("pred_shape, value, match", [
    ((5, 6), 1, r"same shape; got pred_map \(5, 6\), gt \(5, 5\)"),
    ((5, 5), 3, r"pred_map values must be in 0..2 \(len\(class_names\)\); got 0..3"),
    ((5, 5), -1, r"pred_map values must be in 0..2"),
    ((5, 5), 0.5, r"pred_map must hold integer class ids; got dtype float64"),
])
def test_classification_map_rejects_bad_maps(tmp_path, pred_shape, value, match):
    pred = np.zeros(pred_shape, type(value))
    pred[0, 0] = value
    with pytest.raises(ValueError, match=match):
        save_classification_map(str(tmp_path / "m.png"), pred, np.zeros((5, 5), int), ["a", "b"])
    assert not os.listdir(tmp_path)


def _colour_share(image: np.ndarray, rgb) -> float:
    """Fraction of the image's pixels that have colour `rgb`."""
    return float((np.abs(image[..., :3] - np.asarray(rgb)[:3]) < 1 / 255).all(axis=-1).mean())


def test_classification_map_can_mask_the_unlabelled_background(tmp_path):
    gt = np.zeros((40, 40), int)
    gt[:, :20] = 1                                                # the right half is unlabelled
    pred = np.full((40, 40), 2)                                   # predicted everywhere
    black, grass = palette(2)[0], palette(2)[2]
    shares = {}
    for mask in (False, True):
        path = tmp_path / f"map_{mask}.png"
        save_classification_map(str(path), pred, gt, ["Water", "Grass"], mask_unlabelled=mask)
        left = matplotlib.image.imread(path)
        left = left[:, : int(left.shape[1] * 0.4)]               # the prediction panel
        shares[mask] = _colour_share(left, black), _colour_share(left, grass)
    (black_plain, grass_plain), (black_masked, grass_masked) = shares[False], shares[True]
    assert black_plain < 0.01 and grass_plain > 0.4               # default: the whole prediction
    assert black_masked > 0.2 and 0.4 * grass_plain < grass_masked < 0.6 * grass_plain


def test_confidence_map_colours_follow_the_values_on_a_fixed_scale(tmp_path):
    confidence = np.full((40, 60), 0.25, np.float32)
    confidence[:, 30:] = 0.75
    path = tmp_path / "confidence.png"
    save_confidence_map(str(path), confidence, title="indian_pines · fft · seed 0 · OA 89.67 %")
    image = matplotlib.image.imread(path)
    viridis = matplotlib.colormaps["viridis"]
    low, high, lowest = (_colour_share(image, viridis(v)) for v in (0.25, 0.75, 0.0))
    assert low > 0.15 and high > 0.15                             # each half of the scene
    assert lowest < 0.02                                          # only in the colour bar: no rescaling
    assert os.listdir(tmp_path) == ["confidence.png"]


@pytest.mark.parametrize("confidence, match", [
    (np.full((4, 5, 2), 0.5), r"c\.png: confidence must be \(H, W\); got shape \(4, 5, 2\)"),
    (np.full((4, 5), 1.5), r"c\.png: confidence must be in \[0, 1\]; 20 values are not, the first 1\.5 at \(row 0"),
    (np.where(np.eye(4, 5) > 0, -0.1, 0.5), r"c\.png: confidence must be in \[0, 1\]; 4 values .* first -0\.1"),
    (np.where(np.eye(4, 5) > 0, np.nan, 0.5), r"c\.png: confidence must be in \[0, 1\]; 4 values .* first nan"),
    (np.full((4, 5), "0.5"), r"c\.png: confidence must hold real numbers; got dtype <U3"),
])
def test_confidence_map_rejects_bad_input(tmp_path, confidence, match):
    with pytest.raises(ValueError, match=match):
        save_confidence_map(str(tmp_path / "c.png"), confidence)
    assert not os.listdir(tmp_path)


def test_confidence_map_of_a_wide_scene(tmp_path):
    save_confidence_map(str(tmp_path / "c.png"), np.linspace(0, 1, 20 * 110).reshape(20, 110))
    image = matplotlib.image.imread(tmp_path / "c.png")
    assert image.shape[1] > image.shape[0]                        # colour bar below, not beside


def test_map_title():
    assert map_title("indian_pines", "fft", 0, 0.89671) == "indian_pines · fft · seed 0 · OA 89.67 %"
    assert map_title("botswana", "krona_plus", 3, 1.0) == "botswana · krona_plus · seed 3 · OA 100.00 %"
    with pytest.raises(ValueError, match=r"oa must be a fraction in \[0, 1\]; got 89\.67"):
        map_title("indian_pines", "fft", 0, 89.67)


def _write_metrics(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")


def test_metric_series_groups_keys_and_tolerates_missing_ones(tmp_path):
    path = tmp_path / "metrics.jsonl"
    _write_metrics(path, [
        {"step": 10, "epoch": 1, "train_loss": 0.9, "train_acc": 0.5, "lr": 1e-3},
        {"step": 20, "epoch": 2, "train_loss": 0.7, "lr": 5e-4, "test_oa": 0.6, "note": "x"},
        {"step": 30, "epoch": 3, "train_loss": None, "train_acc": 0.75},
    ])
    x_key, series = metric_series(read_metrics(str(path)))
    assert x_key == "epoch"
    assert series["loss"] == {"train_loss": ([1, 2], [0.9, 0.7])}
    assert series["acc"] == {"train_acc": ([1, 3], [50.0, 75.0]), "test_oa": ([2], [60.0])}
    assert series["lr"] == {"lr": ([1, 2], [1e-3, 5e-4])}
    save_training_curves(str(tmp_path / "curves.png"), str(path))
    assert matplotlib.image.imread(tmp_path / "curves.png").shape[1] > 1000   # three panels


def test_metric_series_falls_back_to_steps():
    x_key, series = metric_series([{"step": 5, "train_loss": 1.0}, {"step": 6, "epoch": 1, "train_loss": 0.5}])
    assert x_key == "step" and series["loss"]["train_loss"] == ([5, 6], [1.0, 0.5])


def test_training_curves_name_the_bad_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "train_loss": 1.0}\n{"step": 2, "train_lo\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl, line 2: not JSON"):
        save_training_curves(str(tmp_path / "c.png"), str(path))
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        save_training_curves(str(tmp_path / "c.png"), str(tmp_path / "missing.jsonl"))


def test_training_curves_of_an_empty_log(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    save_training_curves(str(tmp_path / "c.png"), str(tmp_path / "metrics.jsonl"))
    assert (tmp_path / "c.png").exists()


def test_oa_vs_params_plot(tmp_path):
    rows = [{"method": m, "dataset": d, "trainable_params": p, "oa": oa, **extra}
            for d in ("Botswana", "Indian Pines")
            for m, p, oa, extra in (("LP", 1e4, 0.6, {}), ("KronA+", 5e4, 0.9, {"oa_std": 0.01}))]
    save_plot_oa_vs_params(str(tmp_path / "oa.png"), rows)
    image = matplotlib.image.imread(tmp_path / "oa.png")
    assert _has_colour(image, palette(2)[1]) and _has_colour(image, palette(2)[2])
