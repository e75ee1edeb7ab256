"""Merge and export: merged and loaded models give the adapted logits; storage vs Table 11."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hsic_jax.adapters import TunedModel, method_from_config
from hsic_jax.adapters.export import export_adapters, load_adapters, npz_bytes, stored_arrays
from hsic_jax.count import MIB, load_config, param_shapes
from hsic_jax.models import model_from_config
from hsic_jax.models.spectralgpt import ADAPTABLE

C = 5
TINY = dict(num_classes=C, img_size=16, patch_size=8, tubelet=3, bands=12, width=48, depth=1,
            heads=4)
ALL = ("q", "k", "v", "proj", "fc1", "fc2")
CFGS = {
    "lora": dict(name="lora", rank=4, alpha=8.0, targets=ALL),
    "krona": dict(name="krona", a_shape=(8, 6), b_shape=(6, 8), scale=0.7,
                  targets=("q", "k", "v", "proj")),
    "lokr": dict(name="lokr", factor=4, rank=2, alpha=3.0, targets=ALL),
}
SHA = "ab" * 32
CLASSES = [f"class {i}" for i in range(C)]


def x_batch():
    return jnp.asarray(np.random.RandomState(0).randn(3, 16, 16, 12).astype(np.float32))


def randomised(params, seed=1, std=0.1):
    """Every leaf perturbed, so that zero-initialised factors contribute."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree.unflatten(tree, [p + std * jax.random.normal(k, p.shape)
                                     for p, k in zip(leaves, keys)])


def tuned_of(method_cfg) -> TunedModel:
    return TunedModel.create(model_from_config(TINY), method_from_config(method_cfg), ADAPTABLE)


def adapted(method_cfg):
    """A tuned tiny model of the method and its parameters, every leaf perturbed."""
    tuned = tuned_of(method_cfg)
    params = randomised(jax.jit(tuned.init)(jax.random.key(0), x_batch()))
    if "adapters" in params:
        params["adapters"] = randomised(params["adapters"], std=0.5)
    return tuned, params


def logits(apply, params):
    with jax.default_matmul_precision("highest"):
        return np.asarray(jax.jit(apply)(params, x_batch()))


def plain(params, x):
    """The untuned model's forward."""
    return model_from_config(TINY).apply({"params": params}, x)


@pytest.mark.parametrize("name", CFGS)
def test_merged_model_reproduces_adapted_logits(name):
    tuned, params = adapted(CFGS[name])
    merged = tuned.merge(params)
    assert "adapters" not in merged
    want = logits(tuned.apply, params)
    got = logits(plain, merged)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    predicted = logits(tuned.apply_merged, params)  # what prediction runs
    np.testing.assert_allclose(predicted, want, rtol=0, atol=1e-5 * np.abs(want).max())
    base = {k: v for k, v in params.items() if k != "adapters"}
    assert np.abs(logits(plain, base) - want).max() > 1e-3  # ΔW matters


@pytest.mark.parametrize("cfg", [CFGS["lora"], CFGS["krona"], dict(name="bitfit"),
                                 dict(name="linear_probe")], ids=lambda c: c["name"])
def test_export_load_round_trip(tmp_path, cfg):
    tuned, params = adapted(cfg)
    base = {"backbone": params["backbone"], "head": jax.tree.map(jnp.zeros_like, params["head"])}
    if cfg["name"] == "bitfit":  # the pretrained q and v biases differ from the trained ones
        base = jax.tree_util.tree_map_with_path(
            lambda path, p: jnp.zeros_like(p) if path[-1].key == "bias" and
            path[-2].key in ("q", "v") else p, base)
    manifest = export_adapters(params, tuned, cfg, str(tmp_path / "exp"), base_sha256=SHA,
                               class_names=CLASSES)
    assert sorted(os.listdir(tmp_path / "exp")) == ["adapters.npz", "manifest.json"]
    assert manifest["class_names"] == CLASSES and manifest["base_sha256"] == SHA
    stored = set(manifest["arrays"])
    assert stored == set(stored_arrays(params, tuned))
    assert not any(k.startswith("backbone/") and not k.endswith("/bias") for k in stored)
    loaded = load_adapters(base, str(tmp_path / "exp"), base_sha256=SHA, method_cfg=cfg,
                           tuned=tuned)
    np.testing.assert_allclose(logits(tuned.apply, loaded), logits(tuned.apply, params), rtol=0,
                               atol=1e-5)
    assert os.path.getsize(tmp_path / "exp" / "adapters.npz") == npz_bytes(
        stored_arrays(params, tuned))


def test_mismatched_loads_are_refused(tmp_path):
    cfg = CFGS["lora"]
    tuned, params = adapted(cfg)
    base = {"backbone": params["backbone"]}
    path = str(tmp_path / "exp")
    export_adapters(params, tuned, cfg, path, base_sha256=SHA, class_names=CLASSES)
    with pytest.raises(ValueError, match=f"trained on base checkpoint sha256 {SHA}, not on "
                                         "the given base cd"):
        load_adapters(base, path, base_sha256="cd" * 32, method_cfg=cfg, tuned=tuned)
    with pytest.raises(ValueError, match=r"'rank': \(4, 8\)"):
        load_adapters(base, path, base_sha256=SHA, method_cfg=dict(cfg, rank=8), tuned=tuned)
    with pytest.raises(ValueError, match=r"'name': \('lora', 'lora_plus'\)"):
        load_adapters(base, path, base_sha256=SHA, method_cfg=dict(cfg, name="lora_plus", lam=2.0),
                      tuned=tuned)
    with pytest.raises(FileNotFoundError, match="is not an adapter export"):
        load_adapters(base, str(tmp_path), base_sha256=SHA, method_cfg=cfg, tuned=tuned)
    wrong_base = {"backbone": dict(params["backbone"], pos_embed=jnp.zeros((1, 8, 48)))}
    fft_path = str(tmp_path / "fft")
    fft = tuned_of(dict(name="fft"))
    export_adapters(base | {"head": params["head"]}, fft, dict(name="fft"), fft_path,
                    base_sha256=SHA, class_names=CLASSES)
    with pytest.raises(ValueError, match=r"backbone/pos_embed has shape \(1, 16, 48\) but "
                                         r"the base has \(1, 8, 48\)"):
        load_adapters(wrong_base, fft_path, base_sha256=SHA, method_cfg=dict(name="fft"), tuned=fft)
    with open(os.path.join(path, "adapters.npz"), "r+b") as f:  # corrupt one byte
        f.seek(200)
        f.write(b"\x00" if f.read(1) != b"\x00" else b"\x01")
    with pytest.raises(ValueError, match="does not match the sha256 in its manifest"):
        load_adapters(base, path, base_sha256=SHA, method_cfg=cfg, tuned=tuned)
    with pytest.raises(ValueError, match="3 class names for a head of 5 classes"):
        export_adapters(params, tuned, cfg, path, base_sha256=SHA, class_names=CLASSES[:3])


def test_export_is_written_atomically_over_an_old_one(tmp_path):
    cfg = CFGS["lokr"]
    tuned, params = adapted(cfg)
    path = str(tmp_path / "exp")
    export_adapters(params, tuned, cfg, path, base_sha256=SHA, class_names=CLASSES)
    export_adapters(randomised(params, 3), tuned, cfg, path, base_sha256=SHA, class_names=CLASSES)
    assert sorted(os.listdir(path)) == ["adapters.npz", "manifest.json"]  # no temp files
    with open(os.path.join(path, "manifest.json")) as f:
        assert json.load(f)["method"] == json.loads(json.dumps(cfg))


@pytest.fixture(scope="module")
def lora_params():
    """The LoRA params of `adapted`, built once (their jit takes seconds)."""
    return adapted(CFGS["lora"])[1]


def export_lora(params, path: str) -> dict:
    return export_adapters(params, tuned_of(CFGS["lora"]), CFGS["lora"], path, base_sha256=SHA,
                           class_names=CLASSES)


@pytest.mark.parametrize("files, match", [
    ({"notes.txt": b"mine"}, r"exp holds notes.txt, which is not part of an adapter export \(only "
                             r"adapters.npz, manifest.json, pca.npz, normalization.npz, bands.json are replaced\); move "
                             r"it out of the folder"),
    ({"manifest.json": b'{"format": "hsic-jax-converted/1"}'},
     r"exp/manifest.json is not the manifest of an adapter export; move it out of the folder"),
    ({"manifest.json": b"not json", "adapters.npz": b"x"}, r"exp/manifest.json is not the manifest"),
    ({"adapters.npz": b"x", "sub/a.txt": b"y"}, r"exp holds sub, which is not part of"),
])
def test_export_into_a_folder_of_other_files_is_refused_untouched(tmp_path, lora_params, files,
                                                                  match):
    for name, data in files.items():
        (tmp_path / "exp" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "exp" / name).write_bytes(data)
    with pytest.raises(FileExistsError, match=match):
        export_lora(lora_params, str(tmp_path / "exp"))
    assert {str(p.relative_to(tmp_path / "exp")): p.read_bytes()
            for p in (tmp_path / "exp").rglob("*") if p.is_file()} == files


def test_export_onto_a_file_is_refused(tmp_path, lora_params):
    (tmp_path / "exp").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="exp is a file, not an adapter export folder"):
        export_lora(lora_params, str(tmp_path / "exp"))
    assert (tmp_path / "exp").read_bytes() == b"mine"


def test_export_into_an_empty_folder_or_beside_a_torn_export(tmp_path, lora_params):
    """An empty folder, and one left with only adapters.npz (a crash between the two writes)."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "torn").mkdir()
    (tmp_path / "torn" / "adapters.npz").write_bytes(b"old")
    for name in ("empty", "torn"):
        export_lora(lora_params, str(tmp_path / name))
        assert sorted(os.listdir(tmp_path / name)) == ["adapters.npz", "manifest.json"]


# Table 11 of the paper: mean adapter storage over the five datasets, MB.
TABLE_11 = {"linear_probe": 0.04, "bitfit": 0.12, "lora": 0.62, "lora_plus": 0.62,
            "lokr": 0.22, "krona": 0.20, "krona_plus": 0.20, "fft": 326}
DATASETS = ("indian_pines", "pavia_university", "houston2013", "botswana", "whu_hi_longkou")


@pytest.mark.parametrize("name", TABLE_11)
def test_vit_b_exports_within_10_percent_of_table_11(tmp_path, name):
    """Real ViT-B exports (only the stored leaves are materialised; FFT's size is computed)."""
    sizes = []
    for dataset in DATASETS:
        shapes, tuned = param_shapes(load_config(f"configs/{dataset}_{name}.py"))
        stored = stored_arrays(shapes, tuned)
        if name == "fft":
            sizes.append(npz_bytes(stored))
            continue
        params = jax.tree.map(lambda s: s, shapes)
        for path, leaf in stored.items():
            *parents, key = path.split("/")
            node = params
            for p in parents:
                node = node[p]
            node[key] = np.zeros(leaf.shape, leaf.dtype)
        out = tmp_path / dataset
        cfg = load_config(f"configs/{dataset}_{name}.py").method
        export_adapters(params, tuned, cfg, str(out), base_sha256=SHA,
                        class_names=[str(i) for i in range(shapes["head"]["bias"].shape[0])])
        sizes.append(os.path.getsize(out / "adapters.npz"))
        assert sizes[-1] == npz_bytes(stored)
    mean_mb = np.mean(sizes) / MIB
    assert abs(mean_mb / TABLE_11[name] - 1) <= 0.10, (name, mean_mb)


@pytest.mark.parametrize("name,refused", [("krona", True), ("lora", False)])
def test_format_1_exports_load_except_krona_whose_layout_changed(tmp_path, name, refused):
    cfg = CFGS[name]
    tuned, params = adapted(cfg)
    path = tmp_path / "exp"
    export_adapters(params, tuned, cfg, str(path), base_sha256=SHA, class_names=CLASSES)
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "format": "hsic-jax-adapters/1"}))
    base = {"backbone": params["backbone"]}
    if refused:
        with pytest.raises(ValueError, match="transposed layout of an earlier version"):
            load_adapters(base, str(path), base_sha256=SHA, method_cfg=cfg, tuned=tuned)
    else:
        loaded = load_adapters(base, str(path), base_sha256=SHA, method_cfg=cfg, tuned=tuned)
        np.testing.assert_array_equal(loaded["adapters"]["block_0"]["q"]["a"],
                                      params["adapters"]["block_0"]["q"]["a"])
    (path / "manifest.json").write_text(json.dumps({**manifest, "format": "other/9"}))
    with pytest.raises(ValueError, match="format 'other/9', expected 'hsic-jax-adapters/2'"):
        load_adapters(base, str(path), base_sha256=SHA, method_cfg=cfg, tuned=tuned)
