"""SpectralMAE (hsic_jax.models.spectralgpt) against the official masked autoencoder, and the converter
that keeps its decoder.

The PyTorch oracle (tests/torch_mae.py, the official `MaskedAutoencoderViT` layout) gets
random weights, is saved as the official scripts save it, converted by `convert.spectralgpt`
into `{'backbone', 'head', 'decoder'}`, and both run on the same input and masking noise:
max |Δ| / max |pred| ≤ 1e-5 at float32 with the highest matmul precision, and the same mask.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import torch_mae
import torch_reference as ref
from convert.common import ConversionError
from convert.spectralgpt import convert, load_state_dict, main as convert_main
from hsic_jax import load_converted
from hsic_jax.models.converted import load_params, read_manifest
from hsic_jax.models.mae import mae_loss, norm_pix, random_masking
from hsic_jax.models.posemb import resample_grid
from hsic_jax.models.spectralgpt import SpectralMAE, patchify

TOL = 1e-5
# (model fields shared by the oracle and SpectralMAE, mask ratio)
SQUARE = dict(img_size=16, patch_size=4, tubelet=3, bands=12, width=48, depth=2, heads=3,
              decoder_width=32, decoder_depth=2, decoder_heads=4)
ODD = dict(img_size=12, patch_size=4, tubelet=2, bands=6, width=40, depth=1, heads=5,
           decoder_width=24, decoder_depth=3, decoder_heads=3)


def oracle(cfg: dict, mask_ratio: float, seed: int) -> torch_mae.MaskedAutoencoderViT:
    """The official MAE with every parameter random (the norms' scales around 1)."""
    model = ref.randomized(torch_mae.MaskedAutoencoderViT(**cfg, mask_ratio=mask_ratio), seed)
    with torch.no_grad():
        model.decoder_norm.weight.add_(1.0)  # `randomized` centres only the encoder's norms on 1
    return model


def flags(cfg: dict) -> list[str]:
    return ["--img-size", str(cfg["img_size"]), "--bands", str(cfg["bands"]), "--num-classes", "5",
            "--pos-embed", "separable", "--heads", str(cfg["heads"]),
            "--decoder-heads", str(cfg["decoder_heads"])]


def mae(cfg: dict, mask_ratio: float) -> SpectralMAE:
    return SpectralMAE(**cfg, mask_ratio=mask_ratio)


def inputs(cfg: dict, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images `(N, H, W, B)` and masking noise `(N, T'·L)` (distinct values: no ties)."""
    rng = np.random.RandomState(seed)
    x = rng.randn(n, cfg["img_size"], cfg["img_size"], cfg["bands"]).astype(np.float32)
    tokens = cfg["bands"] // cfg["tubelet"] * (cfg["img_size"] // cfg["patch_size"]) ** 2
    return x, rng.rand(n, tokens).astype(np.float32)


def parity(model: torch_mae.MaskedAutoencoderViT, params: dict, cfg: dict, mask_ratio: float,
           seed: int) -> float:
    x, noise = inputs(cfg, 3, seed)
    with jax.default_matmul_precision("highest"):
        pred, mask = jax.jit(mae(cfg, mask_ratio).apply)(
            {"params": {"backbone": params["backbone"], "decoder": params["decoder"]}},
            jnp.asarray(x), noise=jnp.asarray(noise))
    with torch.no_grad():
        t_pred, t_mask = model(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(noise))
    pred, t_pred = np.asarray(pred), t_pred.numpy()
    assert pred.shape == t_pred.shape == (3, noise.shape[1], cfg["tubelet"] * cfg["patch_size"] ** 2)
    np.testing.assert_array_equal(np.asarray(mask), t_mask.numpy())
    err = float(np.abs(pred - t_pred).max() / np.abs(t_pred).max())
    print(f"max|Δ|/max|pred| = {err:.2e} over pred {pred.shape}")  # shown with pytest -s
    return err


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The square configuration's oracle, saved as a checkpoint and converted by the CLI."""
    tmp = tmp_path_factory.mktemp("mae")
    model = oracle(SQUARE, 0.9, seed=11)
    src, out = tmp / "mae.pth", tmp / "flax"
    ref.checkpoint_file(src, model.state_dict())
    assert convert_main(["--checkpoint", str(src), "--out", str(out), *flags(SQUARE)]) == 0
    return model, src, out


def test_state_dict_has_the_official_keys():
    """Encoder + the 5 + 16·depth + 4 decoder tensors of the official layout, no head."""
    keys = set(torch_mae.MaskedAutoencoderViT(**SQUARE).state_dict())
    decoder = {k for k in keys if k.startswith(("decoder_", "mask_token"))}
    assert len(decoder) == 5 + 16 * SQUARE["decoder_depth"] + 4
    assert {"mask_token", "decoder_embed.weight", "decoder_pos_embed_spatial",
            "decoder_pos_embed_temporal", "decoder_blocks.1.attn.proj.bias",
            "decoder_blocks.0.mlp.fc1.weight", "decoder_norm.weight", "decoder_pred.bias",
            "pos_embed_spatial", "pos_embed_temporal", "patch_embed.proj.weight"} <= keys
    assert not any(k.startswith(("head.", "cls_token", "decoder_cls", "decoder_pos_embed.")) for k in keys)


def test_mae_parity_through_the_cli(converted):
    model, _, out = converted
    params = load_params(str(out))
    assert set(params) == {"backbone", "head", "decoder"}
    assert parity(model, params, SQUARE, 0.9, seed=1) <= TOL


def test_mae_parity_odd_geometry(tmp_path):
    """3 spectral groups of 2 bands, a 3×3 grid (27 tokens), one encoder and three decoder blocks."""
    model = oracle(ODD, 0.75, seed=12)
    src = tmp_path / "odd.pth"
    ref.checkpoint_file(src, model.state_dict())
    sd, _ = load_state_dict(str(src))
    params, report = convert(sd, str(src), img_size=12, bands=6, num_classes=5, pos_embed="separable",
                             heads=5, decoder_heads=3)
    assert report["decoder"] == {"width": 24, "depth": 3, "heads": 3}
    assert parity(model, params, ODD, 0.75, seed=2) <= TOL


def test_target_is_the_official_norm_pix_target():
    for cfg in (SQUARE, ODD):
        model = torch_mae.MaskedAutoencoderViT(**cfg)
        x, _ = inputs(cfg, 2, seed=3)
        x = x * 3.0 + 1.0
        imgs = torch.from_numpy(x).permute(0, 3, 1, 2)
        tokens = np.asarray(patchify(jnp.asarray(x), cfg["patch_size"], cfg["tubelet"]))
        np.testing.assert_array_equal(tokens, model.patchify(imgs.unsqueeze(1)).numpy())
        target = np.asarray(norm_pix(jnp.asarray(tokens)))
        np.testing.assert_allclose(target, model.target(imgs).numpy(), rtol=0, atol=2e-6)


@pytest.mark.parametrize("tokens", [64, 27])
@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 0.75, 0.9, 0.95])
def test_random_masking(tokens, ratio):
    noise = np.random.RandomState(tokens).rand(4, tokens).astype(np.float32)
    visible = int(tokens * (1 - ratio))
    keep, restore, mask = map(np.asarray, random_masking(jnp.asarray(noise), visible))
    assert keep.shape == (4, visible) and restore.shape == mask.shape == (4, tokens)
    np.testing.assert_array_equal(mask.sum(axis=1), tokens - visible)
    order = np.argsort(noise, axis=1)  # by increasing noise: the first `visible` are kept
    for i in range(4):
        np.testing.assert_array_equal(np.sort(keep[i]), np.flatnonzero(mask[i] == 0))
        np.testing.assert_array_equal(keep[i], order[i, :visible])
        hidden = order[i, visible:]
        np.testing.assert_array_equal(np.concatenate([keep[i], hidden])[restore[i]], np.arange(tokens))


def test_num_visible_is_the_official_count():
    for ratio in (0.0, 0.25, 0.5, 0.75, 0.9, 0.95):
        model = mae(SQUARE, ratio)
        assert model.num_visible == int(64 * (1 - ratio))


def test_loss_counts_the_hidden_tokens_only():
    rng = np.random.RandomState(4)
    pred = rng.randn(2, 27, 8).astype(np.float32)
    target = rng.randn(2, 27, 8).astype(np.float32)
    keep, _, mask = random_masking(jnp.asarray(rng.rand(2, 27)), 6)
    keep, mask = np.asarray(keep), np.asarray(mask)
    loss = float(mae_loss(jnp.asarray(pred), jnp.asarray(target), jnp.asarray(mask)))
    per_token = ((pred.astype(np.float64) - target) ** 2).mean(axis=-1)
    assert loss == pytest.approx((per_token * mask).sum() / mask.sum(), rel=1e-6)
    visible_changed = pred.copy()
    visible_changed[0, keep[0, 0]] += 10.0
    visible_changed[1, keep[1]] = 0.0
    assert float(mae_loss(jnp.asarray(visible_changed), jnp.asarray(target), jnp.asarray(mask))) == loss
    hidden_changed = pred.copy()
    hidden_changed[1, np.flatnonzero(mask[1])[0]] += 10.0
    assert float(mae_loss(jnp.asarray(hidden_changed), jnp.asarray(target), jnp.asarray(mask))) != loss


def test_converter_keeps_the_decoder_and_the_classifier_still_loads(converted):
    model, _, out = converted
    manifest = read_manifest(str(out))
    assert manifest["decoder"] == {"width": 32, "depth": 2, "heads": 4}
    assert manifest["dropped"] == []
    assert manifest["key_map"]["decoder_blocks.1.mlp.fc2.weight"] == "decoder/block_1/mlp/fc2/kernel"
    assert manifest["key_map"]["mask_token"] == "decoder/mask_token"
    assert sorted(manifest["reinitialised"]) == ["head/bias", "head/kernel"]
    clf = load_converted(str(out))
    assert set(clf.params) == {"backbone", "head"}  # the decoder is not the classifier's
    x, _ = inputs(SQUARE, 2, seed=5)
    logits = np.asarray(clf(x))
    assert logits.shape == (2, 5) and np.isfinite(logits).all()
    dec = load_params(str(out))["decoder"]
    sd = model.state_dict()
    np.testing.assert_array_equal(dec["embed"]["kernel"], sd["decoder_embed.weight"].numpy().T)
    np.testing.assert_array_equal(dec["pos_embed_temporal"], sd["decoder_pos_embed_temporal"].numpy())


def numpy_state(cfg: dict, seed: int = 13) -> dict:
    return {k: v.numpy() for k, v in oracle(cfg, 0.9, seed).state_dict().items()}


def convert_square(sd: dict, **kw) -> tuple[dict, dict]:
    args = dict(img_size=16, bands=12, num_classes=5, pos_embed="separable", heads=3, decoder_heads=4)
    return convert(sd, "in.pth", **{**args, **kw})


def test_decoder_spatial_table_is_resampled_like_the_encoders():
    sd = numpy_state(SQUARE)
    params, _ = convert_square(sd, img_size=8)  # 4×4 grid → 2×2
    for key, got in (("pos_embed_spatial", params["backbone"]["pos_embed_spatial"]),
                     ("decoder_pos_embed_spatial", params["decoder"]["pos_embed_spatial"])):
        np.testing.assert_array_equal(got, np.asarray(resample_grid(sd[key], 2)))
    assert params["decoder"]["pos_embed_spatial"].shape == (1, 4, 32)


def test_a_finetune_checkpoint_has_no_decoder():
    model = ref.randomized(ref.VisionTransformer(img_size=16, num_classes=5, patch_size=4, bands=12,
                                                 tubelet=3, width=48, depth=2, heads=3), seed=14)
    params, report = convert_square({k: v.numpy() for k, v in model.state_dict().items()},
                                    pos_embed="joint")
    assert "decoder" not in params and "decoder" not in report


def refusal(sd: dict, **kw) -> str:
    with pytest.raises(ConversionError) as e:
        convert_square(sd, **kw)
    message = str(e.value)
    assert "\n" not in message
    return message


def test_a_decoder_tensor_of_the_wrong_shape_is_refused():
    sd = numpy_state(SQUARE)
    sd["decoder_pred.weight"] = np.zeros((40, 32), np.float32)
    message = refusal(sd)
    assert "decoder_pred.weight" in message and "(40, 32)" in message and "(32, 48)" in message


def test_decoder_spectral_groups_must_be_the_encoders():
    sd = numpy_state(SQUARE)
    sd["decoder_pos_embed_temporal"] = np.zeros((1, 3, 32), np.float32)
    message = refusal(sd)
    assert "decoder_pos_embed_temporal" in message and "(1, 3, 32)" in message and "(1, 4, 32)" in message


def test_a_missing_or_unknown_decoder_tensor_is_refused():
    sd = numpy_state(SQUARE)
    del sd["decoder_blocks.1.attn.v.bias"]
    assert "missing key decoder_blocks.1.attn.v.bias" in refusal(sd)
    sd = numpy_state(SQUARE)
    sd["decoder_cls_token"] = np.zeros((1, 1, 32), np.float32)
    assert "decoder_cls_token" in refusal(sd)


def test_decoder_heads_must_divide_its_width():
    assert "--decoder-heads" in refusal(numpy_state(SQUARE), decoder_heads=5)


def test_the_patch_embedding_starts_like_the_official_linear_view_of_it():
    """xavier-uniform over fans (tubelet·p², width), as the official `w.view(D, -1)`: the bound
    is sqrt(6 / (t·p² + D)), not the conv's sqrt(6 / (t·p² + t·p²·D))."""
    module = SpectralMAE(img_size=32, patch_size=8, tubelet=3, bands=12, width=192, depth=1,
                         heads=3, decoder_width=32, decoder_depth=1, decoder_heads=4)
    kernel = module.init(jax.random.key(0), jnp.zeros((1, 32, 32, 12)))["params"]["backbone"][
        "patch_embed"]["kernel"]
    bound = np.sqrt(6.0 / (3 * 64 + 192))
    assert kernel.shape == (3, 8, 8, 1, 192)
    assert np.abs(kernel).max() <= bound
    assert np.abs(kernel).max() > 0.95 * bound
    np.testing.assert_allclose(np.std(kernel), bound / np.sqrt(3), rtol=0.05)
