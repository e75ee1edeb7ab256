"""A scene of any size classified tile by tile, each tile with the halo its pixels' inputs need.

A `Tile` is a core of at most `tile × tile` pixels and its frame: the rows and columns of
the scene that the model's input of every core pixel reads, of one fixed size for every tile
(one compiled program), each frame row and column named by the scene row or column it holds:

  patch models   the frame is the core ± the neighbourhood's radius r; beyond the scene's
                 edges it holds what `hsic_jax.data.patches.pad_cube` puts there (the mirrored
                 rows, or -1: zeros), so that every pixel's input is the one of the whole
                 padded scene, and the stitched map equals the whole scene's bit for bit
  whole-scene    the frame is the core ± `halo` pixels, moved inside the scene at its edges
  models         (the model sees real pixels only, as in training); a pixel's output then
                 depends on the halo: `halo` sets how far the map may differ from the whole
                 scene's

`classify_tiles` runs over a `Cube` (`hsic_jax.data.raster`): it reads each frame on the
host, preprocesses it on the device (the run's fitted `Preprocessing`, pixel by pixel), marks
the pixels without data (the file's nodata value in every band, a NaN, or an all-zero
spectrum: they are never classified, and enter their neighbours' inputs as zeros), classifies
the core's other pixels in fixed-size batches and hands each tile's maps to `write`. Tiles go
round-robin to the given devices, several in flight, so that reading, preprocessing and the
model overlap.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from hsic_jax.data.raster import Cube

NODATA_CLASS = 0  # the class map's value for pixels without a prediction (classes are 1..C)
NODATA_CONFIDENCE = 0.0  # the confidence map's (a prediction's confidence is at least 1/C)


@dataclasses.dataclass(frozen=True)
class Tile:
    """One tile of a scene.

    Attributes:
      rows, cols: the core, in scene coordinates.
      frame_rows: (F,) the scene row of each frame row; -1 for a row of zeros (zero padding, or
        filler past a short core).
      frame_cols: (G,) the same for the columns.
      origin: (2,) what a core pixel's scene (row, col) minus gives its model coordinates
        (patch models: the core's start, their coordinates are the unpadded frame's;
        whole-scene models: the frame's start).
      core_in_frame: (2,) the frame row and column of the core's first pixel.
    """

    rows: slice
    cols: slice
    frame_rows: np.ndarray
    frame_cols: np.ndarray
    origin: tuple[int, int]
    core_in_frame: tuple[int, int]

    @property
    def core_shape(self) -> tuple[int, int]:
        return self.rows.stop - self.rows.start, self.cols.stop - self.cols.start

    @property
    def coords(self) -> np.ndarray:
        """(h * w, 2) int32 model coordinates of the core's pixels, row-major."""
        r, c = np.meshgrid(np.arange(self.rows.start, self.rows.stop),
                           np.arange(self.cols.start, self.cols.stop), indexing="ij")
        return np.stack([r.ravel() - self.origin[0], c.ravel() - self.origin[1]],
                        axis=1).astype(np.int32)


def plan(shape: tuple[int, int], tile: int | None, *, radius: int = 0, padding: str = "reflect",
         halo: int | None = None) -> list[Tile]:
    """The tiles of an `(H, W)` scene, row by row: cores of `tile × tile` pixels (None: the
    whole scene, one tile); patch models' frames padded by `radius` with `padding` (a mode of
    `pad_cube`); with `halo` (whole-scene models) frames of the core ± `halo`, inside the
    scene."""
    h, w = shape
    th, tw = (h, w) if tile is None else (min(tile, h), min(tile, w))
    axes = [_axis(n, t, radius, padding, halo) for n, t in ((h, th), (w, tw))]
    return [Tile(rows, cols, frame_r, frame_c, (o_r, o_c), (k_r, k_c))
            for rows, frame_r, o_r, k_r in axes[0] for cols, frame_c, o_c, k_c in axes[1]]


def _axis(n: int, t: int, radius: int, padding: str, halo: int | None):
    """`[(core, frame, origin, core_in_frame)]` along one axis of length `n`, cores of `t`."""
    out = []
    if halo is None:  # patch model: the padded scene's rows, as `pad_cube` makes them
        source = np.arange(n)
        padded = (np.pad(source, radius, constant_values=-1) if padding == "zeros"
                  else np.pad(source, radius, mode=padding))
        padded = np.concatenate([padded, np.full(t, -1)])  # filler past a short last core
        for start in range(0, n, t):
            out.append((slice(start, min(start + t, n)), padded[start:start + t + 2 * radius],
                        start, radius))
        return out
    size = min(t + 2 * halo, n)
    for start in range(0, n, t):
        first = int(np.clip(start - halo, 0, n - size))
        out.append((slice(start, min(start + t, n)), np.arange(first, first + size), first,
                    start - first))
    return out


def read_frame(cube: Cube, tile: Tile) -> np.ndarray:
    """The raw `(F, G, B)` frame of `tile`, C-contiguous (rows and columns of -1 hold the
    first pixel's spectra; `frame_inputs` zeroes them). An interior tile's frame is the window
    itself, read once and not copied again."""
    rows, cols = tile.frame_rows[tile.frame_rows >= 0], tile.frame_cols[tile.frame_cols >= 0]
    block = cube.read(slice(int(rows.min()), int(rows.max()) + 1),
                      slice(int(cols.min()), int(cols.max()) + 1))
    r = np.where(tile.frame_rows >= 0, tile.frame_rows - rows.min(), 0)
    c = np.where(tile.frame_cols >= 0, tile.frame_cols - cols.min(), 0)
    if _is_range(r, block.shape[0]) and _is_range(c, block.shape[1]):
        return np.ascontiguousarray(block)
    return block[np.ix_(r, c)]


def _is_range(index: np.ndarray, n: int) -> bool:
    """`index` is `0, 1, …, n - 1`."""
    return len(index) == n and bool(np.all(index == np.arange(n)))


def frame_inputs(prepare: Callable, raw: jax.Array, nodata: jax.Array, row_ok: jax.Array,
                 col_ok: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The model's input frame `(F, G, C)` (or `(S, F, G, C)`) of a raw `(F, G, B)` frame,
    and the `(F, G)` mask of its pixels without data: every band equal to `nodata` (NaN:
    none), any band NaN, or every band 0. The input is `prepare(raw)`, zero on the pixels
    without data and on the padding rows and columns (not `row_ok` / `col_ok`). Jitted by the
    caller with its `prepare` bound (`classify_tiles`' `inputs`): one program per frame
    shape, its temporaries freed inside it."""
    values = raw.astype(jnp.float32)
    missing = (jnp.all(values == nodata, axis=-1) | jnp.any(jnp.isnan(values), axis=-1)
               | jnp.all(values == 0, axis=-1))
    keep = row_ok[:, None] & col_ok[None, :] & ~missing
    return jnp.where(keep[..., None], prepare(raw), 0.0), missing


def classify_tiles(cube: Cube, tiles: Iterable[Tile], inputs: Callable, classify: Callable,
                   write: Callable, *, devices: Sequence[jax.Device],
                   batch: int | None) -> None:
    """Classify every tile (module docstring).

    Args:
      cube: the scene, read frame by frame.
      tiles: from `plan` (any iterable: a progress bar over them).
      inputs: `frame_inputs` with the caller's `prepare` bound, jitted:
        `inputs(raw, nodata, row_ok, col_ok) -> (frame, missing)`.
      classify: `classify(device, frame, coords (N, 2)) -> (classes (N,), confidence (N,))`,
        classes 0..C-1, dispatched without waiting.
      write: `write(tile, classes (h, w), confidence (h, w))`, classes 1..C and
        `NODATA_CLASS` / `NODATA_CONFIDENCE` on the pixels without data.
      devices: where the tiles go, round-robin.
      batch: pixels per `classify` call (None: the whole core at once).
    """
    nodata = np.float32(np.nan if cube.nodata is None else cube.nodata)
    pending = collections.deque()
    for i, tile in enumerate(tiles):
        device = devices[i % len(devices)]
        frame, missing = inputs(jax.device_put(read_frame(cube, tile), device), nodata,
                                tile.frame_rows >= 0, tile.frame_cols >= 0)
        (top, left), (h, w) = tile.core_in_frame, tile.core_shape
        todo = np.flatnonzero(~np.asarray(missing)[top:top + h, left:left + w].ravel())
        coords = tile.coords[todo]
        step = batch or h * w  # one shape per core shape, whatever the nodata
        outs = [classify(device, frame, _pad_rows(coords[s:s + step], step))
                for s in range(0, len(coords), step)]
        pending.append((tile, todo, outs))
        if len(pending) > len(devices):
            _finish(*pending.popleft(), write)
    while pending:
        _finish(*pending.popleft(), write)


def _finish(tile: Tile, todo: np.ndarray, outs, write: Callable) -> None:
    """Fetch a tile's predictions and hand its maps to `write`."""
    h, w = tile.core_shape
    classes = np.full(h * w, NODATA_CLASS, np.int32)
    confidence = np.full(h * w, NODATA_CONFIDENCE, np.float32)
    done = 0
    for pred, prob in outs:
        n = min(len(todo) - done, len(pred))
        classes[todo[done:done + n]] = np.asarray(pred)[:n] + 1
        confidence[todo[done:done + n]] = np.asarray(prob)[:n]
        done += n
    write(tile, classes.reshape(h, w), confidence.reshape(h, w))


def _pad_rows(a: np.ndarray, n: int) -> np.ndarray:
    """`a` `(m, 2)` padded with copies of its first row to `(n, 2)`."""
    return np.concatenate([a, np.repeat(a[:1], n - len(a), axis=0)]) if len(a) < n else a
