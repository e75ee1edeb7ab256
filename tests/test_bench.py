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


FAKE_BENCH = '''import argparse, json
p = argparse.ArgumentParser(); p.add_argument("--scale", type=float); p.add_argument("--out")
a = p.parse_args()
ms = float(open("ms.txt").read()) * a.scale
json.dump({"rows": [{"method": "fft", "step_ms": ms}, {"method": "lora", "step_ms": ms / 2}]},
          open(a.out, "w"))
'''


def test_ab_compares_a_base_revision_with_the_working_tree(tmp_path):
    """`bench/ab.py` runs the command in the base revision's tree and in the working tree
    (with their arguments), and reports base / new per row."""
    repo = tmp_path / "repo"
    (repo / "bench").mkdir(parents=True)
    (repo / "bench" / "ab.py").write_text((ROOT / "bench" / "ab.py").read_text())
    (repo / "fake.py").write_text(FAKE_BENCH)
    (repo / "ms.txt").write_text("300")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "base"], check=True)
    (repo / "ms.txt").write_text("100")  # the working tree's lever: 3× faster
    out = tmp_path / "ab.json"
    proc = subprocess.run([sys.executable, "bench/ab.py", "--base", "HEAD", "--rounds", "2",
                           "--out", str(out), "--", "fake.py", "--scale", "2"],
                          cwd=repo, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert [(r["method"], r["base"], r["new"], r["ratio"]) for r in doc["rows"]] == [
        ("fft", 600.0, 200.0, 3.0), ("lora", 300.0, 100.0, 3.0)]
    assert len(doc["runs"]["base"]) == len(doc["runs"]["new"]) == 2
    head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout
    # What each side ran, by commit: HEAD named, and the working tree's change to ms.txt.
    assert (doc["base"], doc["base_commit"], doc["new_commit"], doc["new_uncommitted"]) == (
        "HEAD", head.strip(), head.strip(), True)
    assert "| fft | 600.0 [600.0–600.0] | 200.0 [200.0–200.0] | 3.00× |" in proc.stdout
    worktrees = subprocess.run(git + ["worktree", "list"], capture_output=True, text=True).stdout
    assert len(worktrees.strip().splitlines()) == 1  # the base's worktree is removed


def test_train_step_bench_takes_a_methods_settings_from_the_configs_family():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import train_step
    finally:
        sys.path.remove(str(ROOT / "bench"))
    from configs import mambahsi
    from hsic_jax.count import load_config
    config = load_config(str(ROOT / "configs/indian_pines_mambahsi.py"))
    assert tuple(train_step.method_config(config, "lora").targets) == mambahsi.TARGETS
    config = load_config(str(ROOT / "configs/indian_pines_fft.py"))
    assert tuple(train_step.method_config(config, "lora").targets) == ("q", "v")
