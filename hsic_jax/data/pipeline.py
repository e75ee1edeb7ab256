"""A scene prepared for a run: split for each seed, preprocessed, padded for patch extraction.

`load_data(config.data, seeds)` is the data stage of `hsic_jax.train.loop`: the scene
(`scenes.load_scene`), one split per seed (`split.make_split`), PCA and normalisation
fitted on the scene or on each seed's training pixels (`data.fit_on`), the cube padded by
the neighbourhood's radius, and each seed's training, validation and test pixels as
arrays with a leading seed axis. For a whole-scene model (`whole_scene=True`) the input
window is the scene itself: every test pixel is inside it (leakage 1).
"""

import dataclasses
import os
from collections.abc import Mapping, Sequence

import numpy as np

from hsic_jax.data.io import DataError, pick_array, read_arrays
from hsic_jax.data.patches import pad_cube
from hsic_jax.data.preprocess import Preprocessing, prepare
from hsic_jax.data.scenes import Scene, check_cube, load_scene
from hsic_jax.data.split import Split, leakage, make_split, training_pixels

PARTS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class Data:
    """A scene prepared for training, per seed.

    Attributes:
      scene: the loaded scene.
      splits: one split per seed.
      preprocessing: each seed's fitted PCA and normalisation (one shared object when fitted
        on the scene; `hsic_jax.data.preprocess.Preprocessing`).
      padded: `(S, H + 2r, W + 2r, k)` each seed's preprocessed cube, mirror-padded by
        r = neighborhood // 2.
      train, val, test: each seed's pixels, padded to a common length: `coords` `(S, N, 2)`,
        `labels` and `valid` `(S, N)`.
      window: the model's input window: the neighbourhood size, or 'scene' (a whole-scene
        model sees every pixel's spectrum, the test pixels' included, in every step).
      leakage: per seed, `split.leakage` of that window.
    """

    scene: Scene
    splits: list[Split]
    preprocessing: list[Preprocessing]
    padded: np.ndarray
    train: dict
    val: dict
    test: dict
    window: int | str
    leakage: list[dict]

    @property
    def pcas(self) -> list:
        """The PCA of each seed (None without PCA)."""
        return [p.pca for p in self.preprocessing]

    @property
    def has_val(self) -> bool:
        return bool(self.val["valid"].any())

    @property
    def num_classes(self) -> int:
        return len(self.scene.class_names)

    @property
    def bands(self) -> int:
        """Channels of the model's input (PCA components, or the scene's bands)."""
        return self.padded.shape[-1]


def load_data(cfg: Mapping, seeds: Sequence[int], whole_scene: bool = False) -> Data:
    """The scene of `config.data` (`cfg`) prepared for each of `seeds` (module docstring)."""
    scene = load_scene(cfg["name"], cfg["data_dir"] or None, **_file_args(cfg))
    num_classes = len(scene.class_names)
    if cfg.get("num_classes") not in (None, num_classes):
        raise DataError(f"config.data.num_classes={cfg['num_classes']} but scene {scene.name!r} "
                        f"has {num_classes} classes: {list(scene.class_names)}")
    window = cfg["neighborhood"]
    splits = [make_split(scene, seed=seed, **training_pixels(cfg["train_per_class"]),
                         cap=cfg["cap"], spatially_disjoint=cfg["spatially_disjoint"],
                         patch_size=window, val=cfg["val_per_class"]) for seed in seeds]

    def padded(cube):
        return np.asarray(pad_cube(cube, window // 2, cfg["padding"]))

    if cfg["fit_on"] == "scene":
        cube, fitted = prepare(scene.cube, pca_components=cfg["pca"],
                               normalization=cfg["normalize"])
        fits, cubes = [fitted] * len(seeds), np.stack([padded(cube)] * len(seeds))
    else:
        prepared = [prepare(scene.cube, pca_components=cfg["pca"], normalization=cfg["normalize"],
                            fit_pixels=split.train) for split in splits]
        fits, cubes = [fit for _, fit in prepared], np.stack([padded(c) for c, _ in prepared])
    fits = [fit.replace(band_names=scene.band_names) for fit in fits]
    return Data(
        scene=scene, splits=splits, preprocessing=fits, padded=cubes,
        **{part: _stack_pixels([(getattr(s, part), getattr(s, f"{part}_labels")) for s in splits])
           for part in PARTS},
        window="scene" if whole_scene else window,
        leakage=[leakage(s, 2 * max(scene.gt.shape) + 1 if whole_scene else window,
                         scene.gt.shape) for s in splits])


def load_unlabelled(cfg: Mapping, seeds: Sequence[int], extra_cubes: Sequence[str] = ()) -> Data:
    """Every pixel of the scene of `config.data` (`cfg`) and of each of `extra_cubes` (files of
    one `(H, W, B)` array, or `PATH:KEY` for a file with several), for pre-training: labels
    are not used and there is no split.

    Each cube gets its own PCA (`data.pca` components; without PCA every cube must have the
    first one's bands) and normalisation, and is mirror-padded by the neighbourhood's radius
    r; the padded cubes stand side by side, top-aligned, on one canvas `(S, H', W', k)` (the
    same for every seed), so that every pixel's neighbourhood lies within its own cube.
    `train` lists every pixel of every cube in canvas coordinates (labels 0); `val` and
    `test` are empty; `pcas` holds the first cube's PCA.
    """
    scene = load_scene(cfg["name"], cfg["data_dir"] or None, **_file_args(cfg))
    cubes = [(scene.cube, scene.source)] + [(_read_cube(path), path) for path in extra_cubes]
    r = cfg["neighborhood"] // 2
    pieces, first = [], None
    for cube, source in cubes:
        if cfg["pca"] is None and cube.shape[-1] != cubes[0][0].shape[-1]:
            raise DataError(f"{source}: cube has {cube.shape[-1]} bands but {cubes[0][1]} has "
                            f"{cubes[0][0].shape[-1]}; set config.data.pca to reduce every cube "
                            "to the same number of components")
        prepared, fitted = prepare(cube, pca_components=cfg["pca"], normalization=cfg["normalize"])
        first = first if pieces else fitted
        pieces.append(np.asarray(pad_cube(prepared, r, cfg["padding"])))
    canvas = np.zeros((max(p.shape[0] for p in pieces), sum(p.shape[1] for p in pieces),
                       pieces[0].shape[-1]), np.float32)
    coords, left = [], 0
    for (cube, _), piece in zip(cubes, pieces):
        canvas[:piece.shape[0], left:left + piece.shape[1]] = piece
        rows, cols = np.indices(cube.shape[:2]).reshape(2, -1)
        coords.append(np.stack([rows, cols + left], axis=1))
        left += piece.shape[1]
    coords = np.concatenate(coords).astype(np.int32)
    every = _stack_pixels([(coords, np.zeros(len(coords), np.int32))] * len(seeds))
    none = _stack_pixels([(np.zeros((0, 2), np.int32), np.zeros(0, np.int32))] * len(seeds))
    return Data(scene=scene, splits=[], preprocessing=[first] * len(seeds),
                padded=np.stack([canvas] * len(seeds)), train=every, val=none, test=none,
                window=cfg["neighborhood"], leakage=[])


def _read_cube(spec: str) -> np.ndarray:
    """The `(H, W, B)` float32 cube of a file `PATH` or `PATH:KEY` (checked: finite, numeric)."""
    path, key = spec, None
    if not os.path.isfile(spec) and ":" in spec:
        path, key = spec.rsplit(":", 1)
    found = pick_array(path, read_arrays(path), key, ndim=3)
    return check_cube(found[1], f"{path}[{found[0]}]" if found[0] else path)


def write_records(workdir: str, data: Data, seeds: Sequence[int], per_seed_pca: bool) -> None:
    """`split_seed{N}.json`, and the preprocessing (`Preprocessing.save`: `pca.npz` and
    `normalization.npz`) fitted on the scene, or each seed's (`pca_seed{N}.npz`,
    `normalization_seed{N}.npz`)."""
    for seed, split, fitted in zip(seeds, data.splits, data.preprocessing):
        split.save(os.path.join(workdir, f"split_seed{seed}.json"))
        if per_seed_pca:
            fitted.save(workdir, f"_seed{seed}")
    if not per_seed_pca:
        data.preprocessing[0].save(workdir)


def subsample(pixels: dict, max_pixels: int | None, seeds: Sequence[int]) -> dict:
    """At most `max_pixels` of each seed's valid `pixels` (`coords` `(S, N, 2)`, `labels`,
    `valid` `(S, N)`): a fixed random subset (drawn from the seed), padded to a common length.
    None keeps them all."""
    if max_pixels is None or pixels["valid"].sum(axis=1).max() <= max_pixels:
        return pixels
    pairs = []
    for s, seed in enumerate(seeds):
        keep = np.flatnonzero(pixels["valid"][s])
        if len(keep) > max_pixels:
            keep = np.sort(np.random.default_rng(seed).choice(keep, max_pixels, replace=False))
        pairs.append((pixels["coords"][s, keep], pixels["labels"][s, keep]))
    return _stack_pixels(pairs)


def _file_args(cfg: Mapping) -> dict:
    """Keyword arguments of `load_scene` for a user scene (`data.name = 'files'`); class names
    are a list or a comma-separated string (`data.class_names`), or a file of one per line."""
    keys = ("cube_path", "gt_path", "cube_key", "gt_key", "class_names_path")
    args = {k: cfg[k] for k in keys if cfg.get(k)}
    names = cfg.get("class_names")
    if names:
        args["class_names"] = ([n.strip() for n in names.split(",")] if isinstance(names, str)
                               else list(names))
    return args


def _stack_pixels(pairs) -> dict:
    """Per-seed pixel lists padded to a common length: coords `(S, N, 2)`, labels, valid `(S, N)`."""
    n = max(len(c) for c, _ in pairs)
    out = {"coords": np.zeros((len(pairs), n, 2), np.int32),
           "labels": np.zeros((len(pairs), n), np.int32), "valid": np.zeros((len(pairs), n), bool)}
    for s, (coords, labels) in enumerate(pairs):
        out["coords"][s, :len(coords)] = coords
        out["labels"][s, :len(coords)] = labels
        out["valid"][s, :len(coords)] = True
    return out
