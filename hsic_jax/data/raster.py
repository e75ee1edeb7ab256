"""Cubes of any size, read window by window; maps written window by window.

`open_cube(path, key)` gives a `Cube`: the `(H, W, B)` shape, dtype, nodata value, georeference
and band names of a file, and `read(rows, cols)` of any window, without reading the rest:

  GeoTIFF, ENVI and every other raster GDAL reads   rasterio (GDAL), windowed reads
  .npy                                              a memory map
  MATLAB v7.3 .mat                                  the HDF5 dataset, sliced (axes reversed)
  MATLAB v5 .mat, .npz                              read whole (these formats cannot slice)

rasterio is the library remote-sensing users already rely on for GeoTIFF: it reads and writes
windows of tiled, compressed rasters, keeps the CRS, transform and nodata, and writes
Cloud-Optimized GeoTIFF through GDAL's COG driver.

`MapWriter` writes a one-band map to a tiled, DEFLATE-compressed GeoTIFF at a temporary name
(`.partial` before the extension), window by window, and on `finish` rewrites it as a
Cloud-Optimized GeoTIFF with overviews and renames it into place: a reader never sees a
half-written map, and a killed write leaves only the `.partial` file, which the next write
replaces.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping, Sequence

import h5py
import numpy as np

from hsic_jax.data.io import DataError, existing_file, pick_array, read_arrays

RASTERIO_EXTENSIONS = (".tif", ".tiff", ".img", ".hdr", ".dat", ".bsq", ".bil", ".bip", ".vrt")
BLOCK = 256  # the written maps' tile size, pixels


@dataclasses.dataclass
class Cube:
    """A cube on disk, read window by window.

    Attributes:
      path: the file.
      shape: (H, W, B).
      dtype: the stored dtype.
      nodata: the value marking pixels without data (every band equal to it), or None.
      crs, transform: the georeference (rasterio objects), or None for a file without one.
      band_names: the bands' names (e.g. wavelengths) when the file has them, else None.
    """

    path: str
    shape: tuple[int, int, int]
    dtype: np.dtype
    nodata: float | None = None
    crs: object = None
    transform: object = None
    band_names: tuple[str, ...] | None = None
    _reader: object = None
    _close: object = None

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """The `(h, w, B)` window `[rows, cols]` in the stored dtype."""
        try:
            return np.asarray(self._reader(rows, cols))
        except Exception as e:
            raise DataError(f"{self.path}: cannot read rows {rows.start}-{rows.stop}, columns "
                            f"{cols.start}-{cols.stop} of the {self.shape} cube; is the file "
                            f"truncated or corrupt? ({e})") from e

    def close(self) -> None:
        if self._close is not None:
            self._close()

    def __enter__(self) -> Cube:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_cube(path: str | os.PathLike, key: str | None = None) -> Cube:
    """The `Cube` of `path` (`key`: the array's name in a .mat / .npz file of several)."""
    path, ext = existing_file(path)
    if key is not None and ext not in (".mat", ".npz"):
        raise DataError(f"{path}: a {ext} file holds one cube; --cube-key {key!r} is for "
                        ".mat and .npz files")
    if ext == ".npy":
        return _npy(path)
    if ext == ".mat" and h5py.is_hdf5(path):
        return _mat73(path, key)
    if ext in (".mat", ".npz"):
        name, array = pick_array(path, read_arrays(path), key, ndim=3)
        return array_cube(f"{path}[{name}]" if name else path, array)
    return _rasterio(_envi_data(path) if ext == ".hdr" else path)


def band_names(path: str | os.PathLike) -> tuple[str, ...] | None:
    """The band names (GDAL band descriptions, e.g. wavelengths) stored in a raster file; None
    when it stores none, or is an array format (.npy, .mat, .npz), which has no place for them."""
    if os.path.splitext(os.fspath(path))[1].lower() not in RASTERIO_EXTENSIONS:
        return None
    with open_cube(path) as cube:
        return cube.band_names


def _envi_data(header: str) -> str:
    """The data file an ENVI header describes (GDAL opens the data file, not the header)."""
    stem = os.path.splitext(header)[0]
    for candidate in (stem, *(stem + e for e in (".img", ".dat", ".bsq", ".bil", ".bip",
                                                  ".raw"))):
        if os.path.isfile(candidate):
            return candidate
    raise DataError(f"{header}: an ENVI header without its data file beside it (looked for "
                    f"{os.path.basename(stem)} with no extension or .img, .dat, .bsq, .bil, "
                    ".bip, .raw)")


def array_cube(path: str, array: np.ndarray) -> Cube:
    """A `Cube` of an `(H, W, B)` array in memory, named `path`."""
    _check_shape(path, array.shape)
    return Cube(path, tuple(array.shape), array.dtype,
                _reader=lambda rows, cols: array[rows, cols])


def _npy(path: str) -> Cube:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as e:
        raise DataError(f"{path}: not a valid .npy file ({e})") from e
    _check_shape(path, array.shape)
    return Cube(path, tuple(array.shape), array.dtype,
                _reader=lambda rows, cols: array[rows, cols])


def _mat73(path: str, key: str | None) -> Cube:
    f = h5py.File(path, "r")
    datasets = {k: v for k, v in f.items() if isinstance(v, h5py.Dataset) and v.ndim == 3}
    if key is None and len(datasets) != 1:
        f.close()
        raise DataError(f"{path}: {len(datasets)} arrays of rank 3 ({', '.join(datasets)}); "
                        "name the cube with --cube-key")
    name = key if key is not None else next(iter(datasets))
    if name not in datasets:
        f.close()
        raise DataError(f"{path}: no array of rank 3 named {name!r}; arrays: "
                        f"{', '.join(datasets) or 'none'}")
    dataset = datasets[name]  # MATLAB is column-major: h5py sees (B, W, H)
    shape = tuple(reversed(dataset.shape))
    _check_shape(f"{path}[{name}]", shape)
    return Cube(f"{path}[{name}]", shape, dataset.dtype,
                _reader=lambda rows, cols: dataset[:, cols, rows].T, _close=f.close)


def _rasterio(path: str) -> Cube:
    import rasterio  # GDAL's start-up is not paid by runs that never read a raster
    from rasterio.windows import Window

    try:
        with warnings.catch_warnings():  # a raster without a georeference is fine
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            ds = rasterio.open(path)
    except Exception as e:
        raise DataError(f"{path}: not a raster GDAL can read ({e})") from e
    shape = (ds.height, ds.width, ds.count)
    names = tuple(d or "" for d in ds.descriptions)

    def read(rows: slice, cols: slice) -> np.ndarray:
        window = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
        return np.moveaxis(ds.read(window=window), 0, -1)

    crs = ds.crs if ds.crs else None
    transform = ds.transform if (crs is not None or not ds.transform.is_identity) else None
    return Cube(path, shape, np.dtype(ds.dtypes[0]), ds.nodata, crs, transform,
                names if any(names) else None, _reader=read, _close=ds.close)


def _check_shape(path: str, shape: Sequence[int]) -> None:
    if len(shape) != 3 or min(shape) < 1:
        raise DataError(f"{path}: array of shape {tuple(shape)}; expected a cube (H, W, B)")


class MapWriter:
    """A one-band map `(H, W)` written window by window (module docstring).

    Args:
      path: the final `.tif`.
      shape: (H, W).
      dtype: the map's dtype.
      nodata: the value of pixels without a prediction.
      like: the `Cube` whose CRS and transform the map takes (None: none).
      colormap: {value: (r, g, b)} (a classification's colour table), or None.
      tags: metadata (e.g. the class names).
      row_offset: the map's first row is this row of `like` (a band of a larger map).
    """

    def __init__(self, path: str, shape: tuple[int, int], dtype, nodata, like: Cube | None,
                 colormap: Mapping[int, tuple[int, int, int]] | None = None,
                 tags: Mapping[str, str] | None = None, row_offset: int = 0):
        import rasterio
        from rasterio.transform import Affine

        self.path = path
        stem, ext = os.path.splitext(path)
        self.partial = f"{stem}.partial{ext}"
        blocks = dict(tiled=True, blockxsize=BLOCK, blockysize=BLOCK) if min(shape) >= BLOCK \
            else {}
        profile = dict(driver="GTiff", height=shape[0], width=shape[1], count=1,
                       dtype=np.dtype(dtype).name, nodata=nodata, compress="deflate",
                       BIGTIFF="IF_SAFER", **blocks)
        if like is not None and like.crs is not None:
            profile["crs"] = like.crs
        if like is not None and like.transform is not None:
            profile["transform"] = like.transform @ Affine.translation(0, row_offset)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                self._ds = rasterio.open(self.partial, "w", **profile)
        except Exception as e:
            raise DataError(f"{self.partial}: cannot write here ({e})") from e
        if colormap:
            self._ds.write_colormap(1, {int(k): tuple(v) + (255,) for k, v in colormap.items()})
        if tags:
            self._ds.update_tags(**tags)

    def write(self, array: np.ndarray, rows: slice, cols: slice) -> None:
        """Writes the `(h, w)` window `[rows, cols]`."""
        from rasterio.windows import Window

        self._ds.write(array[None], window=Window(cols.start, rows.start, array.shape[1],
                                                  array.shape[0]))

    def finish(self) -> None:
        """Closes the map and puts it in place as a Cloud-Optimized GeoTIFF."""
        import rasterio.shutil

        self._ds.close()
        stem, ext = os.path.splitext(self.path)
        cog = f"{stem}.partial.cog{ext}"
        rasterio.shutil.copy(self.partial, cog, driver="COG", compress="DEFLATE",
                             BLOCKSIZE=BLOCK, BIGTIFF="IF_SAFER")
        os.replace(cog, self.path)
        os.remove(self.partial)

    def abort(self) -> None:
        """Closes and removes the partial file (a killed process leaves it instead, for the
        next write to replace)."""
        self._ds.close()
        os.remove(self.partial)
