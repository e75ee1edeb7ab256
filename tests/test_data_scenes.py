"""Scene loading: the real Indian Pines from tensorly, every file format, remapping, class-name files,
GeoTIFF georeferencing, bad input."""

import logging

import h5py
import numpy as np
import pytest
import scipy.io
import tifffile

from hsic_jax.data.io import GEOTIFF_TAGS, DataError, save_geotiff
from hsic_jax.data.scenes import SCENES, load_scene

# Per-class labelled pixels of Indian Pines, from docs/datasets.md (independent of the registry).
IP_COUNTS = [46, 1428, 830, 237, 483, 730, 28, 478, 20, 972, 2455, 593, 205, 1265, 386, 93]


def write_mat73(path, arrays):
    """Writes a MATLAB v7.3 file as MATLAB does: HDF5 with a 512-byte MAT header, arrays column-major."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=np.asarray(value).T)  # column-major: h5py sees reversed axes
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: hsic-jax tests".ljust(116) + bytes(8) + b"\x00\x02IM"
    with open(path, "r+b") as f:
        f.write(header)


def write(path, arrays, fmt):
    """Writes {key: array} in format fmt; single-array formats take the one value."""
    (value,) = arrays.values() if fmt in ("npy", "tif_last", "tif_first") else (None,)
    if fmt == "v5":
        scipy.io.savemat(path, arrays)
    elif fmt == "v7":
        scipy.io.savemat(path, arrays, do_compression=True)
    elif fmt == "v73":
        write_mat73(path, arrays)
    elif fmt == "npz":
        np.savez(path, **arrays)
    elif fmt == "npy":
        np.save(path, value)
    elif fmt == "tif_last":
        tifffile.imwrite(path, value, photometric="minisblack", planarconfig="contig")
    elif fmt == "tif_first":  # GeoTIFF-style band-separate planes (B, H, W)
        planes = np.moveaxis(value, -1, 0) if value.ndim == 3 else value
        tifffile.imwrite(path, planes, photometric="minisblack", planarconfig="separate")
    return path


EXT = {"v5": ".mat", "v7": ".mat", "v73": ".mat", "npz": ".npz", "npy": ".npy", "tif_last": ".tif",
       "tif_first": ".tiff"}


@pytest.fixture
def user_arrays():
    """A (5, 7, 4) cube and a label map with non-contiguous codes {1, 10, 11, 12, 13, 14}."""
    rng = np.random.default_rng(0)
    cube = rng.integers(0, 5000, (5, 7, 4)).astype(np.uint16)
    gt = np.zeros((5, 7), np.uint8)
    gt[0, :6] = [1, 10, 11, 12, 13, 14]
    gt[3, 2:5] = [14, 1, 10]
    return cube, gt


def test_indian_pines_from_tensorly(caplog):
    with caplog.at_level(logging.INFO, logger="hsic_jax.data.scenes"):
        scene = load_scene("indian_pines")
    assert scene.cube.shape == (145, 145, 200) and scene.cube.dtype == np.float32
    assert scene.gt.shape == (145, 145) and scene.gt.dtype == np.int32
    assert int((scene.gt > 0).sum()) == 10249
    assert np.bincount(scene.gt.ravel())[1:].tolist() == IP_COUNTS
    np.testing.assert_array_equal(scene.cube[0, 0, :5], [3172, 4142, 4506, 4279, 4782])
    assert scene.class_names[0] == "Alfalfa" and scene.class_names[-1] == "Stone-Steel-Towers"
    assert scene.label_codes == tuple(range(1, 17))
    assert "tensorly" in scene.source and "tensorly" in caplog.text
    assert scene.train_gt is None and scene.test_gt is None


def test_registry_matches_published_facts():
    for spec in SCENES.values():
        assert len(spec.class_names) == len(spec.class_counts) == len(spec.paper_train_per_class)
    # Paper Tables 1-5 totals of training (and, where the test set is the rest, test) pixels.
    assert sum(SCENES["indian_pines"].paper_train_per_class) == 695
    assert sum(SCENES["pavia_university"].paper_train_per_class) == 3921
    assert sum(SCENES["houston2013"].paper_train_per_class) == 2832
    assert sum(SCENES["houston2013"].class_counts) == 2832 + 12197
    assert sum(SCENES["botswana"].class_counts) == 420 + 2828
    assert sum(SCENES["whu_hi_longkou"].class_counts) == 9000 + 195542
    shapes = dict(indian_pines=(145, 145, 200), pavia_university=(610, 340, 103),
                  houston2013=(349, 1905, 144), botswana=(1476, 256, 145),
                  whu_hi_longkou=(550, 400, 270))
    assert {name: SCENES[name].shape for name in shapes} == shapes


@pytest.mark.parametrize("fmt", list(EXT))
def test_user_scene_every_format_with_remapping(tmp_path, user_arrays, fmt):
    cube, gt = user_arrays
    cube_path = write(str(tmp_path / f"cube{EXT[fmt]}"), {"cube": cube}, fmt)
    gt_path = write(str(tmp_path / f"gt{EXT[fmt]}"), {"labels": gt}, fmt)
    scene = load_scene("files", cube_path=cube_path, gt_path=gt_path)
    np.testing.assert_array_equal(scene.cube, cube.astype(np.float32))
    lut = {0: 0, 1: 1, 10: 2, 11: 3, 12: 4, 13: 5, 14: 6}
    np.testing.assert_array_equal(scene.gt, np.vectorize(lut.get)(gt))
    assert scene.label_codes == (1, 10, 11, 12, 13, 14)
    assert scene.class_names == tuple(f"class {c}" for c in (1, 10, 11, 12, 13, 14))
    assert cube_path in scene.source and gt_path in scene.source


def test_mat73_is_transposed_back(tmp_path, user_arrays):
    cube, gt = user_arrays
    path = str(tmp_path / "scene.mat")
    write_mat73(path, {"cube": cube, "gt": gt})
    with h5py.File(path, "r") as f:  # what h5py alone returns: reversed axes
        assert f["cube"].shape == (4, 7, 5)
    scene = load_scene("files", cube_path=path, gt_path=path, class_names=list("abcdef"))
    np.testing.assert_array_equal(scene.cube, cube)
    assert scene.class_names == tuple("abcdef")


def test_user_scene_with_label_codes_and_names(tmp_path, user_arrays):
    cube, gt = user_arrays
    path = write(str(tmp_path / "s.npz"), {"cube": cube, "gt": gt}, "npz")
    names = ["corn", "soy", "rice", "water", "road", "weed"]
    scene = load_scene("files", cube_path=path, gt_path=path, label_codes=[1, 10, 11, 12, 13, 14], class_names=names)
    assert scene.class_names == tuple(names)
    assert scene.class_counts().tolist() == [2, 2, 1, 1, 1, 2]


@pytest.mark.parametrize("fmt", ["v5", "v73", "npz"])
def test_one_file_with_cube_and_labels_under_keys(tmp_path, user_arrays, fmt):
    """A file holding X (cube) and Y (labels) beside other arrays of the same ranks: the keys pick them."""
    cube, gt = user_arrays
    path = str(tmp_path / f"scene{EXT[fmt]}")
    write(path, {"X": cube, "Y": gt, "X_pca": cube[..., :2] + 1, "mask": gt > 0}, fmt)
    scene = load_scene("files", cube_path=path, gt_path=path, cube_key="X", gt_key="Y")
    np.testing.assert_array_equal(scene.cube, cube)
    assert scene.label_codes == (1, 10, 11, 12, 13, 14) and scene.class_counts().tolist() == [2, 2, 1, 1, 1, 2]
    assert scene.source == f"cube: {path}[X]; gt: {path}[Y]"
    with pytest.raises(DataError, match=r"several arrays of rank 2 \(Y, mask\)"):
        load_scene("files", cube_path=path, gt_path=path, cube_key="X")


@pytest.mark.parametrize("fmt", ["v5", "v73", "npz"])
def test_one_file_with_one_cube_and_one_label_map_needs_no_keys(tmp_path, user_arrays, fmt):
    cube, gt = user_arrays
    path = str(tmp_path / f"scene{EXT[fmt]}")
    write(path, {"X": cube, "Y": gt}, fmt)
    scene = load_scene("files", cube_path=path, gt_path=path)
    np.testing.assert_array_equal(scene.cube, cube)
    np.testing.assert_array_equal(scene.gt > 0, gt > 0)
    assert scene.source == f"cube: {path}[X]; gt: {path}[Y]"


def test_class_names_from_a_file(tmp_path, user_arrays):
    cube, gt = user_arrays
    names = tmp_path / "classes.txt"
    names.write_text("# my field survey, codes 1, 10..14\ncorn\nsoy\n\nrice\nwater\n# roads\nroad\nweed\n")
    scene = user_scene(tmp_path, cube, gt, class_names_path=names)
    assert scene.class_names == ("corn", "soy", "rice", "water", "road", "weed")
    assert scene.class_names[scene.gt[0, 1] - 1] == "soy"  # label code 10, the second code
    scene = user_scene(tmp_path, cube, gt, class_names_path=str(names), label_codes=[14, 13, 12, 11, 10, 1])
    assert scene.class_names[scene.gt[0, 1] - 1] == "road"  # label code 10, the fifth code given


def houston_maps(h=4, w=10):
    """Disjoint train/test maps over 15 classes."""
    train, test = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
    train[0, :10], train[1, :5] = np.arange(1, 11), np.arange(11, 16)
    test[2, :10], test[3, :5] = np.arange(1, 11), np.arange(11, 16)
    return train, test


@pytest.mark.parametrize("layout", ["one_file", "one_file_v73", "separate_files"])
def test_houston_given_maps(tmp_path, layout):
    cube = np.random.default_rng(1).random((4, 10, 6)).astype(np.float32)
    train, test = houston_maps()
    if layout == "one_file":
        scipy.io.savemat(tmp_path / "Houston.mat", {"input": cube, "TR": train, "TE": test})
    elif layout == "one_file_v73":
        write_mat73(tmp_path / "Houston.mat", {"input": cube, "TR": train, "TE": test})
    else:
        scipy.io.savemat(tmp_path / "Houston.mat", {"Houston": cube})
        scipy.io.savemat(tmp_path / "TRLabel.mat", {"TRLabel": train})
        scipy.io.savemat(tmp_path / "TSLabel.mat", {"TSLabel": test})
    scene = load_scene("houston2013", tmp_path)
    np.testing.assert_array_equal(scene.train_gt, train)
    np.testing.assert_array_equal(scene.test_gt, test)
    np.testing.assert_array_equal(scene.gt, train + test)
    assert scene.num_classes == 15 and scene.class_names[5] == "Water"


def test_indian_pines_with_a_path_never_falls_back_to_tensorly(tmp_path):
    with pytest.raises(DataError, match="indian_pines: cube not found"):
        load_scene("indian_pines", tmp_path, gt_path=tmp_path / "my_gt.mat")


def test_indian_pines_prefers_files_in_data_dir(tmp_path, caplog):
    cube = np.arange(4 * 5 * 3, dtype=np.int16).reshape(4, 5, 3)
    gt = np.zeros((4, 5), np.uint8)
    gt.ravel()[:16] = np.arange(1, 17)
    scipy.io.savemat(tmp_path / "Indian_pines_corrected.mat", {"indian_pines_corrected": cube})
    scipy.io.savemat(tmp_path / "Indian_pines_gt.mat", {"indian_pines_gt": gt})
    with caplog.at_level(logging.INFO, logger="hsic_jax.data.scenes"):
        scene = load_scene("indian_pines", tmp_path)
    assert "Indian_pines_corrected.mat" in scene.source and "tensorly" not in scene.source
    np.testing.assert_array_equal(scene.cube, cube)
    assert "differs from the published" in caplog.text  # small test cube: shape and counts warned about


def test_registered_scene_missing_files_explains(tmp_path):
    with pytest.raises(DataError, match=r"PaviaU\.mat.*GIC"):
        load_scene("pavia_university", tmp_path)
    with pytest.raises(DataError, match="Register with the IEEE GRSS"):
        load_scene("houston2013", tmp_path)
    with pytest.raises(DataError, match="unknown scene 'no_such_scene'"):
        load_scene("no_such_scene", tmp_path)
    with pytest.raises(DataError, match="needs cube_path and gt_path"):
        load_scene("files", cube_path="c.npy")
    with pytest.raises(DataError, match="give gt_path or train_gt_path and test_gt_path, not both"):
        load_scene("files", cube_path="c.npy", gt_path="g.npy", train_gt_path="t.npy", test_gt_path="u.npy")


# ----------------------------------------------------------------------------- bad input


def user_scene(tmp_path, cube, gt, **kwargs):
    np.save(tmp_path / "cube.npy", cube)
    np.save(tmp_path / "gt.npy", gt)
    return load_scene("files", cube_path=str(tmp_path / "cube.npy"), gt_path=str(tmp_path / "gt.npy"), **kwargs)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_cube_names_file_and_position(tmp_path, user_arrays, bad):
    cube, gt = user_arrays
    cube = cube.astype(np.float64)
    cube[2, 3, 1] = bad
    with pytest.raises(DataError, match=r"cube\.npy: cube has 1 NaN or inf values.*row 2, col 3, band 1"):
        user_scene(tmp_path, cube, gt)


def test_gt_shape_mismatch(tmp_path, user_arrays):
    cube, gt = user_arrays
    with pytest.raises(DataError, match=r"gt\.npy: label map has shape \(5, 6\) but the cube has shape \(5, 7, 4\)"):
        user_scene(tmp_path, cube, gt[:, :6])
    with pytest.raises(DataError, match="band-first"):
        user_scene(tmp_path, np.moveaxis(cube, -1, 0), gt)


def test_labels_beyond_class_list(tmp_path, user_arrays):
    cube, gt = user_arrays
    with pytest.raises(DataError, match=r"label value\(s\) \[13, 14\] are not in the class list"):
        user_scene(tmp_path, cube, gt, label_codes=[1, 10, 11, 12])
    with pytest.raises(DataError, match=r"6 label values \[1, 10, 11, 12, 13, 14\] but 5 class names"):
        user_scene(tmp_path, cube, gt, class_names=list("abcde"))
    scipy.io.savemat(tmp_path / "Indian_pines_corrected.mat", {"indian_pines_corrected": cube})
    scipy.io.savemat(tmp_path / "Indian_pines_gt.mat", {"indian_pines_gt": gt + 3 * (gt > 0)})
    with pytest.raises(DataError, match=r"Indian_pines_gt\.mat.*label value\(s\) \[17\]"):
        load_scene("indian_pines", tmp_path)


def test_empty_class(tmp_path, user_arrays):
    cube, gt = user_arrays
    with pytest.raises(DataError, match=r"class 'x' \(label code 2\) is empty"):
        user_scene(tmp_path, cube, gt, label_codes=[1, 2, 10, 11, 12, 13, 14], class_names=list("axbcdef"))
    scipy.io.savemat(tmp_path / "Indian_pines_corrected.mat", {"indian_pines_corrected": cube})
    scipy.io.savemat(tmp_path / "Indian_pines_gt.mat", {"indian_pines_gt": np.where(gt > 9, 9, gt)})
    with pytest.raises(DataError, match=r"class 'Corn-notill' \(label code 2\) is empty"):
        load_scene("indian_pines", tmp_path)


def test_non_integer_and_negative_labels(tmp_path, user_arrays):
    cube, gt = user_arrays
    with pytest.raises(DataError, match="not integers"):
        user_scene(tmp_path, cube, gt + 0.5)
    with pytest.raises(DataError, match="negative value -1"):
        user_scene(tmp_path, cube, gt.astype(np.int16) - 1)


@pytest.mark.parametrize("ext, kind", [(".mat", "MATLAB"), (".npy", ".npy"), (".npz", ".npz"), (".tif", "TIFF")])
def test_file_not_what_its_extension_says(tmp_path, user_arrays, ext, kind):
    cube, gt = user_arrays
    fake = tmp_path / f"cube{ext}"
    fake.write_text("<html>404 Not Found</html>" * 10)
    np.save(tmp_path / "gt.npy", gt)
    with pytest.raises(DataError, match=rf"cube{ext}: not a (valid |MATLAB )?{kind}"):
        load_scene("files", cube_path=str(fake), gt_path=str(tmp_path / "gt.npy"))


def test_unsupported_extension(tmp_path, user_arrays):
    cube, gt = user_arrays
    (tmp_path / "cube.hdr").write_text("ENVI")
    with pytest.raises(DataError, match=r"cube\.hdr: unsupported extension '\.hdr'"):
        load_scene("files", cube_path=str(tmp_path / "cube.hdr"), gt_path=str(tmp_path / "cube.hdr"))


def test_key_detection_and_errors(tmp_path, user_arrays):
    cube, gt = user_arrays
    path = str(tmp_path / "two.mat")
    scipy.io.savemat(path, {"a": cube, "b": cube + 1, "gt": gt})
    with pytest.raises(DataError, match=r"two\.mat: several arrays of rank 3 \(a, b\).*cube_key="):
        load_scene("files", cube_path=path, gt_path=path)
    scene = load_scene("files", cube_path=path, gt_path=path, cube_key="b")
    np.testing.assert_array_equal(scene.cube, cube + 1)
    with pytest.raises(DataError, match=r"no array named 'c'; arrays in the file: a \(5, 7, 4\)"):
        load_scene("files", cube_path=path, gt_path=path, cube_key="c")
    with pytest.raises(DataError, match=r"array 'gt' has shape \(5, 7\) \(rank 2\); expected rank 3"):
        load_scene("files", cube_path=path, gt_path=path, cube_key="gt")


def test_overlapping_given_maps(tmp_path):
    cube = np.ones((4, 10, 3), np.float32)
    train, test = houston_maps()
    test[0, 0] = 1
    scipy.io.savemat(tmp_path / "Houston.mat", {"input": cube, "TR": train, "TE": test})
    with pytest.raises(DataError, match=r"overlap at 1 pixels, the first at \(row 0, col 0\)"):
        load_scene("houston2013", tmp_path)


def test_class_names_file_errors(tmp_path, user_arrays):
    cube, gt = user_arrays
    names = tmp_path / "classes.txt"
    names.write_text("corn\nsoy\n# rice\nwater\n")
    with pytest.raises(DataError, match=r"^\S*classes\.txt: found 3 class names; expected 6, one per label value of "
                                        r"\S*gt\.npy \[1, 10, 11, 12, 13, 14\]$"):
        user_scene(tmp_path, cube, gt, class_names_path=names)
    with pytest.raises(DataError, match=r"classes\.txt: found 3 class names; expected 2, one per label code given"):
        user_scene(tmp_path, cube, gt, class_names_path=names, label_codes=[1, 10])
    with pytest.raises(DataError, match=r"missing\.txt: no such file"):
        user_scene(tmp_path, cube, gt, class_names_path=tmp_path / "missing.txt")
    with pytest.raises(DataError, match=r"give class_names or class_names_path \(\S*classes\.txt\), not both"):
        user_scene(tmp_path, cube, gt, class_names=list("abcdef"), class_names_path=names)
    with pytest.raises(DataError, match="class_names, class_names_path and label_codes are fixed by the registry"):
        load_scene("indian_pines", class_names_path=names)


# ----------------------------------------------------------------------------- GeoTIFF


GEO_TAGS = {  # a UTM zone 18N grid of 30 m pixels, as GDAL writes it
    33550: (30.0, 30.0, 0.0),
    33922: (0.0, 0.0, 0.0, 500000.0, 4100000.0, 0.0),
    34735: (1, 1, 0, 4, 1024, 0, 1, 1, 1025, 0, 1, 1, 1026, 34737, 17, 0, 3072, 0, 1, 32618),
    34736: (6378137.0, 298.257223563),
    34737: "WGS 84 / UTM 18N|",
}


def write_geotiff(path, array, tags):
    """A band-first (B, H, W) GeoTIFF as GDAL writes multiband rasters with INTERLEAVE=BAND."""
    extratags = [(code, GEOTIFF_TAGS[code], 0 if isinstance(v, str) else len(v), v, True) for code, v in tags.items()]
    tifffile.imwrite(path, np.moveaxis(array, -1, 0), photometric="minisblack", planarconfig="separate",
                     extratags=extratags)
    return str(path)


def read_tiff(path):
    """(pixels, {code: value} of the GeoTIFF tags) of a TIFF, as tifffile reads them."""
    with tifffile.TiffFile(path) as tif:
        tags = {t.code: t.value for t in tif.pages[0].tags if t.code in GEOTIFF_TAGS}
        return tif.asarray(), tags


def test_geotiff_cube_keeps_its_georeference_for_the_maps(tmp_path, user_arrays):
    cube, gt = user_arrays
    cube_path = write_geotiff(tmp_path / "cube.tif", cube, GEO_TAGS)
    np.save(tmp_path / "gt.npy", gt)
    scene = load_scene("files", cube_path=cube_path, gt_path=str(tmp_path / "gt.npy"))
    np.testing.assert_array_equal(scene.cube, cube)
    assert scene.georef.shape == (5, 7) and scene.georef.source == cube_path
    assert dict(scene.georef.tags) == GEO_TAGS

    pred = (scene.gt + 1).astype(np.uint8)
    save_geotiff(tmp_path / "classification_map.tif", pred, scene.georef)
    pixels, tags = read_tiff(tmp_path / "classification_map.tif")
    np.testing.assert_array_equal(pixels, pred)
    assert pixels.dtype == np.uint8 and tags == GEO_TAGS

    probabilities = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    save_geotiff(tmp_path / "probabilities.tif", probabilities, scene.georef)
    pixels, tags = read_tiff(tmp_path / "probabilities.tif")
    np.testing.assert_array_equal(pixels, probabilities)
    assert tags == GEO_TAGS
    assert load_scene("files", cube_path=str(tmp_path / "probabilities.tif"), gt_path=str(tmp_path / "gt.npy"),
                      ).georef.tags == GEO_TAGS  # a written map is itself a georeferenced raster


def test_geotiff_with_a_transformation_matrix(tmp_path, user_arrays):
    cube, gt = user_arrays
    rotated = {34264: tuple(np.eye(4).ravel() * 2), 34735: (1, 1, 0, 1, 3072, 0, 1, 32618)}
    cube_path = write_geotiff(tmp_path / "cube.tiff", cube, rotated)
    np.save(tmp_path / "gt.npy", gt)
    scene = load_scene("files", cube_path=cube_path, gt_path=str(tmp_path / "gt.npy"))
    save_geotiff(tmp_path / "map.tif", scene.gt, scene.georef)
    assert read_tiff(tmp_path / "map.tif")[1] == rotated


def test_no_georeference_without_geo_tags_or_tiff(tmp_path, user_arrays):
    cube, gt = user_arrays
    for fmt in ("tif_last", "npy", "v5"):
        cube_path = write(str(tmp_path / f"cube{EXT[fmt]}"), {"cube": cube}, fmt)
        gt_path = write(str(tmp_path / "gt.npy"), {"gt": gt}, "npy")
        assert load_scene("files", cube_path=cube_path, gt_path=gt_path).georef is None
    assert load_scene("indian_pines").georef is None
