"""Reading arrays from the file formats hyperspectral scenes come in, and atomic writes.

Supported formats, chosen by file extension:
  .mat          MATLAB v4/v5/v7 through `scipy.io.loadmat`; MATLAB v7.3 (HDF5) through `h5py`.
                MATLAB stores arrays column-major, so h5py returns every v7.3 array with its axes
                reversed (a (H, W, B) cube reads as (B, W, H)); `read_arrays` reverses them back.
  .npy / .npz   numpy, without pickles.
  .tif / .tiff  (Geo)TIFF through `tifffile`; a band-first (B, H, W) series ('SYX', 'QYX', ...)
                is moved to band-last (H, W, B).

Containers with several arrays (.mat, .npz) are searched for the array by key: an explicit key, else
the first present of a list of known keys, else the only array of the requested rank. When several
arrays qualify, the error lists them and asks for the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import IO

import h5py
import numpy as np
import scipy.io
import tifffile
from scipy.io.matlab import matfile_version

log = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS = (".mat", ".npy", ".npz", ".tif", ".tiff")


class DataError(ValueError):
    """Bad input data: the message names the file, key, shape or value at fault."""


def read_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads every numeric array of a file: {name: array}; one array named "" for .npy and TIFF.

    MATLAB v7.3 axes and band-first TIFF axes are fixed as the module docstring says.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    ext = os.path.splitext(path)[1].lower()
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
                if isinstance(v, h5py.Dataset) and _is_numeric(v)
            }
    except OSError as e:
        raise DataError(f"{path}: MATLAB v7.3 header but not a readable HDF5 file ({e})") from e


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


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Calls `write(f)` on a temporary file in `path`'s folder, then renames it onto `path`."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()
