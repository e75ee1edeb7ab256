"""End-to-end runs of `run.py` on the real Indian Pines with a tiny encoder.

Each run is a subprocess, as a user runs it: a kill mid-run followed by the same command
must end with the same metrics as an uninterrupted run, and four seeds on four (forced
host) devices must each match the run of that seed alone and the same run spread over two
processes (`jax.distributed`, gloo collectives on the CPU).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import multihost
import pytest

ROOT = Path(__file__).resolve().parents[1]

TINY = ["--config.optim.warmup_epochs=1", "--config.model.width=24", "--config.model.depth=1", "--config.model.heads=2",
        "--config.model.patch_size=4", "--config.data.neighborhood=7", "--config.data.input_size=8",
        "--config.batch_size=32", "--config.save_map=False"]


def command(workdir, *overrides):
    return [sys.executable, str(ROOT / "run.py"), f"--config={ROOT / 'configs/demo.py'}",
            f"--workdir={workdir}", *TINY, *overrides]


def run(workdir, *overrides, env=None):
    proc = subprocess.run(command(workdir, *overrides), capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def results(workdir):
    return json.loads((Path(workdir) / "results.json").read_text())


def metric_rows(workdir):
    return [json.loads(line) for line in (Path(workdir) / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_kill_and_resume_ends_like_an_uninterrupted_run(tmp_path):
    args = ["--config.epochs=12", "--config.checkpoint_every_epochs=2"]
    run(tmp_path / "straight", *args)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(command(killed, *args), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    metrics = killed / "metrics.jsonl"
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 5:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "results.json").exists(), "the run ended before it was killed"
    assert any((killed / "checkpoints").iterdir())

    resumed = run(killed, *args)
    assert "resumed from step" in resumed.stderr
    a, b = results(tmp_path / "straight"), results(killed)
    for key in ("oa", "aa", "kappa", "per_class", "confusion"):
        assert a[key] == b[key], key
    assert metric_rows(killed) == metric_rows(tmp_path / "straight")


@pytest.mark.slow
def test_four_seeds_on_four_devices_match_single_seed_and_multi_process_runs(tmp_path):
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    args = ["--config.epochs=4", "--config.eval_every_epochs=4", "--config.checkpoint_every_epochs=4"]
    proc = run(tmp_path / "four", "--config.num_seeds=4", *args, env=env)
    assert "4 seeds on 4 devices" in proc.stderr
    multi = results(tmp_path / "four")
    assert [s["seed"] for s in multi["seeds"]] == [0, 1, 2, 3]
    oas = [s["oa"] for s in multi["seeds"]]
    assert multi["oa"] == pytest.approx(sum(oas) / 4)
    assert multi["oa_std"] > 0 and {"aa_std", "kappa_std", "per_class_std"} <= set(multi)
    for seed in (0, 3):
        run(tmp_path / f"seed{seed}", f"--config.seed={seed}", *args)
        single = results(tmp_path / f"seed{seed}")
        assert single["oa"] == pytest.approx(oas[seed], abs=2e-3)

    # The same four seeds over two processes of two devices each (multi-host, on one machine).
    multihost.wait(multihost.launch(command(tmp_path / "hosts", "--config.num_seeds=4", *args),
                                    ROOT))
    hosts = results(tmp_path / "hosts")
    assert [s["oa"] for s in hosts["seeds"]] == oas
