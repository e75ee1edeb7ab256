"""The HyperSIGMA family: the sampling against torch's grid_sample, the Flax port against an
independent PyTorch oracle (tests/torch_hypersigma.py) through the converter (small widths
and ViT-B), the pretrained-encoder transfer of the official notebook, the converter's
refusals, the official parameter counts, and every fine-tuning method on a small model."""

import argparse
import functools
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F

import torch_hypersigma as ref
from configs import hypersigma as hypersigma_config
from convert import __main__ as convert_cli
from convert.common import combined_sha256
from convert.hypersigma import convert_full
from hsic_jax import load_converted
from hsic_jax.adapters.methods import SPECS, Method
from hsic_jax.adapters.tuned import TunedModel, find_sites
from hsic_jax.count import count, load_config
from hsic_jax.data.scenes import SCENES
from hsic_jax.models import FAMILIES, family
from hsic_jax.models.hypersigma import (_TORCH_KERNEL, ADAPTABLE, HyperSIGMA, PatchEmbed,
                                        _uniform, adaptive_pool_matrix, build, grid_sample_zeros,
                                        layer_index, model_from_config, pretrained_mismatch,
                                        unused_shapes)
from hsic_jax.train.checks import check_config
from hsic_jax.train.partition import combine, split
from hsic_jax.train.state import create_train_state, pretrained_backbone, tuned_model

TOL = 1e-5
FAST = {"xla_backend_optimization_level": 0}  # compile time is most of these tests' time
# A small but complete model: 5 blocks, full attention in blocks 1 and 3 (interval 2), the
# spectral feature after block 1 (blocks 2-4 unused), 4 heads of 12, 4 points, 4 × 4 tokens.
SMALL_TORCH = dict(dim=48, depth=5, heads=4, interval=2, out_indices=(1, 2, 3, 4), points=4,
                   tokens=16, head_in=96, head1_in=80)
FLAGS = ("--heads", "4", "--interval", "2", "--out-indices", "1,2,3,4")
BANDS, CLASSES = 7, 5


def oracle(img_size, patch_size, seed=0, classes=CLASSES + 1, **over):
    return ref.build(seed, img_size=img_size, in_channels=BANDS, patch_size=patch_size,
                     classes=classes, **{**SMALL_TORCH, **over})


def inputs(n, img_size, bands=BANDS, seed=0):
    return np.random.RandomState(seed).randn(n, img_size, img_size, bands).astype(np.float32)


def relative_error(clf, model, x):
    """max |Δ| / max |y| between our logits (of the converted module and params) and the
    oracle's class outputs 1 … C."""
    apply = jax.jit(functools.partial(clf.module.apply, train=False), compiler_options=FAST)
    with jax.default_matmul_precision("highest"):
        y = np.asarray(apply({"params": clf.params}, x))
    t = ref.logits(model, x)[:, 1:]  # output 0 is the official background
    assert y.shape == t.shape
    err = float(np.abs(y - t).max() / np.abs(t).max())
    print(f"max|Δ|/max|y| = {err:.2e} over logits {y.shape}")  # shown with pytest -s
    return err


def convert(tmp_path, payload, *flags, name="model.pth"):
    """Save `payload` as the official notebook saves (torch.save of a state_dict), run
    `python -m convert hypersigma --checkpoint ...`, and load the result."""
    src, out = tmp_path / name, tmp_path / "flax"
    torch.save(payload, src)
    assert convert_cli.main(["hypersigma", "--checkpoint", str(src), "--out", str(out),
                             *flags]) == 0
    return load_converted(str(out))


# ---------------------------------------------------------------- the sampling

def test_grid_sample_equals_torch():
    """Bilinear, zero padding, align_corners=False: points inside, on cell borders, on the
    edge and outside the grid (corners read zero), at integer and fractional positions."""
    rng = np.random.RandomState(0)
    g, h, w, c, m = 3, 4, 5, 6, 400
    maps = rng.randn(g, c, h, w).astype(np.float32)
    ix = rng.uniform(-2.0, w + 1.0, (g, m)).astype(np.float32)
    iy = rng.uniform(-2.0, h + 1.0, (g, m)).astype(np.float32)
    ix[:, :40], iy[:, :40] = np.round(ix[:, :40]), np.round(iy[:, :40])  # on pixel centres
    ix[:, 40:60], iy[:, 40:60] = -0.5, h - 0.5  # on the outer edge
    grid = np.stack([(2 * ix + 1) / w - 1, (2 * iy + 1) / h - 1], -1)[:, :, None, :]
    want = F.grid_sample(torch.from_numpy(maps), torch.from_numpy(grid), mode="bilinear",
                         padding_mode="zeros", align_corners=False)[..., 0].numpy()  # (g, c, m)
    flat = jnp.asarray(maps.transpose(0, 2, 3, 1).reshape(g, h * w, c))
    got = np.asarray(grid_sample_zeros(flat, jnp.asarray(ix), jnp.asarray(iy), h, w))
    np.testing.assert_allclose(got, want.transpose(0, 2, 1), rtol=1e-6, atol=1e-6)
    outside = (ix < -1) | (ix > w) | (iy < -1) | (iy > h)
    assert outside.any() and np.all(got[outside] == 0)


def test_band_pooling_equals_adaptive_avg_pool():
    x = np.random.RandomState(1).randn(4, 30).astype(np.float32)
    want = torch.nn.AdaptiveAvgPool1d(100)(torch.from_numpy(x)[None])[0].numpy()
    np.testing.assert_allclose(x @ adaptive_pool_matrix(30, 100), want, rtol=1e-6, atol=1e-6)


def test_patch_embedding_is_the_official_convolution():
    """Patchify + one matmul: the parameters (names, shapes, initial values) and the tokens of
    a stride-p 'VALID' convolution, on an image that is not a multiple of p."""
    import flax.linen as nn

    x = jnp.asarray(np.random.RandomState(3).randn(2, 9, 9, 5), jnp.float32)
    conv = nn.Conv(8, (2, 2), strides=(2, 2), padding="VALID", kernel_init=_TORCH_KERNEL,
                   bias_init=_uniform(2 * 2 * 5))
    ours = PatchEmbed(8, 2)
    params = ours.init(jax.random.key(0), x)
    want = conv.init(jax.random.key(0), x)
    jax.tree.map(np.testing.assert_array_equal, params, want)
    tokens = ours.apply(params, x)
    assert tokens.shape == (2, 16, 8)
    np.testing.assert_allclose(tokens, conv.apply(want, x).reshape(2, 16, 8), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- parity

@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The small oracle on 9 × 9 inputs, 2-pixel patches, and its conversion by the CLI."""
    model = oracle(9, 2, seed=2)
    return model, convert(tmp_path_factory.mktemp("small"), model.state_dict(), *FLAGS)


CASES = [(9, 2), (17, 4)]  # patch 2: the transposed-convolution FPN; patch 4: pooling only


@pytest.mark.parametrize("img_size,patch_size", CASES, ids=[f"{s}px-patch{p}" for s, p in CASES])
def test_converted_logits_equal_the_oracle(tmp_path, small, img_size, patch_size):
    if patch_size == 2:
        model, clf = small
    else:
        model = oracle(img_size, patch_size, seed=patch_size)
        clf = convert(tmp_path, model.state_dict(), *FLAGS)
    assert clf.manifest["family"] == "hypersigma"
    assert clf.manifest["reinitialised"] == [] and clf.manifest["dropped"] == []
    assert clf.config == dict(img_size=img_size, bands=BANDS, patch_size=patch_size, width=48,
                              depth=5, heads=4, mlp_ratio=4.0, interval=2,
                              out_indices=[1, 2, 3, 4], n_points=4, num_tokens=16,
                              spat_classifier_in=96, spat_classifier1_in=80,
                              num_classes=CLASSES, drop_path=0.1, dropout=0.4)
    assert clf.module.input_shape == (img_size, img_size, BANDS)
    # every official tensor in place, the background row beside the class rows
    sd = model.state_dict()
    np.testing.assert_array_equal(clf.params["head"]["kernel"], sd["classifier.4.weight"][1:].numpy().T)
    np.testing.assert_array_equal(clf.params["head"]["background"]["bias"],
                                  sd["classifier.4.bias"][:1].numpy())
    np.testing.assert_array_equal(clf.params["backbone"]["unused"]["spec_block_3"]["attn"]["proj"]["bias"],
                                  sd["spec_encoder.blocks.3.attn.proj.bias"].numpy())
    assert sum(np.size(a) for a in jax.tree.leaves(clf.params)) == sum(
        p.numel() for p in model.parameters())
    assert relative_error(clf, model, inputs(3, img_size)) <= TOL


def test_vit_b_logits_equal_the_oracle():
    """The official model on 33 × 33 × 30 (ViT-B, 184 M parameters), batch 1."""
    start = time.perf_counter()
    model = ref.build(7, img_size=33, in_channels=30, patch_size=2, classes=17)
    params, report = convert_full({k: v.numpy() for k, v in model.state_dict().items()}, "vit-b")
    assert report["model"]["num_classes"] == 16 and report["reinitialised"] == []
    module = model_from_config(report["model"])
    x = inputs(1, 33, bands=30)
    with jax.default_matmul_precision("highest"):  # (matmuls are library calls at any level)
        y = np.asarray(jax.jit(module.apply, compiler_options=FAST)({"params": params}, x))
    t = ref.logits(model, x)[:, 1:]
    err = float(np.abs(y - t).max() / np.abs(t).max())
    print(f"ViT-B: max|Δ|/max|y| = {err:.2e} in {time.perf_counter() - start:.1f} s")
    assert err <= TOL


def test_sampling_attention_is_live():
    """Moving the sampling points (the offsets' bias of block 0) changes the logits."""
    model = oracle(9, 2, seed=3)
    x = inputs(2, 9)
    before = ref.logits(model, x)
    with torch.no_grad():
        model.spat_encoder.blocks[0].attn.sampling_offsets.bias.add_(1.5)
    assert np.abs(ref.logits(model, x) - before).max() > 1e-3


# ---------------------------------------------------------------- pretrained encoders

def mae_checkpoint(encoder, role, with_offsets=False):
    """The encoder's blocks and norm as the official MAE pretraining saves them
    (`{'model': ..., 'epoch', 'args'}`), with the keys the notebook deletes and a decoder."""
    sd = {k: v.clone() for k, v in encoder.state_dict().items() if k.startswith(("blocks.", "norm."))
          and (with_offsets or "sampling_offsets" not in k)}
    width = sd["blocks.0.attn.qkv.weight"].shape[1]
    sd["patch_embed.proj.weight"] = torch.randn(width, 100, 8, 8)
    sd["patch_embed.proj.bias"] = torch.randn(width)
    sd["decoder_embed.weight"], sd["mask_token"] = torch.randn(32, width), torch.randn(1, 1, 32)
    if role == "spatial":
        sd["pos_embed"] = torch.randn(1, 64, width)  # 8 × 8: 64-pixel images, patch 8
    else:
        sd["pos_embed"] = encoder.pos_embed.detach().clone()
        sd["spat_map.weight"], sd["spat_map.bias"] = torch.randn(width, 4096), torch.randn(width)
    return {"model": sd, "epoch": 1599, "args": argparse.Namespace(model="mae", input_size=64)}


PRETRAINED_FLAGS = ("--num-classes", str(CLASSES), "--img-size", "9", "--bands", str(BANDS),
                    "--num-tokens", "16", *FLAGS)


def convert_pretrained(tmp_path, spatial, spectral, *flags):
    tmp_path.mkdir(exist_ok=True)
    paths = []
    for role, payload in (("spatial", spatial), ("spectral", spectral)):
        paths.append(tmp_path / f"{role}-checkpoint-1599.pth")
        torch.save(payload, paths[-1])
    out = tmp_path / "flax"
    code = convert_cli.main(["hypersigma", "--spatial", str(paths[0]), "--spectral",
                             str(paths[1]), "--out", str(out), *flags])
    return code, out


def test_pretrained_encoders_transfer_as_the_notebook(tmp_path):
    model = oracle(9, 2)  # offsets in the spatial checkpoint only
    code, out = convert_pretrained(tmp_path, mae_checkpoint(model.spat_encoder, "spatial", True),
                                   mae_checkpoint(model.spec_encoder, "spectral"),
                                   *PRETRAINED_FLAGS)
    assert code == 0
    clf = load_converted(str(out))
    m = clf.manifest
    assert m["family"] == "hypersigma" and clf.config["num_classes"] == CLASSES
    assert set(m["source"]) == {"spatial", "spectral"} and m["source_sha256"] == combined_sha256(
        m["source_sha256s"])
    # the notebook's deletions, and the decoder, are dropped
    for key in ("spat_encoder.patch_embed.proj.weight", "spat_encoder.pos_embed",
                "spec_encoder.spat_map.weight", "spec_encoder.patch_embed.proj.bias",
                "spat_encoder.decoder_embed.weight", "spec_encoder.mask_token"):
        assert key in m["dropped"]
    # the pretrained blocks (also the unused spectral ones), norms and spectral table are loaded
    b = clf.params["backbone"]
    sd = model.state_dict()
    np.testing.assert_array_equal(b["spat_block_4"]["mlp"]["fc2"]["kernel"],
                                  sd["spat_encoder.blocks.4.mlp.fc2.weight"].numpy().T)
    np.testing.assert_array_equal(b["unused"]["spec_block_4"]["attn"]["qkv"]["bias"],
                                  sd["spec_encoder.blocks.4.attn.qkv.bias"].numpy())
    np.testing.assert_array_equal(b["spec_pos_embed"], sd["spec_encoder.pos_embed"].numpy())
    np.testing.assert_array_equal(b["unused"]["spat_norm"]["scale"], sd["spat_encoder.norm.weight"].numpy())
    # the rest is fresh, as the official model initialises it
    fresh = set(m["reinitialised"])
    assert clf.config["n_points"] == 4  # from the spatial checkpoint's sampling_offsets
    np.testing.assert_array_equal(b["spat_block_2"]["attn"]["sampling_offsets"]["bias"],
                                  sd["spat_encoder.blocks.2.attn.sampling_offsets.bias"].numpy())
    assert {"backbone/spat_patch_embed/kernel", "backbone/spat_pos_embed",
            "backbone/spec_block_0/attn/sampling_offsets/kernel", "backbone/spat_fpn1/kernel",
            "backbone/spec_spat_map/kernel", "backbone/spec_l1/kernel", "backbone/DR1/kernel",
            "backbone/fc_spec4/excite/kernel", "head/kernel", "head/fc_0/bias"} <= fresh
    assert not any("/norm1/" in t or "/attn/qkv/" in t for t in fresh)
    assert "backbone/spat_block_0/attn/sampling_offsets/kernel" not in fresh
    assert clf.module.input_shape == (9, 9, BANDS) and clf.module.num_classes == CLASSES


# ---------------------------------------------------------------- refusals

def refused(tmp_path, capsys, payload, *flags, save=True):
    """Run the converter on `payload`; assert it refused with one line and wrote nothing."""
    src, out = tmp_path / "in.pth", tmp_path / "out"
    if save:
        torch.save(payload, src)
    code = convert_cli.main(["hypersigma", "--checkpoint", str(src), "--out", str(out), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert not out.exists()
    return err


@pytest.fixture(scope="module")
def small_sd(small):
    return small[0].state_dict()


def test_refuses_shapes_unknown_and_missing_keys(tmp_path, capsys, small_sd):
    sd = dict(small_sd)
    sd["spat_encoder.blocks.1.attn.proj.weight"] = torch.zeros(48, 47)
    err = refused(tmp_path, capsys, sd, *FLAGS)
    assert "spat_encoder.blocks.1.attn.proj.weight" in err and "(48, 47)" in err and "(48, 48)" in err
    sd = dict(small_sd)
    sd["spat_encoder.blocks.1.attn.sampling_offsets.weight"] = torch.zeros(32, 48)  # a full block
    err = refused(tmp_path, capsys, sd, *FLAGS)
    assert "spat_encoder.blocks.1.attn.sampling_offsets.weight (32, 48) is not part" in err
    sd = dict(small_sd)
    del sd["fc_spec3.2.weight"]
    assert "missing key fc_spec3.2.weight" in refused(tmp_path, capsys, sd, *FLAGS)
    sd = dict(small_sd)
    sd["DR2.weight"] = torch.zeros(128, 48, 3, 3)
    err = refused(tmp_path, capsys, sd, *FLAGS)
    assert "DR2.weight" in err and "(128, 48, 3, 3)" in err and "1 × 1 convolution" in err


def test_refuses_what_is_not_a_checkpoint(tmp_path, capsys, small_sd):
    (tmp_path / "in.pth").write_bytes(b"not a checkpoint")
    assert "not a loadable PyTorch checkpoint" in refused(tmp_path, capsys, None, save=False)
    assert "holds a list" in refused(tmp_path, capsys, [1, 2])
    assert "'epoch'" in refused(tmp_path, capsys, {"net": dict(small_sd), "epoch": 3})
    other = {"pos_embedding": torch.zeros(1, 5, 8)}  # a SpectralFormer
    assert "key spat_encoder.patch_embed.proj.weight is missing" in refused(tmp_path, capsys, other)
    err = refused(tmp_path, capsys, {"module." + k: v for k, v in small_sd.items()})
    assert "width 48" in err and "--heads" in err  # the prefix is stripped; width needs the flags
    assert "must be 4 increasing" in refused(tmp_path, capsys, dict(small_sd), "--heads", "4",
                                             "--interval", "2", "--out-indices", "3,2,1,0")


def test_refusals_of_the_pretrained_transfer(tmp_path, capsys):
    model = oracle(9, 2)
    spatial = mae_checkpoint(model.spat_encoder, "spatial")
    spectral = mae_checkpoint(model.spec_encoder, "spectral")
    flags = [f for f in PRETRAINED_FLAGS]

    def refusal(sp, spec, *args):
        code, out = convert_pretrained(tmp_path, sp, spec, *args)
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and not out.exists(), err
        return err

    assert "--num-classes" in refusal(spatial, spectral, *flags[2:])
    err = refusal(spatial, spectral, *flags[:6], "--num-tokens", "25", *FLAGS)
    assert "key pos_embed has shape (1, 16, 48)" in err and "--num-tokens 16" in err
    cut = {"model": {k: v for k, v in spectral["model"].items() if k != "blocks.3.mlp.fc1.bias"}}
    assert "missing key blocks.3.mlp.fc1.bias" in refusal(spatial, cut, *flags)
    bad = {"model": {**spatial["model"], "blocks.2.norm1.weight": torch.zeros(47)}}
    err = refusal(bad, spectral, *flags)
    assert "spat_encoder.blocks.2.norm1.weight has shape (47,)" in err
    assert convert_cli.main(["hypersigma", "--spatial", "a.pth", "--out", str(tmp_path / "o")]) == 2
    assert "either --checkpoint" in capsys.readouterr().err
    # no class count is refused before the encoders are read (these do not exist)
    assert convert_cli.main(["hypersigma", "--spatial", "a.pth", "--spectral", "b.pth",
                             "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: pretrained encoders have no classifier: pass --num-classes C (the scene's "
        "classes, without background)")


def test_cli_lists_the_family(capsys):
    assert "hypersigma" in convert_cli.FAMILIES
    with pytest.raises(SystemExit) as exit_:
        convert_cli.main(["hypersigma", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    assert exit_.value.code == 0 and "--spectral" in out
    # --heads's default, from the official sizes: the weights give the width, not the heads
    assert "the official model size's for the width: 768 -> 12, 1024 -> 16, 1280 -> 16)" in out


# ---------------------------------------------------------------- counts and configs

# The official notebook's SSFusionFramework(img_size=33, in_channels=30, patch_size=2,
# classes=C + 1, model_size='base'): 3,332 parameters per class.
OFFICIAL_COUNTS = {"indian_pines": 183_804_468, "pavia_university": 183_781_144,
                   "houston2013": 183_801_136, "botswana": 183_797_804}


@pytest.mark.parametrize("dataset", sorted(OFFICIAL_COUNTS))
def test_configs_reproduce_the_official_counts(dataset):
    config = load_config(f"configs/{dataset}_hypersigma.py")
    row = count(config)
    assert (row["model"], row["method"]) == ("hypersigma", "fft")
    assert row["trainable"] == row["total"] == OFFICIAL_COUNTS[dataset]
    c = len(SCENES[dataset].class_names)
    unused = unused_shapes(c + 1, 768, 12, 12, 4.0, 3, 4, 8, 100, 49152, 3072)
    n_unused = sum(int(np.prod(s)) for s in jax.tree.leaves(unused, is_leaf=lambda v: isinstance(v, tuple)))
    assert n_unused == 64_381_744 + 3_203 * (c + 1)  # the official no-gradient ones
    if dataset == "pavia_university":  # WHU-Hi-LongKou: 9 classes too, the same count
        longkou = load_config("configs/whu_hi_longkou_hypersigma.py")
        assert longkou.model == config.model and longkou.data.num_classes == c == 9


def test_the_config_is_the_official_recipe():
    config = load_config("configs/indian_pines_hypersigma.py")
    assert check_config(config) == []
    m, d, o = config.model, config.data, config.optim
    assert (m.name, m.variant, m.patch_size, m.n_points, m.num_tokens, m.drop_path, m.dropout) == (
        "hypersigma", "base", 2, 8, 100, 0.1, 0.4)
    assert (d.pca, d.input_size, d.neighborhood, d.normalize, d.padding) == (
        30, 33, 33, "zscore", "zeros")
    assert (o.name, o.lr, o.weight_decay, o.b1, o.b2, o.layer_decay, o.warmup_epochs) == (
        "adamw", 6e-5, 0.05, 0.9, 0.999, 1.0, 0.0)
    assert (o.schedule, o.step_gamma, config.batch_size, config.epochs) == ("step", 1.0, 64, 200)
    assert config.drop_last is False  # the notebook's DataLoader(shuffle=True): a partial batch
    assert (config.init, config.pretrained_dir) == ("pretrained", "checkpoints/hypersigma_indian_pines")
    assert not any(config.augment.values())


def test_no_official_setting_prints_182_632_m():
    """The paper's 182.632 M: the notebook's geometry gives ≥ 183.75 M for any class count;
    patch size 8 with 14 outputs (Botswana's 14 classes without the background) happens to."""
    def total(**kw):
        m = HyperSIGMA(**kw)
        shapes = jax.eval_shape(m.init, jax.random.key(0), jnp.zeros((1, *m.input_shape)))
        return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(shapes))
    assert total(num_classes=1) == 183_754_488  # 2 official outputs, the fewest possible
    assert total(num_classes=13, patch_size=8) == 182_632_488


# ---------------------------------------------------------------- the family contract

SMALL = dict(patch_size=1, width=16, depth=4, heads=2, interval=2, out_indices=(0, 1, 2, 3),
             n_points=2, num_tokens=4, spat_classifier_in=32, spat_classifier1_in=32)
# For the fine-tuning methods, whose steps compile the most: full attention everywhere and one
# 11 × 11 patch (the FPN is then the identity); the sampling attention is tested above.
TINY = {**SMALL, "patch_size": 4, "interval": 1, "num_tokens": 16, "spat_classifier_in": 16, "spat_classifier1_in": 16}


def small_config(method="fft"):
    config = hypersigma_config.get_config("indian_pines", method)
    config.init = "random"
    config.model.update(TINY)
    config.data.update(dict(input_size=16, neighborhood=15, pca=3))
    if method.startswith("krona"):  # q and v slices of qkv: 16 outputs × 16 inputs
        config.method.update(dict(a_shape=(2, 2), b_shape=(8, 8)))
    if method == "lokr":
        config.method.update(dict(factor=4, rank=2))
    return config


def test_registered_and_built_from_the_config():
    assert "hypersigma" in FAMILIES
    fam = family("hypersigma")
    module = fam.build(dict(name="hypersigma", variant="base"), input_size=33, bands=30,
                       num_classes=9)
    assert module.input_shape == (33, 33, 30) and module.num_classes == 9
    assert (module.width, module.depth, module.out_indices) == (768, 12, (3, 5, 7, 11))
    assert fam.model_from_config({**SMALL, "num_classes": 2, "dtype": "bfloat16"}).dtype == jnp.bfloat16
    with pytest.raises(ValueError, match="patch_size 3 has no FPN"):
        build(dict(patch_size=3), input_size=33, bands=30, num_classes=2).init(
            jax.random.key(0), jnp.zeros((1, 33, 33, 30)))
    with pytest.raises(ValueError, match=r"expected \(N, 5, 5, 3\)"):
        HyperSIGMA(num_classes=2, img_size=5, bands=3, **SMALL).init(
            jax.random.key(0), jnp.zeros((1, 7, 7, 3)))


def test_adaptable_layers_and_layer_ids():
    shapes = jax.eval_shape(HyperSIGMA(num_classes=4, img_size=5, bands=3, **SMALL).init,
                            jax.random.key(0), jnp.zeros((1, 5, 5, 3)))["params"]
    sites = find_sites(shapes["backbone"], ADAPTABLE, ("q", "v", "proj", "fc1", "fc2"))
    groups = {s.group for s in sites}
    assert groups == {*(f"spat_block_{i}" for i in range(4)), "spec_block_0"}  # no unused block
    assert {s.part for s in sites if s.target == "v"} == {(2, 3)}
    assert layer_index("backbone/spat_patch_embed/kernel", 12) == 0
    assert layer_index("backbone/spec_pos_embed", 12) == 0
    assert layer_index("backbone/spec_block_3/attn/qkv/kernel", 12) == 4
    assert layer_index("adapters/spat_block_11/q/a", 12) == 12
    assert layer_index("head/kernel", 12) == layer_index("backbone/DR1/kernel", 12) == 13


@functools.lru_cache(maxsize=None)
def loss_and_grads(module, adapter, sites):
    """The jitted training loss and gradients (of every leaf: the optimizer zeroes the frozen
    ones) of the module with `adapter` on `sites`, one compilation for the methods of the same
    forward (fft / bitfit / linear_probe, lora / lora_plus, krona / krona_plus); without an
    adapter also the train- and eval-mode logits."""
    tuned = TunedModel(module, Method("step", (), adapter), sites)

    def f(params, x, y, key):
        def loss(p):
            logits = tuned.apply(p, x, train=True, rngs={"dropout": key})
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), logits
        (value, logits), grads = jax.value_and_grad(loss, has_aux=True)(params)
        return value, grads, (logits, tuned.apply(params, x)) if adapter is None else None

    return jax.jit(f, compiler_options=FAST)


# Every method of the registry, in two tests (so that two processes share the work): those
# without adapters, those with. LoRA+ and KronA+ are LoRA and KronA with another learning rate
# on the B side (`tests/test_optimizer.py`): the same parameters, labels and step here, so the
# methods with a B side are left out.
PLAIN = tuple(name for name, spec in SPECS.items() if spec.adapter is None)
FACTORS = tuple(name for name, spec in SPECS.items() if spec.adapter is not None and not spec.b_side)


def test_every_method_is_in_a_group():
    assert set(PLAIN) >= {"fft", "bitfit", "linear_probe"}
    assert set(FACTORS) >= {"lora", "krona", "lokr"} and not set(FACTORS) & {"lora_plus", "krona_plus"}


@pytest.mark.parametrize("names", [PLAIN, FACTORS], ids=["without-adapters", "with-adapters"])
def test_every_method_trains_one_step(names):
    for name in names:
        try:
            one_step(name)
        except Exception as e:
            raise AssertionError(f"method {name}: {e}") from e


def one_step(name):
    """tuned_model → create_train_state → one optimizer step: the trainable leaves move,
    the frozen ones do not; the adapters get gradients; dropout and drop path act in
    training only."""
    config = small_config(name)
    tuned = tuned_model(config, num_classes=4, bands=3)
    setup, state, frozen = create_train_state(config, tuned, [0], steps_per_epoch=1)
    trainable = jax.tree.map(lambda a: a[0], state["params"])
    params = combine(trainable, frozen)
    opt_state = jax.tree.map(lambda a: a[0], state["opt_state"])
    x, y = jnp.asarray(inputs(4, 16, bands=3)), jnp.arange(4)
    value, grads, logits = loss_and_grads(tuned.module, tuned.method.adapter, tuned.sites)(
        params, x, y, jax.random.key(1, impl="rbg"))
    grads, _ = split(grads, setup.labels)
    updates, _ = jax.jit(setup.tx.update, compiler_options=FAST)(grads, opt_state, trainable)
    new = combine(optax.apply_updates(trainable, updates), frozen)
    assert np.isfinite(float(value))
    if logits is not None:
        trained, evaluated = logits  # in training, the background output after the classes
        assert trained.shape == (4, 5) and evaluated.shape == (4, 4)
        assert np.abs(np.asarray(trained[:, :4] - evaluated)).max() > 1e-4  # dropout, drop path
    flat = lambda t: {"/".join(str(k.key) for k in p): v for p, v in jax.tree_util.tree_leaves_with_path(t)}
    labels, before, after = flat(setup.labels), flat(params), flat(new)
    moved = {p for p in before if not np.array_equal(before[p], after[p])}
    trainable = {p for p, l in labels.items() if l != "frozen"}
    assert moved <= trainable and "head/kernel" in moved
    if name == "linear_probe":  # the official classifier, all three layers
        assert trainable == {"head/fc_0/kernel", "head/fc_0/bias", "head/fc_1/kernel",
                             "head/fc_1/bias", "head/kernel", "head/bias",
                             "head/background/kernel", "head/background/bias"}
    if name == "bitfit":  # the fused qkv's bias (q and v are thirds of it)
        assert trainable - {p for p in trainable if p.startswith("head/")} == {
            f"backbone/{b}/attn/qkv/bias" for b in (*(f"spat_block_{i}" for i in range(4)),
                                                     "spec_block_0")}
    if name == "fft":
        assert "backbone/unused/spec_block_1/mlp/fc1/kernel" in trainable  # but no gradient
        assert not np.any(np.asarray(flat(grads)["backbone/unused/spec_block_1/mlp/fc1/kernel"]))
    if tuned.method.adapter is not None:  # on the q and v thirds of qkv in both ViTs
        adapted = {p for p in trainable if p.startswith("adapters/")}
        assert {p.split("/")[1] for p in adapted} == {*(f"spat_block_{i}" for i in range(4)),
                                                      "spec_block_0"}
        assert {p.split("/")[2] for p in adapted} == {"q", "v"}
        live = {p.split("/")[1] for p, g in flat(grads).items()
                if p.startswith("adapters/") and np.any(np.asarray(g))}
        assert live == {p.split("/")[1] for p in adapted}  # every adapter is in the forward


def test_a_conversion_as_the_pretrained_backbone(small):
    clf = small[1]
    config = small_config()
    folder = clf.manifest["source"].rsplit("/", 1)[0] + "/flax"
    config.init, config.pretrained_dir = "pretrained", folder
    config.model.update(dict(patch_size=2, width=48, depth=5, heads=4, interval=2,
                             out_indices=(1, 2, 3, 4), n_points=4, num_tokens=16,
                             spat_classifier_in=96, spat_classifier1_in=80))
    module = family("hypersigma").build(config.model, input_size=9, bands=BANDS,
                                        num_classes=CLASSES)
    backbone = pretrained_backbone(config, module)
    jax.tree.map(np.testing.assert_array_equal, backbone, clf.params["backbone"])
    manifest = json.loads(open(f"{folder}/manifest.json").read())
    other = family("hypersigma").build(config.model, input_size=11, bands=BANDS, num_classes=3)
    problem = pretrained_mismatch(manifest["model"], other)
    assert "'img_size': (9, 11)" in problem and "--config.data.input_size=9" in problem
    assert "'num_classes': (5, 3)" in problem and "--num-classes 3" in problem
