"""Masked pre-training (`hsic_jax.train.pretrain`) end to end on a small synthetic scene: the
loss falls, an interrupted run resumes to the end an uninterrupted one reaches, several
scenes share one canvas, bad configs are refused before any work, and the encoder it writes
loads into every fine-tuning method."""

import json

import jax
import numpy as np
import pytest

from configs import base, pretrain_demo
from hsic_jax.adapters.methods import METHODS
from hsic_jax.data.io import DataError
from hsic_jax.data.patches import extract_patches, pad_cube
from hsic_jax.data.pipeline import load_unlabelled
from hsic_jax.models.converted import load_converted, load_params, read_manifest
from hsic_jax.train import checkpoint as checkpoint_module
from hsic_jax.train.checks import check_pretrain_config
from hsic_jax.train.pretrain import continued_from, pretrain
from hsic_jax.train.state import mae_model
from hsic_jax.train.partition import combine
from hsic_jax.train.state import create_train_state, pretrained_backbone, tuned_model

H, W, B = 24, 20, 12


def scene(path, h=H, w=W, bands=B, seed=0):
    """A smooth synthetic scene (a few spatial-spectral waves and noise) with a label map."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:h, :w]
    spectra = rng.normal(size=(3, bands))
    maps = [np.sin(rows / 3.0 + k) * np.cos(cols / (2.0 + k)) for k in range(3)]
    cube = sum(m[..., None] * s for m, s in zip(maps, spectra))
    cube = (cube + 0.05 * rng.normal(size=cube.shape)).astype(np.float32)
    gt = (rows // (h // 2)) * 2 + cols // (w // 2) + 1
    np.savez(path, cube=cube, gt=gt.astype(np.int32))
    return str(path)


def tiny_config(cube_path, **overrides):
    config = pretrain_demo.get_config()
    config.data.update(name="files", cube_path=cube_path, gt_path=cube_path, cube_key="cube",
                       gt_key="gt", pca=None, neighborhood=5, input_size=8)
    config.model.update(width=24, depth=1, heads=2)
    config.pretrain.update(mask_ratio=0.75, decoder=dict(width=16, depth=1, heads=2),
                           reconstructions=2)
    config.optim.warmup_epochs = 1.0
    config.batch_size = 64
    config.epochs = 6
    config.checkpoint_every_epochs = 2
    for field, value in overrides.items():
        *parents, leaf = field.split(".")
        node = config
        for p in parents:
            node = node[p]
        node[leaf] = value
    return config


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """An uninterrupted pre-training: `(config, workdir, results)`."""
    tmp = tmp_path_factory.mktemp("pretrain")
    config = tiny_config(scene(tmp / "scene.npz"))
    return config, tmp / "straight", pretrain(config, str(tmp / "straight"))


def metric_rows(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_the_reconstruction_loss_falls_and_every_output_is_written(finished):
    config, workdir, results = finished
    losses = [r["train_loss"] for r in metric_rows(workdir)]
    assert len(losses) == config.epochs
    assert results["final_loss"] < 0.8 * results["first_loss"], losses
    assert results["pixels"] == H * W
    for name in ("reconstructions.png", "training_curves.png", "results.json", "config.json"):
        assert (workdir / name).is_file(), name
    manifest = read_manifest(str(workdir / "pretrained"))
    assert manifest["model"]["pos_embed"] == "separable"
    assert manifest["decoder"] == {"width": 16, "depth": 1, "heads": 2}
    params = load_params(str(workdir / "pretrained"))
    assert set(params) == {"backbone", "decoder"}
    with pytest.raises(ValueError, match="holds an encoder without a classifier"):
        load_converted(str(workdir / "pretrained"))
    assert "pos_embed_spatial" in params["backbone"]


def test_an_interrupted_pretraining_resumes_to_the_same_end(finished, tmp_path, monkeypatch):
    config, straight, _ = finished
    saves = []
    real_save = checkpoint_module.save

    def save_then_stop(mngr, step, state):  # the run dies right after its first checkpoint
        real_save(mngr, step, state)
        saves.append(step)
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        pretrain(config, str(tmp_path))
    assert not (tmp_path / "results.json").exists()
    assert len(metric_rows(tmp_path)) == 2
    monkeypatch.setattr(checkpoint_module, "save", real_save)
    pretrain(config, str(tmp_path))
    assert metric_rows(tmp_path) == metric_rows(straight)
    a, b = (load_params(str(w / "pretrained")) for w in (straight, tmp_path))
    jax.tree.map(np.testing.assert_array_equal, a, b)


def test_a_pretraining_workdir_given_as_the_checkpoint_points_to_its_checkpoint(finished):
    _, workdir, _ = finished
    with pytest.raises(FileNotFoundError, match=rf"^{workdir} is not a converted checkpoint, but "
                                                rf"holds one: set --config.pretrained_dir="
                                                rf"{workdir / 'pretrained'}$"):
        read_manifest(str(workdir), "spectralgpt")


@pytest.mark.parametrize("method", METHODS)
def test_the_pretrained_encoder_loads_into_every_fine_tuning_method(finished, method):
    config, workdir, _ = finished
    fine = base.get_config("indian_pines", method)
    fine.init, fine.pretrained_dir = "pretrained", str(workdir / "pretrained")
    fine.model.update(variant=None, width=24, depth=1, heads=2, patch_size=4,
                      pos_embed="separable", drop_path=0.0)
    fine.data.update(input_size=8, pca=None)
    fine.method.targets = ("q", "v")
    if method in ("krona", "krona_plus"):
        fine.method.update(a_shape=(12, 2), b_shape=(2, 12))
    tuned = tuned_model(fine, num_classes=4, bands=B)
    backbone = pretrained_backbone(fine, tuned.module)
    setup, state, frozen = create_train_state(fine, tuned, [0], 2, {"backbone": backbone})
    params = combine(jax.tree.map(lambda x: x[0], state["params"]), frozen)
    jax.tree.map(np.testing.assert_array_equal, params["backbone"],
                 load_params(str(workdir / "pretrained"))["backbone"])
    x = np.zeros((2, 8, 8, B), np.float32)
    assert tuned.apply(params, x).shape == (2, 4)


def test_scenes_stand_side_by_side_and_each_pixel_sees_its_own_cube(tmp_path):
    first = scene(tmp_path / "a.npz")
    second = np.random.default_rng(1).normal(size=(9, 31, B)).astype(np.float32)
    np.save(tmp_path / "b.npy", second)
    cfg = tiny_config(first, **{"data.normalize": "none"}).data
    data = load_unlabelled(cfg, [0, 1], [str(tmp_path / "b.npy")])
    r = cfg.neighborhood // 2
    assert data.padded.shape == (2, H + 2 * r, (W + 2 * r) + (31 + 2 * r), B)
    assert data.train["valid"].all() and data.train["coords"].shape == (2, H * W + 9 * 31, 2)
    assert not data.has_val
    # every pixel's neighbourhood is its own cube's, mirror-padded as that cube alone would be
    for cube, coords in ((np.load(first)["cube"], data.train["coords"][0, :H * W]),
                         (second, data.train["coords"][0, H * W:])):
        own = pad_cube(cube, r, cfg.padding)
        rows, cols = np.indices(cube.shape[:2]).reshape(2, -1)
        np.testing.assert_array_equal(
            extract_patches(data.padded[0], coords, cfg.neighborhood),
            extract_patches(own, np.stack([rows, cols], 1), cfg.neighborhood))


def test_cubes_of_other_bands_without_pca_are_refused_naming_the_file(tmp_path):
    first = scene(tmp_path / "a.npz")
    np.save(tmp_path / "b.npy", np.zeros((8, 8, 7), np.float32))
    with pytest.raises(DataError, match=r"b\.npy: cube has 7 bands but .*a\.npz.* has 12"):
        load_unlabelled(tiny_config(first).data, [0], [str(tmp_path / "b.npy")])


@pytest.mark.parametrize("field, value, message", [
    ("augment.mixup", 0.8, r"augment\.mixup=0\.8: batch mixing mixes labels"),
    ("pretrain.mask_ratio", 1.0, r"pretrain\.mask_ratio=1\.0; expected a number in \(0, 1\)"),
    ("pretrain.mask_ratio", 0.99, r"hides every one of the 16 tokens"),
    ("method.name", "lora", r"method\.name='lora'"),
    ("model.name", "spectralformer", r"model\.name='spectralformer'"),
    ("pretrain.decoder.heads", 0, r"pretrain\.decoder\.heads=0"),
])
def test_bad_pretraining_configs_are_refused_before_any_work(tmp_path, field, value, message):
    config = tiny_config(scene(tmp_path / "a.npz"), **{"data.pca": 12, field: value})
    with pytest.raises(ValueError, match=message):
        check_pretrain_config(config)
    with pytest.raises(ValueError, match=message):
        pretrain(config, str(tmp_path / "work"))
    assert not (tmp_path / "work").exists()


def test_pretraining_continues_from_a_converted_official_checkpoint(tmp_path):
    """SpectralGPT+'s layout (encoder + decoder, random weights here) → the converter → a
    pre-training with init='pretrained' starts from both, and one epoch runs on."""
    import torch_mae
    import torch_reference as ref
    from convert.spectralgpt import main as convert_main

    config = tiny_config(scene(tmp_path / "scene.npz"), init="pretrained", epochs=1,
                         pretrained_dir=str(tmp_path / "flax"))
    arch = dict(img_size=8, patch_size=4, tubelet=3, bands=B, width=24, depth=1, heads=2,
                decoder_width=16, decoder_depth=1, decoder_heads=2)
    ref.checkpoint_file(tmp_path / "mae.pth",
                        ref.randomized(torch_mae.MaskedAutoencoderViT(**arch), 3).state_dict())
    assert convert_main(["--checkpoint", str(tmp_path / "mae.pth"), "--out", str(tmp_path / "flax"),
                         "--img-size", "8", "--bands", str(B), "--num-classes", "2",
                         "--pos-embed", "separable", "--heads", "2", "--decoder-heads", "2"]) == 0
    start = continued_from(config, mae_model(config, B).module)
    converted = load_params(str(tmp_path / "flax"))
    for part in ("backbone", "decoder"):
        jax.tree.map(np.testing.assert_array_equal, start[part], converted[part])
    assert pretrain(config, str(tmp_path / "work"))["epochs"] == 1

    other = tiny_config(config.data.cube_path, init="pretrained",
                        pretrained_dir=str(tmp_path / "flax"), **{"model.width": 48})
    with pytest.raises(ValueError, match=r"holds an encoder with width=24 \(the config's: 48\)"):
        continued_from(other, mae_model(other, B).module)
