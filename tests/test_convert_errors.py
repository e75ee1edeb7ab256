"""Every checkpoint the converter cannot take is refused with one line naming the key or file."""

import argparse
import json
import logging
import os
import pickle
import stat
import subprocess
import sys

import numpy as np
import pytest
import torch

import torch_reference as ref
from convert import common
from convert.spectralgpt import main as convert_main
from hsic_jax.models.converted import read_manifest

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


def test_a_linear_weight_of_another_rank_is_refused(tmp_path, capsys, state_dict):
    """Named with its shape and what a Linear weight is, without the --bands hint that only
    a position table's resampling warrants."""
    state_dict["blocks.0.attn.q.weight"] = state_dict["blocks.0.attn.q.weight"][..., None]
    code, err = run(tmp_path, capsys, state_dict)
    assert code == 2 and err.endswith("key blocks.0.attn.q.weight has shape (48, 48, 1): "
                                      "expected a 2-D Linear weight (out, in)")


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
    ("6", None, "in.pth: key pos_embed (1, 64, 48): position embedding of 32 tokens is not a "
                "square grid (--bands 6, tubelet 3)"),
    ("48", 16, "key pos_embed has 4 spectral groups (12 bands in tubelets of 3); --bands 48 gives 16"),
])
def test_band_count_that_does_not_fit_a_joint_table(tmp_path, capsys, state_dict, bands, input_size,
                                                    expected):
    """A fine-tuned checkpoint's joint table (4 groups × 4 × 4 at 16 px) cannot take other bands."""
    ref.checkpoint_file(tmp_path / "in.pth", state_dict,
                        **({} if input_size is None else {"input_size": input_size}))
    code, err = run(tmp_path, capsys, None, "--bands", bands, save=False)
    assert code == 2 and err.endswith(expected) and err.count("in.pth") == 1


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
    assert code == 2 and "--num-classes" in err and "head.weight" in err


@pytest.mark.parametrize("classes", ["0", "-3"])
def test_num_classes_below_one_is_refused(tmp_path, capsys, state_dict, classes):
    code, err = run(tmp_path, capsys, state_dict, "--num-classes", classes)
    assert code == 2 and f"--num-classes {classes}: expected an integer >= 1" in err


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
    assert ("input: (N, 16, 16, 12) patches of normalised bands (PCA components) -> (N, 7) logits"
            in caplog.messages)
    assert not any("decoder" in m for m in caplog.messages)  # a fine-tune checkpoint has none


def test_run_logs_the_io_and_a_kept_decoder(tmp_path, caplog):
    """`common.run` formats `io` over the report's model fields and describes a kept decoder."""
    caplog.set_level("INFO")
    src = tmp_path / "in.pth"
    src.write_bytes(b"weights")
    report = dict(model=dict(img_size=8, bands=6, num_classes=3),
                  decoder=dict(width=32, depth=2, heads=4),
                  key_map={"w": "head/kernel"}, dropped=[], reinitialised=[])
    args = argparse.Namespace(checkpoint=str(src), out=str(tmp_path / "out"), replace=False)
    code = common.run(args, "spectralgpt", lambda a: ({"head": {"kernel": np.ones((2, 3))}}, report),
                      logging.getLogger("test"), io="({img_size}, {bands}) -> {num_classes}")
    assert code == 0 and read_manifest(args.out)["decoder"] == report["decoder"]
    assert "input: (8, 6) -> 3" in caplog.messages
    assert "kept the MAE decoder (decoder/): width 32, depth 2, heads 4" in caplog.messages


def test_existing_output_survives_a_failed_conversion(tmp_path, capsys, state_dict):
    assert run(tmp_path, capsys, state_dict)[0] == 0
    before = read_manifest(str(tmp_path / "out"))
    state_dict["blocks.0.norm1.weight"] = torch.zeros(3)
    ref.checkpoint_file(tmp_path / "in.pth", state_dict)
    code = convert_main(["--checkpoint", str(tmp_path / "in.pth"), "--out", str(tmp_path / "out"),
                         "--img-size", "16", "--heads", "3", "--replace"])
    assert code == 2 and read_manifest(str(tmp_path / "out")) == before


def convert_into(tmp_path, capsys, out, *flags):
    """Convert the checkpoint tmp_path/in.pth into `out`; return (exit code, stderr)."""
    code = convert_main(["--checkpoint", str(tmp_path / "in.pth"), "--out", str(out),
                         "--img-size", "16", "--heads", "3", *flags])
    return code, capsys.readouterr().err.strip()


def tree(folder):
    """{relative path: bytes or None (a folder)} of everything under `folder`."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes()
            for p in sorted(folder.rglob("*"))}


@pytest.fixture
def checkpoint(tmp_path, state_dict):
    """tmp_path/in.pth: the tiny model, saved as the official scripts save it."""
    ref.checkpoint_file(tmp_path / "in.pth", state_dict)


@pytest.mark.usefixtures("checkpoint")
def test_a_folder_that_is_not_a_conversion_is_refused_untouched(tmp_path, capsys):
    out = tmp_path / "photos"
    (out / "2024").mkdir(parents=True)
    (out / "2024" / "a.jpg").write_bytes(b"jpeg")
    (out / "notes.txt").write_text("mine")
    before = tree(out)
    for flags in ((), ("--replace",)):
        code, err = convert_into(tmp_path, capsys, out, *flags)
        assert code == 2 and err == (f"error: --out {out} is not empty (it holds 2024) and is not an "
                                     "earlier conversion; give --out a new or empty folder")
        assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pth", "photos"]  # no staging left


@pytest.mark.usefixtures("checkpoint")
def test_an_earlier_conversion_is_replaced_only_with_the_flag(tmp_path, capsys):
    out = tmp_path / "out"
    assert convert_into(tmp_path, capsys, out)[0] == 0
    before = tree(out)
    code, err = convert_into(tmp_path, capsys, out, "--num-classes", "7")
    assert code == 2 and err == (f"error: --out {out} holds an earlier conversion; pass --replace "
                                 "to replace it, or give --out another folder")
    assert tree(out) == before
    assert convert_into(tmp_path, capsys, out, "--num-classes", "7", "--replace")[0] == 0
    assert read_manifest(str(out))["model"]["num_classes"] == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pth", "out"]  # old one removed


@pytest.mark.usefixtures("checkpoint")
def test_a_manifest_from_before_the_format_field_is_an_earlier_conversion(tmp_path, capsys):
    out = tmp_path / "out"
    assert convert_into(tmp_path, capsys, out)[0] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest.pop("format") == "hsic-jax-converted/1"
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert convert_into(tmp_path, capsys, out, "--replace")[0] == 0
    (out / "manifest.json").write_text(json.dumps({"format": "something/else", "model": {}}))
    code, err = convert_into(tmp_path, capsys, out, "--replace")
    assert code == 2 and "is not empty (it holds manifest.json) and is not an earlier conversion" in err


@pytest.mark.usefixtures("checkpoint")
def test_a_conversion_holding_other_files_is_not_replaced(tmp_path, capsys):
    out = tmp_path / "out"
    assert convert_into(tmp_path, capsys, out)[0] == 0
    (out / "zz_notes.md").write_text("my notes")
    before = tree(out)
    code, err = convert_into(tmp_path, capsys, out, "--replace")
    assert code == 2 and err == (f"error: --out {out} is not empty (it holds zz_notes.md) and is not "
                                 "an earlier conversion; give --out a new or empty folder")
    assert tree(out) == before


@pytest.mark.usefixtures("checkpoint")
def test_the_current_folder_and_the_checkpoints_folder_are_refused(tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for out in (".", str(work), str(tmp_path)):
        code, err = convert_into(tmp_path, capsys, out, "--replace")
        assert code == 2 and err.startswith(f"error: --out {out} is or holds ")
        assert err.endswith("; give --out a new folder") and len(err.splitlines()) == 1
    assert "the current folder" in convert_into(tmp_path, capsys, ".")[1]
    ckpt = work / "ckpts" / "in.pth"
    ckpt.parent.mkdir()
    ckpt.write_bytes((tmp_path / "in.pth").read_bytes())
    for out in (ckpt.parent, "ckpts"):
        code = convert_main(["--checkpoint", str(ckpt), "--out", str(out), "--img-size", "16",
                             "--heads", "3", "--replace"])
        assert code == 2 and capsys.readouterr().err.strip() == (
            f"error: --out {out} is or holds the checkpoint {ckpt}; give --out a new folder")
    assert tree(tmp_path) == {"in.pth": ckpt.read_bytes(), "work": None, "work/ckpts": None,
                              "work/ckpts/in.pth": ckpt.read_bytes()}


@pytest.mark.usefixtures("checkpoint")
def test_an_empty_folder_is_written_and_kept(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    os.chmod(out, 0o751)
    inode = out.stat().st_ino
    assert convert_into(tmp_path, capsys, out)[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "params"]
    assert out.stat().st_ino == inode and stat.S_IMODE(out.stat().st_mode) == 0o751
    assert read_manifest(str(out))["format"] == "hsic-jax-converted/1"


@pytest.mark.usefixtures("checkpoint")
@pytest.mark.parametrize("umask,mode", [(0o022, 0o755), (0o027, 0o750)])
def test_the_new_folder_respects_the_umask(tmp_path, capsys, umask, mode):
    old = os.umask(umask)
    try:
        for flags in ((), ("--replace",)):
            assert convert_into(tmp_path, capsys, tmp_path / "out", *flags)[0] == 0
            assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == mode
    finally:
        os.umask(old)


@pytest.mark.usefixtures("checkpoint")
def test_the_log_says_what_was_written(tmp_path):
    """In a process of its own, where orbax's import has set up logging before `main` runs."""
    out = tmp_path / "deep" / "out"
    err = subprocess.run([sys.executable, "-m", "convert.spectralgpt", "--checkpoint",
                          str(tmp_path / "in.pth"), "--out", str(out), "--img-size", "16",
                          "--heads", "3"], check=True, capture_output=True, text=True).stderr
    n = len(read_manifest(str(out))["key_map"])
    assert f"wrote {out}: {n} tensors, {n} of them converted from {tmp_path / 'in.pth'}; " in err
    assert "model num_classes=5, img_size=16, bands=12, pos_embed=joint, width=48, depth=2, " in err
    assert f"manifest: {out / 'manifest.json'}" in err
    assert f"reading {tmp_path / 'in.pth'} (" in err


def test_help_documents_every_flag():
    out = subprocess.run([sys.executable, "-m", "convert.spectralgpt", "--help"], check=True,
                         capture_output=True, text=True).stdout
    for flag in ("--checkpoint", "--out", "--replace", "--img-size", "--bands", "--num-classes",
                 "--pos-embed", "--heads", "--decoder-heads", "--seed"):
        assert flag in out


def test_without_pytorch_the_converter_says_how_to_get_it(tmp_path):
    """An install without the `convert` extra: one line naming the extra, not a traceback, and
    nothing written."""
    code = ("import sys; sys.modules['torch'] = None; from convert.__main__ import main; "
            f"sys.exit(main(['spectralgpt', '--checkpoint', 'SpectralGPT+.pth', '--out', "
            f"{str(tmp_path / 'out')!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode != 0
    assert proc.stderr.strip() == ("error: the converter needs PyTorch, which this environment "
                                   "lacks: pip install -e '.[convert]'")
    assert not (tmp_path / "out").exists()
