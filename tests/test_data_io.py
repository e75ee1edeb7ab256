"""io helpers: umask-respecting atomic writes, class-name files, MATLAB v7.3 text, GeoTIFF writing."""

import os
import stat

import h5py
import numpy as np
import pytest
import tifffile

from hsic_jax.data import io
from hsic_jax.data.io import DataError, GeoRef, atomic_write, read_arrays, read_class_names, save_geotiff


@pytest.fixture
def umask():
    """Sets the process umask for a test and restores the old one afterwards."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("proc", ["proc", "no_proc"])
@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_atomic_write_gives_the_mode_of_the_umask(tmp_path, umask, monkeypatch, proc, mask, mode):
    if proc == "no_proc":  # the fallback: os.umask set and set back
        monkeypatch.setattr(io, "_PROC_STATUS", str(tmp_path / "missing"))
    elif not os.path.exists(io._PROC_STATUS):
        pytest.skip("no /proc/self/status here")
    umask(mask)
    path = tmp_path / "out" / "results.json"
    atomic_write(path, lambda f: f.write(b"{}"))
    assert stat.S_IMODE(os.stat(path).st_mode) == mode
    assert path.read_bytes() == b"{}" and os.listdir(path.parent) == ["results.json"]
    assert umask(mask) == mask  # left as it was


def test_atomic_write_replaces_and_cleans_up_on_error(tmp_path):
    path = tmp_path / "a.bin"
    atomic_write(path, lambda f: f.write(b"old"))

    def fail(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["a.bin"]


def test_read_class_names_skips_blanks_and_comments(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_bytes("\ufeff# my scene\n  corn \n\nsoy\n   # a comment too\nParking #2\r\nwater".encode())
    assert read_class_names(path) == ("corn", "soy", "Parking #2", "water")
    with pytest.raises(DataError, match=r"nope\.txt: no such file"):
        read_class_names(tmp_path / "nope.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DataError, match=r"bin\.txt: not a readable UTF-8 text file"):
        read_class_names(tmp_path / "bin.txt")


def test_mat73_text_and_empty_variables_are_not_arrays(tmp_path):
    """MATLAB v7.3 stores char as uint16 codes and [] as its shape; as in v5 neither is an array."""
    path = tmp_path / "s.mat"
    gt = np.arange(12, dtype=np.uint8).reshape(3, 4)
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset("gt", data=gt.T).attrs["MATLAB_class"] = np.bytes_("uint8")
        text = f.create_dataset("note", data=np.frombuffer("abc".encode("utf-16-le"), np.uint16)[:, None])
        text.attrs["MATLAB_class"] = np.bytes_("char")
        empty = f.create_dataset("none", data=np.array([0, 0], np.uint64))
        empty.attrs["MATLAB_class"], empty.attrs["MATLAB_empty"] = np.bytes_("double"), np.uint8(1)
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file".ljust(116) + bytes(8) + b"\x00\x02IM")
    arrays = read_arrays(path)
    assert list(arrays) == ["gt"]
    np.testing.assert_array_equal(arrays["gt"], gt)


def test_save_geotiff_without_georef_and_bad_maps(tmp_path):
    labels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    save_geotiff(tmp_path / "plain.tif", labels, None)
    with tifffile.TiffFile(tmp_path / "plain.tif") as tif:
        np.testing.assert_array_equal(tif.asarray(), labels)
        assert not set(io.GEOTIFF_TAGS) & {t.code for t in tif.pages[0].tags}
    georef = GeoRef((3, 5), {33550: (30.0, 30.0, 0.0)}, "cube.tif")
    with pytest.raises(DataError, match=r"m\.tif: map has shape \(3, 4\) but the georeference of cube\.tif is "
                                        r"for an \(H, W\) = \(3, 5\) raster"):
        save_geotiff(tmp_path / "m.tif", labels, georef)
    with pytest.raises(DataError, match=r"m\.tif: map has shape \(12,\); expected \(H, W\) or \(H, W, K\)"):
        save_geotiff(tmp_path / "m.tif", labels.ravel(), None)
    with pytest.raises(DataError, match=r"m\.tif: map has dtype bool"):
        save_geotiff(tmp_path / "m.tif", labels > 3, None)
    assert sorted(os.listdir(tmp_path)) == ["plain.tif"]
