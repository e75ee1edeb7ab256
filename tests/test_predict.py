"""`python -m hsic_jax.predict`: a finished run classifies new imagery.

One tiny two-seed run of the demo config on the real Indian Pines (subprocess, as a user runs
it) is the model; Indian Pines itself, written as a georeferenced GeoTIFF, is the "new" cube,
so that the predicted map can be held against the run's own `classification_map.tif`.
"""

import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
import weakref
from pathlib import Path

import multihost
import numpy as np
import pytest
from matplotlib.image import imread

rasterio = pytest.importorskip("rasterio")
from rasterio.transform import from_origin  # noqa: E402

from hsic_jax.data.scenes import load_scene  # noqa: E402
from hsic_jax.evaluation.maps import palette  # noqa: E402
from hsic_jax.predict import Predictor, PredictError, main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--config.optim.warmup_epochs=1", "--config.model.width=24", "--config.model.depth=1",
        "--config.model.heads=2", "--config.model.patch_size=4", "--config.data.neighborhood=7",
        "--config.data.input_size=8", "--config.batch_size=32", "--config.epochs=3",
        "--config.num_seeds=2"]
CRS, TRANSFORM = "EPSG:32616", from_origin(500000.0, 4400000.0, 20.0, 20.0)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "demo"
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"),
                           f"--config={ROOT / 'configs/demo.py'}", f"--workdir={path}", *TINY],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return path


@pytest.fixture(scope="module")
def cube():
    return load_scene("indian_pines").cube


def write_tif(path, cube, **extra):
    profile = dict(driver="GTiff", height=cube.shape[0], width=cube.shape[1],
                   count=cube.shape[2], dtype=cube.dtype.name, tiled=True, blockxsize=32,
                   blockysize=32, **extra)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.moveaxis(cube, -1, 0))
    return path


def predict_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "hsic_jax.predict", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**os.environ, **(env or {})})


def read(path):
    with warnings.catch_warnings():  # maps of a cube without a georeference have none
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            return ds.read(1), ds.crs, ds.transform, ds.nodata


@pytest.mark.slow
def test_the_map_of_the_training_scene_is_the_runs_own(workdir, cube, tmp_path):
    """The CLI on Indian Pines as a GeoTIFF, seed 0: the run's `classification_map.tif` exactly,
    with the cube's CRS, transform and a nodata value, a colour table and the class names."""
    src = write_tif(tmp_path / "ip.tif", cube.astype(np.uint16), crs=CRS, transform=TRANSFORM)
    proc = predict_cli(workdir, "--cube", src, "--out", tmp_path / "out", "--seed", "0",
                       "--tile", "40")
    assert proc.returncode == 0, proc.stderr[-3000:]
    classes, crs, transform, nodata = read(tmp_path / "out" / "classification.tif")
    run_map, _, _, _ = read(workdir / "classification_map.tif")
    np.testing.assert_array_equal(classes, run_map)
    assert crs == rasterio.crs.CRS.from_string(CRS) and transform == TRANSFORM and nodata == 0
    confidence, *_ = read(tmp_path / "out" / "confidence.tif")
    run_confidence, *_ = read(workdir / "confidence_map.tif")
    # bit for bit on a CPU; a GPU's kernels round some probabilities differently (≤ 1e-4
    # relative on an H200: bench/results/gpu_h200/tests_predict.log), never the classes
    np.testing.assert_allclose(confidence, run_confidence, rtol=1e-4, atol=0)
    with rasterio.open(tmp_path / "out" / "classification.tif") as ds:
        names = json.loads(ds.tags()["CLASS_NAMES"])
        assert names[0] == "Alfalfa" and len(names) == 16 and ds.tags()["CLASS_16"] == names[-1]
        assert ds.colormap(1)[1][:3] != ds.colormap(1)[2][:3]
    assert sorted(os.listdir(tmp_path / "out")) == sorted(
        ["classification.tif", "confidence.tif", "classification.png", "confidence.png",
         "prediction.json"])
    record = json.loads((tmp_path / "out" / "prediction.json").read_text())
    assert record["seeds"] == [0] and record["georeferenced"] and record["tiles"] == 16
    preview = imread(tmp_path / "out" / "classification.png")[..., :3]  # a 145² scene: full size
    np.testing.assert_allclose(preview, (palette(16) * 255).round()[classes] / 255, atol=1e-6)


@pytest.mark.slow
def test_tiles_stitch_into_the_whole_scenes_map_bit_for_bit(workdir, cube, tmp_path):
    """Both seeds (mean probability): tiles of 23 pixels, of 64, and the whole scene at once
    give the same maps; a .npy memory map and a v7.3 .mat read in windows give them too."""
    predictor = Predictor.from_workdir(str(workdir))
    assert predictor.seeds == (0, 1)
    whole = predictor(cube, tile=None)
    for tile in (23, 64):
        for got, want in zip(predictor(cube, tile=tile), whole):
            np.testing.assert_array_equal(got, want)
    np.save(tmp_path / "ip.npy", cube)
    out = tmp_path / "npy"
    predictor.predict_file(str(tmp_path / "ip.npy"), str(out), tile=50)
    np.testing.assert_array_equal(read(out / "classification.tif")[0], whole[0])
    one = Predictor.from_workdir(str(workdir), seed=1)
    assert one.seeds == (1,) and not np.array_equal(one(cube, tile=None)[1], whole[1])


def test_a_predictor_compiles_its_frame_program_once_and_is_freed_when_dropped(workdir, cube):
    """Repeated predictions reuse one compiled frame program; jax's caches do not keep a
    dropped predictor (its parameters) alive."""
    predictor = Predictor.from_workdir(str(workdir))
    first = predictor(cube[:20, :30], tile=None)
    for got, want in zip(predictor(cube[:20, :30], tile=None), first):
        np.testing.assert_array_equal(got, want)
    assert predictor._frame_inputs._cache_size() == 1
    dropped = weakref.ref(predictor)
    del predictor
    gc.collect()
    assert dropped() is None


@pytest.mark.slow
def test_four_devices_give_the_one_device_map(workdir, cube, tmp_path):
    src = write_tif(tmp_path / "ip.tif", cube[:90, :100].astype(np.uint16))
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    proc = predict_cli(workdir, "--cube", src, "--out", tmp_path / "four", "--tile", "30",
                       env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "four" / "prediction.json").read_text())
    assert record["devices"] == 4 and record["tiles"] == 12
    classes, crs, _, _ = read(tmp_path / "four" / "classification.tif")
    assert crs is None  # a GeoTIFF without a CRS works, and the maps have none
    want = Predictor.from_workdir(str(workdir))(cube[:90, :100], tile=None)[0]
    np.testing.assert_array_equal(classes, want)


@pytest.mark.slow
def test_nodata_pixels_are_never_classified(workdir, cube, tmp_path):
    """The file's nodata value, NaN and all-zero spectra are nodata in both maps."""
    new = cube[:40, :50].astype(np.float32)
    new[:3, :4] = -9999.0
    new[10, 10, 5] = np.nan
    new[20, 30] = 0.0
    src = write_tif(tmp_path / "nd.tif", new, nodata=-9999.0, crs=CRS, transform=TRANSFORM)
    predictor = Predictor.from_workdir(str(workdir), seed=0)
    predictor.predict_file(str(src), str(tmp_path / "out"), tile=16)
    classes, confidence = (read(tmp_path / "out" / f)[0] for f in ("classification.tif",
                                                                   "confidence.tif"))
    missing = np.zeros((40, 50), bool)
    missing[:3, :4] = missing[10, 10] = missing[20, 30] = True
    assert np.all(classes[missing] == 0) and np.all(confidence[missing] == 0)
    assert np.all(classes[~missing] > 0) and np.all(confidence[~missing] > 0)


def error_of(*argv):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    return str(e.value.code)


@pytest.mark.slow
def test_bad_inputs_get_one_line_naming_the_file(workdir, cube, tmp_path):
    out = tmp_path / "out"
    bands = write_tif(tmp_path / "bands.tif", cube[:20, :20, :150].astype(np.uint16))
    assert error_of(workdir, "--cube", bands, "--out", out) == (
        f"error: {bands}: 150 bands, but the run in {workdir} was trained on 200")
    band_first = tmp_path / "band_first.npy"
    np.save(band_first, np.moveaxis(cube[:30, :40], -1, 0))
    assert error_of(workdir, "--cube", band_first, "--out", out) == (
        f"error: {band_first}: 40 bands, but the run in {workdir} was trained on 200; its "
        "first axis has 200: a band-first (B, H, W) array? save it as (H, W, B)")
    small = write_tif(tmp_path / "small.tif", cube[:5, :5].astype(np.uint16))
    assert error_of(workdir, "--cube", small, "--out", out) == (
        f"error: {small}: 5 × 5 pixels, smaller than the run's 7 × 7 neighbourhood")
    whole = write_tif(tmp_path / "whole.tif", cube[:64, :64].astype(np.uint16))
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    message = error_of(workdir, "--cube", truncated, "--out", out)
    assert message.startswith(f"error: {truncated}: ") and "\n" not in message
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert error_of(workdir, "--cube", whole, "--out", blocker / "sub").startswith(
        f"error: --out {blocker / 'sub'}: cannot make the folder")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert error_of(workdir, "--cube", whole, "--out", busy) == (
        f"error: --out {busy}: holds other files (notes.txt); give an empty or new folder")
    assert (busy / "notes.txt").read_text() == "mine"
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(workdir / "config.json", unfinished / "config.json")
    assert error_of(unfinished, "--cube", whole, "--out", out) == (
        f"error: {unfinished}: the run has not finished (no results.json); rerun its run.py "
        "command to complete it")
    assert error_of(workdir, "--cube", whole, "--out", out, "--seed", "7") == (
        f"error: --seed 7: the run in {workdir} trained seeds [0, 1]")
    assert not out.exists() or not os.listdir(out)


@pytest.mark.slow
def test_band_names_of_the_training_file_must_match_the_cubes(tmp_path):
    """A run trained on a GeoTIFF whose bands are named (GDAL descriptions) keeps the names
    (`bands.json`, also in its adapter export); a cube naming them alike is checked by name, one
    with the bands reordered or named otherwise is refused naming the first band that differs
    (`--ignore-band-names`: by count), and one without names by count."""
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 4, (24, 30)).astype(np.uint8)
    cube = (100 * (rng.normal(size=(24, 30, 14)) + gt[..., None]) + 1000).astype(np.uint16)
    names = [f"{450 + 25 * b} nm" for b in range(14)]

    def described(path, order, labels):
        write_tif(path, cube[..., order])
        with rasterio.open(path, "r+") as ds:
            for b, name in enumerate(labels, start=1):
                ds.set_band_description(b, name)
        return path

    train = described(tmp_path / "train.tif", slice(None), names)
    np.save(tmp_path / "gt.npy", gt)
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), f"--config={ROOT / 'configs/demo.py'}",
         f"--workdir={run}", "--config.data.name=files", f"--config.data.cube_path={train}",
         f"--config.data.gt_path={tmp_path / 'gt.npy'}", "--config.data.train_per_class=20",
         *TINY[:-1]],
        capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for where in (run, run / "adapters"):
        assert json.loads((where / "bands.json").read_text()) == {"band_names": names}

    same = predict_cli(run, "--cube", train, "--out", tmp_path / "same")
    assert same.returncode == 0, same.stderr[-3000:]
    record = json.loads((tmp_path / "same" / "prediction.json").read_text())
    assert record["bands_checked_by"] == "name"
    np.testing.assert_array_equal(read(tmp_path / "same" / "classification.tif")[0],
                                  read(run / "classification_map.tif")[0])

    order = np.r_[1, 0, 2:14]  # two bands swapped, labelled as they now are
    swapped = described(tmp_path / "swapped.tif", order, [names[b] for b in order])
    assert error_of(run, "--cube", swapped, "--out", tmp_path / "o1") == (
        f"error: {swapped}: band 1 is '475 nm', but the run in {run} was trained with '450 nm' "
        "there (the run's bands in another order)")
    other = described(tmp_path / "other.tif", slice(None), [f"B{b}" for b in range(14)])
    assert error_of(run, "--cube", other, "--out", tmp_path / "o2") == (
        f"error: {other}: band 1 is 'B0', but the run in {run} was trained with '450 nm' there "
        "(named otherwise; if they are the same bands, pass --ignore-band-names)")
    proc = predict_cli(run, "--cube", other, "--out", tmp_path / "o3", "--ignore-band-names")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "o3" / "prediction.json").read_text())[
        "bands_checked_by"] == "count"
    unnamed = write_tif(tmp_path / "unnamed.tif", cube)
    proc = predict_cli(run, "--cube", unnamed, "--out", tmp_path / "o4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "o4" / "prediction.json").read_text())[
        "bands_checked_by"] == "count"


@pytest.mark.slow
def test_a_killed_prediction_leaves_no_output_and_a_rerun_completes_it(workdir, cube,
                                                                        tmp_path):
    src = write_tif(tmp_path / "ip.tif", cube.astype(np.uint16))
    out = tmp_path / "out"
    args = [sys.executable, "-m", "hsic_jax.predict", str(workdir), "--cube", str(src),
            "--out", str(out), "--tile", "8"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = out / "classification.partial.tif"
    deadline = time.monotonic() + 300
    while not partial.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the prediction ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "classification.tif").exists() and partial.exists()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(os.listdir(out)) == sorted(
        ["classification.tif", "confidence.tif", "classification.png", "confidence.png",
         "prediction.json"])
    want = Predictor.from_workdir(str(workdir))(cube, tile=None)[0]
    np.testing.assert_array_equal(read(out / "classification.tif")[0], want)


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    """A LoRA run on a converted backbone (the official layout, random weights, converted)."""
    import torch_reference as ref
    from convert.spectralgpt import main as convert_main

    tmp = tmp_path_factory.mktemp("lora")
    model = ref.randomized(ref.VisionTransformer(
        img_size=8, patch_size=4, bands=12, tubelet=3, width=24, depth=1, heads=2,
        num_classes=16, sep_pos_embed=True), seed=1)
    ref.checkpoint_file(tmp / "base.pth", model.state_dict())
    assert convert_main(["--checkpoint", str(tmp / "base.pth"), "--out", str(tmp / "base"),
                         "--img-size", "8", "--num-classes", "16", "--pos-embed", "separable",
                         "--heads", "2"]) == 0
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"),
                           f"--config={ROOT / 'configs/demo_pretrained.py'}:lora",
                           f"--workdir={tmp / 'run'}", f"--config.pretrained_dir={tmp / 'base'}",
                           *TINY[:-1]], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "base", tmp / "run"


@pytest.mark.slow
def test_an_adapter_export_on_its_base_classifies_as_its_run(lora_run, cube, tmp_path):
    """`--base CKPT --adapters WORKDIR/adapters` gives the run's map; the export of another
    base is refused, naming both checkpoints' hashes."""
    base, run = lora_run
    src = write_tif(tmp_path / "ip.tif", cube.astype(np.uint16), crs=CRS, transform=TRANSFORM)
    proc = predict_cli("--base", base, "--adapters", run / "adapters", "--cube", src, "--out",
                       tmp_path / "out")
    assert proc.returncode == 0, proc.stderr[-3000:]
    classes, crs, _, _ = read(tmp_path / "out" / "classification.tif")
    np.testing.assert_array_equal(classes, read(run / "classification_map.tif")[0])
    assert (run / "adapters" / "adapters.npz").stat().st_size < 100_000
    other = tmp_path / "other"
    shutil.copytree(base, other)
    manifest = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**manifest, "source_sha256": "0" * 64}))
    message = error_of("--base", other, "--adapters", run / "adapters", "--cube", src, "--out",
                       tmp_path / "again")
    assert message.startswith(f"error: {run / 'adapters'} was trained on base checkpoint "
                              "sha256 ") and message.endswith("0" * 64)


@pytest.mark.slow
def test_two_processes_write_their_bands_and_a_vrt_of_the_one_map(workdir, cube, tmp_path):
    """`--distributed` over 2 processes × 2 devices (gloo on the CPU): each process writes its
    band of rows, process 0 a VRT that reads as the one-process map, georeferenced."""
    src = write_tif(tmp_path / "ip.tif", cube[:100, :90].astype(np.uint16), crs=CRS,
                    transform=TRANSFORM)
    multihost.wait(multihost.launch(
        [sys.executable, "-m", "hsic_jax.predict", workdir, "--cube", src, "--out",
         tmp_path / "out", "--tile", "30"], ROOT))
    out = tmp_path / "out"
    assert {"classification.part0.tif", "classification.part1.tif", "classification.vrt",
            "confidence.vrt", "classification.png"} <= set(os.listdir(out))
    classes, crs, transform, nodata = read(out / "classification.vrt")
    want = Predictor.from_workdir(str(workdir))(cube[:100, :90], tile=None)
    np.testing.assert_array_equal(classes, want[0])
    np.testing.assert_array_equal(read(out / "confidence.vrt")[0], want[1])
    assert crs == rasterio.crs.CRS.from_string(CRS) and transform == TRANSFORM and nodata == 0
    with rasterio.open(out / "classification.vrt") as ds:
        assert json.loads(ds.tags()["CLASS_NAMES"])[0] == "Alfalfa" and ds.colormap(1)[1]
    assert json.loads((out / "prediction.json").read_text())["processes"] == 2


@pytest.mark.slow
def test_a_whole_scene_model_predicts_tile_by_tile_with_its_halo(cube, tmp_path):
    """A tiny MambaHSI run (2 whole-scene epochs): the whole scene at once gives the run's own
    map; tiles whose frames cover the scene (halo ≥ the scene) give it too; a small halo
    gives a map of the same classes' range, differing near the tiles' edges."""
    workdir = tmp_path / "mamba"
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"),
                           f"--config={ROOT / 'configs/indian_pines_mambahsi.py'}",
                           f"--workdir={workdir}", "--config.epochs=2",
                           "--config.model.hidden_dim=16", "--config.data.data_dir="],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    predictor = Predictor.from_workdir(str(workdir))
    assert predictor.whole_scene
    whole, confidence = predictor(cube, tile=None)
    np.testing.assert_array_equal(whole, read(workdir / "classification_map.tif")[0])
    np.testing.assert_array_equal(predictor(cube, tile=50, halo=100)[0], whole)
    tiled, _ = predictor(cube, tile=50, halo=0)
    assert tiled.min() >= 1 and tiled.max() <= 16 and not np.array_equal(tiled, whole)


@pytest.mark.slow
def test_seeds_with_their_own_preprocessing_each_use_theirs(cube, tmp_path):
    """`data.fit_on='train'`: every seed's PCA and normalisation are fitted on its training
    pixels (`pca_seed{N}.npz`, `normalization_seed{N}.npz`); predicting seed 0 alone gives its
    run's map, and the ensemble uses each seed's own."""
    workdir = tmp_path / "fit_on_train"
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"),
                           f"--config={ROOT / 'configs/demo.py'}", f"--workdir={workdir}",
                           *TINY, "--config.data.fit_on=train"],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {"normalization_seed0.npz", "normalization_seed1.npz"} <= set(os.listdir(workdir))
    seed0 = Predictor.from_workdir(str(workdir), seed=0)
    assert len(seed0.preprocessing) == 1
    np.testing.assert_array_equal(seed0(cube, tile=None)[0],
                                  read(workdir / "classification_map.tif")[0])
    both = Predictor.from_workdir(str(workdir))
    assert len(both.preprocessing) == 2 and not np.array_equal(
        both.preprocessing[0].normalization.shift, both.preprocessing[1].normalization.shift)
    classes, confidence = both(cube, tile=60)
    assert classes.min() >= 1 and np.all(confidence >= 1 / 16)


@pytest.mark.slow
def test_tiling_flags_that_cannot_be_are_refused_naming_the_flag(workdir, cube, tmp_path):
    src = write_tif(tmp_path / "ip.tif", cube[:20, :20].astype(np.uint16))
    out = tmp_path / "out"
    for flag, value, want in (("--tile", 0, "--tile 0: expected at least 1 (pixels a side)"),
                              ("--halo", -1, "--halo -1: expected at least 0 (pixels)"),
                              ("--batch", 0, "--batch 0: expected at least 1 (pixels a model "
                                             "call)")):
        assert error_of(workdir, "--cube", src, "--out", out, flag, value) == f"error: {want}"
    assert not out.exists() or not os.listdir(out)
    with pytest.raises(PredictError, match=r"^--tile -3: expected at least 1"):
        Predictor.from_workdir(str(workdir), seed=0)(cube[:20, :20], tile=-3)
    with pytest.raises(SystemExit) as e:  # argparse: usage and the message, exit status 2
        main(["--base", str(tmp_path), "--adapters", str(tmp_path), "--seed", "1", "--cube",
              str(src), "--out", str(out)])
    assert e.value.code == 2


def test_gdal_block_cache_is_capped_at_its_megabytes():
    """The cache GDAL really gets is `GDAL_CACHE_MB` megabytes (an integer GDAL_CACHEMAX is
    bytes to rasterio: 256 was once 256 bytes, no cache at all), asked of GDAL itself."""
    import ctypes
    import glob

    import rasterio

    from hsic_jax.predict import GDAL_CACHE_MB, rasterio_env

    found = glob.glob(os.path.join(os.path.dirname(rasterio.__file__) + ".libs", "libgdal*"))
    if not found:
        pytest.skip("a rasterio build without its own libgdal beside it")
    gdal = ctypes.CDLL(found[0])
    gdal.GDALGetCacheMax64.restype = ctypes.c_int64
    with rasterio_env():
        assert gdal.GDALGetCacheMax64() == GDAL_CACHE_MB * 2**20
