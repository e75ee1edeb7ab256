"""Reading arrays from the file formats hyperspectral scenes come in, and atomic writes.

Supported formats, chosen by file extension:
  .mat          MATLAB v4/v5/v7 through `scipy.io.loadmat`; MATLAB v7.3 (HDF5) through `h5py`.
                MATLAB stores arrays column-major, so h5py returns every v7.3 array with its axes
                reversed (a (H, W, B) cube reads as (B, W, H)); `read_arrays` reverses them back.
  .npy / .npz   numpy, without pickles.
  .tif / .tiff  (Geo)TIFF through `tifffile`; a band-first (B, H, W) series ('SYX', 'QYX', ...)
                is moved to band-last (H, W, B). `read_georef` keeps a GeoTIFF's georeferencing and
                `save_geotiff` writes a map with it.

Containers with several arrays (.mat, .npz) are searched for the array by key: an explicit key, else
the first present of a list of known keys, else the only array of the requested rank. When several
arrays qualify, the error lists them and asks for the key. MATLAB text (char) and empty variables
are not arrays: scipy leaves them out of v5 files, `read_arrays` leaves them out of v7.3 files.

Every write goes through `atomic_write`: the file appears whole or not at all, with the mode that the
umask gives a new file (0644 under umask 022), so that colleagues can read results on a shared disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from io import BytesIO
from typing import IO

import h5py
import numpy as np
import scipy.io
import tifffile
from scipy.io.matlab import matfile_version

log = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS = (".mat", ".npy", ".npz", ".tif", ".tiff")

# GeoTIFF georeferencing tags: code -> tifffile data type ('d' double, 'H' short, 's' ASCII).
GEOTIFF_TAGS = {
    33550: "d",  # ModelPixelScaleTag
    33922: "d",  # ModelTiepointTag
    34264: "d",  # ModelTransformationTag
    34735: "H",  # GeoKeyDirectoryTag
    34736: "d",  # GeoDoubleParamsTag
    34737: "s",  # GeoAsciiParamsTag
}
_PROC_STATUS = "/proc/self/status"


class DataError(ValueError):
    """Bad input data: the message names the file, key, shape or value at fault."""


def existing_file(path: str | os.PathLike) -> tuple[str, str]:
    """`(path, its lower-case extension)` of a file that exists; a DataError naming it if not."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    return path, os.path.splitext(path)[1].lower()


def read_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads every numeric array of a file: {name: array}; one array named "" for .npy and TIFF.

    MATLAB v7.3 axes and band-first TIFF axes are fixed as the module docstring says.
    """
    path, ext = existing_file(path)
    if ext == ".mat":
        return _read_mat(path)
    if ext == ".npz":
        return _read_npz(path)
    if ext == ".npy":
        return {"": _read_npy(path)}
    if ext in (".tif", ".tiff"):
        return {"": _read_tiff(path)}
    raise DataError(f"{path}: unsupported extension {ext!r}; expected one of {SUPPORTED_EXTENSIONS}")


def pick_array(
    path: str | os.PathLike,
    arrays: Mapping[str, np.ndarray],
    key: str | None = None,
    *,
    ndim: int,
    known_keys: Sequence[str] = (),
    fallback: bool = True,
) -> tuple[str, np.ndarray] | None:
    """Chooses one array of rank `ndim` among `arrays` (read from `path`); returns (key, array).

    Order: the explicit `key` (an error if absent); else the first of `known_keys` present; else,
    when `fallback`, the only array of rank `ndim` (an error if there are several or none).
    Returns None only when `fallback` is False and no known key is present.
    """
    path = os.fspath(path)
    listing = ", ".join(f"{k or '<array>'} {v.shape}" for k, v in arrays.items()) or "none"
    if "" in arrays:  # single-array format
        if key is not None:
            raise DataError(f"{path}: this format holds one array and has no keys, but key {key!r} was given")
        return _check_rank(path, "", arrays[""], ndim)
    if key is not None:
        if key not in arrays:
            raise DataError(f"{path}: no array named {key!r}; arrays in the file: {listing}")
        return _check_rank(path, key, arrays[key], ndim)
    for k in known_keys:
        if k in arrays:
            return _check_rank(path, k, arrays[k], ndim)
    if not fallback:
        return None
    candidates = [k for k, v in arrays.items() if v.ndim == ndim]
    if len(candidates) == 1:
        log.info("%s: using array %r, the only one of rank %d", path, candidates[0], ndim)
        return candidates[0], arrays[candidates[0]]
    if not candidates:
        raise DataError(f"{path}: no array of rank {ndim}; arrays in the file: {listing}")
    raise DataError(
        f"{path}: several arrays of rank {ndim} ({', '.join(candidates)}); name the one to use with its key "
        f"(cube_key=, gt_key=, train_key=, test_key=); arrays in the file: {listing}"
    )


def _check_rank(path: str, key: str, array: np.ndarray, ndim: int) -> tuple[str, np.ndarray]:
    if array.ndim != ndim:
        what = f"array {key!r}" if key else "array"
        raise DataError(f"{path}: {what} has shape {array.shape} (rank {array.ndim}); expected rank {ndim}")
    return key, array


def _read_npy(path: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises several types for a malformed file
        raise DataError(f"{path}: not a valid .npy file ({e})") from e


def _read_npz(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:
        raise DataError(f"{path}: not a valid .npz file ({e})") from e


def _read_mat(path: str) -> dict[str, np.ndarray]:
    try:
        major, _ = matfile_version(path)
    except Exception as e:
        raise DataError(f"{path}: not a MATLAB .mat file ({e})") from e
    if major == 2:
        return _read_mat73(path)
    try:
        contents = scipy.io.loadmat(path)
    except Exception as e:
        raise DataError(f"{path}: unreadable MATLAB v{major + 4} file ({e})") from e
    return {k: v for k, v in contents.items() if not k.startswith("__") and _is_numeric(v)}


def _read_mat73(path: str) -> dict[str, np.ndarray]:
    try:
        with h5py.File(path, "r") as f:
            return {
                k: np.asarray(v[()]).T  # MATLAB is column-major: h5py sees the axes reversed
                for k, v in f.items()
                if isinstance(v, h5py.Dataset) and _is_numeric(v) and not _is_mat73_text_or_empty(v)
            }
    except OSError as e:
        raise DataError(f"{path}: MATLAB v7.3 header but not a readable HDF5 file ({e})") from e


def _is_mat73_text_or_empty(dataset: h5py.Dataset) -> bool:
    # MATLAB stores text as uint16 codes (MATLAB_class 'char') and an empty array as its shape
    # (attribute MATLAB_empty); neither is data.
    matlab_class = dataset.attrs.get("MATLAB_class", b"")
    if isinstance(matlab_class, bytes):
        matlab_class = matlab_class.decode("ascii", "replace")
    return matlab_class == "char" or bool(dataset.attrs.get("MATLAB_empty", 0))


def _is_numeric(v) -> bool:
    return np.issubdtype(v.dtype, np.number) or np.issubdtype(v.dtype, np.bool_)


def _read_tiff(path: str) -> np.ndarray:
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, array = series.axes, series.asarray()
    except Exception as e:
        raise DataError(f"{path}: not a valid TIFF file ({e})") from e
    if array.ndim == 3 and axes.endswith("YX"):
        return np.moveaxis(array, 0, -1)  # band-first (B, H, W) -> (H, W, B)
    if array.ndim == 3 and not axes.startswith("YX"):
        raise DataError(f"{path}: TIFF series axes {axes!r}; expected 'YXS' (band-last) or '?YX' (band-first)")
    return array


@dataclasses.dataclass(frozen=True)
class GeoRef:
    """The georeferencing of a GeoTIFF raster.

    Attributes:
      shape: (H, W) of the raster that the tags place on the ground.
      tags: {code: value} of the `GEOTIFF_TAGS` present, as tifffile reads them: tuples of numbers,
        a str for GeoAsciiParamsTag (34737).
      source: the file they were read from.
    """

    shape: tuple[int, int]
    tags: Mapping[int, tuple | str]
    source: str


def read_georef(path: str | os.PathLike) -> GeoRef | None:
    """The georeferencing of a TIFF's first page; None for other formats or a TIFF without geo tags."""
    path = os.fspath(path)
    if os.path.splitext(path)[1].lower() not in (".tif", ".tiff"):
        return None
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            found = {code: page.tags[code].value for code in GEOTIFF_TAGS if code in page.tags}
            shape = (int(page.imagelength), int(page.imagewidth))
    except Exception as e:
        raise DataError(f"{path}: not a valid TIFF file ({e})") from e
    if not found:
        return None
    tags = {code: v if isinstance(v, str) else tuple(np.atleast_1d(v).tolist()) for code, v in found.items()}
    return GeoRef(shape, tags, path)


def save_geotiff(path: str | os.PathLike, array, georef: GeoRef | None) -> None:
    """Writes a map as a TIFF carrying `georef`'s geo tags (a plain TIFF when `georef` is None).

    Args:
      path: the .tif to write (atomically).
      array: (H, W) or (H, W, K) integer or float map (a classification map, per-class scores, a
        confidence map), written with its dtype, K bands interleaved by pixel.
      georef: the georeferencing of the scene the map covers; its shape must be (H, W).
    """
    path, array = os.fspath(path), np.asarray(array)
    if array.ndim not in (2, 3):
        raise DataError(f"{path}: map has shape {array.shape}; expected (H, W) or (H, W, K)")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DataError(f"{path}: map has dtype {array.dtype}; expected an integer or float type")
    if georef is not None and array.shape[:2] != georef.shape:
        raise DataError(f"{path}: map has shape {array.shape} but the georeference of {georef.source} is "
                        f"for an (H, W) = {georef.shape} raster")
    extratags = [(code, GEOTIFF_TAGS[code], 0 if isinstance(v, str) else len(v), v, True)
                 for code, v in (georef.tags.items() if georef is not None else ())]
    buffer = BytesIO()  # tifffile needs a named file or a buffer, not atomic_write's descriptor
    tifffile.imwrite(buffer, array, photometric="minisblack", planarconfig="contig", metadata=None,
                     extratags=extratags)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def read_class_names(path: str | os.PathLike) -> tuple[str, ...]:
    """Class names from a text file: one per line, in increasing label-code order.

    Surrounding spaces are dropped; blank lines and lines starting with '#' are skipped (a '#' inside
    a name is kept).
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a readable UTF-8 text file ({e})") from e
    return tuple(name for name in map(str.strip, lines) if name and not name.startswith("#"))


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Calls `write(f)` on a temporary file in `path`'s folder, then renames it onto `path`.

    The file gets mode `0o666 & ~umask`, as `open` would give a new file (mkstemp's is 0600).
    A failed write (a full disk) raises an OSError that names `path`; `path` is left as it was.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if isinstance(e, OSError) and e.filename is None:  # a failed write: say to which file
            raise OSError(e.errno, e.strerror, path) from e
        raise


def write_json(path: str | os.PathLike, obj) -> None:
    """Writes `obj` as indented JSON, atomically (`atomic_write`)."""
    text = json.dumps(obj, indent=2).encode()
    atomic_write(path, lambda f: f.write(text))


def _umask() -> int:
    """The process umask, from /proc when it is there, else by setting it (to the strict 077 for that
    instant) and setting it back."""
    try:
        with open(_PROC_STATUS) as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    old = os.umask(0o077)
    os.umask(old)
    return old


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()
