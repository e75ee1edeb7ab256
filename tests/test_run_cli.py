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


def test_unknown_method_lists_the_valid_ones(tmp_path):
    line = run_py(tmp_path, "demo.py", "--config.method.name=lorax")
    assert "'lorax'" in line and "'krona_plus'" in line and "'linear_probe'" in line


def test_unknown_dataset_lists_the_valid_ones(tmp_path):
    line = run_py(tmp_path, "demo.py", "--config.data.name=salinas")
    assert "'salinas'" in line and "'whu_hi_longkou'" in line and "'files'" in line


def test_missing_data_names_the_file_and_the_download_command(tmp_path):
    line = run_py(tmp_path, "botswana_krona_plus.py", f"--config.data.data_dir={tmp_path}")
    assert "Botswana.mat" in line
    assert f"python -m hsic_jax.data.download botswana --dir {tmp_path}" in line


def test_missing_weights_name_the_folder_and_the_convert_command(tmp_path):
    line = run_py(tmp_path, "indian_pines_lora.py", f"--config.pretrained_dir={tmp_path}/weights")
    assert f"{tmp_path}/weights" in line and "python -m convert.spectralgpt" in line
