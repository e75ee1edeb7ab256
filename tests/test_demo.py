"""The README's main job, exactly as a new user runs it: the demo config to the end."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_reaches_85_percent_oa(tmp_path):
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "run.py", "--config=configs/demo.py", f"--workdir={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    print(f"demo: OA {results['oa']:.4f} AA {results['aa']:.4f} kappa {results['kappa']:.4f}, "
          f"{results['train_seconds']:.0f} s training, {wall:.0f} s wall")
    assert results["oa"] >= 0.85
    assert results["compiles"] <= 15  # the whole process: checks, data, init, step, predict
    total = results["split"]["rows"][-1]
    assert (total["name"], total["train"]) == ("Total", 695)
    for name in ("classification_map.png", "training_curves.png", "adapters/manifest.json"):
        assert (tmp_path / name).stat().st_size > 0
    assert "OA " in proc.stdout and str(tmp_path) in proc.stdout
    assert ("695 train / 0 val / 9554 test pixels, 98.96 % of test pixels inside a 15-pixel"
            in proc.stdout)  # the protocol, printed with the result
