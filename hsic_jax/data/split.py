"""Seeded, disjoint train/validation/test splits of a scene's labelled pixels, with the paper's tables.

Three ways to choose the training pixels of each class c (with N_c labelled pixels):
  per_class   a count per class (an int for all, or {class name: count} naming every class);
  fraction    round(fraction * N_c), at least 1;
  given maps  the scene's `train_gt` / `test_gt` (Houston 2013), when neither of the above is set.
Every labelled pixel that is not for training is for testing, except with `spatially_disjoint`.

Validation (`val`, off by default): a count per class, or a fraction of each class's training
pixels, taken out of the training pixels after the draw above (and after the spatially disjoint
buffer, which is therefore computed around training + validation pixels), so the test set is
the same with or without a validation split. Validation pixels select models; they are never
trained on.

A class whose count leaves it no test pixel (N_c <= count) is an error naming the class, unless
`cap=True`, which gives such a class floor(N_c / 2) training pixels instead.

spatially_disjoint=True (needs `patch_size` p, odd, r = p // 2) removes the well-known leak of random
pixel splits, where a test pixel lies inside the p x p neighbourhood that a training sample shows
the model. (1) The training pixels of each class are drawn as a compact group at the edge of the
class: the class pixel furthest along a random direction, and the count of class pixels nearest to
it (Euclidean distance; random tie-break), so that training neighbourhoods overlap each other rather
than the test set. (2) Every labelled pixel
within Chebyshev distance r of a training pixel (i.e. inside some training patch) is dropped from
the test set and counted as `excluded`. Reflect padding at the border only mirrors pixels that are
themselves within distance r, so no training patch shows a test pixel. With given maps only (2)
applies. Small classes that fill one field can lose all their test pixels this way (on Indian Pines
with p = 15: Alfalfa, Grass-pasture-mowed, Oats, Stone-Steel-Towers); the split logs a warning.

`leakage(split, window, shape)` measures that leak for any split: the fraction of test (and of
validation) pixels that lie inside at least one training pixel's window, i.e. that some training
sample shows the model (about 0.99 for the paper's random 50/15 split of Indian Pines with 15-pixel
windows; 0 for a spatially disjoint split).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import ndimage

from hsic_jax.data.io import DataError, atomic_write
from hsic_jax.data.scenes import Scene

log = logging.getLogger(__name__)

_FORMAT = "hsic-jax split v2"
_FORMATS = ("hsic-jax split v1", _FORMAT)  # v1: no validation pixels


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """Training, validation and test pixels of one scene.

    Attributes:
      scene: the scene's name.
      class_names: C names; label k in 0..C-1 is `class_names[k]`.
      train: (N_train, 2) int32 (row, col), in row-major order.
      train_labels: (N_train,) int32 in 0..C-1.
      test: (N_test, 2) int32 (row, col), in row-major order; disjoint from `train` and `val`.
      test_labels: (N_test,) int32 in 0..C-1.
      excluded: (C,) int64 labelled pixels of each class in no set (spatially disjoint buffer).
      config: how the split was made (seed, per_class, fraction, val, ...), for the record.
      val: (N_val, 2) int32 (row, col), in row-major order; disjoint from `train`; (0, 2) when off.
      val_labels: (N_val,) int32 in 0..C-1.
    """

    scene: str
    class_names: tuple[str, ...]
    train: np.ndarray
    train_labels: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    excluded: np.ndarray
    config: Mapping[str, Any]
    val: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 2), np.int32))
    val_labels: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0,), np.int32))

    def table(self) -> list[dict[str, Any]]:
        """Per-class counts: [{'class': 1..C, 'name', 'train', 'val', 'test', 'excluded'}, ..., totals row]."""
        c = len(self.class_names)
        counts = {part: np.bincount(getattr(self, f"{part}_labels"), minlength=c) for part in _PARTS}
        rows = [{"class": k + 1, "name": n, **{part: int(counts[part][k]) for part in _PARTS},
                 "excluded": int(self.excluded[k])} for k, n in enumerate(self.class_names)]
        total = {part: int(counts[part].sum()) for part in _PARTS}
        return rows + [{"class": None, "name": "Total", **total, "excluded": int(self.excluded.sum())}]

    def to_markdown(self) -> str:
        """The table as Markdown, laid out like the paper's Tables 1-5 (plus validation and excluded
        columns when there are such pixels)."""
        with_val, with_excluded = bool(len(self.val)), bool(self.excluded.sum())
        head = (["Class No.", "Class Name", "Training Pixels"] + ["Validation Pixels"] * with_val
                + ["Testing Pixels"] + ["Excluded"] * with_excluded)
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in self.table():
            number = "" if row["class"] is None else str(row["class"])
            cells = ([number, row["name"], str(row["train"])] + [str(row["val"])] * with_val
                     + [str(row["test"])] + [str(row["excluded"])] * with_excluded)
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def save(self, path: str | os.PathLike) -> None:
        """Writes the split as JSON (atomically)."""
        doc = dict(
            format=_FORMAT,
            scene=self.scene,
            class_names=list(self.class_names),
            config=dict(self.config),
            excluded=self.excluded.tolist(),
            **{f"{part}{suffix}": getattr(self, f"{part}{suffix}").tolist()
               for part in _PARTS for suffix in ("", "_labels")},
        )
        atomic_write(path, lambda f: f.write(json.dumps(doc).encode()))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Split:
        """Reads a split written by `save`, checking its structure."""
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: not a readable split file ({e})") from e
        if not isinstance(doc, dict) or doc.get("format") not in _FORMATS:
            raise DataError(f"{path}: not a split file (expected format {_FORMAT!r})")
        if doc["format"] != _FORMAT:  # v1 had no validation pixels
            doc = {**doc, "val": [], "val_labels": []}
        keys = {"scene", "class_names", "config", "excluded"} | {
            f"{part}{suffix}" for part in _PARTS for suffix in ("", "_labels")}
        missing = keys - set(doc)
        if missing:
            raise DataError(f"{path}: split file lacks key(s) {sorted(missing)}")
        c = len(doc["class_names"])
        arrays = {}
        for part in _PARTS:
            for key, shape in ((part, (-1, 2)), (f"{part}_labels", (-1,))):
                try:
                    arrays[key] = np.asarray(doc[key], np.int32).reshape(shape)
                except (TypeError, ValueError) as e:
                    raise DataError(f"{path}: key {key!r} is not an integer array of shape {shape} ({e})") from e
            labels = arrays[f"{part}_labels"]
            if len(labels) != len(arrays[part]) or (labels.size and (labels.min() < 0 or labels.max() >= c)):
                raise DataError(f"{path}: {part}_labels must be {len(arrays[part])} values in 0..{c - 1}")
        split = cls(
            scene=doc["scene"],
            class_names=tuple(doc["class_names"]),
            excluded=np.asarray(doc["excluded"], np.int64),
            config=doc["config"],
            **arrays,
        )
        for a, b in (("train", "test"), ("train", "val"), ("val", "test")):
            if _overlap(getattr(split, a), getattr(split, b)):
                raise DataError(f"{path}: {a} and {b} pixels overlap")
        return split

    def check(self, scene: Scene) -> None:
        """Raises DataError unless this split belongs to `scene` (classes, bounds and labels agree)."""
        if tuple(self.class_names) != scene.class_names:
            raise DataError(f"split of {self.scene!r} has classes {self.class_names}, scene has {scene.class_names}")
        h, w = scene.gt.shape
        for part in _PARTS:
            coords, labels = getattr(self, part), getattr(self, f"{part}_labels")
            if coords.size and (coords.min() < 0 or coords[:, 0].max() >= h or coords[:, 1].max() >= w):
                raise DataError(f"split {part} coordinates fall outside the scene's {h} x {w} pixels")
            if not np.array_equal(scene.gt[coords[:, 0], coords[:, 1]] - 1, labels):
                raise DataError(f"split {part} labels disagree with the scene's label map")


def make_split(
    scene: Scene,
    *,
    seed: int,
    per_class: int | Mapping[str, int] | None = None,
    fraction: float | None = None,
    spatially_disjoint: bool = False,
    patch_size: int | None = None,
    cap: bool = False,
    val: int | float = 0,
) -> Split:
    """Splits `scene`'s labelled pixels into training, validation and test pixels (module docstring).

    `val` is a count per class (a whole number) or a fraction of each class's training pixels (in
    (0, 1), rounded, at least 1); 0 = no validation pixels. The same arguments give the same split;
    `seed` seeds a `numpy.random.default_rng`.
    """
    if per_class is not None and fraction is not None:
        raise DataError("give per_class or fraction, not both")
    if spatially_disjoint and (patch_size is None or patch_size < 1 or patch_size % 2 == 0):
        raise DataError(f"spatially_disjoint needs an odd patch_size >= 1, got {patch_size}")
    gt = scene.gt
    labelled = gt > 0
    rng = np.random.default_rng(seed)
    if per_class is None and fraction is None:
        if scene.train_gt is None or scene.test_gt is None:
            raise DataError(f"scene {scene.name!r} has no given train/test maps: set per_class or fraction")
        train_mask, test_mask = scene.train_gt > 0, scene.test_gt > 0
    else:
        counts = _training_counts(scene, per_class, fraction, cap)
        train_mask = _draw(gt, counts, rng, compact=spatially_disjoint)
        test_mask = labelled & ~train_mask
    if spatially_disjoint:
        near_train = window_mask(train_mask, patch_size)
        dropped = test_mask & near_train
        test_mask = test_mask & ~near_train
    else:
        dropped = np.zeros_like(test_mask)
    val_mask = _draw(np.where(train_mask, gt, 0), _val_counts(scene, train_mask, val), rng, compact=False)
    train_mask &= ~val_mask
    c = scene.num_classes
    excluded = np.bincount(gt[dropped], minlength=c + 1)[1:]
    mode = "given" if per_class is None and fraction is None else "drawn"
    if isinstance(per_class, Mapping):  # plain JSON types, for `save`
        per_class = {str(k): int(v) for k, v in per_class.items()}
    elif per_class is not None:
        per_class = int(per_class)
    config = dict(seed=int(seed), per_class=per_class, fraction=None if fraction is None else float(fraction),
                  spatially_disjoint=bool(spatially_disjoint), patch_size=patch_size and int(patch_size),
                  cap=bool(cap), mode=mode, val=float(val) if 0 < val < 1 else int(val))
    split = Split(scene.name, scene.class_names, *_coords(train_mask, gt), *_coords(test_mask, gt), excluded, config,
                  *_coords(val_mask, gt))
    empty = [n for n, row in zip(scene.class_names, split.table()) if row["test"] == 0]
    if empty:
        log.warning("%s split: no test pixels left for class(es) %s", scene.name, empty)
    log.info("%s split: %d training, %d validation and %d test pixels (%d excluded)", scene.name,
             len(split.train), len(split.val), len(split.test), int(excluded.sum()))
    return split


def training_pixels(value) -> dict:
    """`make_split` arguments of `config.data.train_per_class`: a count per class (int), a
    fraction of each class (float in (0, 1)), a {class name: count} mapping, or None (the
    scene's given training/test maps)."""
    if value is None:
        return {}
    if hasattr(value, "to_dict"):  # a ConfigDict: a dict in a config file without placeholder
        value = value.to_dict()
    if isinstance(value, Mapping):
        return {"per_class": dict(value)}
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        if 0 < value < 1:
            return {"fraction": float(value)}
        if value >= 1 and float(value).is_integer():
            return {"per_class": int(value)}
    raise DataError(f"config.data.train_per_class={value!r}; expected a count per class "
                     "(e.g. 30), a fraction of each class in (0, 1) (e.g. 0.05), a mapping "
                     "{class name: count}, or None for the scene's given train/test maps")


def window_mask(mask: np.ndarray, window: int) -> np.ndarray:
    """(H, W) bool: the pixels inside the `window` x `window` neighbourhood of some True pixel of `mask`."""
    return ndimage.maximum_filter(mask, size=window, mode="constant", cval=False)


def leakage(split: Split, window: int, shape: tuple[int, int]) -> dict[str, float | None]:
    """Fraction of test and of validation pixels inside at least one training pixel's window.

    Args:
      split: a split of a scene of `shape` (H, W).
      window: the model's input window (the neighbourhood size p, odd): a training sample shows
        the model every pixel within Chebyshev distance p // 2 of its centre.
    Returns:
      {'test': fraction, 'val': fraction or None without validation pixels}.
    """
    train = np.zeros(shape, bool)
    train[split.train[:, 0], split.train[:, 1]] = True
    seen = window_mask(train, window)
    out = {}
    for part in ("test", "val"):
        coords = getattr(split, part)
        out[part] = float(seen[coords[:, 0], coords[:, 1]].mean()) if len(coords) else None
    return out


def _training_counts(scene: Scene, per_class, fraction, cap: bool) -> np.ndarray:
    """(C,) training pixels to draw for each class."""
    available = scene.class_counts()
    names = scene.class_names
    if fraction is not None:
        if not 0 < fraction < 1:
            raise DataError(f"fraction must be in (0, 1), got {fraction}")
        asked = np.maximum(1, np.floor(fraction * available + 0.5)).astype(np.int64).tolist()
    elif isinstance(per_class, Mapping):
        unknown, missing = set(per_class) - set(names), [n for n in names if n not in per_class]
        if unknown or missing:
            raise DataError(
                f"per_class must name every class of {scene.name!r} exactly; unknown: {sorted(unknown)}, "
                f"missing: {missing}; classes: {list(names)}"
            )
        asked = [per_class[n] for n in names]
    else:
        asked = [per_class] * len(names)
    for name, n in zip(names, asked):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise DataError(f"class {name!r}: training count must be a non-negative integer, got {n!r}")
    wanted = np.array(asked, np.int64)
    for name, n, have in zip(names, wanted, available):
        if have == 0:
            raise DataError(f"class {name!r} has no labelled pixel in scene {scene.name!r}")
        if n >= have and not cap:
            raise DataError(
                f"class {name!r} has {have} labelled pixels but {n} were asked for training, which leaves none for "
                f"testing; ask for fewer, or set cap=True (--config.data.cap=True; then such a class trains on half "
                f"its pixels)"
            )
    return np.where(wanted >= available, available // 2, wanted)


def _val_counts(scene: Scene, train_mask: np.ndarray, val: int | float) -> np.ndarray:
    """(C,) validation pixels to take out of each class's training pixels (`val`: see `make_split`)."""
    have = np.bincount(scene.gt[train_mask], minlength=scene.num_classes + 1)[1:]
    number = isinstance(val, (int, float, np.integer, np.floating)) and not isinstance(val, bool)
    if number and 0 < val < 1:
        wanted = np.maximum(1, np.floor(val * have + 0.5)).astype(np.int64)
    elif number and val >= 0 and float(val).is_integer():  # 5 or 5.0 (a config float field)
        wanted = np.full(len(have), int(val), np.int64)
    else:
        raise DataError(f"val must be a count per class (an int >= 0) or a fraction of the training "
                        f"pixels in (0, 1), got {val!r}")
    for name, n, h in zip(scene.class_names, wanted, have):
        if n and n >= h:
            raise DataError(f"class {name!r} has {h} training pixels; taking {n} for validation leaves "
                            f"none to train on: ask for a smaller val")
    return wanted


def _draw(gt: np.ndarray, counts: np.ndarray, rng: np.random.Generator, *, compact: bool) -> np.ndarray:
    """(H, W) bool: `counts[c]` pixels of each class c + 1, uniformly or as a compact group."""
    mask = np.zeros(gt.shape, bool)
    for k, n in enumerate(counts):
        rows, cols = np.nonzero(gt == k + 1)
        if compact:
            angle = rng.uniform(0, 2 * np.pi)
            s = np.argmax(rows * np.cos(angle) + cols * np.sin(angle))
            d2 = (rows - rows[s]) ** 2 + (cols - cols[s]) ** 2
            chosen = np.lexsort((rng.random(len(rows)), d2))[:n]
        else:
            chosen = rng.choice(len(rows), size=n, replace=False)
        mask[rows[chosen], cols[chosen]] = True
    return mask


_PARTS = ("train", "val", "test")


def _coords(mask: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    coords = np.argwhere(mask).astype(np.int32)
    return coords, (gt[mask] - 1).astype(np.int32)


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two (N, 2) coordinate arrays share a pixel."""
    return bool(np.intersect1d(_flat(a), _flat(b)).size)


def _flat(coords: np.ndarray) -> np.ndarray:
    return coords[:, 0].astype(np.int64) << 32 | coords[:, 1].astype(np.int64)
