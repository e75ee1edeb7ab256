"""Every checkpoint the converter cannot take is refused with one line naming the key or file."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import torch_reference as ref
from convert.spectralgpt import main as convert_main
from hsic_jax.model.converted import read_manifest

TINY = dict(width=48, depth=2, heads=3, patch_size=4, bands=12, tubelet=3)


@pytest.fixture
def state_dict():
    return ref.randomized(ref.VisionTransformer(img_size=16, num_classes=5, **TINY), seed=0).state_dict()


def run(tmp_path, capsys, payload, *flags, save=True):
    """Convert `payload` (saved as an official checkpoint when `save`); return (exit code, stderr)."""
    src = tmp_path / "in.pth"
    if save:
        ref.checkpoint_file(src, payload)
    args = ["--checkpoint", str(src), "--out", str(tmp_path / "out"), "--img-size", "16",
            "--heads", "3", *flags]
    code = convert_main(args)
    err = capsys.readouterr().err.strip()
    if code:
        assert len(err.splitlines()) == 1, err
        assert not (tmp_path / "out").exists()
    return code, err


def test_shape_mismatch(tmp_path, capsys, state_dict):
    state_dict["blocks.1.attn.v.weight"] = torch.zeros(48, 40)
    code, err = run(tmp_path, capsys, state_dict)
    assert code == 2 and "blocks.1.attn.v.weight" in err and "(48, 40)" in err


def test_missing_model_entry(tmp_path, capsys, state_dict):
    torch.save({"state_dict": state_dict, "epoch": 3}, tmp_path / "in.pth")
    code, err = run(tmp_path, capsys, None, save=False)
    assert code == 2 and "no 'model' entry" in err and "state_dict" in err


def test_fused_qkv_is_refused(tmp_path, capsys, state_dict):
    for i in range(2):
        q, k, v = (state_dict.pop(f"blocks.{i}.attn.{n}.weight") for n in "qkv")
        state_dict[f"blocks.{i}.attn.to_qkv.weight"] = torch.cat([q, k, v])
    code, err = run(tmp_path, capsys, state_dict)
    assert code == 2 and "blocks.0.attn.to_qkv.weight" in err and "#17" in err


@pytest.mark.parametrize("bands,expected", [("10", "10 bands do not split into tubelets of 3"),
                                            ("15", "--bands 15 gives 5")])
def test_band_count_that_does_not_fit(tmp_path, capsys, bands, expected):
    model = ref.randomized(ref.VisionTransformer(img_size=16, num_classes=5, sep_pos_embed=True, **TINY), 0)
    code, err = run(tmp_path, capsys, model.state_dict(), "--bands", bands, "--pos-embed", "separable")
    assert code == 2 and expected in err


@pytest.mark.parametrize("bands,input_size,expected", [
    ("6", None, "key pos_embed (1, 64, 48): position embedding of 32 tokens is not a square grid"),
    ("48", 16, "key pos_embed has 4 spectral groups (12 bands in tubelets of 3); --bands 48 gives 16"),
])
def test_band_count_that_does_not_fit_a_joint_table(tmp_path, capsys, state_dict, bands, input_size,
                                                    expected):
    """A fine-tuned checkpoint's joint table (4 groups × 4 × 4 at 16 px) cannot take other bands."""
    ref.checkpoint_file(tmp_path / "in.pth", state_dict,
                        **({} if input_size is None else {"input_size": input_size}))
    code, err = run(tmp_path, capsys, None, "--bands", bands, save=False)
    assert code == 2 and expected in err


def test_tubelet_that_does_not_fit(tmp_path, capsys):
    cfg = {**TINY, "tubelet": 5, "bands": 10}
    sd = ref.randomized(ref.VisionTransformer(img_size=16, num_classes=5, **cfg), 0).state_dict()
    code, err = run(tmp_path, capsys, sd)
    assert code == 2 and "12 bands do not split into tubelets of 5" in err


def test_image_size_that_does_not_fit(tmp_path, capsys, state_dict):
    code, err = run(tmp_path, capsys, state_dict, "--img-size", "18")
    assert code == 2 and "img_size 18 is not a multiple of patch_size 4" in err


@pytest.mark.parametrize("content", [b"not a checkpoint at all\n", pickle.dumps([1, 2, 3])],
                         ids=["text", "pickled-list"])
def test_not_a_checkpoint(tmp_path, capsys, content):
    (tmp_path / "in.pth").write_bytes(content)
    code, err = run(tmp_path, capsys, None, save=False)
    assert code == 2 and str(tmp_path / "in.pth") in err


def test_npz_is_not_a_checkpoint(tmp_path, capsys):
    with open(tmp_path / "in.pth", "wb") as f:
        np.savez(f, w=np.zeros(3))
    code, err = run(tmp_path, capsys, None, save=False)
    assert code == 2 and "in.pth is not a loadable PyTorch checkpoint" in err


def test_missing_file(tmp_path, capsys):
    code, err = run(tmp_path, capsys, None, save=False)
    assert code == 2 and "no such file" in err


def test_missing_encoder_key(tmp_path, capsys, state_dict):
    del state_dict["blocks.1.mlp.fc2.bias"]
    code, err = run(tmp_path, capsys, state_dict)
    assert code == 2 and "missing key blocks.1.mlp.fc2.bias" in err


def test_unknown_key(tmp_path, capsys, state_dict):
    state_dict["cls_token"] = torch.zeros(1, 1, 48)
    code, err = run(tmp_path, capsys, state_dict)
    assert code == 2 and "cls_token" in err


def test_head_required_for_headless_checkpoint(tmp_path, capsys, state_dict):
    del state_dict["head.weight"], state_dict["head.bias"]
    code, err = run(tmp_path, capsys, state_dict)
    assert code == 2 and "--num-classes" in err


def test_reinitialised_keys_are_listed(tmp_path, capsys, state_dict, caplog):
    """A head of another size and a position table of the other mode are fresh and listed."""
    caplog.set_level("INFO")
    code, _ = run(tmp_path, capsys, state_dict, "--num-classes", "7", "--pos-embed", "separable")
    assert code == 0
    manifest = read_manifest(str(tmp_path / "out"))
    assert manifest["reinitialised"] == ["backbone/pos_embed_spatial", "backbone/pos_embed_temporal",
                                         "head/bias", "head/kernel"]
    assert manifest["dropped"] == ["head.bias", "head.weight", "pos_embed"]
    assert manifest["model"]["num_classes"] == 7 and len(manifest["source_sha256"]) == 64
    assert "initialised fresh: backbone/pos_embed_spatial" in caplog.text


def test_existing_output_survives_a_failed_conversion(tmp_path, capsys, state_dict):
    assert run(tmp_path, capsys, state_dict)[0] == 0
    before = read_manifest(str(tmp_path / "out"))
    state_dict["blocks.0.norm1.weight"] = torch.zeros(3)
    ref.checkpoint_file(tmp_path / "in.pth", state_dict)
    code = convert_main(["--checkpoint", str(tmp_path / "in.pth"), "--out", str(tmp_path / "out"),
                         "--img-size", "16", "--heads", "3"])
    assert code == 2 and read_manifest(str(tmp_path / "out")) == before


def test_help_documents_every_flag():
    out = subprocess.run([sys.executable, "-m", "convert.spectralgpt", "--help"], check=True,
                         capture_output=True, text=True).stdout
    for flag in ("--checkpoint", "--out", "--img-size", "--bands", "--num-classes", "--pos-embed",
                 "--heads", "--seed"):
        assert flag in out
