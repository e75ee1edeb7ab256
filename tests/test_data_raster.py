"""`hsic_jax.data.raster`: every format's windows are the array's slices; maps are written
window by window into a georeferenced COG."""

import h5py
import numpy as np
import pytest
import scipy.io

rasterio = pytest.importorskip("rasterio")
from rasterio.transform import from_origin  # noqa: E402

from hsic_jax.data.io import DataError  # noqa: E402
from hsic_jax.data.raster import MapWriter, band_names, open_cube  # noqa: E402

CUBE = np.random.default_rng(0).integers(1, 4000, (37, 29, 6)).astype(np.uint16)
WINDOWS = [(slice(0, 37), slice(0, 29)), (slice(5, 17), slice(3, 28)), (slice(36, 37), slice(0, 1))]
TRANSFORM = from_origin(300000.0, 5000000.0, 30.0, 30.0)


def rasterio_file(path, driver, descriptions=True, **extra):
    with rasterio.open(path, "w", driver=driver, height=37, width=29, count=6, dtype="uint16",
                       **extra) as ds:
        ds.write(np.moveaxis(CUBE, -1, 0))
        if descriptions:
            ds.descriptions = tuple(f"{400 + 10 * b} nm" for b in range(6))
    return path


def mat73(path):
    """A MATLAB v7.3 file as MATLAB writes one: HDF5, axes reversed, a text array beside."""
    with h5py.File(path, "w", userblock_size=512) as f:
        f["cube"] = CUBE.T
        f["cube"].attrs["MATLAB_class"] = np.bytes_("uint16")
        f["name"] = np.frombuffer(b"scene", np.uint8).astype(np.uint16)[:, None]
        f["name"].attrs["MATLAB_class"] = np.bytes_("char")
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file".ljust(116) + bytes(8) + b"\x00\x02IM")
    return path


@pytest.mark.parametrize("make", ["tif", "envi", "envi_header", "npy", "mat73", "mat5", "npz"])
def test_every_format_reads_windows_of_the_cube(tmp_path, make):
    path = {
        "tif": lambda: rasterio_file(tmp_path / "c.tif", "GTiff", tiled=True, blockxsize=16,
                                     blockysize=16, crs="EPSG:32633", transform=TRANSFORM,
                                     nodata=0),
        "envi": lambda: rasterio_file(tmp_path / "c.img", "ENVI"),
        "envi_header": lambda: rasterio_file(tmp_path / "c.img", "ENVI").with_suffix(".hdr"),
        "npy": lambda: (np.save(tmp_path / "c.npy", CUBE), tmp_path / "c.npy")[1],
        "mat73": lambda: mat73(tmp_path / "c.mat"),
        "mat5": lambda: (scipy.io.savemat(tmp_path / "c.mat", {"cube": CUBE, "gt": CUBE[..., 0]}),
                         tmp_path / "c.mat")[1],
        "npz": lambda: (np.savez(tmp_path / "c.npz", cube=CUBE), tmp_path / "c.npz")[1],
    }[make]()
    with open_cube(path) as cube:
        assert cube.shape == (37, 29, 6) and cube.dtype == np.uint16
        for rows, cols in WINDOWS:
            np.testing.assert_array_equal(cube.read(rows, cols), CUBE[rows, cols])
        if make == "tif":
            assert cube.crs.to_epsg() == 32633 and cube.transform == TRANSFORM
            assert cube.nodata == 0 and cube.band_names[0] == "400 nm"
        if make in ("npy", "mat5", "npz", "mat73"):
            assert cube.crs is None and cube.transform is None and cube.nodata is None


def test_an_envi_headers_wavelengths_name_the_bands(tmp_path):
    """A header as ENVI writes it (`wavelength = {...}`) names the bands by wavelength, which
    a run keeps and predict compares; array formats name none."""
    np.moveaxis(CUBE, -1, 0).tofile(tmp_path / "scene.bsq")
    (tmp_path / "scene.hdr").write_text(
        "ENVI\nsamples = 29\nlines = 37\nbands = 6\nheader offset = 0\nfile type = ENVI Standard\n"
        "data type = 12\ninterleave = bsq\nbyte order = 0\nwavelength units = Nanometers\n"
        "wavelength = {400.5, 410, 420, 430, 440, 450}\n")
    assert band_names(tmp_path / "scene.hdr") == (
        "400.5 Nanometers", "410 Nanometers", "420 Nanometers", "430 Nanometers",
        "440 Nanometers", "450 Nanometers")
    with open_cube(tmp_path / "scene.hdr") as cube:
        np.testing.assert_array_equal(cube.read(slice(0, 37), slice(0, 29)), CUBE)
    np.save(tmp_path / "c.npy", CUBE)
    assert band_names(tmp_path / "c.npy") is None
    assert band_names(rasterio_file(tmp_path / "plain.tif", "GTiff", descriptions=False)) is None


def test_a_map_is_written_window_by_window_into_a_georeferenced_cog(tmp_path):
    with open_cube(rasterio_file(tmp_path / "c.tif", "GTiff", crs="EPSG:32633",
                                 transform=TRANSFORM)) as cube:
        writer = MapWriter(str(tmp_path / "map.tif"), (37, 29), np.uint8, 0, cube,
                           {1: (255, 0, 0), 2: (0, 0, 255)}, {"CLASS_1": "water"}, row_offset=0)
    labels = (CUBE[..., 0] % 3).astype(np.uint8)
    for rows, cols in [(slice(0, 20), slice(0, 29)), (slice(20, 37), slice(0, 29))]:
        writer.write(labels[rows, cols], rows, cols)
    assert (tmp_path / "map.partial.tif").exists() and not (tmp_path / "map.tif").exists()
    writer.finish()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.tif", "map.tif"]
    with rasterio.open(tmp_path / "map.tif") as ds:
        np.testing.assert_array_equal(ds.read(1), labels)
        assert ds.crs.to_epsg() == 32633 and ds.transform == TRANSFORM and ds.nodata == 0
        assert ds.colormap(1)[2] == (0, 0, 255, 255) and ds.tags()["CLASS_1"] == "water"
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(DataError, match=r"missing.tif: no such file"):
        open_cube(tmp_path / "missing.tif")
    (tmp_path / "junk.tif").write_bytes(b"not a tiff")
    with pytest.raises(DataError, match=r"junk.tif: not a raster GDAL can read"):
        open_cube(tmp_path / "junk.tif")
    np.save(tmp_path / "flat.npy", CUBE[..., 0])
    with pytest.raises(DataError, match=r"flat.npy: array of shape \(37, 29\); expected a cube"):
        open_cube(tmp_path / "flat.npy")
    with pytest.raises(DataError, match=r"c.npy: a .npy file holds one cube; --cube-key 'x'"):
        np.save(tmp_path / "c.npy", CUBE)
        open_cube(tmp_path / "c.npy", "x")
    (tmp_path / "lone.hdr").write_text("ENVI\n")
    with pytest.raises(DataError, match=r"lone.hdr: an ENVI header without its data file"):
        open_cube(tmp_path / "lone.hdr")
