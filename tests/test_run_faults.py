"""Faults a run meets, through the real CLI in subprocesses: a second run on the same workdir,
a rerun with another config, a rerun of a finished run, a full disk."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--config.model.width=24", "--config.model.depth=1", "--config.model.heads=2",
        "--config.model.patch_size=4", "--config.data.neighborhood=7", "--config.data.input_size=8",
        "--config.batch_size=32", "--config.save_map=False"]


def command(workdir, *overrides):
    return [sys.executable, "run.py", "--config=configs/demo.py", f"--workdir={workdir}", *TINY,
            *overrides]


def run(workdir, *overrides):
    return subprocess.run(command(workdir, *overrides), cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def last_line(proc) -> str:
    return proc.stderr.strip().splitlines()[-1]


def test_one_run_per_workdir_one_experiment_per_workdir_and_finished_runs_kept(tmp_path):
    work = tmp_path / "work"
    first = subprocess.Popen(command(work, "--config.epochs=200"), cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (work / "config.json").exists():
            time.sleep(0.1)
        second = run(work, "--config.epochs=200")
        assert second.returncode == 1 and "Traceback" not in second.stderr
        assert last_line(second).startswith(
            f"error: workdir {work} is in use by another run (pid {first.pid} on ")
    finally:
        first.kill()
        first.wait()
    assert not (work / "results.json").exists()

    other = run(work, "--config.epochs=200", "--config.method.name=linear_probe")
    assert last_line(other) == (
        f"error: workdir {work} holds another experiment (method.name: 'fft' → 'linear_probe'): "
        f"use another --workdir, or --restart to move the old run aside to {work}.prev-N and "
        "start fresh")

    done = run(tmp_path / "done", "--config.epochs=2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "warming up over 0.2 epochs" in done.stderr  # epochs=2 works on its own
    results = (tmp_path / "done" / "results.json").read_text()
    again = run(tmp_path / "done", "--config.epochs=2")
    assert again.returncode == 0 and again.stdout == done.stdout  # same metrics, same seconds
    assert "finished: its results are kept" in again.stderr
    assert (tmp_path / "done" / "results.json").read_text() == results
    log = (tmp_path / "done" / "log.txt").read_text()
    assert "split of seed 0" in log and "finished: its results are kept" in log


def test_a_full_disk_is_one_line_and_keeps_what_was_written(tmp_path):
    # A 64 KiB file-size limit stands in for a full disk: writes beyond it fail with EFBIG once
    # SIGXFSZ is ignored (set by a shell, not by preexec_fn: forking this JAX process is unsafe).
    small_files = ["bash", "-c", "trap '' XFSZ; ulimit -f 64; exec \"$0\" \"$@\""]
    proc = subprocess.run(small_files + command(tmp_path / "work", "--config.epochs=2"), cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    line = last_line(proc)
    assert line.startswith(f"error: cannot write {tmp_path / 'work'}/") and (
        "file size limit reached; free space or use another --workdir" in line)
    assert json.loads((tmp_path / "work" / "config.json").read_text())["epochs"] == 2
    assert not [p for p in os.listdir(tmp_path / "work") if p.endswith(".tmp")]
