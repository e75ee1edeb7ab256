"""The Flax port, through the converter CLI, reproduces the PyTorch forward number for number.

Each case builds the PyTorch oracle (tests/torch_reference.py) with random weights, saves
it as the official scripts do, converts it with `convert.spectralgpt.main`, loads it with
`hsic_jax.load_converted` and compares logits on random input:
max |Δ| / max |y| ≤ 1e-5 at float32 with the highest matmul precision.
"""

import dataclasses

import jax
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import torch_reference as ref
from convert.spectralgpt import main as convert_main
from hsic_jax import load_converted
from hsic_jax.models.posemb import resample_grid

VIT_B = dict(width=768, depth=12, heads=12, patch_size=8, bands=12, tubelet=3)
TOL = 1e-5


def relative_error(clf, torch_model, x: np.ndarray) -> float:
    with jax.default_matmul_precision("highest"):
        y = np.asarray(clf(x))
    with torch.no_grad():
        t = torch_model(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    assert y.shape == t.shape
    err = float(np.abs(y - t).max() / np.abs(t).max())
    print(f"max|Δ|/max|y| = {err:.2e} over logits {y.shape}")  # shown with pytest -s
    return err


def inputs(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randn(n, size, size, 12).astype(np.float32)


def convert(tmp_path, state_dict, *flags) -> object:
    src, out = tmp_path / "model.pth", tmp_path / "flax"
    ref.checkpoint_file(src, state_dict)
    assert convert_main(["--checkpoint", str(src), "--out", str(out), *flags]) == 0
    return load_converted(str(out))


def with_random_head(clf, seed: int):
    """The converted model with a unit-scale random head (the fresh head, drawn with std 2e-5
    as the official recipe does, would leave logits ≈ bias and hide backbone errors)."""
    rng = np.random.RandomState(seed)
    d, c = clf.params["head"]["kernel"].shape
    head = {"kernel": rng.randn(d, c).astype(np.float32), "bias": rng.randn(c).astype(np.float32)}
    return dataclasses.replace(clf, params={**clf.params, "head": head})


def test_official_128px_1024_tokens_finetune_checkpoint(tmp_path):
    """The official classification model: joint pos_embed (1, 1024, 768), fine-tune checkpoint."""
    model = ref.randomized(ref.VisionTransformer(img_size=128, num_classes=10, **VIT_B), seed=1)
    clf = convert(tmp_path, model.state_dict(), "--img-size", "128")
    assert clf.params["backbone"]["pos_embed"].shape == (1, 1024, 768)
    assert clf.manifest["reinitialised"] == [] and clf.manifest["dropped"] == []
    assert relative_error(clf, model, inputs(2, 128)) <= TOL


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A SpectralGPT+-shaped pre-training checkpoint: separable 16×16 grid + 73 decoder tensors."""
    model = ref.randomized(ref.VisionTransformer(img_size=128, num_classes=1, sep_pos_embed=True,
                                                 **VIT_B), seed=2)
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}
    sd.update(ref.decoder_state(768, 256, 4, seed=3))
    assert len(sd) == 271
    return model, sd


def test_paper_32px_separable_from_pretraining(tmp_path, pretrained):
    """32×32 input, 64 tokens, pretrained spatial grid resampled 16×16 → 4×4 by PyTorch bicubic."""
    model128, sd = pretrained
    clf = convert(tmp_path, sd, "--img-size", "32", "--num-classes", "16", "--pos-embed", "separable")
    assert sorted(clf.manifest["reinitialised"]) == ["head/bias", "head/kernel"]
    clf = with_random_head(clf, seed=7)
    model = ref.VisionTransformer(img_size=32, num_classes=16, sep_pos_embed=True, **VIT_B).eval()
    state = {k: v for k, v in model128.state_dict().items() if not k.startswith("head.")}
    grid = state["pos_embed_spatial"].reshape(1, 16, 16, 768).permute(0, 3, 1, 2)
    state["pos_embed_spatial"] = F.interpolate(grid, size=(4, 4), mode="bicubic", align_corners=False
                                               ).permute(0, 2, 3, 1).reshape(1, 16, 768)
    head = clf.params["head"]
    state["head.weight"] = torch.from_numpy(np.asarray(head["kernel"]).T.copy())
    state["head.bias"] = torch.from_numpy(np.asarray(head["bias"]).copy())
    model.load_state_dict(state)
    assert clf.manifest["dropped"] == []  # the 73 decoder tensors are kept (decoder/), not dropped
    assert clf.manifest["decoder"] == {"width": 512, "depth": 4, "heads": 16}
    assert sum(k.startswith(("decoder_", "mask_token")) for k in clf.manifest["key_map"]) == 73
    assert "decoder" not in clf.params  # the classifier's params only
    assert relative_error(clf, model, inputs(4, 32)) <= TOL


def test_paper_32px_joint_from_pretraining(tmp_path, pretrained):
    """The paper's setting: the pretrained tables are dropped, a zero joint table (1, 64, 768) is trained."""
    model128, sd = pretrained
    clf = convert(tmp_path, sd, "--img-size", "32", "--num-classes", "16")
    assert sorted(clf.manifest["reinitialised"]) == ["backbone/pos_embed", "head/bias", "head/kernel"]
    assert {"pos_embed_spatial", "pos_embed_temporal"} <= set(clf.manifest["dropped"])
    np.testing.assert_array_equal(clf.params["backbone"]["pos_embed"], np.zeros((1, 64, 768)))
    clf = with_random_head(clf, seed=8)
    model = ref.VisionTransformer(img_size=32, num_classes=16, **VIT_B).eval()
    state = {k: v for k, v in model128.state_dict().items()
             if not k.startswith(("head.", "pos_embed_"))}
    state["pos_embed"] = torch.zeros(1, 64, 768)
    state["head.weight"] = torch.from_numpy(np.asarray(clf.params["head"]["kernel"]).T.copy())
    state["head.bias"] = torch.from_numpy(np.asarray(clf.params["head"]["bias"]).copy())
    model.load_state_dict(state)
    assert relative_error(clf, model, inputs(4, 32)) <= TOL


def test_paper_32px_joint_finetune_checkpoint(tmp_path):
    """A checkpoint fine-tuned at 32×32 (joint table (1, 64, 768) with random values, head kept)."""
    model = ref.randomized(ref.VisionTransformer(img_size=32, num_classes=16, **VIT_B), seed=4)
    clf = convert(tmp_path, model.state_dict())
    assert clf.config["num_classes"] == 16 and clf.manifest["reinitialised"] == []
    assert relative_error(clf, model, inputs(4, 32)) <= TOL


def test_separable_interpolation_matches_torch():
    grid = torch.randn(1, 16, 16, 768, generator=torch.Generator().manual_seed(5))
    expected = F.interpolate(grid.permute(0, 3, 1, 2), size=(4, 4), mode="bicubic",
                             align_corners=False).permute(0, 2, 3, 1).reshape(1, 16, 768)
    got = np.asarray(resample_grid(grid.reshape(1, 256, 768).numpy(), 4))
    np.testing.assert_allclose(got, expected.numpy(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("sep", [False, True], ids=["joint", "separable"])
def test_tiny_config(tmp_path, sep):
    cfg = dict(width=48, depth=2, heads=3, patch_size=4, bands=12, tubelet=3)
    model = ref.randomized(ref.VisionTransformer(img_size=16, num_classes=5, sep_pos_embed=sep, **cfg),
                           seed=6)
    clf = convert(tmp_path, model.state_dict(), "--img-size", "16",
                  "--pos-embed", "separable" if sep else "joint", "--heads", "3")
    assert relative_error(clf, model, inputs(8, 16)) <= TOL


def test_a_replaced_head_is_the_models_own_initialisation_to_the_bit(tmp_path):
    """A head of another size is drawn from `--seed` exactly as `model.init` draws it op by op,
    so a re-conversion gives the head earlier conversions gave (one jitted program rounds the
    initialisers' floats otherwise in the last bits)."""
    cfg = dict(width=48, depth=2, heads=3, patch_size=4, bands=12, tubelet=3)
    model = ref.randomized(ref.VisionTransformer(img_size=16, num_classes=5, **cfg), seed=7)
    clf = convert(tmp_path, model.state_dict(), "--img-size", "16", "--heads", "3",
                  "--num-classes", "7", "--seed", "3")
    assert clf.manifest["reinitialised"] == ["head/bias", "head/kernel"]
    x = np.zeros((1, 16, 16, 12), np.float32)
    init = clf.module.init(jax.random.key(3), x)["params"]["head"]
    for name in ("kernel", "bias"):
        np.testing.assert_array_equal(np.asarray(clf.params["head"][name]), np.asarray(init[name]))
