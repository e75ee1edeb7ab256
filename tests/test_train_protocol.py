"""The evaluation protocol through the real training loop (in-process, tiny encoder, seconds).

These tests fail when the pipeline is subtly wrong while still producing plausible numbers:
evaluation on the wrong pixels, the test set looked at before the end, patches cut
off-centre, labels misaligned with their patches, a selected state that is not the best
validation state.
"""

import json
import os
import shutil

import jax
import ml_collections
import numpy as np
import pytest

from configs import demo
from hsic_jax.data.pipeline import load_data
from hsic_jax.data.split import Split
from hsic_jax.train import checkpoint, loop
from hsic_jax.train.step import Geometry, inputs

TINY = dict(width=24, depth=1, heads=2, patch_size=4)


def tiny_demo(**data):
    """The demo config on a tiny encoder: 7-pixel windows resized to 8, two epochs."""
    config = demo.get_config()
    config.model.update(TINY)
    config.data = ml_collections.ConfigDict({**config.data.to_dict(), "neighborhood": 7,
                                             "input_size": 8, **data})
    config.update(dict(epochs=2, batch_size=32, eval_every_epochs=1, checkpoint_every_epochs=1,
                       save_map=False))
    config.optim.warmup_epochs = 1
    return config


class Recorder:
    """Wraps `loop.evaluate`, recording the pixel sets it is given, in call order."""

    def __init__(self, monkeypatch):
        self.calls = []
        original = loop.evaluate

        def evaluate(predict_fn, params, padded, pixels, **kwargs):
            self.calls.append({k: np.asarray(v) for k, v in pixels.items()})
            return original(predict_fn, params, padded, pixels, **kwargs)

        monkeypatch.setattr(loop, "evaluate", evaluate)

    def sets(self, splits: list[Split]) -> list[str]:
        """Which part ('train', 'val', 'test') of every seed's split each call evaluated."""
        names = []
        for pixels in self.calls:
            for part in ("train", "val", "test"):
                if all(np.array_equal(pixels["coords"][s][pixels["valid"][s]], getattr(split, part))
                       for s, split in enumerate(splits)):
                    names.append(part)
                    break
            else:
                names.append("other")
        return names


def recorded_run(workdir, config):
    """(results, the pixel sets evaluated, in order, the splits) of a run of `config`."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        recorder = Recorder(monkeypatch)
        results = loop.train_and_evaluate(config, str(workdir))
    splits = [Split.load(workdir / f"split_seed{s}.json") for s in range(config.num_seeds)]
    return results, recorder.sets(splits), splits


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    """The paper's protocol (no validation, last state), statistics fitted on training pixels."""
    workdir = tmp_path_factory.mktemp("plain")
    return (workdir, *recorded_run(workdir, tiny_demo(fit_on="train")))


@pytest.fixture(scope="module")
def best_val_run(tmp_path_factory):
    """Two seeds selected on 4 validation pixels per class over 3 epochs."""
    workdir = tmp_path_factory.mktemp("best_val")
    config = tiny_demo(val_per_class=4)
    config.update(dict(select="best_val", num_seeds=2, epochs=3))
    return (workdir, config, *recorded_run(workdir, config))


def test_test_pixels_are_predicted_once_at_the_end_and_fill_the_confusion_matrix(plain_run):
    workdir, results, evaluated, (split,) = plain_run
    assert evaluated == ["test"]  # no validation pixels: no in-loop evaluation
    confusion = np.array(results["confusion"])
    assert confusion.sum() == len(split.test) == 10249 - 695
    per_class_test = [row["test"] for row in split.table()[:-1]]
    assert confusion.sum(axis=1).tolist() == per_class_test
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert not any(k.startswith(("test", "val")) for row in rows for k in row)


def test_protocol_and_leakage_are_recorded(plain_run):
    workdir, results, _, _ = plain_run
    protocol = results["protocol"]
    assert {k: protocol[k] for k in ("split", "spatially_disjoint", "window", "train", "val",
                                     "test", "fit_on", "select")} == {
        "split": "per_class", "spatially_disjoint": False, "window": 7, "train": 695, "val": 0,
        "test": 9554, "fit_on": "train", "select": "last"}
    assert 0.6 < results["leakage"]["test"] < 1 and results["leakage"]["val"] is None
    assert results["seeds"][0]["leakage"]["test"] == results["leakage"]["test"]
    assert (workdir / "pca_seed0.npz").exists() and not (workdir / "pca.npz").exists()
    assert "tested once" in protocol["summary"]


def test_timings_and_compilations_are_recorded(plain_run):
    """`results.json` says where the time went and how many XLA compilations the run made
    (a handful: data, init, step, predict; not one per operation; fewer when the tests'
    persistent compilation cache already holds them)."""
    workdir, results, _, _ = plain_run
    timings = json.loads((workdir / "results.json").read_text())["timings"]
    assert set(timings) == {"compile_s", "data_s", "init_s", "train_s", "eval_s", "total_s"}
    assert all(v > 0 for v in timings.values())
    parts = sum(timings[k] for k in ("data_s", "init_s", "train_s", "eval_s"))
    assert parts <= timings["total_s"] and timings["compile_s"] <= timings["total_s"]
    assert isinstance(results["compiles"], int) and 0 <= results["compiles"] <= 12
    machine = results["machine"]  # where those seconds were spent
    assert machine["cores"] == os.cpu_count() and machine["devices"] == {"cpu": 1}
    assert machine["cpu"] and machine["jax"] == jax.__version__


def test_best_val_selection_looks_at_validation_pixels_only_until_the_end(best_val_run):
    workdir, _, results, evaluated, splits = best_val_run
    # Validation after each epoch, then the selected state and the last state on the test set.
    assert evaluated == ["val", "val", "val", "test", "test"]
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert len([row["val_oa"] for row in rows]) == 3
    for entry in results["seeds"]:
        assert 1 <= entry["selected_epoch"] <= 3 and 0 <= entry["val_oa"] <= 1
    assert results["protocol"]["select"] == "best_val" and results["protocol"]["val"] == 64
    assert set(results["last"]) == {"oa", "oa_std", "aa", "aa_std", "kappa", "kappa_std"}
    confusion = np.array(results["confusion"])
    assert confusion.sum(axis=1).tolist() == [row["test"] for row in splits[0].table()[:-1]]


def test_a_resumed_run_selects_the_same_state(best_val_run, tmp_path):
    workdir, config, first, _, _ = best_val_run
    shutil.copytree(workdir, tmp_path / "b")
    mngr = checkpoint.manager(str(tmp_path / "b"))
    steps = mngr.all_steps()
    assert len(steps) == 2
    restored = mngr.restore(steps[0])
    assert set(restored) == {"state", "best"}  # the best validation state is checkpointed
    shutil.rmtree(tmp_path / "b" / "checkpoints" / str(max(steps)))
    (tmp_path / "b" / "results.json").unlink()
    second = loop.train_and_evaluate(config, str(tmp_path / "b"))
    for key in ("oa", "aa", "kappa", "confusion", "seeds"):
        assert first[key] == second[key], key


def test_spatially_disjoint_split_has_no_leakage(tmp_path):
    results = loop.train_and_evaluate(tiny_demo(spatially_disjoint=True), str(tmp_path))
    assert results["leakage"]["test"] == 0.0 and results["protocol"]["spatially_disjoint"]


CLASSES = 5


def synthetic_scene(tmp_path, size=40, bands=6, seed=0):
    """Every pixel labelled 1..5 at random; its spectrum is the one-hot of its class (over the first
    5 of 6 bands) plus noise, so a pixel's class is a function of that pixel alone and its
    neighbours say nothing. (More than two classes: with two, a model trained on labels shuffled
    against their pixels still gets 0 % or 100 % by a coin flip.)"""
    rng = np.random.default_rng(seed)
    gt = rng.integers(1, CLASSES + 1, (size, size)).astype(np.int32)
    cube = np.eye(bands)[gt - 1] + 0.1 * rng.normal(size=(size, size, bands))
    np.save(tmp_path / "cube.npy", cube.astype(np.float32))
    np.save(tmp_path / "gt.npy", gt)
    return cube.astype(np.float32), gt


def scene_config(tmp_path, window, **data):
    config = tiny_demo(name="files", cube_path=str(tmp_path / "cube.npy"),
                       gt_path=str(tmp_path / "gt.npy"), train_per_class=40, num_classes=CLASSES,
                       pca=None, normalize="none", neighborhood=window, input_size=window, **data)
    config.model.update(dict(patch_size=window, pool_skip_first=False))
    config.augment.update(dict(flip=False, radiation_noise=0.0, mixture_noise=0.0))
    return config


def test_the_centre_of_every_model_input_is_the_labelled_pixel(tmp_path):
    cube, _ = synthetic_scene(tmp_path)
    config = scene_config(tmp_path, 7)
    data = load_data(config.data, [0])
    geo = Geometry(config.data.neighborhood, config.data.input_size, config.data.resize)
    for part in (data.train, data.test):
        coords = part["coords"][0][part["valid"][0]]
        x = np.asarray(inputs(data.padded[0], coords, geo))
        assert x.shape == (len(coords), 7, 7, 6)
        np.testing.assert_array_equal(x[:, 3, 3], cube[coords[:, 0], coords[:, 1]])


def test_a_pixel_only_task_is_learnt_through_the_real_step_and_predict(tmp_path):
    """A 1-pixel window: any misalignment of patches, labels or predictions gives chance (20 %)."""
    synthetic_scene(tmp_path)
    config = scene_config(tmp_path, 1)
    config.update(dict(epochs=15, eval_every_epochs=15))
    config.optim.lr = 1e-2
    results = loop.train_and_evaluate(config, str(tmp_path / "run"))
    assert results["oa"] >= 0.97, results["oa"]


@pytest.mark.parametrize("field,value,message", [
    ("select", "best", r"config.select='best'; expected one of \('last', 'best_val'\)"),
    ("data.fit_on", "test", r"config.data.fit_on='test'; expected one of \('scene', 'train'\)"),
    ("data.resize", "lanczos", r"config.data.resize='lanczos'; expected one of"),
    ("select", "best_val", r"set config.data.val_per_class"),
    ("optim.layer_decay", 1.5, r"config.optim.layer_decay=1.5; expected a number in \(0, 1\]"),
])
def test_bad_protocol_fields_are_refused_before_any_work(tmp_path, field, value, message):
    config = tiny_demo()
    node, _, key = field.rpartition(".")
    (config[node] if node else config)[key] = value
    with pytest.raises(ValueError, match=message):
        loop.train_and_evaluate(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_official_recipe_reaches_the_optimizer_and_the_step(tmp_path, monkeypatch):
    """configs/indian_pines_fft_official.py on a tiny encoder: layer decay, mixup/cutmix, label
    smoothing and bicubic resizing are what the loop hands to the optimizer and the step."""
    from configs import indian_pines_fft_official
    from hsic_jax.train import state, step, sweep

    config = indian_pines_fft_official.get_config()
    config.model.update(dict(width=24, depth=2, heads=2, patch_size=4))
    config.data.update(dict(neighborhood=7, input_size=8))
    config.update(dict(init="random", epochs=1, batch_size=32, save_map=False))
    config.optim.warmup_epochs = 1
    seen = {}
    make_optimizer, mix_batch, resize_patches = state.make_optimizer, step.mix_batch, step.resize_patches
    hyperparams = sweep.hyperparams

    def spy_optimizer(*args, lr_scales=None):
        seen["lr_scales"] = lr_scales
        return make_optimizer(*args, lr_scales=lr_scales)

    def spy_mix(*args, **kwargs):
        seen["mix"] = kwargs
        return mix_batch(*args, **kwargs)

    def spy_resize(patches, size, method):
        seen["resize"] = method
        return resize_patches(patches, size, method)

    def spy_hyperparams(*args):
        seen["hp"] = hyperparams(*args)
        return seen["hp"]

    monkeypatch.setattr(sweep, "hyperparams", spy_hyperparams)
    monkeypatch.setattr(state, "make_optimizer", spy_optimizer)
    monkeypatch.setattr(step, "mix_batch", spy_mix)
    monkeypatch.setattr(step, "resize_patches", spy_resize)
    results = loop.train_and_evaluate(config, str(tmp_path))
    scales = seen["lr_scales"]
    assert scales["backbone"]["patch_embed"]["kernel"] == pytest.approx(0.75 ** 3)
    assert scales["backbone"]["block_0"]["attn"]["q"]["kernel"] == pytest.approx(0.75 ** 2)
    assert scales["backbone"]["block_1"]["mlp"]["fc1"]["bias"] == pytest.approx(0.75)
    assert scales["head"]["kernel"] == scales["backbone"]["norm"]["scale"] == 1.0
    assert seen["mix"] == dict(mixup_alpha=0.8, cutmix_alpha=1.0)
    assert seen["hp"]["label_smoothing"].tolist() == [pytest.approx(0.1)]  # the step's targets
    assert seen["resize"] == "bicubic"
    assert 0 <= results["oa"] <= 1
