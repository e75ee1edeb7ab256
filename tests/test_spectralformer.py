"""The SpectralFormer family: the Flax port against an independent PyTorch oracle
(tests/torch_spectralformer.py) through the converter CLI, the converter's refusals, every
fine-tuning method on it, and the configs' parameter counts against the paper."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import torch_spectralformer as ref
from convert import __main__ as convert_cli
from convert.spectralformer import OFFICIAL_INDIAN_PINES_CLASSES
from hsic_jax import load_converted
from hsic_jax.adapters import TunedModel, method_from_config
from hsic_jax.adapters.methods import METHODS
from hsic_jax.count import count, load_config
from hsic_jax.data.scenes import SCENES
from hsic_jax.models import FAMILIES, family
from hsic_jax.models.spectralformer import (ADAPTABLE, SpectralFormer, band_offsets, build,
                                            group_bands, pretrained_mismatch)
from hsic_jax.train.checks import check_config
from hsic_jax.train.state import pretrained_backbone

TOL = 1e-5
# Tiny but complete: 4 layers (2 skipcat convolutions), 2 heads of 8, 13 bands.
TINY = dict(bands=13, num_classes=5, dim=16, depth=4, heads=2, dim_head=8, mlp_dim=6)


def tiny_oracle(patches, band_patches, mode, seed=0, **over):
    kw = {**TINY, **over}
    return ref.randomized(ref.ViT(patches=patches, band_patches=band_patches, mode=mode, **kw), seed)


def convert(tmp_path, payload, *flags, name="model.pt"):
    """Save `payload` as the official demo saves (torch.save of a state_dict), run
    `python -m convert spectralformer ...`, and load the result."""
    src, out = tmp_path / name, tmp_path / "flax"
    torch.save(payload, src)
    assert convert_cli.main(["spectralformer", "--checkpoint", str(src), "--out", str(out),
                             *flags]) == 0
    return load_converted(str(out))


def neighbourhoods(n, p, bands, seed=0):
    return np.random.RandomState(seed).rand(n, p, p, bands).astype(np.float32)  # min-max range


def relative_error(clf, oracle, x, band_patches):
    with jax.default_matmul_precision("highest"):
        y = np.asarray(clf(x))
    t = ref.logits(oracle, x, band_patches)
    assert y.shape == t.shape
    err = float(np.abs(y - t).max() / np.abs(t).max())
    print(f"max|Δ|/max|y| = {err:.2e} over logits {y.shape}")  # shown with pytest -s
    return err


def test_band_groups_follow_the_official_order():
    """Band j's token: groups of offsets -1, -2, 0, 1, 2 patch-wise, -2, -1, 0, 1, 2 pixel-wise,
    wrapping around the spectrum; p² pixels row-major inside a group."""
    assert band_offsets(5, 3) == (-1, -2, 0, 1, 2)
    assert band_offsets(5, 1) == (-2, -1, 0, 1, 2)
    assert band_offsets(3, 7) == band_offsets(3, 1) == (-1, 0, 1)
    bands = 6
    x = np.arange(2 * 9 * bands, dtype=np.float32).reshape(2, 3, 3, bands)
    tokens = np.asarray(group_bands(jnp.asarray(x), 5))
    assert tokens.shape == (2, bands, 45)
    pixels = x.reshape(2, 9, bands)
    for j in range(bands):
        for g, o in enumerate((-1, -2, 0, 1, 2)):
            np.testing.assert_array_equal(tokens[:, j, 9 * g:9 * (g + 1)], pixels[:, :, (j + o) % bands])
    np.testing.assert_array_equal(tokens, ref.official_tokens(x, 5))
    px = x[:, :1, :1]
    np.testing.assert_array_equal(np.asarray(group_bands(jnp.asarray(px), 5))[0, 0],
                                  px[0, 0, 0, [4, 5, 0, 1, 2]])
    np.testing.assert_array_equal(np.asarray(group_bands(jnp.asarray(px), 5)),
                                  ref.official_tokens(px, 5))


CASES = [("CAF", 1, 3), ("CAF", 3, 5), ("ViT", 1, 3), ("ViT", 3, 5)]


@pytest.mark.parametrize("mode,patches,band_patches", CASES,
                         ids=[f"{m}-{'pixel' if p == 1 else 'patch'}{p}-bands{b}" for m, p, b in CASES])
def test_converted_logits_equal_the_oracle(tmp_path, mode, patches, band_patches):
    oracle = tiny_oracle(patches, band_patches, mode, seed=patches + band_patches)
    clf = convert(tmp_path, oracle.state_dict(), "--mode", mode, "--patches", str(patches),
                  "--heads", "2")
    assert clf.manifest["family"] == "spectralformer"
    assert clf.config == {**TINY, "patches": patches, "band_patches": band_patches, "mode": mode,
                          "dropout": 0.1, "emb_dropout": 0.1}
    assert clf.manifest["reinitialised"] == []
    skipcat = [f"transformer.skipcat.{j}.{w}" for j in range(2) for w in ("bias", "weight")]
    assert clf.manifest["dropped"] == (skipcat if mode == "ViT" else [])
    assert ("skipcat_0" in clf.params["backbone"]) == (mode == "CAF")
    assert relative_error(clf, oracle, neighbourhoods(6, patches, 13), band_patches) <= TOL


def test_caf_fusion_matters():
    """The CAF and ViT forwards differ on the same weights (the skipcat path is live)."""
    oracle = tiny_oracle(1, 3, "CAF")
    x = neighbourhoods(4, 1, 13)
    caf = ref.logits(oracle, x, 3)
    oracle.transformer.mode = "ViT"
    assert np.abs(caf - ref.logits(oracle, x, 3)).max() > 1e-2


def test_official_indian_pines_patch_checkpoint(tmp_path):
    """The shape of the official patch-wise Indian Pines model (7 × 7, 3 bands per token, CAF,
    200 bands, 16 classes): 355,577 parameters, bare state_dict or a wrapper."""
    oracle = ref.randomized(ref.ViT(patches=7, band_patches=3, bands=200, num_classes=16), seed=3)
    assert sum(p.numel() for p in oracle.parameters()) == 355_577
    clf = convert(tmp_path, {"state_dict": oracle.state_dict(), "epoch": 300},
                  "--mode", "CAF", "--patches", "7")
    assert clf.module.input_shape == (7, 7, 200) and clf.config["band_patches"] == 3
    assert sum(np.size(a) for a in jax.tree.leaves(clf.params)) == 355_577
    assert relative_error(clf, oracle, neighbourhoods(3, 7, 200), 3) <= TOL


def test_official_indian_pines_class_map():
    """The official file's 16 classes: the usual names, 13 of 50 training pixels then 15s."""
    usual = SCENES["indian_pines"]
    assert sorted(OFFICIAL_INDIAN_PINES_CLASSES) == sorted(usual.class_names)
    per_class = usual.paper_per_class()
    assert [per_class[c] for c in OFFICIAL_INDIAN_PINES_CLASSES] == [50] * 13 + [15] * 3


def test_band_patches_from_the_flag_and_a_new_head(tmp_path):
    oracle = tiny_oracle(3, 3, "CAF")
    clf = convert(tmp_path, oracle.state_dict(), "--mode", "CAF", "--band-patches", "3",
                  "--heads", "2", "--num-classes", "7")
    assert clf.config["patches"] == 3 and clf.config["num_classes"] == 7
    assert clf.manifest["reinitialised"] == ["head/bias", "head/kernel"]
    assert clf.manifest["dropped"] == ["mlp_head.1.bias", "mlp_head.1.weight"]
    assert np.asarray(clf(neighbourhoods(2, 3, 13))).shape == (2, 7)


# ---------------------------------------------------------------- the converter's refusals

def refused(tmp_path, capsys, payload, *flags, save=True):
    """Run the converter on `payload`; assert it refused with one line and wrote nothing."""
    src, out = tmp_path / "in.pt", tmp_path / "out"
    if save:
        torch.save(payload, src)
    code = convert_cli.main(["spectralformer", "--checkpoint", str(src), "--out", str(out), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert not out.exists()
    return err


@pytest.fixture
def sd():
    return tiny_oracle(3, 3, "CAF").state_dict()


FLAGS = ("--mode", "CAF", "--patches", "3", "--heads", "2")


def test_refuses_a_shape_mismatch(tmp_path, capsys, sd):
    sd["transformer.skipcat.1.weight"] = torch.zeros(14, 14, 1, 3)
    err = refused(tmp_path, capsys, sd, *FLAGS)
    assert "transformer.skipcat.1.weight" in err and "(14, 14, 1, 3)" in err
    sd["transformer.skipcat.1.weight"] = torch.zeros(14, 13, 1, 2)
    err = refused(tmp_path, capsys, sd, *FLAGS)
    assert "transformer.skipcat.1.weight" in err and "(14, 13, 1, 2)" in err


def test_refuses_unknown_and_missing_keys(tmp_path, capsys, sd):
    sd["transformer.layers.0.0.fn.fn.to_qkv.bias"] = torch.zeros(48)
    assert "transformer.layers.0.0.fn.fn.to_qkv.bias" in refused(tmp_path, capsys, sd, *FLAGS)
    del sd["transformer.layers.0.0.fn.fn.to_qkv.bias"], sd["transformer.layers.2.1.fn.norm.bias"]
    assert "missing key transformer.layers.2.1.fn.norm.bias" in refused(tmp_path, capsys, sd, *FLAGS)


def test_caf_needs_the_skipcat_convolutions(tmp_path, capsys, sd):
    for k in [k for k in sd if k.startswith("transformer.skipcat.")]:
        del sd[k]
    assert "missing key transformer.skipcat.0.weight" in refused(tmp_path, capsys, sd, *FLAGS)


def test_refuses_geometry_the_weights_do_not_fit(tmp_path, capsys, sd):
    err = refused(tmp_path, capsys, sd, "--mode", "CAF", "--heads", "2")
    assert "patch_to_embedding.weight has 27 inputs" in err and "--patches" in err
    assert "does not divide" in refused(tmp_path, capsys, sd, "--mode", "CAF", "--patches", "2")
    assert "does not fit" in refused(tmp_path, capsys, sd, "--mode", "CAF", "--band-patches", "2")
    assert "heads" in refused(tmp_path, capsys, sd, "--mode", "CAF", "--patches", "3", "--heads", "3")
    even = {**sd, "patch_to_embedding.weight": torch.zeros(16, 18)}
    assert "odd" in refused(tmp_path, capsys, even, *FLAGS[:4], "--band-patches", "2")


def test_refuses_files_that_are_not_state_dicts(tmp_path, capsys, sd):
    (tmp_path / "in.pt").write_bytes(b"not a checkpoint")
    assert "not a loadable PyTorch checkpoint" in refused(tmp_path, capsys, None, *FLAGS, save=False)
    assert "holds a list" in refused(tmp_path, capsys, [1, 2], *FLAGS)
    assert "'epoch'" in refused(tmp_path, capsys, {"net": sd, "epoch": 3}, *FLAGS)
    spectralgpt_like = {"patch_embed.proj.weight": torch.zeros(8, 1, 3, 4, 4)}
    assert "key pos_embedding is missing" in refused(tmp_path, capsys, spectralgpt_like, *FLAGS)


def test_out_folder_rules(tmp_path, capsys, sd):
    convert(tmp_path, sd, *FLAGS)
    args = ["spectralformer", "--checkpoint", str(tmp_path / "model.pt"), "--out",
            str(tmp_path / "flax"), *FLAGS]
    assert convert_cli.main(args) == 2
    assert "--replace" in capsys.readouterr().err
    assert convert_cli.main([*args, "--replace"]) == 0


def test_cli_dispatch(capsys):
    assert convert_cli.FAMILIES == ("hypersigma", "mambahsi", "spectralformer", "spectralgpt")
    assert convert_cli.main(["nope"]) == 2
    assert "'nope' is not a family the converter knows: hypersigma, mambahsi, spectralformer, spectralgpt" in (
        capsys.readouterr().err)
    assert convert_cli.main([]) == 2
    with pytest.raises(SystemExit) as exit_:
        convert_cli.main(["spectralformer", "--help"])
    assert exit_.value.code == 0 and "--band-patches" in capsys.readouterr().out


# ---------------------------------------------------------------- the family contract, PEFT

def tiny_module(**over):
    return SpectralFormer(**{**TINY, "patches": 3, "band_patches": 3, "mode": "CAF", **over})


def randomise(tree, seed):
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree.unflatten(treedef, [0.3 * jax.random.normal(k, p.shape) for k, p in zip(keys, leaves)])


def test_registered_and_built_from_the_config():
    assert "spectralformer" in FAMILIES
    fam = family("spectralformer")
    module = fam.build(dict(name="spectralformer", band_patches=3, mode="ViT"), input_size=7,
                       bands=103, num_classes=9)
    assert module.input_shape == (7, 7, 103) and module.num_classes == 9
    assert fam.model_from_config({**TINY, "patches": 1, "dtype": "bfloat16"}).dtype == jnp.bfloat16
    with pytest.raises(ValueError, match="band_patches 2 must be an odd"):
        build(dict(band_patches=2), input_size=1, bands=5, num_classes=2).init(
            jax.random.key(0), jnp.zeros((1, 1, 1, 5)))
    with pytest.raises(ValueError, match=r"expected \(N, 3, 3, 13\)"):
        tiny_module().init(jax.random.key(0), jnp.zeros((1, 5, 5, 13)))


def test_dropout_only_in_training():
    module = tiny_module()
    x = neighbourhoods(4, 3, 13)
    params = module.init(jax.random.key(0), x)
    evaluated = module.apply(params, x)
    trained = module.apply(params, x, train=True, rngs={"dropout": jax.random.key(1)})
    assert np.abs(np.asarray(trained - evaluated)).max() > 1e-3
    quiet = tiny_module(dropout=0.0, emb_dropout=0.0)
    np.testing.assert_array_equal(quiet.apply(params, x, train=True, rngs={"dropout": jax.random.key(1)}),
                                  quiet.apply(params, x))


def method_cfg(name):
    cfg = dict(name=name, targets=("q", "v"))
    if name.startswith("krona"):  # q and v slices of to_qkv: 16 outputs × 16 inputs
        cfg.update(a_shape=(2, 2), b_shape=(8, 8))
    if name == "lokr":
        cfg.update(factor=4, rank=2)
    if name == "bitfit":
        cfg["targets"] = ("proj", "fc1", "fc2")
    return cfg


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_applies(name):
    module = tiny_module()
    tuned = TunedModel.create(module, method_from_config(method_cfg(name)), ADAPTABLE)
    x = neighbourhoods(3, 3, 13)
    params = randomise(tuned.init(jax.random.key(0), x), 1)
    labels = tuned.labels(params)
    trainable = {p for p, l in _flat(labels).items() if l != "frozen"}
    assert {"head/kernel", "head/bias"} <= trainable
    if name == "linear_probe":
        assert trainable == {"head/kernel", "head/bias"}  # the mlp_head norm stays frozen
    if name == "bitfit":
        assert trainable - {"head/kernel", "head/bias"} == {
            f"backbone/layer_{i}/{layer}/bias" for i in range(4)
            for layer in ("attn/to_out", "ff/fc1", "ff/fc2")}
    with jax.default_matmul_precision("highest"):
        y = tuned.apply(params, x)
        merged = module.apply({"params": tuned.merge(params)}, x)
        tuned.apply(params, x, train=True, rngs={"dropout": jax.random.key(2)})
    assert y.shape == (3, 5)
    np.testing.assert_allclose(merged, y, rtol=1e-5, atol=1e-5)


def test_bitfit_on_the_bias_free_qkv_is_refused_naming_the_layers_with_biases():
    with pytest.raises(ValueError, match=r"q, v have no bias .* the targets with biases here "
                                         r"are \['proj', 'fc1', 'fc2'\]"):
        TunedModel.create(tiny_module(), method_from_config(dict(name="bitfit")), ADAPTABLE)
    tuned = TunedModel.create(tiny_module(), method_from_config(
        dict(name="bitfit", targets=("proj", "fc1", "fc2"))), ADAPTABLE)
    labels = tuned.labels(tuned.init(jax.random.key(0), neighbourhoods(1, 3, 13)))
    trained = [p for p, label in jax.tree_util.tree_leaves_with_path(labels) if label == "base"]
    assert trained and all(str(p[-1].key) == "bias" or str(p[0].key) == "head" for p in trained)


@pytest.mark.parametrize("targets", [("q", "v"), ("k",), ("q", "proj", "fc2")])
def test_lora_equals_the_explicitly_adapted_weights(targets):
    """LoRA on slices of the fused to_qkv (and on whole layers) = the module with W + s·A·B
    written into those columns by hand."""
    cfg = dict(name="lora", rank=2, alpha=3.0, targets=targets)
    module = tiny_module()
    tuned = TunedModel.create(module, method_from_config(cfg), ADAPTABLE)
    x = neighbourhoods(3, 3, 13)
    params = randomise(tuned.init(jax.random.key(0), x), 4)
    columns = {"q": slice(0, 16), "k": slice(16, 32), "v": slice(32, 48)}
    layers = {"q": "attn/to_qkv", "k": "attn/to_qkv", "v": "attn/to_qkv", "proj": "attn/to_out",
              "fc2": "ff/fc2"}
    explicit = jax.tree.map(np.array, {k: v for k, v in params.items() if k != "adapters"})
    for i in range(4):
        for t in targets:
            node = explicit["backbone"][f"layer_{i}"]
            for part in layers[t].split("/"):
                node = node[part]
            f = params["adapters"][f"layer_{i}"][t]
            node["kernel"][:, columns.get(t, slice(None))] += 1.5 * np.asarray(f["a"]) @ np.asarray(f["b"])
    with jax.default_matmul_precision("highest"):
        got = np.asarray(tuned.apply(params, x))
        want = np.asarray(module.apply({"params": explicit}, x))
    assert np.abs(got - np.asarray(module.apply({"params": explicit | {
        "backbone": params["backbone"]}}, x))).max() > 1e-3  # the adapters change the logits
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def _flat(tree, prefix=""):
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_a_conversion_as_the_pretrained_backbone(tmp_path):
    oracle = ref.randomized(ref.ViT(patches=7, band_patches=3, bands=103, num_classes=9), seed=5)
    clf = convert(tmp_path, oracle.state_dict(), "--mode", "CAF", "--patches", "7")
    config = load_config("configs/pavia_university_spectralformer.py")
    config.init, config.pretrained_dir = "pretrained", str(tmp_path / "flax")
    module = family("spectralformer").build(config.model, input_size=7, bands=103, num_classes=9)
    backbone = pretrained_backbone(config, module)
    jax.tree.map(np.testing.assert_array_equal, backbone, clf.params["backbone"])
    other = family("spectralformer").build({**config.model, "mode": "ViT"}, input_size=5,
                                           bands=103, num_classes=9)
    problem = pretrained_mismatch(clf.config, other)
    assert "'patches': (7, 5)" in problem and "--config.data.input_size=7" in problem
    assert "--config.model.mode='CAF'" in problem


# ---------------------------------------------------------------- configs and counts

# SpectralFormer's #Params (×1e6) in Ligan et al. (2025), as printed.
PAPER = {"indian_pines": 0.356, "pavia_university": 0.171, "houston2013": 0.236,
         "botswana": 0.237, "whu_hi_longkou": 0.558}
# Epochs: Ligan et al. §5, and the official README's patch-wise commands where it has the scene.
PAPER_EPOCHS = {"indian_pines": 300, "pavia_university": 600, "houston2013": 600, "botswana": 300,
                "whu_hi_longkou": 100}
OFFICIAL_EPOCHS = {"indian_pines": 300, "pavia_university": 480, "houston2013": 600}
EXACT = {"indian_pines": 355_577, "pavia_university": 171_113, "houston2013": 235_504,
         "botswana": 237_252, "whu_hi_longkou": 558_052}


@pytest.mark.parametrize("dataset", sorted(PAPER))
def test_configs_reproduce_the_paper_counts(dataset):
    config = load_config(f"configs/{dataset}_spectralformer.py")
    check_config(config)
    row = count(config)
    assert (row["model"], row["method"]) == ("spectralformer", "fft")
    assert row["trainable"] == row["total"] == EXACT[dataset]
    assert round(row["trainable"] / 1e6, 3) == PAPER[dataset]
    m, d, o = config.model, config.data, config.optim
    assert (m.mode, m.band_patches, m.dim, m.depth, m.heads, m.dim_head, m.mlp_dim) == (
        "CAF", 3, 64, 5, 4, 16, 8)
    assert (m.dropout, m.emb_dropout, config.init) == (0.1, 0.1, "random")
    assert (d.neighborhood, d.input_size, d.pca, d.normalize, d.padding) == (
        7, 7, None, "minmax", "symmetric")
    assert (o.name, o.lr, o.schedule, o.step_gamma, config.batch_size) == ("adam", 5e-4, "step", 0.9, 64)
    assert o.step_epochs == config.epochs // 10 and o.weight_decay == 5e-3
    assert (o.step_offset, config.drop_last) == (1, False)  # scheduler.step() first; DataLoader
    assert config.epochs == PAPER_EPOCHS[dataset]
    official = load_config(f"configs/{dataset}_spectralformer.py:official")
    assert official.epochs == OFFICIAL_EPOCHS.get(dataset, PAPER_EPOCHS[dataset])
    assert official.optim.step_epochs == official.epochs // 10
    assert config.data.train_per_class == (
        None if dataset == "houston2013" else SCENES[dataset].paper_per_class())


def test_a_scene_outside_the_epoch_tables_gets_the_default(monkeypatch):
    """A scene added to the registry needs no entry here: the official patch-wise setting and
    `OTHER_EPOCHS` (the README's Indian Pines command)."""
    from configs import spectralformer
    monkeypatch.setitem(spectralformer.EPOCHS, "paper", {
        k: v for k, v in spectralformer.EPOCHS["paper"].items() if k != "botswana"})
    config = spectralformer.get_config("botswana")
    assert config.epochs == spectralformer.OTHER_EPOCHS == 300
    assert config.optim.step_epochs == 30 and config.data.neighborhood == 7


def test_count_cli_skips_the_family_base(capsys):
    from hsic_jax.count import main
    assert main(["configs/spectralformer.py", "configs/indian_pines_spectralformer.py", "--json"]) == 0
    out = capsys.readouterr()
    assert "spectralformer.py is a base" in out.err
    assert [r["trainable"] for r in json.loads(out.out)] == [355_577]
