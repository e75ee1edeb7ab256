"""A user's own scene in one command: a GeoTIFF cube and its labels, counts and class names
from the command line, maps back as GeoTIFFs with the input's georeference."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from test_data_scenes import GEO_TAGS, read_tiff, write_geotiff

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--config.model.width=24", "--config.model.depth=1", "--config.model.heads=2",
        "--config.model.patch_size=4", "--config.data.neighborhood=5", "--config.data.input_size=8",
        "--config.batch_size=16", "--config.epochs=2"]


def test_own_geotiff_scene_from_the_command_line(tmp_path):
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 4, (24, 30)).astype(np.uint8)  # 0 = unlabelled, classes 1..3
    cube = (rng.normal(size=(24, 30, 14)) + gt[..., None]).astype(np.float32)
    write_geotiff(tmp_path / "cube.tif", cube, GEO_TAGS)
    np.save(tmp_path / "labels.npy", gt)
    proc = subprocess.run(
        [sys.executable, "run.py", "--config=configs/demo.py", f"--workdir={tmp_path / 'run'}",
         "--config.data.name=files", f"--config.data.cube_path={tmp_path / 'cube.tif'}",
         f"--config.data.gt_path={tmp_path / 'labels.npy'}", "--config.data.train_per_class=20",
         "--config.data.class_names=water, forest,town", "--config.num_seeds=2",
         "--config.map_mask_unlabelled=True", *TINY],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["class_names"] == ["water", "forest", "town"]
    assert results["protocol"]["train"] == 60
    first = proc.stdout.splitlines()[0]
    assert first.startswith(f"OA {100 * results['oa']:.2f}% ± {100 * results['oa_std']:.2f}")
    assert "(mean ± std over 2 seeds)" in first
    classes, tags = read_tiff(tmp_path / "run" / "classification_map.tif")
    assert tags == GEO_TAGS and classes.shape == (24, 30) and set(np.unique(classes)) <= {1, 2, 3}
    confidence, tags = read_tiff(tmp_path / "run" / "confidence_map.tif")
    assert tags == GEO_TAGS and confidence.dtype == np.float32
    assert (confidence >= 1 / 3 - 1e-6).all() and (confidence <= 1).all()  # max of 3 softmax values
    for png in ("classification_map.png", "confidence_map.png"):
        assert (tmp_path / "run" / png).stat().st_size > 0
