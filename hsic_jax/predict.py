"""Classify new imagery with a trained model: scenes of any size, tiled, georeferenced.

    python -m hsic_jax.predict WORKDIR --cube NEW.tif --out DIR
    python -m hsic_jax.predict --base CKPT_DIR --adapters WORKDIR/adapters --cube NEW.tif --out DIR

applies a finished run (`run.py`'s workdir) to a cube: the run's own preprocessing (its
fitted PCA and normalisation, `pca.npz` / `normalization.npz`), neighbourhood, resize and
padding, and its selected state (adapters merged into their kernels) of every seed, the
seeds' softmax probabilities averaged (`--seed N`: one seed alone); or an adapter export
(0.2 MB: the trained leaves, the run's config and preprocessing) on the converted backbone
it was trained on (`--base`, `--adapters`), the export's seed. The cube (GeoTIFF, ENVI
or any raster GDAL reads, `.npy`, `.mat`, `.npz`; `--cube-key` in a file of several) is read
in windows (`hsic_jax.data.raster`), each with the halo its pixels' inputs need, classified
tile by tile on every local device (`hsic_jax.evaluation.tiles`) and written window by
window, so memory stays flat in the scene's area. The stitched map of a patch model equals
the whole scene's bit for bit; a whole-scene model (MambaHSI) sees each tile with `--halo`
pixels around it.

The cube must have the run's bands: their number, and, when both the run's scene file and
the cube name their bands (GDAL band descriptions, e.g. wavelengths; the run keeps them in
`bands.json`), the same names in the same order (`--ignore-band-names`: the number only).

Outputs in DIR, each written under a temporary name and renamed when complete (a killed run
leaves `*.partial.*` files, which the rerun replaces):
  classification.tif  uint8 (uint16 past 254 classes) classes 1..C, 0 where the cube has no
                      data; Cloud-Optimized GeoTIFF with the cube's CRS and transform, the
                      classes' colours as its colour table and their names as metadata
                      (`CLASS_NAMES`, `CLASS_1`, …)
  confidence.tif      float32, the predicted class's probability (0: no data)
  classification.png, confidence.png   previews (at most `PREVIEW` pixels a side)
  prediction.json     what was run: the workdir, the cube, seeds, tiles, devices, timings

Python: `Predictor.from_workdir(W)`, `Predictor.from_adapters(base, adapters)`;
`predictor(cube) -> (classes, confidence)` for an
`(H, W, B)` array, `predictor.predict_file(src, dst)` for files.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import os
import re
import sys
import time
from xml.sax.saxutils import escape
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from hsic_jax import cli, hosts
from hsic_jax.adapters.export import load_adapters, read_adapter_manifest
from hsic_jax.data.io import DataError, atomic_write, write_json
from hsic_jax.data.preprocess import Preprocessing
from hsic_jax.data.raster import Cube, MapWriter, array_cube, open_cube
from hsic_jax.evaluation import tiles as tiling
from hsic_jax.evaluation.maps import palette
from hsic_jax.evaluation.predict import EVAL_BATCH
from hsic_jax.models.converted import read_manifest
from hsic_jax.progress import progress
from hsic_jax.train import checkpoint, selection, tasks
from hsic_jax.train import sweep as sweeps
from hsic_jax.train.partition import split
from hsic_jax.train.state import (create_train_state, init_params, pretrained_backbone,
                                  tuned_model)
from hsic_jax.train.step import Geometry, predict_compiler_options, seeds_predict_program

log = logging.getLogger(__name__)

TILE = 256  # core pixels a side of a tile
HALO = 128  # whole-scene models: pixels of context around a tile (bench/predict_halo.py)
GDAL_CACHE_MB = 256  # GDAL's block cache while reading and writing
PREVIEW = 2048  # the PNG previews' longest side, pixels
# What `predict_file` writes into --out (and replaces there): the maps (`.partN` of process N
# and a `.vrt` of them on several hosts; `.partial` while being written), previews, record.
OURS = re.compile(r"(classification|confidence)(\.part\d+)?(\.partial(\.cog)?)?\.tif"
                  r"|(classification|confidence)\.(png|vrt)|prediction\.json")


class PredictError(DataError):
    """A workdir, cube or output folder that prediction cannot use; the message says which."""


@dataclasses.dataclass(frozen=True)
class Predictor:
    """A trained model ready to classify cubes (build it with `from_workdir`).

    Attributes:
      config: the run's config.
      seeds: the seeds whose models vote (their probabilities averaged).
      params: the selected trainable parameters, leading seed axis `(S, ...)`.
      frozen: the frozen parameters (shared).
      preprocessing: each seed's fitted preprocessing (one, when fitted on the scene).
      class_names: the C class names.
      classify: `classify(params, frozen, frames (S, F, G, C), coords (S, N, 2))` ->
        `(classes (N,), confidence (N,))`, jitted.
      whole_scene: the model takes a whole scene (tiles with a halo), not neighbourhoods.
      source: where it was loaded from.
    """

    config: ml_collections.ConfigDict
    seeds: tuple[int, ...]
    params: Any
    frozen: Any
    preprocessing: tuple[Preprocessing, ...]
    class_names: tuple[str, ...]
    classify: Callable
    whole_scene: bool
    source: str

    @classmethod
    def from_workdir(cls, workdir: str, *, seed: int | None = None) -> Predictor:
        """The finished run in `workdir`: every seed (`seed`: that one alone)."""
        config, class_names = _finished_run(workdir)
        seeds = tuple(config.seed + s for s in range(config.num_seeds))
        if seed is not None and seed not in seeds:
            raise PredictError(f"--seed {seed}: the run in {workdir} trained seeds "
                               f"{list(seeds)}")
        task = _task(config, workdir)
        preprocessing = _preprocessing(workdir, config, seeds)
        tuned = _tuned(config, class_names, preprocessing[0])
        params, frozen = _restore(workdir, config, tuned, seeds)
        keep = [seeds.index(seed)] if seed is not None else list(range(len(seeds)))
        params = jax.tree.map(lambda x: x[np.asarray(keep)], params)
        preprocessing = (preprocessing if len(preprocessing) == 1
                         else tuple(preprocessing[k] for k in keep))
        return cls._build(config, task, tuned, tuple(seeds[k] for k in keep), params, frozen,
                          preprocessing, class_names, workdir)

    @classmethod
    def from_adapters(cls, base: str, adapters: str) -> Predictor:
        """An adapter export of a run (`WORKDIR/adapters`) on the converted backbone `base`
        it was trained on: that run's first seed."""
        manifest = read_adapter_manifest(adapters)
        if "run" not in manifest or not os.path.isfile(os.path.join(adapters,
                                                                    "normalization.npz")):
            raise PredictError(f"{adapters}: an export without its run's config and "
                               "preprocessing (made before hsic-jax saved them); predict "
                               "from the run's workdir")
        config = ml_collections.ConfigDict(manifest["run"])
        if config.init != "pretrained":
            raise PredictError(f"{adapters}: trained on a randomly initialised backbone "
                               f"(config.init={config.init!r}), not on a converted one; "
                               "predict from the run's workdir")
        config.pretrained_dir = base
        task = _task(config, adapters)
        preprocessing = (Preprocessing.load(adapters),)
        class_names = manifest["class_names"]
        tuned = _tuned(config, class_names, preprocessing[0])
        params = init_params(tuned, jax.random.key(config.seed),
                             {"backbone": pretrained_backbone(config, tuned.module)})
        params = load_adapters(params, adapters, tuned=tuned,
                               base_sha256=read_manifest(base)["source_sha256"],
                               method_cfg=config.method)
        trainable, frozen = split(params, tuned.labels(params))
        return cls._build(config, task, tuned, (config.seed,),
                          jax.tree.map(lambda x: x[None], trainable), frozen, preprocessing,
                          class_names, adapters)

    @classmethod
    def _build(cls, config, task, tuned, seeds, params, frozen, preprocessing, class_names,
               source) -> Predictor:
        geo = Geometry(config.data.neighborhood, config.data.input_size, config.data.resize)
        if len(seeds) == 1:  # the run's own prediction function: its map, bit for bit
            one = seeds_predict_program(task.predict_function(tuned, geo))
            classify = lambda *args: jax.tree.map(lambda x: x[0], one(*args))
        else:
            classify = _ensemble(task.logits_function(tuned, geo))
        return cls(config, tuple(seeds), params, frozen, tuple(preprocessing),
                   tuple(class_names), classify, task.whole_scene, source)

    @property
    def bands(self) -> int:
        """The bands a cube must have."""
        return self.preprocessing[0].bands

    @property
    def radius(self) -> int:
        return 0 if self.whole_scene else self.config.data.neighborhood // 2

    def __call__(self, cube, *, tile: int | None = TILE, halo: int = HALO,
                 batch: int = EVAL_BATCH, devices: Sequence[jax.Device] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Classes `(H, W)` in 1..C (0: no data) and confidence `(H, W)` of an `(H, W, B)`
        array (or an open `Cube`), tile by tile (`tile=None`: the whole scene at once),
        `batch` pixels a call (the run's own, `EVAL_BATCH`, gives its map bit for bit)."""
        source = cube if isinstance(cube, Cube) else array_cube("<array>", np.asarray(cube))
        _check_tiling(tile, halo, batch)
        self._check_cube(source)
        classes = np.zeros(source.shape[:2], self.class_dtype)
        confidence = np.zeros(source.shape[:2], np.float32)

        def write(t, c, p):
            classes[t.rows, t.cols], confidence[t.rows, t.cols] = c, p

        self._run(source, write, tile=tile, halo=halo, batch=batch, devices=devices)
        return classes, confidence

    @property
    def class_dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if len(self.class_names) < 255 else np.uint16)

    def predict_file(self, src: str, dst: str, *, cube_key: str | None = None,
                     tile: int | None = TILE, halo: int = HALO, batch: int = EVAL_BATCH,
                     devices: Sequence[jax.Device] | None = None,
                     ignore_band_names: bool = False) -> dict:
        """Classify the cube in file `src` into the folder `dst` (module docstring); returns
        what `prediction.json` records. When both the run and `src` name their bands, the
        names must agree band by band (`ignore_band_names`: check the count only).

        Under `jax.distributed` every process takes its own band of tile rows on its own
        devices and writes it as `classification.part{I}.tif` / `confidence.part{I}.tif`;
        process 0 then writes `classification.vrt` / `confidence.vrt`, which GDAL (QGIS,
        rasterio) reads as one map, the previews and `prediction.json`."""
        count, index = jax.process_count(), jax.process_index()
        if hosts.agree(_checked_out(dst) if index == 0 else hosts.GO) == hosts.REFUSED:
            raise PredictError(f"--out {dst}: refused by process 0 (see its output)")
        t0 = time.perf_counter()
        suffix = "" if count == 1 else f".part{index}"
        _check_tiling(tile, halo, batch)
        with rasterio_env(), open_cube(src, cube_key) as cube:
            self._check_cube(cube)
            checked_by = self._check_band_names(cube, ignore_band_names)
            rows = _band(cube.shape[0], tile, count, index)
            maps = self._writers(dst, suffix, cube, rows) if rows[1] > rows[0] else []

            def write(t, c, p):
                local = slice(t.rows.start - rows[0], t.rows.stop - rows[0])
                maps[0].write(c.astype(self.class_dtype), local, t.cols)
                maps[1].write(p, local, t.cols)

            try:
                counts = self._run(cube, write, tile=tile, halo=halo, batch=batch,
                                   devices=devices, rows=rows)
            except BaseException:
                for m in maps:
                    m.abort()
                raise
            for m in maps:
                m.finish()
        if count > 1:
            multihost_utils.sync_global_devices("hsic_jax.predict: every part written")
        if index:
            return counts
        maps = ("classification.tif", "confidence.tif") if count == 1 else tuple(
            _write_vrt(dst, name, cube.shape[:2], [_band(cube.shape[0], tile, count, i)
                                                    for i in range(count)])
            for name in ("classification", "confidence"))
        _previews(dst, maps, len(self.class_names))
        seconds = time.perf_counter() - t0
        record = {"workdir": self.source, "cube": os.path.abspath(src),
                  "shape": list(cube.shape), "maps": list(maps), "seeds": list(self.seeds),
                  "ensemble": len(self.seeds) > 1, "class_names": list(self.class_names),
                  "bands_checked_by": checked_by, "tile": tile, "batch": batch,
                  "halo": halo if self.whole_scene else None,
                  "georeferenced": cube.crs is not None, **counts, "processes": count,
                  "seconds": round(seconds, 3),
                  "pixels_per_second": round(cube.shape[0] * cube.shape[1] / seconds, 1)}
        write_json(os.path.join(dst, "prediction.json"), record)
        if cube.crs is None:
            log.info("%s has no CRS: the maps are written without a georeference", src)
        return record

    def _writers(self, dst: str, suffix: str, cube: Cube, rows: tuple[int, int]):
        """The class and confidence maps of rows `[rows[0], rows[1])` of `cube`."""
        shape = (rows[1] - rows[0], cube.shape[1])
        colours = _palette_8bit(len(self.class_names)).tolist()
        tags = {"CLASS_NAMES": json.dumps(list(self.class_names)),
                **{f"CLASS_{k}": n for k, n in enumerate(self.class_names, start=1)}}
        return [MapWriter(os.path.join(dst, f"classification{suffix}.tif"), shape,
                          self.class_dtype, tiling.NODATA_CLASS, cube,
                          {k: tuple(c) for k, c in enumerate(colours)}, tags,
                          row_offset=rows[0]),
                MapWriter(os.path.join(dst, f"confidence{suffix}.tif"), shape, np.float32,
                          tiling.NODATA_CONFIDENCE, cube, row_offset=rows[0])]

    def _run(self, cube: Cube, write, *, tile: int | None, halo: int, batch: int,
             devices: Sequence[jax.Device] | None, rows: tuple[int, int] | None = None
             ) -> dict:
        """Classify `cube` tile by tile (those whose rows start in `rows`: all by default)
        into `write`; returns the devices and the number of tiles (the callers have checked
        the cube and the tiling)."""
        devices = list(devices or jax.local_devices())
        plan = [t for t in tiling.plan(cube.shape[:2], tile, radius=self.radius,
                                       padding=self.config.data.padding,
                                       halo=halo if self.whole_scene else None)
                if rows is None or rows[0] <= t.rows.start < rows[1]]
        placed = {d: jax.device_put((self.params, self.frozen), d) for d in devices}
        n = len(self.seeds)

        def classify(device, frame, coords):
            params, frozen = placed[device]
            return self.classify(params, frozen, frame,
                                 jax.device_put(np.broadcast_to(coords, (n, *coords.shape)),
                                                device))

        tiling.classify_tiles(cube, progress(plan, f"predict {cube.shape[0]} × "
                                              f"{cube.shape[1]} pixels", len(plan)),
                              self._frame_inputs, classify, write, devices=devices,
                              batch=None if self.whole_scene else batch)
        return {"devices": len(devices), "tiles": len(plan)}

    @functools.cached_property
    def _frame_inputs(self) -> Callable:
        """`tiles.frame_inputs` of this predictor's preprocessing, jitted: `(raw (F, G, B),
        nodata, row_ok (F,), col_ok (G,)) -> ((S, F, G, C) each seed's input frame, (F, G)
        no-data mask)`. Compiled once per frame shape, and freed with the predictor (the
        function holds the preprocessing, not the predictor)."""
        preprocessing, n = self.preprocessing, len(self.seeds)

        def prepare(raw):
            frames = jnp.stack([p.apply(raw) for p in preprocessing])
            return jnp.broadcast_to(frames, (n, *frames.shape[1:]))

        return jax.jit(functools.partial(tiling.frame_inputs, prepare))

    def _check_band_names(self, cube: Cube, ignore: bool) -> str:
        """Refuse a cube whose band names differ from the run's; returns what the bands were
        checked by: 'name' (both named them), else 'count'."""
        ours = self.preprocessing[0].band_names
        if ignore or ours is None or cube.band_names is None:
            return "count"
        theirs = cube.band_names
        if theirs != ours:
            i = next(i for i, (a, b) in enumerate(zip(theirs, ours)) if a != b)
            what = ("the run's bands in another order" if sorted(theirs) == sorted(ours) else
                    "named otherwise; if they are the same bands, pass --ignore-band-names")
            raise PredictError(f"{cube.path}: band {i + 1} is {theirs[i]!r}, but the run in "
                               f"{self.source} was trained with {ours[i]!r} there ({what})")
        return "name"

    def _check_cube(self, cube: Cube) -> None:
        """Refuse a cube this model cannot classify."""
        if cube.shape[2] != self.bands:
            hint = (f"; its first axis has {self.bands}: a band-first (B, H, W) array? save it "
                    "as (H, W, B)" if cube.shape[0] == self.bands else "")
            raise PredictError(f"{cube.path}: {cube.shape[2]} bands, but the run in "
                               f"{self.source} was trained on {self.bands}{hint}")
        window = self.config.data.neighborhood
        if not self.whole_scene and min(cube.shape[:2]) < window:
            raise PredictError(f"{cube.path}: {cube.shape[0]} × {cube.shape[1]} pixels, "
                               f"smaller than the run's {window} × {window} neighbourhood")


def _check_tiling(tile: int | None, halo: int, batch: int) -> None:
    """Refuse a tile, halo or batch size that cannot be (naming the flag)."""
    for flag, value, low, what in (("--tile", tile, 1, "pixels a side"),
                                   ("--halo", halo, 0, "pixels"),
                                   ("--batch", batch, 1, "pixels a model call")):
        if value is not None and value < low:
            raise PredictError(f"{flag} {value}: expected at least {low} ({what})")


def rasterio_env():
    """GDAL's block cache capped (`GDAL_CACHE_MB`), so that memory stays flat however large
    the cube: GDAL's default is 5 % of the machine's memory. (rasterio passes an integer
    GDAL_CACHEMAX to GDAL as bytes.)"""
    import rasterio

    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 2**20)


def _ensemble(logits: Callable) -> Callable:
    """`classify` of several seeds: their softmax probabilities averaged."""
    per_seed = jax.vmap(logits, in_axes=(0, None, 0, 0))

    @functools.partial(jax.jit, compiler_options=predict_compiler_options())
    def classify(params, frozen, frames, coords):
        probs = jax.nn.softmax(per_seed(params, frozen, frames, coords), axis=-1).mean(0)
        return jnp.argmax(probs, axis=-1), jnp.max(probs, axis=-1)

    return classify


def _finished_run(workdir: str) -> tuple[ml_collections.ConfigDict, list[str]]:
    """The config and class names of the finished run in `workdir`."""
    config_path, results_path = (os.path.join(workdir, f) for f in ("config.json",
                                                                     "results.json"))
    if not os.path.isdir(workdir):
        raise PredictError(f"{workdir}: no such workdir")
    if not os.path.isfile(config_path):
        raise PredictError(f"{workdir}: not a run's workdir (no config.json); give the "
                           "--workdir of a finished run.py command")
    if not os.path.isfile(results_path):
        raise PredictError(f"{workdir}: the run has not finished (no results.json); rerun "
                           "its run.py command to complete it")
    with open(config_path) as f:
        experiment = json.load(f)
    if "sweep" in experiment:
        raise PredictError(f"{workdir}: a sweep's workdir holds a model per grid point; "
                           "train the chosen point alone and predict from its workdir")
    with open(results_path) as f:
        class_names = json.load(f)["class_names"]
    return ml_collections.ConfigDict(experiment), class_names


def _task(config, source: str) -> tasks.Task:
    """The run's task shape; a fitted (scikit-learn) model is refused."""
    task = tasks.of(config.model.name)
    if task.fitted:
        raise PredictError(f"{source}: model {config.model.name!r} is fitted by scikit-learn "
                           "and its fit is not saved; predict classifies with the "
                           "gradient-trained families")
    return task


def _tuned(config, class_names: Sequence[str], preprocessing: Preprocessing):
    """The run's model, on its preprocessing's channels."""
    return tuned_model(config, num_classes=len(class_names), bands=preprocessing.channels)


def _preprocessing(workdir: str, config, seeds: Sequence[int]) -> tuple[Preprocessing, ...]:
    """The run's fitted preprocessing: one (fitted on the scene) or one per seed."""
    suffixes = [""] if config.data.fit_on == "scene" else [f"_seed{s}" for s in seeds]
    for suffix in suffixes:
        if not os.path.isfile(os.path.join(workdir, f"normalization{suffix}.npz")):
            raise PredictError(f"{workdir}: no normalization{suffix}.npz (runs before "
                               "hsic-jax saved its normalisation lack it); rerun the run "
                               "with --restart to predict with it")
    return tuple(Preprocessing.load(workdir, suffix) for suffix in suffixes)


def _restore(workdir: str, config, tuned, seeds: Sequence[int]):
    """`(params (S, ...), frozen)`: the run's selected state, restored from its last
    checkpoint onto freshly built state (the frozen backbone drawn again from the seed, or
    loaded from `pretrained_dir`)."""
    hp = sweeps.hyperparams(config, [{}], len(seeds))
    _, state, frozen = create_train_state(
        config, tuned, seeds, 1, {"backbone": pretrained_backbone(config, tuned.module)},
        init_std=hp["init_std"])
    best = selection.init_best(state["params"]) if config.select == "best_val" else None
    restored = checkpoint.restore_latest(checkpoint.manager(workdir, create=False),
                                         checkpoint.checkpointed(state, best))
    if restored is None:
        raise PredictError(f"{workdir}: no checkpoint in {workdir}/checkpoints")
    return selection.selected_params(restored["state"]["params"], restored.get("best")), frozen


def _band(height: int, tile: int | None, count: int, index: int) -> tuple[int, int]:
    """Rows `[start, stop)` of process `index` of `count`: its share of the tile rows."""
    tile = tile or height
    tile_rows = -(-height // tile)
    return (min(index * tile_rows // count * tile, height),
            min((index + 1) * tile_rows // count * tile, height))


def _write_vrt(dst: str, name: str, shape: tuple[int, int], bands: list[tuple[int, int]]) -> str:
    """`{name}.vrt` in `dst`: the processes' `{name}.part{I}.tif`, rows `bands[I]`, as one
    raster (the first part's georeference, colour table and metadata); returns its name."""
    import rasterio

    parts = [(i, a, b) for i, (a, b) in enumerate(bands) if b > a]
    with rasterio.open(os.path.join(dst, f"{name}.part0.tif")) as ds:
        dtype, nodata, crs, transform = ds.dtypes[0], ds.nodata, ds.crs, ds.transform
        colormap = ds.colormap(1) if name == "classification" else None
        tags = ds.tags()
    gdal_type = {"uint8": "Byte", "uint16": "UInt16", "float32": "Float32"}[dtype]
    xml = [f'<VRTDataset rasterXSize="{shape[1]}" rasterYSize="{shape[0]}">']
    if crs is not None:
        xml.append(f"  <SRS>{escape(crs.to_wkt())}</SRS>")
    if not transform.is_identity:
        xml.append(f"  <GeoTransform>{', '.join(map(repr, transform.to_gdal()))}</GeoTransform>")
    xml.append("  <Metadata>" + "".join(f'<MDI key="{escape(k)}">{escape(v)}</MDI>'
                                        for k, v in tags.items()) + "</Metadata>")
    xml.append(f'  <VRTRasterBand dataType="{gdal_type}" band="1">')
    xml.append(f"    <NoDataValue>{nodata!r}</NoDataValue>")
    if colormap:
        xml.append("    <ColorInterp>Palette</ColorInterp><ColorTable>" + "".join(
            f'<Entry c1="{r}" c2="{g}" c3="{b}" c4="{a}"/>' for _, (r, g, b, a) in
            sorted(colormap.items())) + "</ColorTable>")
    for i, a, b in parts:
        xml.append(f'    <SimpleSource><SourceFilename relativeToVRT="1">{name}.part{i}.tif'
                   f'</SourceFilename><SourceBand>1</SourceBand>'
                   f'<SrcRect xOff="0" yOff="0" xSize="{shape[1]}" ySize="{b - a}"/>'
                   f'<DstRect xOff="0" yOff="{a}" xSize="{shape[1]}" ySize="{b - a}"/>'
                   "</SimpleSource>")
    xml += ["  </VRTRasterBand>", "</VRTDataset>"]
    text = "\n".join(xml).encode()
    atomic_write(os.path.join(dst, f"{name}.vrt"), lambda f: f.write(text))
    return f"{name}.vrt"


def _checked_out(dst: str) -> int:
    """`hosts.GO` when `_check_out(dst)` passes; else tells the other processes
    `hosts.REFUSED` and raises."""
    try:
        _check_out(dst)
    except PredictError:
        if jax.process_count() > 1:
            hosts.agree(hosts.REFUSED)
        raise
    return hosts.GO


def _check_out(dst: str) -> None:
    """`dst` exists (made if not), is writable, and holds nothing but earlier outputs."""
    try:
        os.makedirs(dst, exist_ok=True)
    except OSError as e:
        raise PredictError(f"--out {dst}: cannot make the folder ({e.strerror})") from e
    if not os.access(dst, os.W_OK):
        raise PredictError(f"--out {dst}: not writable")
    others = sorted(f for f in os.listdir(dst) if not OURS.fullmatch(f))
    if others:
        raise PredictError(f"--out {dst}: holds other files ({', '.join(others[:3])}"
                           f"{', …' if len(others) > 3 else ''}); give an empty or new folder")


def _palette_8bit(num_classes: int) -> np.ndarray:
    """`(num_classes + 1, 3)` uint8: the maps' palette (`evaluation.maps.palette`) in bytes,
    as the colour table and the previews show it."""
    return (palette(num_classes) * 255).round().astype(np.uint8)


def _previews(dst: str, maps: Sequence[str], num_classes: int) -> None:
    """`classification.png` and `confidence.png`, read from the written `maps` (class,
    confidence) at most `PREVIEW` pixels a side, as 8-bit RGB."""
    import rasterio
    from matplotlib import colormaps
    from matplotlib.image import imsave

    for name, file in zip(("classification", "confidence"), maps):
        with rasterio.open(os.path.join(dst, file)) as ds:
            scale = max(1, -(-max(ds.height, ds.width) // PREVIEW))
            image = ds.read(1, out_shape=(-(-ds.height // scale), -(-ds.width // scale)))
        if name == "classification":  # 8-bit colours: a preview's memory is 3 bytes a pixel
            rgb = _palette_8bit(num_classes)[np.clip(image, 0, num_classes)]
        else:
            rgb = colormaps["viridis"](np.clip(image, 0, 1), bytes=True)[..., :3]
            rgb[image == tiling.NODATA_CONFIDENCE] = 0
        atomic_write(os.path.join(dst, f"{name}.png"),
                     lambda f, rgb=rgb: imsave(f, rgb, format="png"))


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m hsic_jax.predict", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workdir", nargs="?", help="a finished run's workdir (run.py --workdir)")
    p.add_argument("--cube", required=True, help="the cube to classify (GeoTIFF, ENVI, .npy, "
                   ".mat, .npz)")
    p.add_argument("--cube-key", default=None, help="the cube's name in a .mat / .npz file")
    p.add_argument("--out", required=True, help="the folder of the outputs")
    p.add_argument("--base", default=None, help="with --adapters instead of WORKDIR: the "
                   "converted backbone the adapters were trained on")
    p.add_argument("--adapters", default=None, help="an adapter export (WORKDIR/adapters)")
    p.add_argument("--seed", type=int, default=None, help="one seed's model (default: every "
                   "seed's, probabilities averaged)")
    p.add_argument("--ignore-band-names", action="store_true", help="check the cube's bands "
                   "by count only, not by the names the run's and the cube's files give them")
    p.add_argument("--tile", type=int, default=TILE, help="core pixels a side of a tile")
    p.add_argument("--halo", type=int, default=HALO, help="whole-scene models: pixels of "
                   "context around each tile")
    p.add_argument("--batch", type=int, default=EVAL_BATCH, help="pixels a model call (the "
                   "run's own gives its map bit for bit; larger is faster on a GPU)")
    p.add_argument("--distributed", action="store_true", help="call jax.distributed.initialize "
                   "(the same command on every host; each classifies its band of rows)")
    p.add_argument("--coordinator", default=None, help="HOST:PORT of process 0")
    p.add_argument("--num_processes", type=int, default=None)
    p.add_argument("--process_id", type=int, default=None)
    args = p.parse_args(argv)
    if (args.workdir is None) == (args.adapters is None) or (args.adapters is None) != (
            args.base is None):
        p.error("give a WORKDIR, or --base CKPT_DIR --adapters DIR")
    if args.seed is not None and args.adapters is not None:
        p.error("--seed picks a seed of a WORKDIR; an adapter export holds one")
    cli.prepare()
    if args.distributed:
        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    try:
        predictor = (Predictor.from_workdir(args.workdir, seed=args.seed) if args.workdir
                     else Predictor.from_adapters(args.base, args.adapters))
        record = predictor.predict_file(args.cube, args.out, cube_key=args.cube_key,
                                        tile=args.tile, halo=args.halo, batch=args.batch,
                                        ignore_band_names=args.ignore_band_names)
    except ValueError as e:
        sys.exit(f"error: {cli.one_line(e, args.out)}")
    except OSError as e:
        sys.exit(f"error: cannot write {e.filename or args.out}: {e.strerror or e}")
    if jax.process_index() == 0:
        print(f"{record['shape'][0]} × {record['shape'][1]} pixels classified in "
              f"{record['seconds']:.1f} s ({record['pixels_per_second']:.0f} pixels/s, "
              f"{record['processes']} × {record['devices']} devices); outputs in {args.out}")


if __name__ == "__main__":
    main()
