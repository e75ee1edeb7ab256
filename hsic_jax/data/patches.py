"""Pixel neighbourhoods on the device: padding, gather by coordinates, resizing, batches over a scene.

Usage: `padded = pad_cube(cube, patch_size // 2)` once per scene, then
`resize_patches(extract_patches(padded, coords, patch_size), 32)` for each batch of (row, col)
coordinates of the original scene.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from hsic_jax.data.io import DataError

# The values of `config.data.resize` (see `resize_patches`).
RESIZE_METHODS = ("bilinear", "bicubic")


# The values of `config.data.padding`: numpy's pad modes.
PADDINGS = ("reflect", "symmetric", "zeros")


def pad_cube(cube, radius: int, mode: str = "reflect") -> jax.Array:
    """Pads a (H, W, B) cube by `radius` pixels on each side: (H + 2r, W + 2r, B).

    'reflect' mirrors without repeating the edge pixel (row -k is row k); 'symmetric' repeats it
    (row -k is row k - 1, the official SpectralFormer's `mirror_hsi`), numpy's modes of the
    same names; 'zeros' pads with zeros (the official HyperSIGMA's, on its whitened PCA).
    """
    if radius < 0:
        raise DataError(f"padding radius must be >= 0, got {radius}")
    if mode not in PADDINGS:
        raise DataError(f"padding {mode!r} is not one of {PADDINGS}")
    return jnp.pad(jnp.asarray(cube), ((radius, radius), (radius, radius), (0, 0)),
                   mode="constant" if mode == "zeros" else mode)


@partial(jax.jit, static_argnames="patch_size")
def extract_patches(padded: jax.Array, coords: jax.Array, patch_size: int) -> jax.Array:
    """Gathers the patch_size x patch_size neighbourhood of each pixel: (N, p, p, B).

    Args:
      padded: (H + 2r, W + 2r, B) from `pad_cube(cube, r)` with r = patch_size // 2.
      coords: (N, 2) int (row, col) in the unpadded scene, within [0, H) x [0, W); the pixel is at
        the patch centre [r, r]. (Out-of-range coordinates are clamped, as `lax.dynamic_slice` does.)
      patch_size: p, odd.
    """
    if patch_size % 2 == 0:
        raise DataError(f"patch_size must be odd so that the pixel is the centre, got {patch_size}")
    bands = padded.shape[-1]

    def one(rc: jax.Array) -> jax.Array:  # padded[row : row + p, col : col + p]
        return jax.lax.dynamic_slice(padded, (rc[0], rc[1], 0), (patch_size, patch_size, bands))

    return jax.vmap(one)(jnp.asarray(coords, jnp.int32))


@partial(jax.jit, static_argnames=("size", "method"))
def resize_patches(patches: jax.Array, size: int, method: str = "bilinear") -> jax.Array:
    """Resizes (N, p, p, B) patches to (N, size, size, B).

    'bilinear' (default) is `jax.image.resize`'s, which samples at half-pixel centres like
    PyTorch's `F.interpolate(mode='bilinear', align_corners=False)`; when upsampling (p < size,
    the paper's case: 9, 15 or 27 to 32) the two agree. When downsampling, it also antialiases.
    'bicubic' is PyTorch's `F.interpolate(mode='bicubic', align_corners=False)` exactly (cubic
    kernel a = -0.75, border taps clamped to the edge pixel, no antialiasing), the interpolation
    of the official SpectralGPT transforms; jax's own 'bicubic' (Keys, a = -0.5, renormalised at
    the borders) differs. Any other `jax.image.resize` method name is passed through.
    """
    n, p, _, b = patches.shape
    if method == "bicubic":
        weights = jnp.asarray(_torch_bicubic_weights(p, size))  # (size, p)
        return jnp.einsum("oh,nhwb,qw->noqb", weights, patches, weights,
                          precision=jax.lax.Precision.HIGHEST)
    return jax.image.resize(patches, (n, size, size, b), method=method)


def _torch_bicubic_weights(n_in: int, n_out: int, a: float = -0.75) -> np.ndarray:
    """(n_out, n_in) float32 matrix of PyTorch's 1-D bicubic interpolation (align_corners=False)."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    first = np.floor(src).astype(np.int64)
    t = src - first

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    taps = np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1)  # (n_out, 4)
    weights = np.zeros((n_out, n_in))
    for k in range(4):  # four taps per output pixel, clamped to the border
        np.add.at(weights, (np.arange(n_out), np.clip(first - 1 + k, 0, n_in - 1)), taps[:, k])
    return weights.astype(np.float32)


def scene_coords(gt: np.ndarray, *, labelled_only: bool = False) -> np.ndarray:
    """(N, 2) int32 (row, col) of every pixel of a (H, W) label map, or of its labelled ones; row-major."""
    mask = gt > 0 if labelled_only else np.ones(gt.shape, bool)
    return np.argwhere(mask).astype(np.int32)


def batch_coords(coords: np.ndarray, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Splits (N, 2) coordinates into fixed-size batches: yields ((batch_size, 2) int32, (batch_size,) bool).

    The bool marks real entries; the last batch is filled up with copies of its first coordinate,
    marked False, so every batch has the same shape (one compilation of the jitted step).
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    coords = np.asarray(coords, np.int32)
    for start in range(0, len(coords), batch_size):
        chunk = coords[start : start + batch_size]
        valid = np.arange(batch_size) < len(chunk)
        yield np.concatenate([chunk, np.repeat(chunk[:1], batch_size - len(chunk), axis=0)]), valid


def patch_batches(
    padded: jax.Array, coords: np.ndarray, *, patch_size: int, batch_size: int, size: int | None = None
) -> Iterator[tuple[jax.Array, np.ndarray, np.ndarray]]:
    """Yields (patches (batch_size, s, s, B), coords (batch_size, 2), valid (batch_size,)) over `coords`.

    s is `size` when given (patches resized) and `patch_size` otherwise. For classification maps:
    `patch_batches(padded, scene_coords(gt), ...)`, then keep the predictions where `valid`.
    """
    coords = np.asarray(coords)
    h, w = padded.shape[0] - 2 * (patch_size // 2), padded.shape[1] - 2 * (patch_size // 2)
    if coords.size and (coords.min() < 0 or coords[:, 0].max() >= h or coords[:, 1].max() >= w):
        raise DataError(f"coordinates fall outside the {h} x {w} scene that `padded` holds for patch_size {patch_size}")
    for batch, valid in batch_coords(coords, batch_size):
        patches = extract_patches(padded, batch, patch_size)
        yield (patches if size is None else resize_patches(patches, size)), batch, valid
