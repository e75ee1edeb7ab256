"""The MambaHSI family: the associative selective scan against a sequential one, the Flax port
against an independent PyTorch oracle (tests/torch_mambahsi.py) through the converter CLI, the
converter's refusals, the whole-scene contract, every fine-tuning method on it, and the configs'
parameter counts against the paper."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import torch_mambahsi as ref
from configs import mambahsi as mambahsi_configs
from convert import __main__ as convert_cli
from hsic_jax import load_converted
from hsic_jax.adapters.methods import METHODS
from hsic_jax.adapters.tuned import find_sites
from hsic_jax.count import count, load_config
from hsic_jax.data.scenes import SCENES
from hsic_jax.models import FAMILIES, family
from hsic_jax.models.mambahsi import (ADAPTABLE, TASK, MambaHSI, build, pretrained_mismatch,
                                      resize_bilinear_aligned, selective_scan)
from hsic_jax.train.checks import check_config
from hsic_jax.train.partition import combine
from hsic_jax.train.state import create_train_state, pretrained_backbone, tuned_model

TOL = 1e-5
TINY = dict(bands=13, num_classes=5, hidden_dim=16)  # token_num 4: spectral tokens of 4


def relative(y, t) -> float:
    return float(np.abs(np.asarray(y) - t).max() / np.abs(t).max())


# ---------------------------------------------------------------- the selective scan

def sequential_scan(u, delta, A, B, C, D, z):
    """The reference: mamba_ssm's recurrence one step at a time, with `jax.lax.scan`."""
    def step(h, xs):
        u_t, delta_t, B_t, C_t = xs  # (N, Di), (N, Di), (N, S), (N, S)
        h = jnp.exp(delta_t[..., None] * A) * h + (delta_t * u_t)[..., None] * B_t[:, None, :]
        return h, jnp.sum(h * C_t[:, None, :], axis=-1)

    h0 = jnp.zeros((u.shape[0], *A.shape))
    _, y = jax.lax.scan(step, h0, tuple(jnp.moveaxis(t, 1, 0) for t in (u, delta, B, C)))
    return (jnp.moveaxis(y, 0, 1) + D * u) * jax.nn.silu(z)


def test_associative_scan_equals_the_sequential_scan():
    rng = np.random.RandomState(0)
    n, length, d_inner, d_state = 2, 37, 6, 5
    u, z = (rng.randn(n, length, d_inner).astype(np.float32) for _ in range(2))
    delta = np.log1p(np.exp(rng.randn(n, length, d_inner) - 1)).astype(np.float32)  # softplus
    A = -np.exp(rng.randn(d_inner, d_state)).astype(np.float32)
    B, C = (rng.randn(n, length, d_state).astype(np.float32) for _ in range(2))
    D = rng.randn(d_inner).astype(np.float32)
    want = np.asarray(jax.jit(sequential_scan)(u, delta, A, B, C, D, z))
    scan = jax.jit(selective_scan, static_argnums=7)
    for chunk in (0, 8, 40):  # whole; 5 chunks, the last padded; one sequence at a time
        err = relative(scan(u, delta, A, B, C, D, z, chunk), want)
        print(f"chunk {chunk}: max|Δ|/max|y| = {err:.1e}")
        assert err <= TOL


def test_resize_is_torch_bilinear_with_aligned_corners():
    x = np.random.RandomState(1).randn(2, 3, 4, 5).astype(np.float32)
    for size in ((9, 11), (1, 2)):
        want = torch.nn.functional.interpolate(torch.from_numpy(x.transpose(0, 3, 1, 2)), size,
                                               mode="bilinear", align_corners=True)
        got = resize_bilinear_aligned(jnp.asarray(x), *size)
        np.testing.assert_allclose(got, want.numpy().transpose(0, 2, 3, 1), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- against the oracle

def oracle(seed=0, **over):
    kw = {**TINY, **over}
    return ref.randomized(ref.MambaHSI(in_channels=kw.pop("bands"), **kw), seed)


def convert(tmp_path, payload, *flags, name="best_tr30_val10.pth"):
    """Save `payload` as the official script saves (torch.save of a state_dict), run
    `python -m convert mambahsi ...`, and load the result."""
    src, out = tmp_path / name, tmp_path / "flax"
    torch.save(payload, src)
    assert convert_cli.main(["mambahsi", "--checkpoint", str(src), "--out", str(out), *flags]) == 0
    return load_converted(str(out))


def scene(h, w, bands, seed=0):
    return np.random.RandomState(seed).rand(1, h, w, bands).astype(np.float32)  # [0, 1]


def parity(clf, model, x) -> float:
    with jax.default_matmul_precision("highest"):
        y = np.asarray(clf(x))
    t = ref.logits(model, x)
    assert y.shape == t.shape == (*x.shape[:3], clf.config["num_classes"])
    err = relative(y, t)
    print(f"max|Δ|/max|y| = {err:.2e} over per-pixel logits {y.shape}")  # pytest -s shows it
    return err


def test_converted_logits_equal_the_oracle(tmp_path):
    """The official architecture at a small width on a 9 × 11 scene (poolings of odd sizes)."""
    model = oracle(seed=1)
    clf = convert(tmp_path, model.state_dict())
    assert clf.manifest["family"] == "mambahsi" and clf.manifest["reinitialised"] == []
    assert clf.config == {**TINY, "token_num": 4, "group_num": 4, "mamba_type": "both",
                          "use_residual": True, "use_att": True, "d_state": 16, "d_conv": 4,
                          "expand": 2}
    assert parity(clf, model, scene(9, 11, 13)) <= TOL


@pytest.mark.parametrize("variant", [dict(mamba_type="spa", use_residual=False),
                                     dict(mamba_type="spe", token_num=2)],
                         ids=["spa-no-residual", "spe-2-tokens"])
def test_official_variants_equal_the_oracle(tmp_path, variant):
    """The official ablations (one branch; no residuals) on a 4 × 5 scene."""
    model = oracle(seed=2, **variant)
    flags = ["--no-residual"] if variant.get("use_residual") is False else []
    clf = convert(tmp_path, model.state_dict(), *flags)
    assert {k: clf.config[k] for k in variant} == variant
    assert parity(clf, model, scene(4, 5, 13, seed=2)) <= TOL


def test_without_the_fusion_weights(tmp_path):
    """`use_att=False` (no `weights` pair: spa + spe + x) is read from the keys."""
    model = oracle(use_att=False)
    assert not any(k.endswith(".weights") for k in model.state_dict())
    clf = convert(tmp_path, model.state_dict())
    assert clf.config["use_att"] is False and "weights" not in clf.params["backbone"]["block_0"]
    x = scene(4, 4, 13)
    y = jax.eval_shape(clf.module.apply, {"params": clf.params}, x)
    assert y.shape == (1, 4, 4, 5)


def test_official_width_on_indian_pines_bands(tmp_path):
    """`MambaHSI(in_channels=200, num_classes=16, hidden_dim=128)` as train_MambaHSI.py builds
    it: 425,558 parameters in both, the same logits, and a conversion is a pretrained backbone."""
    model = oracle(seed=3, bands=200, num_classes=16, hidden_dim=128)
    assert sum(p.numel() for p in model.parameters()) == 425_558
    clf = convert(tmp_path, {"state_dict": model.state_dict(), "epoch": 200})
    assert sum(np.size(a) for a in jax.tree.leaves(clf.params)) == 425_558
    assert parity(clf, model, scene(5, 7, 200, seed=3)) <= TOL  # odd sizes pooled

    config = load_config("configs/indian_pines_mambahsi.py")
    config.init, config.pretrained_dir = "pretrained", str(tmp_path / "flax")
    module = family("mambahsi").build(config.model, input_size=1, bands=200, num_classes=16)
    jax.tree.map(np.testing.assert_array_equal, pretrained_backbone(config, module),
                 clf.params["backbone"])
    problem = pretrained_mismatch(clf.config, build({**config.model, "hidden_dim": 64},
                                                    input_size=1, bands=103, num_classes=9))
    assert "'bands': (200, 103)" in problem and "--config.data.pca=200" in problem
    assert "--config.model.hidden_dim=128" in problem


# ---------------------------------------------------------------- the converter's refusals

def refused(tmp_path, capsys, payload, *flags, save=True):
    """Run the converter on `payload`; assert it refused with one line and wrote nothing."""
    src, out = tmp_path / "in.pth", tmp_path / "out"
    if save:
        torch.save(payload, src)
    code = convert_cli.main(["mambahsi", "--checkpoint", str(src), "--out", str(out), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert not out.exists()
    return err


@pytest.fixture(scope="module")
def official_sd():
    """The official layout at the width of `method_config` (hidden_dim 8, 5 bands), so that
    initialising a fresh head shares its shapes (and compiled operations) with those tests."""
    return ref.MambaHSI(in_channels=5, hidden_dim=8, num_classes=4).state_dict()


def test_refuses_missing_keys_and_wrong_shapes(tmp_path, capsys, official_sd):
    sd = dict(official_sd)
    del sd["mamba.2.spe_mamba.mamba.dt_proj.bias"]
    assert "missing key mamba.2.spe_mamba.mamba.dt_proj.bias" in refused(tmp_path, capsys, sd)
    sd = {**official_sd, "mamba.4.spa_mamba.mamba.x_proj.weight": torch.zeros(34, 16)}
    err = refused(tmp_path, capsys, sd)  # dt_rank 1 + 2 · d_state 16 = 33 outputs
    assert "mamba.4.spa_mamba.mamba.x_proj.weight has shape (34, 16)" in err
    assert "(16, 34)" in err and "(16, 33)" in err  # what it maps to, what the model expects
    sd = {**official_sd, "mamba.0.spa_mamba.mamba.conv1d.weight": torch.zeros(16, 1, 4, 1)}
    err = refused(tmp_path, capsys, sd)
    assert "mamba.0.spa_mamba.mamba.conv1d.weight has shape (16, 1, 4, 1)" in err
    sd = {**official_sd, "mamba.0.spe_mamba.mamba.in_proj.weight": torch.zeros(12, 3)}
    err = refused(tmp_path, capsys, sd)
    assert "mamba.0.spe_mamba.mamba.in_proj.weight has shape (12, 3)" in err
    assert "hidden_dim 8" in err


def test_refuses_unknown_keys_and_other_models(tmp_path, capsys, official_sd):
    sd = {**official_sd, "mamba.1.weights": torch.zeros(2)}
    assert "key mamba.1.weights (2,) is not part of an official MambaHSI" in refused(
        tmp_path, capsys, sd)
    spectralformer = {"pos_embedding": torch.zeros(1, 14, 16), "cls_token": torch.zeros(1, 1, 16)}
    assert "missing key patch_embedding.0.weight" in refused(tmp_path, capsys, spectralformer)
    assert "--mamba-type spa" in refused(tmp_path, capsys, official_sd, "--mamba-type", "spa")
    assert "group_num 3 must divide hidden_dim 8" in refused(tmp_path, capsys, official_sd,
                                                              "--group-num", "3")
    (tmp_path / "in.pth").write_bytes(b"not a checkpoint")
    assert "not a loadable PyTorch checkpoint" in refused(tmp_path, capsys, None, save=False)


def test_a_new_head_and_the_cli(tmp_path, capsys, official_sd):
    clf = convert(tmp_path, official_sd, "--num-classes", "3")
    assert clf.config["num_classes"] == 3
    assert clf.manifest["reinitialised"] == ["head/bias", "head/kernel"]
    assert clf.manifest["dropped"] == ["cls_head.3.bias", "cls_head.3.weight"]
    assert "mambahsi" in convert_cli.FAMILIES
    with pytest.raises(SystemExit) as exit_:
        convert_cli.main(["mambahsi", "--help"])
    assert exit_.value.code == 0 and "--group-num" in capsys.readouterr().out


# ---------------------------------------------------------------- the family contract, PEFT

def test_registered_as_a_whole_scene_family():
    assert "mambahsi" in FAMILIES and TASK == "scene"
    fam = family("mambahsi")
    assert fam.TASK == "scene"
    module = fam.build(dict(name="mambahsi", hidden_dim=64), input_size=27, bands=103,
                       num_classes=9)
    assert (module.input_shape, module.num_classes, module.hidden_dim) == ((4, 4, 103), 9, 64)
    assert fam.model_from_config({**TINY, "dtype": "bfloat16"}).dtype == jnp.bfloat16
    module = MambaHSI(**TINY)
    for shape in ((1, 9, 11, 12), (1, 3, 11, 13), (9, 11, 13)):
        with pytest.raises(ValueError, match=r"expected \(N, H, W, 13\)"):
            jax.eval_shape(module.init, jax.random.key(0), jnp.zeros(shape))
    for over, message in ((dict(token_num=3), "token_num 3 must divide"),
                          (dict(group_num=8, hidden_dim=12), "group_num 8 must divide"),
                          (dict(mamba_type="x"), "mamba_type 'x'"),
                          (dict(scan_chunk=-1), "scan_chunk -1")):
        with pytest.raises(ValueError, match=message):
            jax.eval_shape(MambaHSI(**{**TINY, **over}).init, jax.random.key(0),
                           jnp.zeros((1, 4, 4, 13)))


def method_config(name):
    """The Indian Pines config of method `name` at a tiny width (hidden_dim 8: spatial Mamba 8
    → 32 → 8, spectral Mamba of 4 tokens 2 → 8 → 2)."""
    config = mambahsi_configs.get_config("indian_pines", name)
    config.model.hidden_dim = 8
    if name.startswith("krona"):  # spa_in_proj: 32 outputs × 8 inputs
        config.method.update(dict(targets=("spa_in_proj",), a_shape=(4, 2), b_shape=(8, 4)))
    if name == "lokr":
        config.method.update(dict(targets=("spa_in_proj", "spe_out_proj"), factor=2, rank=2))
    if name == "bitfit":
        config.method.targets = ("spa_dt_proj", "spe_dt_proj", "embed", "cls_proj")
    return config


def _flat(tree, prefix=""):
    out = {}
    for k, v in tree.items():
        out.update(_flat(v, f"{prefix}{k}/") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


# LoRA+ and KronA+ train what LoRA and KronA train, at another B-side learning rate
# (tests/test_optimizer.py): the same parameters, labels and logits here.
@pytest.mark.parametrize("name", sorted(set(METHODS) - {"lora_plus", "krona_plus"}))
def test_every_method_gives_per_pixel_logits(name):
    config = method_config(name)
    tuned = tuned_model(config, num_classes=3, bands=5)
    setup, state, frozen = create_train_state(config, tuned, seeds=[0], steps_per_epoch=1)
    params = combine(jax.tree.map(lambda a: a[0], state["params"]), frozen)
    for train in (False, True):
        logits = jax.eval_shape(lambda p, x: tuned.apply(p, x, train=train), params,
                                jax.ShapeDtypeStruct((1, 9, 11, 5), jnp.float32))
        assert (logits.shape, logits.dtype) == ((1, 9, 11, 3), jnp.float32)
    trainable = {p for p, label in _flat(setup.labels).items() if label != "frozen"}
    assert {"head/kernel", "head/bias"} <= trainable
    if name == "linear_probe":
        assert trainable == {"head/kernel", "head/bias"}  # cls_proj and cls_norm stay frozen
    if name == "bitfit":
        assert trainable - {"head/kernel", "head/bias"} == {
            *(f"backbone/block_{i}/{b}/mamba/dt_proj/bias" for i in range(3)
              for b in ("spa", "spe")),
            "backbone/embed/bias", "backbone/cls_proj/bias"}
    if name == "fft":
        assert len(trainable) == len(_flat(params))
    if name in ("lora", "lokr", "krona"):
        assert set(params["adapters"]) == {"block_0", "block_1", "block_2"}


def test_lora_on_both_branches_merges():
    """LoRA on the four projections of both branches changes the per-pixel logits, and merged
    into the kernels gives the same logits."""
    config = method_config("lora")
    tuned = tuned_model(config, num_classes=3, bands=5)
    assert {s.target for s in tuned.sites} == set(mambahsi_configs.TARGETS)
    params = tuned.init(jax.random.key(0), jnp.zeros((1, 4, 4, 5)))
    params["adapters"] = jax.tree.map(lambda a: a + 0.3, params["adapters"])  # b ≠ 0
    zero = jax.tree.map(jnp.zeros_like, params["adapters"])
    apply = jax.jit(lambda p, x: tuned.apply(p, x))
    x = scene(4, 5, 5)
    with jax.default_matmul_precision("highest"):
        y = np.asarray(apply(params, x))
        base = np.asarray(apply({**params, "adapters": zero}, x))
        merged = np.asarray(apply({**tuned.merge(params), "adapters": zero}, x))
    assert y.shape == (1, 4, 5, 3) and np.abs(y - base).max() > 1e-3
    np.testing.assert_allclose(merged, y, rtol=1e-5, atol=1e-5)


def test_adaptable_layers():
    """Every ADAPTABLE target resolves to one layer per block; the branches' widths differ."""
    tuned = tuned_model(method_config("lora"), num_classes=3, bands=5)
    shapes = jax.eval_shape(tuned.module.init, jax.random.key(0), jnp.zeros((1, 4, 4, 5)))
    sites = find_sites(shapes["params"]["backbone"], ADAPTABLE, tuple(ADAPTABLE))
    per_target = {}
    for s in sites:
        per_target.setdefault(s.target, []).append((s.group, s.d_in, s.d_out))
    assert per_target["spa_in_proj"] == [(f"block_{i}", 8, 32) for i in range(3)]
    assert per_target["spe_in_proj"] == [(f"block_{i}", 2, 8) for i in range(3)]
    assert per_target["spa_x_proj"][0][1:] == (16, 33)  # dt_rank 1 + 2 · d_state
    assert per_target["spe_dt_proj"][0][1:] == (1, 4)
    assert per_target["embed"] == [("embed", 5, 8)]
    assert per_target["cls_proj"] == [("cls_proj", 8, 128)]


# ---------------------------------------------------------------- configs and counts

# MambaHSI's #Params in Ligan et al. (2025): MambaHSI(in_channels=bands, hidden_dim=128), all bands.
EXACT = {"indian_pines": 425_558, "pavia_university": 412_239, "houston2013": 418_261,
         "botswana": 418_260, "whu_hi_longkou": 433_615}


@pytest.mark.parametrize("dataset", sorted(EXACT))
def test_configs_reproduce_the_paper_counts(dataset):
    config = load_config(f"configs/{dataset}_mambahsi.py")
    check_config(config)
    row = count(config)
    assert (row["model"], row["method"]) == ("mambahsi", "fft")
    assert row["trainable"] == row["total"] == EXACT[dataset]
    m, d, o = config.model, config.data, config.optim
    assert (m.hidden_dim, m.token_num, m.group_num, m.mamba_type, m.use_att, m.use_residual) == (
        128, 4, 4, "both", True, True)
    assert (d.pca, d.neighborhood, config.init, config.epochs, config.label_smoothing) == (
        None, 1, "random", 200, 0.0)
    assert (o.name, o.lr, o.weight_decay, o.schedule, o.step_gamma, o.warmup_epochs) == (
        "adam", 3e-4, 0.0, "step", 1.0, 0.0)
    assert not any(config.augment.values())
    spec = SCENES[dataset]
    assert (d.val_per_class, config.select, config.eval_every_epochs) == (10, "best_val", 1)
    assert d.train_per_class == {c: min((30 if n > 30 else 15) + 10, n - 1)
                                 for c, n in zip(spec.class_names, spec.class_counts)}


def test_the_paper_split_option():
    config = mambahsi_configs.get_config("houston2013", "lora", split="paper")
    check_config(config)
    assert config.data.train_per_class is None and config.select == "last"
    paper = load_config("configs/indian_pines_mambahsi.py:paper")  # run.py --config=FILE:paper
    assert paper.data.train_per_class == SCENES["indian_pines"].paper_per_class()
    assert (paper.data.val_per_class, paper.select) == (0.0, "last")
    assert mambahsi_configs.official_split("indian_pines")["Oats"] == 19
    assert mambahsi_configs.official_split("indian_pines")["Grass-pasture-mowed"] == 25
