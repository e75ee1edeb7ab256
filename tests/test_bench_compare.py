"""bench/compare.py runs both frameworks on a tiny shape and writes its JSON (asserts no speed)."""

import json
import subprocess
import sys
from pathlib import Path

import jax
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from compare import (CATEGORIES, ceiling_table, hlo_categories, load_baseline,  # noqa: E402
                     main, map_records, map_table, profile_check, torch_category)
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


def test_map_mode_runs_rounds_of_both_frameworks(tmp_path):
    out = tmp_path / "map.json"
    proc = subprocess.run(
        [sys.executable, "bench/compare.py", "--preset", "cpu-small", "--depth", "1", "--width",
         "32", "--rounds", "2", "--map-pixels", "300", "--what", "map", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    maps = {(tuple(r["scene"]), r["framework"]): r for r in doc["records"] if r["kind"] == "map"}
    assert len(maps) == 6 and {f for _, f in maps} == {"jax", "torch"}
    for (scene, framework), r in maps.items():
        assert r["rounds"] == 2 and len(r["pixels_per_s_rounds"]) == 2 and r["pixels"] >= 300
        assert r["peak_mem_mb"] > 0 and ("jax_over_torch" in r) == (framework == "jax")
    assert "| 1100 × 800 | 4× |" in doc["table"]


def _map_sample(framework, rnd, pixels_per_s, scene=(550, 400), peak=100.0):
    return {"kind": "map", "framework": framework, "scene": list(scene), "area_x": 1.0,
            "round": rnd, "pixels": 2400, "seconds": 2400 / pixels_per_s,
            "pixels_per_s": pixels_per_s, "peak_mem_mb": peak}


def test_map_records_take_the_median_of_each_rounds_ratio():
    # Round 1 ran while the machine was loaded: both frameworks slowed, the ratio did not.
    jax_speeds, torch_speeds = [300.0, 150.0, 320.0], [250.0, 120.0, 200.0]
    samples = [_map_sample("jax", r, v, peak=100 + r) for r, v in enumerate(jax_speeds)]
    samples += [_map_sample("torch", r, v) for r, v in enumerate(torch_speeds)]
    records = {r["framework"]: r for r in map_records(samples)}
    jax_rec, torch_rec = records["jax"], records["torch"]
    assert jax_rec["pixels_per_s"] == 300.0 and torch_rec["pixels_per_s"] == 200.0
    assert jax_rec["jax_over_torch_rounds"] == [1.2, 1.25, 1.6]
    assert jax_rec["jax_over_torch"] == 1.25  # not 300 / 200 = 1.5, the medians' ratio
    assert jax_rec["peak_mem_mb"] == 100 and jax_rec["rounds"] == 3  # the first round's peak
    assert "jax_over_torch" not in torch_rec and "round" not in jax_rec
    assert "| 550 × 400 | 1× | 2,400 | 3 | 300 | 200 | 1.25× [1.20–1.60] |" in map_table(
        list(records.values()))


def _profile(method, framework, wall_ms, sys_ms=0.0, categories=None):
    """A 'profile' record: `categories` (ms by category) over zeros."""
    ms = {c: 0.0 for c in CATEGORIES} | (categories or {})
    return {"kind": "profile", "method": method, "framework": framework, "wall_ms": wall_ms,
            "sys_ms": sys_ms, "categories_ms": ms}


def test_profile_check_flags_a_category_that_grew_against_pytorchs_step():
    def run(scale, conv=0.0):
        return [_profile("fft", "jax", (900.0 + conv) * scale, 20.0 * scale,
                         {"matmul (YNNPACK)": 800.0 * scale, "convolution": conv * scale}),
                _profile("fft", "torch", 1000.0 * scale, 40.0 * scale),
                _profile("lora", "jax", 600.0 * scale), _profile("lora", "torch", 700.0 * scale)]
    base = run(1.0)[:2] + [_profile("lokr", "jax", 1.0), _profile("lokr", "torch", 1.0)]
    # A machine twice as slow moves both frameworks alike: nothing regressed.
    rows = profile_check(run(2.0), base, 0.05)
    assert {r["method"] for r in rows} == {"fft"}  # lora not in the baseline, lokr not now
    assert not any(r["regressed"] for r in rows)
    by = {r["what"]: r for r in rows}
    assert by["matmul (YNNPACK)"]["base"] == by["matmul (YNNPACK)"]["now"] == 0.8
    assert by["step (wall)"]["now"] == 0.9 and by["system CPU time (page faults)"]["now"] == 0.02
    # The patch embedding's convolution back at 590 ms of PyTorch's 1,000: that and the step.
    rows = profile_check(run(1.0, conv=590.0), base, 0.05)
    assert {r["what"] for r in rows if r["regressed"]} == {"convolution", "step (wall)"}


def test_profile_check_refuses_a_baseline_it_cannot_use(tmp_path):
    bad = tmp_path / "old.json"
    with pytest.raises(SystemExit, match="old.json: cannot read it"):
        load_baseline(str(bad), ["fft"])
    bad.write_text("{}")
    with pytest.raises(SystemExit, match="old.json: not a bench/compare.py result"):
        load_baseline(str(bad), ["fft"])
    bad.write_text(json.dumps({"records": [_profile("lora", "jax", 1.0)]}))
    with pytest.raises(SystemExit, match=r"records of \['lora'\]; this run profiles \['fft'\]"):
        load_baseline(str(bad), ["fft"])


@pytest.mark.parametrize("flags, message", [
    (["--what", "map", "--rounds", "0"], "--rounds 0: at least 1"),
    (["--steps", "-2"], "--steps -2: at least 1"),
    (["--what", "profile", "--tolerance", "-0.1"], "--tolerance -0.1: a share of PyTorch's step, ≥ 0"),
    (["--what", "step", "--against", "old.json"], "--against checks a profile: add profile to --what"),
])
def test_arguments_that_measure_nothing_are_refused_in_one_line(tmp_path, capsys, flags, message):
    out = tmp_path / "c.json"
    with pytest.raises(SystemExit) as e:
        main(["--preset", "cpu-small", "--out", str(out), *flags])
    assert e.value.code == 2 and not out.exists()
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f": error: {message}")


def test_profile_mode_splits_each_step_into_categories(tmp_path):
    out = tmp_path / "profile.json"
    # A baseline whose JAX step had no YNNPACK time and huge everything else: with no
    # tolerance, the check finds the YNNPACK matmuls grown and nothing else.
    old = tmp_path / "old.json"
    never = {c: 1e9 for c in CATEGORIES} | {"matmul (YNNPACK)": 0.0}
    old.write_text(json.dumps({"records": [_profile("fft", "jax", 1e9, 1e9, never),
                                           _profile("fft", "torch", 1.0)]}))
    proc = subprocess.run(
        [sys.executable, "bench/compare.py", "--preset", "cpu-small", "--depth", "1", "--width",
         "32", "--batch", "4", "--steps", "2", "--methods", "fft", "--what", "profile",
         "--against", str(old), "--tolerance", "0", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "regressed against" in proc.stderr and "fft matmul (YNNPACK)" in proc.stderr
    doc = json.loads(out.read_text())  # written before the exit status
    assert [r["what"] for r in doc["check"]["rows"] if r["regressed"]] == ["matmul (YNNPACK)"]
    assert "**regressed**" in doc["table"]
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
