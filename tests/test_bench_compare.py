"""bench/compare.py runs both frameworks on a tiny shape and writes its JSON (asserts no speed)."""

import json
import subprocess
import sys
from pathlib import Path

import jax
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from compare import CATEGORIES, ceiling_table, hlo_categories, torch_category  # noqa: E402
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
    assert {"cpu", "cores", "jax", "torch", "versions", "loadavg_end"} <= set(doc["machine"])
    assert doc["machine"]["versions"]["jax"] == jax.__version__
    assert "| krona_plus |" in doc["table"]
    assert "minor page faults per step (keep_freed_memory" in doc["table"]
    assert out.with_suffix(".md").read_text().strip() == doc["table"]


def test_profile_mode_splits_each_step_into_categories(tmp_path):
    out = tmp_path / "profile.json"
    proc = subprocess.run(
        [sys.executable, "bench/compare.py", "--preset", "cpu-small", "--depth", "1", "--width",
         "32", "--batch", "4", "--steps", "2", "--methods", "fft", "--what", "profile",
         "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    records = {r["framework"]: r for r in doc["records"] if r["kind"] == "profile"}
    assert set(records) == {"jax", "torch"}
    for r in records.values():
        assert set(r["categories_ms"]) == set(CATEGORIES)
        # The categories cover the wall time (the rest is 'not in an op'), and no more.
        assert sum(r["categories_ms"].values()) >= r["wall_ms"] * 0.999
        assert all(op["category"] in CATEGORIES and op["ms"] > 0 for op in r["top_ops"])
    assert records["jax"]["categories_ms"]["matmul (YNNPACK)"] > 0
    assert records["torch"]["categories_ms"]["matmul (MKL / oneDNN)"] > 0
    assert "| matmul (YNNPACK) |" in doc["table"] and "| fft jax | fft torch |" in doc["table"]


def test_ceiling_table_sets_each_step_against_the_matmul_peak():
    def step(framework, method, ms, **extra):
        return {"kind": "train_step", "framework": framework, "mode": "eager" if framework ==
                "torch" else "jit", "method": method, "median_ms": ms, **extra}
    records = [step("jax", "fft", 500.0, gflop_per_step=70.0), step("torch", "fft", 560.0),
               step("jax", "lora", 300.0, gflop_per_step=40.0)]  # no torch row: no line
    machine = {"jax_matmul": {"gflops": 180.0}, "torch_matmul": {"gflops": 200.0}}
    rows = ceiling_table(records, machine).splitlines()
    assert "floor ms at 200 GFLOP/s" in rows[0] and len(rows) == 3
    # 70 GFLOP at 200 GFLOP/s take ≥ 350 ms: JAX can be at most 560 / 350 = 1.60× PyTorch;
    # now at 350 / 500 = 70 % of the peak, PyTorch at 350 / 560 = 62 %.
    assert rows[2] == "| fft | 70.0 | 350 | 560 | 1.60× | 70% | 62% |"
    assert ceiling_table(records, {}) == ""


def test_hlo_and_torch_ops_fall_in_their_categories():
    hlo = """
ENTRY %main.1 (p: f32[8,8]) -> f32[8,8] {
  %p = f32[8,8]{1,0} parameter(0)
  %ynn_fusion.3 = f32[8,8]{1,0} fusion(%p, %p), kind=kCustom, calls=%f, backend_config={"fusion_backend_config":{"kind":"__ynn_fusion"}}
  %dot.1 = f32[8,8]{1,0} dot(%p, %p), lhs_contracting_dims={0}, rhs_contracting_dims={0}
  %copy_bitcast_fusion.2 = f32[8,8]{0,1} fusion(%p, %ynn_fusion.3), kind=kLoop, calls=%g
  %multiply_add_fusion = f32[8,8]{1,0} fusion(%p), kind=kLoop, calls=%h
  %convolution.4 = f32[8,8]{1,0} convolution(%p, %p), dim_labels=b0f_0io->b0f
  %w = (f32[8,8], s32[]) while(%t), condition=%c, body=%b
  ROOT %gather.5 = f32[8,8]{1,0} gather(%p, %p), offset_dims={1}
}"""
    assert hlo_categories(hlo) == {
        "p": None, "ynn_fusion.3": "matmul (YNNPACK)", "dot.1": "matmul (Eigen)",
        "copy_bitcast_fusion.2": "copy / transpose", "multiply_add_fusion": "elementwise / reduce",
        "convolution.4": "convolution", "w": None, "gather.5": "gather / scatter / other"}
    assert [torch_category(op) for op in ("aten::mm", "aten::addmm", "aten::gelu_backward",
                                          "aten::copy_", "aten::convolution_backward")] == [
        "matmul (MKL / oneDNN)", "matmul (MKL / oneDNN)", "elementwise / reduce",
        "copy / transpose", "convolution"]


def test_krona_linear_is_the_kronecker_product():
    base = torch.nn.Linear(12, 8)
    for a_shape, b_shape in [((4, 2), (2, 6)), ((2, 6), (4, 2))]:  # both contraction orders
        layer = KronaLinear(base, a_shape, b_shape, scale=0.5)
        torch.nn.init.normal_(layer.b)
        x = torch.randn(3, 5, 12)
        want = base(x) + 0.5 * x @ torch.kron(layer.a, layer.b).T
        torch.testing.assert_close(layer(x), want)
