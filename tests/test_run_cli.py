"""The errors a user meets first with run.py: one line that says what is wrong and what to do."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_py(tmp_path, config, *overrides):
    proc = subprocess.run([sys.executable, "run.py", f"--config=configs/{config}",
                           f"--workdir={tmp_path}", *overrides],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), proc.stderr[-2000:]
    return last


@pytest.mark.parametrize("override,expected", [
    ("--config.nosuch=1", "--config.nosuch=1: the config has no field 'nosuch'"),
    ("--config.model.widht=96", 'Did you mean "width"'),
])
def test_config_field_that_does_not_exist(tmp_path, override, expected):
    assert expected in run_py(tmp_path, "demo.py", override)


def test_a_config_argument_not_allowed_is_named_with_those_that_are(tmp_path):
    line = run_py(tmp_path, "indian_pines_spectralformer.py:bogus")
    assert line.endswith("Error whilst parsing config file: ValueError: epochs 'bogus' is not "
                         "one of ('paper', 'official')"), line
    assert not tmp_path.joinpath("config.json").exists()


def test_unknown_method_lists_the_valid_ones(tmp_path):
    line = run_py(tmp_path, "demo.py", "--config.method.name=lorax")
    assert "'lorax'" in line and "'krona_plus'" in line and "'linear_probe'" in line


def test_unknown_dataset_lists_the_valid_ones(tmp_path):
    line = run_py(tmp_path, "demo.py", "--config.data.name=no_such_scene")
    assert "'no_such_scene'" in line and "'whu_hi_longkou'" in line and "'files'" in line


def test_missing_data_names_the_file_and_the_download_command(tmp_path):
    line = run_py(tmp_path, "botswana_krona_plus.py", f"--config.data.data_dir={tmp_path}")
    assert "Botswana.mat" in line
    assert f"python -m hsic_jax.data.download botswana --dir {tmp_path}" in line


@pytest.mark.parametrize("config,command", [
    ("indian_pines_lora.py", "python -m convert spectralgpt --checkpoint SpectralGPT+.pth --out"),
    ("indian_pines_hypersigma.py", "python -m convert hypersigma --spatial "
     "spat-vit-base-ultra-checkpoint-1599.pth --spectral spec-vit-base-ultra-checkpoint-1599.pth"),
])
def test_missing_weights_name_the_folder_and_the_convert_command(tmp_path, config, command):
    line = run_py(tmp_path, config, f"--config.pretrained_dir={tmp_path}/weights")
    assert f"{tmp_path}/weights" in line and command in line


@pytest.mark.parametrize("override,expected", [
    ("--config.batch_size=0", "error: config.batch_size=0; expected an integer >= 1"),
    ("--config.batch_size=-8", "error: config.batch_size=-8; expected an integer >= 1"),
    ("--config.epochs=0", "error: config.epochs=0; expected an integer >= 1"),
    ("--config.optim.lr=-1", "error: config.optim.lr=-1.0; expected a number in (0, ∞)"),
    ("--config.data.train_per_class=abc", "error: config.data.train_per_class='abc'; expected a "
                                          "count per class (e.g. 30), a fraction"),
    ("--config.data.train_per_class=30", "ask for fewer, or set cap=True (--config.data.cap=True;"),
    ("--config.epochs=many", "error: flag --config.epochs=many:"),
])
def test_values_that_make_no_sense_are_refused_in_the_users_terms(tmp_path, override, expected):
    assert expected in run_py(tmp_path, "demo.py", override)
    assert not (tmp_path / "config.json").exists()  # nothing written for a refused run


def test_a_missing_config_file_is_one_line(tmp_path):
    assert run_py(tmp_path, "nosuch.py") == (
        "error: --config=configs/nosuch.py: no such file (the configs are in configs/, e.g. "
        "--config=configs/demo.py)")


def test_an_unwritable_workdir_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "run.py", "--config=configs/demo.py",
                           "--workdir=/sys/hsic_jax_test"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "error: cannot write /sys/hsic_jax_test: operation not permitted; free space or use "
        "another --workdir")


@pytest.mark.parametrize("script, own", [("run.py", ["--sweep", "--distributed"]),
                                         ("pretrain.py", [])])
def test_help_lists_the_experiment_flags(script, own):
    """`--config`, `--workdir` and `--restart` (defined once, in `hsic_jax.cli`) are listed by
    each script's `--help` beside its own flags."""
    proc = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    listed = {line.split(":")[0].replace("[no]", "") for line in proc.stdout.splitlines()
              if line.startswith("  --")}
    assert {"  --config", "  --workdir", "  --restart", *(f"  {f}" for f in own)} <= listed, (
        proc.stdout[-2000:])  # (absl's --help exits with status 1)
