"""Patches: border handling against an explicit index formula, resizing against PyTorch, batches."""

import jax
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hsic_jax.data.io import DataError
from hsic_jax.data.patches import (
    RESIZE_METHODS, batch_coords, extract_patches, pad_cube, patch_batches, resize_patches, scene_coords)


def reflect(i, n):
    """Index of padded position i (may be outside 0..n-1 by at most n-1) under reflection without edge repeat."""
    return -i if i < 0 else 2 * (n - 1) - i if i >= n else i


def oracle_patch(cube, row, col, p):
    h, w, _ = cube.shape
    r = p // 2
    rows = [reflect(row + d, h) for d in range(-r, r + 1)]
    cols = [reflect(col + d, w) for d in range(-r, r + 1)]
    return cube[np.ix_(rows, cols)]


@settings(max_examples=40, deadline=None)
@given(
    hw=st.tuples(st.integers(2, 9), st.integers(2, 9)),
    radius=st.integers(0, 4),
    data=st.data(),
)
def test_extract_patches_at_borders(hw, radius, data):
    h, w = hw
    radius = min(radius, h - 1, w - 1)  # one reflection suffices (the paper's scenes are far larger)
    p = 2 * radius + 1
    cube = np.arange(h * w * 2, dtype=np.float32).reshape(h, w, 2)
    coords = np.array(data.draw(st.lists(st.tuples(st.integers(0, h - 1), st.integers(0, w - 1)), min_size=1,
                                         max_size=6)), np.int32)
    patches = np.asarray(extract_patches(pad_cube(cube, radius), coords, p))
    assert patches.shape == (len(coords), p, p, 2)
    for patch, (row, col) in zip(patches, coords):
        np.testing.assert_array_equal(patch, oracle_patch(cube, row, col, p))
        np.testing.assert_array_equal(patch[radius, radius], cube[row, col])


def test_extract_patches_is_jitted_gather():
    cube = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32)
    jaxpr = jax.make_jaxpr(extract_patches, static_argnums=2)(pad_cube(cube, 2), np.zeros((64, 2), np.int32), 5)
    assert "dynamic_slice" in str(jaxpr) or "gather" in str(jaxpr)
    assert str(jaxpr).count("dynamic_slice") <= 1  # one vmapped slice, no Python loop over pixels
    with pytest.raises(DataError, match="patch_size must be odd"):
        extract_patches(pad_cube(cube, 2), np.zeros((1, 2), np.int32), 4)


@pytest.mark.parametrize("mode", RESIZE_METHODS)
@pytest.mark.parametrize("p, size", [(9, 32), (15, 32), (27, 32), (5, 8)])
def test_resize_matches_torch(p, size, mode):
    """`config.data.resize` ('bicubic': the official transforms' PyTorch kernel) against PyTorch."""
    patches = np.random.default_rng(p).random((3, p, p, 4)).astype(np.float32)
    ours = np.asarray(resize_patches(patches, size, mode))
    ref = torch.nn.functional.interpolate(torch.from_numpy(patches).permute(0, 3, 1, 2), size=(size, size),
                                          mode=mode, align_corners=False).permute(0, 2, 3, 1).numpy()
    assert ours.shape == (3, size, size, 4)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    if mode == "bicubic":  # jax's own bicubic kernels differ at the borders
        keys = jax.image.resize(patches, ours.shape, "bicubic-pytorch")
        assert np.abs(np.asarray(keys) - ref).max() > 1e-3


def test_batches_cover_every_pixel_once():
    gt = np.zeros((7, 9), np.int32)
    gt[2:5, 3:8] = 1
    coords = scene_coords(gt)
    assert len(coords) == 63 and len(scene_coords(gt, labelled_only=True)) == 15
    seen = []
    for batch, valid in batch_coords(coords, 10):
        assert batch.shape == (10, 2) and valid.shape == (10,)
        seen += batch[valid].tolist()
    assert seen == coords.tolist()
    assert list(batch_coords(np.zeros((0, 2), np.int32), 4)) == []
    with pytest.raises(DataError, match="batch_size must be >= 1"):
        list(batch_coords(coords, 0))


def test_patch_batches_over_a_scene():
    cube = np.random.default_rng(1).random((6, 5, 3)).astype(np.float32)
    padded = pad_cube(cube, 1)
    coords = scene_coords(np.zeros((6, 5)))
    centres = []
    for patches, batch, valid in patch_batches(padded, coords, patch_size=3, batch_size=8, size=6):
        assert patches.shape == (8, 6, 6, 3)
        raw = np.asarray(extract_patches(padded, batch, 3))
        centres += [np.array_equal(raw[i, 1, 1], cube[r, c]) for i, (r, c) in enumerate(batch[valid])]
    assert len(centres) == 30 and all(centres)
    with pytest.raises(DataError, match="outside the 6 x 5 scene"):
        next(patch_batches(padded, np.array([[6, 0]]), patch_size=3, batch_size=8))


def test_padding_modes_are_numpys_and_zeros_is_constant_zero():
    cube = np.arange(3 * 4 * 2, dtype=np.float32).reshape(3, 4, 2) + 1
    for mode, np_mode in (("reflect", "reflect"), ("symmetric", "symmetric"), ("zeros", "constant")):
        np.testing.assert_array_equal(pad_cube(cube, 2, mode),
                                      np.pad(cube, ((2, 2), (2, 2), (0, 0)), mode=np_mode))
    padded = np.asarray(pad_cube(cube, 2, "zeros"))
    assert padded[:2].sum() == 0 and padded[:, -2:].sum() == 0
    np.testing.assert_array_equal(padded[2:-2, 2:-2], cube)
    with pytest.raises(DataError, match="padding 'edge' is not one of"):
        pad_cube(cube, 2, "edge")
