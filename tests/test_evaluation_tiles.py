"""`hsic_jax.evaluation.tiles.plan`: cores partition the scene; a patch model's frame is the
window of the whole padded scene (`pad_cube`, the oracle) around its core; a whole-scene
model's frame lies inside the scene with the halo's context where the scene has it."""

import numpy as np
import pytest

from hsic_jax.data.patches import PADDINGS, pad_cube
from hsic_jax.data.raster import array_cube
from hsic_jax.evaluation.tiles import plan, read_frame

SHAPES = [(37, 29), (8, 50), (64, 64)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tile", [5, 16, 64, None])
def test_cores_cover_every_pixel_once(shape, tile):
    count = np.zeros(shape, int)
    for t in plan(shape, tile, radius=3):
        count[t.rows, t.cols] += 1
    assert np.all(count == 1)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tile,radius", [(5, 3), (16, 7), (None, 2), (3, 6)])
def test_a_patch_frame_is_the_padded_scene_around_its_core(shape, tile, radius, padding):
    scene = np.random.default_rng(0).normal(size=(*shape, 3)).astype(np.float32)
    if padding != "zeros" and radius >= min(shape):
        pytest.skip("numpy cannot reflect a scene narrower than the radius")
    padded = np.asarray(pad_cube(scene, radius, padding))
    cube = array_cube("scene", scene)
    for t in plan(shape, tile, radius=radius, padding=padding):
        frame = read_frame(cube, t)
        frame[t.frame_rows < 0] = 0
        frame[:, t.frame_cols < 0] = 0
        (h, w), (r0, c0) = t.core_shape, (t.rows.start, t.cols.start)
        np.testing.assert_array_equal(frame[:h + 2 * radius, :w + 2 * radius],
                                      padded[r0:r0 + h + 2 * radius, c0:c0 + w + 2 * radius])
        assert t.core_in_frame == (radius, radius) and t.origin == (r0, c0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tile,halo", [(8, 4), (16, 0), (10, 40)])
def test_a_whole_scene_frame_lies_inside_the_scene_with_the_halo_around_its_core(shape, tile,
                                                                                 halo):
    for t in plan(shape, tile, halo=halo):
        for frame, core, n in ((t.frame_rows, t.rows, shape[0]), (t.frame_cols, t.cols, shape[1])):
            assert len(frame) == min(tile + 2 * halo, n)
            assert frame[0] >= 0 and frame[-1] < n and np.all(np.diff(frame) == 1)
            assert frame[0] <= max(core.start - halo, 0)
            assert frame[-1] >= min(core.stop - 1 + halo, n - 1)
        assert t.origin == (t.frame_rows[0], t.frame_cols[0])
        assert t.core_in_frame == (t.rows.start - t.frame_rows[0], t.cols.start - t.frame_cols[0])
