"""The paper's five hyperspectral scenes and user scenes: a registry and `load_scene`.

`load_scene('indian_pines')` reads Indian_pines_corrected.mat / Indian_pines_gt.mat from `data_dir`
when they are there and otherwise the copy bundled with the `tensorly` package (the log says which).
The other four scenes are read from `data_dir` (see `python -m hsic_jax.data.download`).
`load_scene('files', cube_path=..., gt_path=...)` loads a user scene from any format of
`hsic_jax.data.io`; the cube and the label map may be two arrays of one .mat/.npz file. A GeoTIFF
cube's georeferencing is kept as `Scene.georef` (write maps with it through `io.save_geotiff`).

Every scene is checked (finite cube, label map of the cube's height and width with integer values
from the class list, no empty class) and its label codes are remapped to 1..C (0 = unlabelled);
`Scene.label_codes[c - 1]` is the original code of class c.

Checksums: no sha256 of the public .mat files is recorded here (none was available to verify from
where this registry was written); `download` prints the hash of what it fetches so that it can be
recorded.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from hsic_jax.data.io import DataError, GeoRef, pick_array, read_arrays, read_class_names, read_georef
from hsic_jax.data.raster import band_names

log = logging.getLogger(__name__)


class Download(NamedTuple):
    """One file of a scene: its name in the data folder, public URL (None: no direct link) and sha256."""

    filename: str
    url: str | None
    sha256: str | None = None


@dataclasses.dataclass(frozen=True)
class SceneSpec:
    """What is known about a benchmark scene: files, keys, classes, published sizes, paper defaults.

    `*_files` are candidate file names in the data folder and `*_keys` candidate array names, tried in
    order. Scenes with given train/test rasters (Houston 2013) list `train_*` and `test_*` as well.
    Label codes are 1..C in the order of `class_names`.
    """

    name: str
    title: str
    sensor: str
    shape: tuple[int, int, int]  # published (H, W, B)
    class_names: tuple[str, ...]
    class_counts: tuple[int, ...]  # published labelled pixels per class
    paper_train_per_class: tuple[int, ...]  # training pixels per class in the paper's Tables 1-5
    paper_patch_size: int
    paper_normalization: str
    cube_files: tuple[str, ...]
    cube_keys: tuple[str, ...]
    gt_files: tuple[str, ...] = ()
    gt_keys: tuple[str, ...] = ()
    train_files: tuple[str, ...] = ()
    train_keys: tuple[str, ...] = ()
    test_files: tuple[str, ...] = ()
    test_keys: tuple[str, ...] = ()
    downloads: tuple[Download, ...] = ()
    instructions: str = ""

    @property
    def display_name(self) -> str:
        """The scene's name in reports and tables: its title without the details in
        parentheses ('Indian Pines')."""
        return self.title.split(" (")[0]

    @property
    def label_codes(self) -> tuple[int, ...]:
        return tuple(range(1, len(self.class_names) + 1))

    def paper_per_class(self) -> dict[str, int]:
        """The paper's training pixels per class, as `make_split(per_class=...)` takes them."""
        return dict(zip(self.class_names, self.paper_train_per_class))


_GIC = "https://www.ehu.eus/ccwintco/index.php/Hyperspectral_Remote_Sensing_Scenes"
_GIC_UPLOADS = "https://www.ehu.eus/ccwintco/uploads/"


def _gic(cube: str, cube_key: str, cube_upload: str, gt: str, gt_key: str, gt_upload: str,
         note: str = "") -> dict:
    """The file fields of a scene the GIC group (UPV/EHU) publishes: a cube and a ground-truth
    `.mat` file of one array each, downloaded from `_GIC_UPLOADS` + their upload paths."""
    return dict(cube_files=(cube,), cube_keys=(cube_key,), gt_files=(gt,), gt_keys=(gt_key,),
                downloads=(Download(cube, _GIC_UPLOADS + cube_upload),
                           Download(gt, _GIC_UPLOADS + gt_upload)),
                instructions=f"Public (GIC, UPV/EHU): {_GIC}{note}")


SCENES: dict[str, SceneSpec] = {
    s.name: s
    for s in (
        SceneSpec(
            name="indian_pines",
            title="Indian Pines (AVIRIS, 12 June 1992, corrected: 200 bands)",
            sensor="AVIRIS",
            shape=(145, 145, 200),
            class_names=(
                "Alfalfa", "Corn-notill", "Corn-mintill", "Corn", "Grass-pasture", "Grass-trees",
                "Grass-pasture-mowed", "Hay-windrowed", "Oats", "Soybean-notill", "Soybean-mintill",
                "Soybean-clean", "Wheat", "Woods", "Buildings-Grass-Trees-Drives", "Stone-Steel-Towers",
            ),
            class_counts=(46, 1428, 830, 237, 483, 730, 28, 478, 20, 972, 2455, 593, 205, 1265, 386, 93),
            paper_train_per_class=(15, 50, 50, 50, 50, 50, 15, 50, 15, 50, 50, 50, 50, 50, 50, 50),
            paper_patch_size=15,
            paper_normalization="bigearthnet",
            **_gic("Indian_pines_corrected.mat", "indian_pines_corrected", "6/67/Indian_pines_corrected.mat",
                   "Indian_pines_gt.mat", "indian_pines_gt", "c/c4/Indian_pines_gt.mat",
                   note=". Also bundled in the tensorly package (used when absent)."),
        ),
        SceneSpec(
            name="pavia_university",
            title="Pavia University (ROSIS)",
            sensor="ROSIS",
            shape=(610, 340, 103),
            class_names=(
                "Asphalt", "Meadows", "Gravel", "Trees", "Painted metal sheets", "Bare Soil", "Bitumen",
                "Self-Blocking Bricks", "Shadows",
            ),
            class_counts=(6631, 18649, 2099, 3064, 1345, 5029, 1330, 3682, 947),
            paper_train_per_class=(548, 540, 392, 524, 265, 532, 375, 514, 231),
            paper_patch_size=9,
            paper_normalization="bigearthnet",
            **_gic("PaviaU.mat", "paviaU", "e/ee/PaviaU.mat",
                   "PaviaU_gt.mat", "paviaU_gt", "5/50/PaviaU_gt.mat"),
        ),
        SceneSpec(
            name="houston2013",
            title="Houston 2013 (ITRES CASI-1500, IEEE GRSS Data Fusion Contest 2013)",
            sensor="ITRES CASI-1500",
            shape=(349, 1905, 144),
            class_names=(
                "Healthy grass", "Stressed grass", "Synthetic grass", "Trees", "Soil", "Water", "Residential",
                "Commercial", "Road", "Highway", "Railway", "Parking Lot 1", "Parking Lot 2", "Tennis Court",
                "Running Track",
            ),
            class_counts=(1251, 1254, 697, 1244, 1242, 325, 1268, 1244, 1252, 1227, 1235, 1233, 469, 428, 660),
            paper_train_per_class=(198, 190, 192, 188, 186, 182, 196, 191, 193, 191, 181, 192, 184, 181, 187),
            paper_patch_size=9,
            paper_normalization="bigearthnet",
            cube_files=("Houston.mat", "Houston2013.mat", "houston.mat"),
            cube_keys=("input", "Houston", "houston", "data"),
            gt_files=("Houston_gt.mat", "houston_gt.mat", "Houston2013_gt.mat"),
            gt_keys=("Houston_gt", "houston_gt", "gt"),
            train_files=("TRLabel.mat", "Houston_train.mat"),
            train_keys=("TR", "TRLabel", "train"),
            test_files=("TSLabel.mat", "Houston_test.mat"),
            test_keys=("TE", "TSLabel", "test"),
            instructions=(
                "Houston 2013 is not freely redistributable. Register with the IEEE GRSS Data Fusion Contest 2013 "
                "(https://hyperspectral.ee.uh.edu/?page_id=459, Image Analysis and Data Fusion Technical Committee), "
                "download the CASI hyperspectral image and the training and test ground truth, and save them in the "
                "data folder as Houston.mat with the cube (349, 1905, 144) under 'input' (or 'Houston') and the "
                "training and test label maps (349, 1905) under 'TR' and 'TE' (TRLabel.mat / TSLabel.mat also work), "
                "or pass cube_path=, train_gt_path= and test_gt_path= (any supported format, e.g. GeoTIFF)."
            ),
        ),
        SceneSpec(
            name="botswana",
            title="Botswana (Hyperion, EO-1, Okavango Delta)",
            sensor="Hyperion (EO-1)",
            shape=(1476, 256, 145),
            class_names=(
                "Water", "Hippo grass", "Floodplain grasses 1", "Floodplain grasses 2", "Reeds", "Riparian",
                "Firescar", "Island interior", "Acacia woodlands", "Acacia shrublands", "Acacia grasslands",
                "Short mopane", "Mixed mopane", "Exposed soils",
            ),
            class_counts=(270, 101, 251, 215, 269, 269, 259, 203, 314, 248, 305, 181, 268, 95),
            paper_train_per_class=(30,) * 14,
            paper_patch_size=9,
            paper_normalization="bigearthnet",
            **_gic("Botswana.mat", "Botswana", "7/72/Botswana.mat",
                   "Botswana_gt.mat", "Botswana_gt", "5/58/Botswana_gt.mat"),
        ),
        SceneSpec(
            name="whu_hi_longkou",
            title="WHU-Hi-LongKou (Headwall Nano-Hyperspec, UAV)",
            sensor="Headwall Nano-Hyperspec",
            shape=(550, 400, 270),
            class_names=(
                "Corn", "Cotton", "Sesame", "Broad-leaf soybean", "Narrow-leaf soybean", "Rice", "Water",
                "Roads and houses", "Mixed weed",
            ),
            class_counts=(34511, 8374, 3031, 63212, 4151, 11854, 67056, 7124, 5229),
            paper_train_per_class=(1000,) * 9,
            paper_patch_size=27,
            paper_normalization="minmax",
            cube_files=("WHU_Hi_LongKou.mat",),
            cube_keys=("WHU_Hi_LongKou",),
            gt_files=("WHU_Hi_LongKou_gt.mat",),
            gt_keys=("WHU_Hi_LongKou_gt",),
            downloads=(Download("WHU_Hi_LongKou.mat", None), Download("WHU_Hi_LongKou_gt.mat", None)),
            instructions=(
                "Public (RSIDEA, Wuhan University): http://rsidea.whu.edu.cn/resource_WHUHi_sharing.htm - download "
                "WHU_Hi_LongKou.mat and WHU_Hi_LongKou_gt.mat into the data folder (some copies are MATLAB v7.3; "
                "both kinds load). There is no stable direct link; with a mirror use --mirror URL."
            ),
        ),
    )
}


@dataclasses.dataclass(frozen=True, eq=False)
class Scene:
    """A loaded scene.

    Attributes:
      name: registry name, or 'files' for a user scene.
      cube: (H, W, B) float32, finite.
      gt: (H, W) int32; 0 = unlabelled, 1..C = class (after remapping).
      class_names: C names; class c is `class_names[c - 1]`.
      label_codes: C original label values; class c was stored as `label_codes[c - 1]`.
      source: where it was loaded from (file paths with array keys, or the tensorly package).
      train_gt, test_gt: (H, W) int32 given training and test maps (same coding as `gt`; disjoint;
        `gt` is their union), or None.
      georef: the georeferencing of a GeoTIFF cube, for an (H, W) raster; None for other inputs.
      band_names: B names of the cube's bands (a raster file's band descriptions, e.g.
        wavelengths), or None when the file stores none.
    """

    name: str
    cube: np.ndarray
    gt: np.ndarray
    class_names: tuple[str, ...]
    label_codes: tuple[int, ...]
    source: str
    train_gt: np.ndarray | None = None
    test_gt: np.ndarray | None = None
    georef: GeoRef | None = None
    band_names: tuple[str, ...] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self) -> np.ndarray:
        """(C,) int64 labelled pixels per class."""
        return np.bincount(self.gt.ravel(), minlength=self.num_classes + 1)[1:]


def load_scene(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    cube_path: str | os.PathLike | None = None,
    gt_path: str | os.PathLike | None = None,
    train_gt_path: str | os.PathLike | None = None,
    test_gt_path: str | os.PathLike | None = None,
    cube_key: str | None = None,
    gt_key: str | None = None,
    train_key: str | None = None,
    test_key: str | None = None,
    class_names: Sequence[str] | None = None,
    class_names_path: str | os.PathLike | None = None,
    label_codes: Sequence[int] | None = None,
) -> Scene:
    """Loads a registered scene (`SCENES`) or, with name='files', a user scene.

    Args:
      name: a key of `SCENES`, or 'files'.
      data_dir: folder holding the scene's files (see `SCENES[name].cube_files` etc.).
      cube_path, gt_path: explicit files; override the registry's file names. A user scene needs
        `cube_path` and either `gt_path` or both `train_gt_path` and `test_gt_path`; `gt_path` may be
        `cube_path` when one .mat/.npz file holds both arrays.
      train_gt_path, test_gt_path: given training and test label maps (H, W).
      cube_key, gt_key, train_key, test_key: array names inside .mat/.npz files; needed only when a
        file holds several candidate arrays.
      class_names: user scenes only; the names of the classes in increasing label-code order
        (default 'class <code>').
      class_names_path: user scenes only, instead of `class_names`: a text file with one name per
        line in increasing label-code order (see `io.read_class_names`).
      label_codes: user scenes only; the label values of the classes (default: the distinct nonzero
        values of the label map). A value in the map outside this list is an error.
    """
    paths = dict(cube=cube_path, gt=gt_path, train=train_gt_path, test=test_gt_path)
    keys = dict(cube=cube_key, gt=gt_key, train=train_key, test=test_key)
    if gt_path is not None and (train_gt_path is not None or test_gt_path is not None):
        raise DataError(f"{name}: give gt_path or train_gt_path and test_gt_path, not both")
    if class_names is not None and class_names_path is not None:
        raise DataError(f"{name}: give class_names or class_names_path ({os.fspath(class_names_path)}), not both")
    if name == "files":
        if cube_path is None or (gt_path is None and (train_gt_path is None or test_gt_path is None)):
            raise DataError("a user scene (name='files') needs cube_path and gt_path "
                            "(or train_gt_path and test_gt_path)")
        spec = None
    elif name in SCENES:
        if class_names is not None or class_names_path is not None or label_codes is not None:
            raise DataError(f"{name}: class_names, class_names_path and label_codes are fixed by the registry; "
                            "use name='files' to set them")
        spec = SCENES[name]
        class_names, label_codes = spec.class_names, spec.label_codes
    else:
        raise DataError(f"unknown scene {name!r}; expected 'files' or one of {sorted(SCENES)}")
    names_file = None if class_names_path is None else os.fspath(class_names_path)
    if names_file is not None:
        class_names = read_class_names(names_file)
    no_paths = all(p is None for p in paths.values())
    if name == "indian_pines" and no_paths and not _has_any(data_dir, spec.cube_files):
        raw = _from_tensorly(data_dir)
    else:
        raw = _from_files(name, spec, data_dir, paths, keys)
    log.info("%s: loaded from %s", name, raw.source)
    return _finish(name, spec, raw, class_names, label_codes, names_file)


class _Raw(NamedTuple):
    """Arrays as read, before checks and remapping, and where they came from."""

    cube: np.ndarray
    gt: np.ndarray
    train: np.ndarray | None
    test: np.ndarray | None
    cube_source: str
    gt_source: str
    georef: GeoRef | None = None
    band_names: tuple[str, ...] | None = None

    @property
    def source(self) -> str:
        if self.cube_source == self.gt_source:
            return self.cube_source
        return f"cube: {self.cube_source}; gt: {self.gt_source}"


def _has_any(data_dir, files: Sequence[str]) -> bool:
    return data_dir is not None and any(os.path.isfile(os.path.join(data_dir, f)) for f in files)


def _from_tensorly(data_dir) -> _Raw:
    import tensorly
    from tensorly.datasets import load_indian_pines

    where = "no data_dir" if data_dir is None else f"no Indian_pines_corrected.mat in {os.fspath(data_dir)}"
    source = f"tensorly {tensorly.__version__} (tensorly.datasets.load_indian_pines)"
    log.info("indian_pines: %s; using the copy bundled with tensorly", where)
    bunch = load_indian_pines()
    return _Raw(np.asarray(bunch.tensor), np.asarray(bunch.ticks[0]), None, None, source, source)


def _from_files(name, spec, data_dir, paths, keys) -> _Raw:
    """Finds and reads the cube and the label map(s) of a scene."""
    cache: dict[str, dict[str, np.ndarray]] = {}

    def find(role: str, ndim: int, shared: Sequence[str] = ()) -> tuple[np.ndarray, str, str] | None:
        # Returns (array, file, description). Files named for this role may fall back to their only
        # array of rank `ndim`; `shared` files (the cube's file, which may also hold the train/test
        # maps) are searched by known keys only.
        if paths[role] is not None:
            candidates = [(os.fspath(paths[role]), True)]
        else:
            files = getattr(spec, f"{role}_files") if spec else ()
            in_dir = [] if data_dir is None else [os.path.join(data_dir, f) for f in files]
            candidates = [(p, False) for p in shared] + [(p, True) for p in in_dir]
        known = getattr(spec, f"{role}_keys") if spec else ()
        for path, fallback in candidates:
            if not os.path.isfile(path):
                continue
            if path not in cache:
                cache[path] = read_arrays(path)
            found = pick_array(path, cache[path], keys[role], ndim=ndim, known_keys=known, fallback=fallback)
            if found is not None:
                return found[1], path, f"{path}[{found[0]}]" if found[0] else path
        return None

    cube = find("cube", 3)
    if cube is None:
        raise DataError(_missing(name, spec, data_dir, "cube", paths["cube"]))
    train = test = None
    wants_given = paths["train"] is not None or paths["test"] is not None or bool(spec and spec.train_keys)
    if wants_given and paths["gt"] is None:
        train, test = find("train", 2, [cube[1]]), find("test", 2, [cube[1]])
        if (train is None) != (test is None):
            have, lack = ("training", "test") if test is None else ("test", "training")
            raise DataError(f"{name}: found a {have} map ({(train or test)[2]}) but no {lack} map")
    described = dict(georef=read_georef(cube[1]), band_names=band_names(cube[1]))
    if train is not None:
        gt_source = f"train: {train[2]}; test: {test[2]}"
        return _Raw(cube[0], _union(train, test), train[0], test[0], cube[2], gt_source,
                    **described)
    gt = find("gt", 2)
    if gt is None:
        raise DataError(_missing(name, spec, data_dir, "gt", paths["gt"]))
    return _Raw(cube[0], gt[0], None, None, cube[2], gt[2], **described)


def _missing(name, spec, data_dir, role, path) -> str:
    if path is not None:
        return f"{name}: {role} file {os.fspath(path)} not found"
    files = getattr(spec, f"{role}_files")
    where = "no data_dir given" if data_dir is None else f"none of {list(files)} in {os.fspath(data_dir)}"
    fetch = (f" Get it with: python -m hsic_jax.data.download {name} --dir {os.fspath(data_dir or 'data')}."
             if spec.downloads else "")
    return f"{name}: {role} not found ({where}).{fetch} {spec.instructions}"


def _union(train, test) -> np.ndarray:
    (tr, _, tr_src), (te, _, te_src) = train, test
    if tr.shape != te.shape:
        raise DataError(f"training map {tr_src} has shape {tr.shape} but test map {te_src} has shape {te.shape}")
    both = (tr != 0) & (te != 0)
    if both.any():
        row, col = np.argwhere(both)[0]
        raise DataError(
            f"training map {tr_src} and test map {te_src} overlap at {int(both.sum())} pixels, "
            f"the first at (row {row}, col {col}); they must be disjoint"
        )
    return np.where(tr != 0, tr, te)


def _finish(name, spec, raw: _Raw, class_names, label_codes, names_file) -> Scene:
    """Checks the arrays, remaps label codes to 1..C, and builds the Scene."""
    cube = check_cube(raw.cube, raw.cube_source)
    _check_labels(raw.gt, cube.shape, raw.gt_source)
    codes = _class_codes(raw.gt, raw.gt_source, class_names, label_codes, names_file)
    names = tuple(class_names) if class_names is not None else tuple(f"class {c}" for c in codes)
    lut = np.zeros(int(raw.gt.max()) + 1, np.int32)
    lut[list(codes)] = np.arange(1, len(codes) + 1, dtype=np.int32)

    def remap(labels: np.ndarray | None) -> np.ndarray | None:
        return None if labels is None else lut[labels.astype(np.int64)]

    scene = Scene(name, cube, remap(raw.gt), names, codes, raw.source, remap(raw.train), remap(raw.test),
                  raw.georef, raw.band_names)
    if spec is not None:
        _compare_published(spec, scene)
    return scene


def check_cube(cube: np.ndarray, src: str) -> np.ndarray:
    if cube.ndim != 3:
        raise DataError(f"{src}: cube has shape {cube.shape}; expected (H, W, B)")
    if not (np.issubdtype(cube.dtype, np.number) or cube.dtype == bool):
        raise DataError(f"{src}: cube has dtype {cube.dtype}; expected a numeric type")
    cube = np.asarray(cube, np.float32)
    bad = ~np.isfinite(cube)
    if bad.any():
        r, c, b = np.argwhere(bad)[0]
        raise DataError(
            f"{src}: cube has {int(bad.sum())} NaN or inf values, the first {cube[r, c, b]} at "
            f"(row {r}, col {c}, band {b}); clean or mask them before use"
        )
    return cube


def _check_labels(gt: np.ndarray, cube_shape: tuple[int, ...], source: str) -> None:
    h, w, b = cube_shape
    if gt.ndim != 2:
        raise DataError(f"{source}: label map has shape {gt.shape}; expected (H, W) = ({h}, {w})")
    if gt.shape != (h, w):
        hint = " (the cube looks band-first (B, H, W); store it as (H, W, B))" if gt.shape == (w, b) else ""
        raise DataError(f"{source}: label map has shape {gt.shape} but the cube has shape {cube_shape}{hint}")
    if not np.issubdtype(gt.dtype, np.number) or not np.all(np.isfinite(gt)) or np.any(gt != np.round(gt)):
        raise DataError(f"{source}: label map (dtype {gt.dtype}) has values that are not integers")
    if gt.min() < 0:
        raise DataError(f"{source}: label map has negative value {gt.min()}; expected 0 (unlabelled) or a class code")


def _class_codes(gt, source, class_names, label_codes, names_file) -> tuple[int, ...]:
    present = tuple(int(v) for v in np.unique(gt) if v != 0)
    if label_codes is None:
        _check_name_count(class_names, names_file, present, source, codes_given=False)
        if not present:
            raise DataError(f"{source}: the label map has no labelled pixel")
        return present
    codes = tuple(int(c) for c in label_codes)
    _check_name_count(class_names, names_file, codes, source, codes_given=True)
    if len(set(codes)) != len(codes) or min(codes) <= 0:
        raise DataError(f"label codes {list(codes)} must be distinct and positive (0 means unlabelled)")
    extra = sorted(set(present) - set(codes))
    if extra:
        raise DataError(f"{source}: label value(s) {extra} are not in the class list (label codes {list(codes)})")
    names = class_names or [f"class {c}" for c in codes]
    for code, cname in zip(codes, names):
        if code not in present:
            raise DataError(f"{source}: class {cname!r} (label code {code}) is empty: no pixel has that label")
    return codes


def _check_name_count(class_names, names_file, codes, source, *, codes_given: bool) -> None:
    """One name per class code, else an error naming the names file, or the label map, or the codes given."""
    if class_names is None or len(class_names) == len(codes):
        return
    if names_file is not None:
        per = "label code given" if codes_given else f"label value of {source}"
        raise DataError(f"{names_file}: found {len(class_names)} class names; expected {len(codes)}, "
                        f"one per {per} {list(codes)}")
    if codes_given:
        raise DataError(f"{len(class_names)} class names but {len(codes)} label codes were given")
    raise DataError(f"{source}: the label map has {len(codes)} label values {list(codes)} but {len(class_names)} "
                    "class names were given; pass label_codes to say which value each name has")


def _compare_published(spec: SceneSpec, scene: Scene) -> None:
    if scene.cube.shape != spec.shape:
        log.warning("%s: cube shape %s differs from the published %s", spec.name, scene.cube.shape, spec.shape)
    counts = tuple(int(n) for n in scene.class_counts())
    if counts != spec.class_counts:
        diff = {n: (got, want) for n, got, want in zip(spec.class_names, counts, spec.class_counts) if got != want}
        log.warning("%s: labelled pixels per class differ from the published counts (got, published): %s",
                    spec.name, diff)
