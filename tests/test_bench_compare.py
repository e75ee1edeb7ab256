"""bench/compare.py runs both frameworks on a tiny shape and writes its JSON (asserts no speed)."""

import json
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from torch_spectralgpt import KronaLinear  # noqa: E402


def test_compare_runs_both_frameworks_and_writes_the_schema(tmp_path):
    out = tmp_path / "compare.json"
    proc = subprocess.run(
        [sys.executable, "bench/compare.py", "--preset", "cpu-small", "--depth", "1", "--width",
         "32", "--batch", "4", "--rounds", "1", "--steps", "1", "--methods", "fft", "krona_plus",
         "--what", "step", "--no-compile", "--parallel-setup", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    steps = {(r["framework"], r["method"]): r for r in doc["records"] if r["kind"] == "train_step"}
    assert set(steps) == {(f, m) for f in ("jax", "torch") for m in ("fft", "krona_plus")}
    for r in steps.values():
        assert r["preset"] == "cpu-small" and r["batch"] == 4 and r["device"]
        assert r["median_ms"] > 0 and r["samples_per_s"] > 0 and r["peak_mem_mb"] > 0
        assert r["q1_ms"] <= r["median_ms"] <= r["q3_ms"] and r["spread_ms"] >= 0
        assert r["sys_ms_per_step"] >= 0 and r["minflt_per_step"] >= 0
    assert isinstance(steps["jax", "fft"]["keep_freed_memory"], bool)
    for m in ("fft", "krona_plus"):  # the same trainable set on both sides
        assert steps["jax", m]["trainable"] == steps["torch", m]["trainable"]
    assert steps["jax", "fft"]["gflop_per_step"] > steps["jax", "krona_plus"]["gflop_per_step"] > 0
    assert {"cpu", "cores", "jax", "torch"} <= set(doc["machine"])
    assert "| krona_plus |" in doc["table"]
    assert "minor page faults per step (keep_freed_memory" in doc["table"]
    assert out.with_suffix(".md").read_text().strip() == doc["table"]


def test_krona_linear_is_the_kronecker_product():
    base = torch.nn.Linear(12, 8)
    for a_shape, b_shape in [((4, 2), (2, 6)), ((2, 6), (4, 2))]:  # both contraction orders
        layer = KronaLinear(base, a_shape, b_shape, scale=0.5)
        torch.nn.init.normal_(layer.b)
        x = torch.randn(3, 5, 12)
        want = base(x) + 0.5 * x @ torch.kron(layer.a, layer.b).T
        torch.testing.assert_close(layer(x), want)
