"""The benchmark script runs and writes its JSON (a smoke test; it asserts no timing)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_train_step_bench_runs(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "bench/train_step.py", "--width", "24", "--depth", "1",
                           "--batch", "8", "--steps", "1", "--out", str(out),
                           "--methods", "linear_probe", "krona_plus"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["method"] for r in rows] == ["linear_probe", "krona_plus"]
    by = {r["method"]: r["trainable"] for r in rows}
    # The head 24 · 16 + 16; KronA+ adds A (12, 2) and B (2, 12) on q and v of the one block.
    assert by["linear_probe"] == 24 * 16 + 16 and by["krona_plus"] == by["linear_probe"] + 2 * 48
    assert all(r["step_ms"] > 0 for r in rows) and "ms/step" in proc.stdout


def test_train_step_bench_times_any_experiment_config(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "bench/train_step.py", "--config",
                           "configs/indian_pines_spectralformer.py", "--steps", "1", "--out",
                           str(out), "--methods", "fft", "--batch", "16"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["method"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["fft"]["trainable"] == 355_577  # the paper's SpectralFormer #Params
    assert "configs/indian_pines_spectralformer.py" in proc.stdout
