"""Export and load only what a method trains (merging adapters into the base kernels is
`TunedModel.merge`).

An export is a folder with two files (and, from a run, those of its preprocessing), each
written atomically (temporary file in the folder, then `os.replace`):

  adapters.npz   every trainable leaf of the method (adapter factors, head, BitFit biases;
                 everything for FFT) as float arrays named by '/'-joined path,
                 e.g. 'adapters/block_0/q/a', 'head/kernel'
  manifest.json  format, method config, sha256 of the base checkpoint, class names, the
                 arrays' shapes and the sha256 of adapters.npz (so a torn pair of files
                 or a corrupted npz is detected on load); from a run, its config (`run`),
                 which with the preprocessing lets `hsic_jax.predict` classify new cubes
                 with the export on its base
  pca.npz, normalization.npz, bands.json
                 the run's fitted preprocessing and, when its scene's file named them, its
                 band names (`hsic_jax.data.preprocess.Preprocessing`)

Exporting replaces only those files of an earlier export: a folder that holds anything
else (or a manifest.json that is not an export's) is refused, naming the file. Loading onto
another base checkpoint or with another method config is refused with a message that names
both values.
"""

import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence

import jax
import numpy as np

from hsic_jax.adapters.methods import FROZEN, path_name
from hsic_jax.adapters.tuned import TunedModel
from hsic_jax.data.io import atomic_write
from hsic_jax.data.preprocess import BANDS_FILE, Preprocessing

FORMAT = "hsic-jax-adapters/2"
# Format 1 stored KronA factors in the transposed (Flax in × out) reading of the paper's
# shapes; its exports of the other methods hold the same arrays as format 2.
_KRONA_TRANSPOSED = "hsic-jax-adapters/1"
WEIGHTS = "adapters.npz"
MANIFEST = "manifest.json"
PREPROCESSING = ("pca.npz", "normalization.npz", BANDS_FILE)  # a run's, `Preprocessing.save`


def _copy_tree(tree):
    return {k: _copy_tree(v) for k, v in tree.items()} if isinstance(tree, Mapping) else tree


def stored_arrays(params, tuned: TunedModel) -> dict:
    """`{path: leaf}` of every leaf `tuned`'s method trains, i.e. what an export stores."""
    labels = tuned.labels(params)
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    return {path_name(path): leaf for (path, leaf), label in
            zip(leaves, jax.tree.leaves(labels)) if label != FROZEN}


def npz_bytes(arrays: Mapping) -> int:
    """Exact size of `np.savez` of `arrays` (anything with `.shape` and `.dtype`) in bytes.

    Per entry: a local zip header (30 bytes + name + 20 bytes of zip64 extra, which
    numpy forces), the .npy header and data, and a central-directory record (46 bytes +
    name); then a 22-byte end record. `tests/test_export.py` checks it against real files.
    """
    total = 22
    for name, a in arrays.items():
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {
            "descr": np.lib.format.dtype_to_descr(np.dtype(a.dtype)),
            "fortran_order": False, "shape": tuple(a.shape)})
        fname = len(f"{name}.npy".encode())
        total += 30 + 20 + 46 + 2 * fname + len(header.getvalue())
        total += int(np.prod(a.shape, dtype=np.int64)) * np.dtype(a.dtype).itemsize
    return total


def _normal(cfg: Mapping) -> dict:
    """A method config as plain JSON values (tuples become lists)."""
    return json.loads(json.dumps({k: cfg[k] for k in cfg}))


def export_adapters(params, tuned: TunedModel, method_cfg: Mapping, path: str, *,
                    base_sha256: str, class_names: Sequence[str], run: Mapping | None = None,
                    preprocessing: Preprocessing | None = None) -> dict:
    """Write the leaves of `params` that `tuned`'s method (configured by `method_cfg`) trains,
    and a manifest, into folder `path`; return the manifest. From a run: its config `run`
    (into the manifest) and fitted `preprocessing`.

    `path` must be missing, empty or an earlier export (`check_export_dir`).
    """
    check_export_dir(path)
    arrays = {k: np.asarray(v) for k, v in stored_arrays(params, tuned).items()}
    n_classes = params["head"]["kernel"].shape[-1]
    if len(class_names) != n_classes:
        raise ValueError(f"export to {path}: {len(class_names)} class names for a head of "
                         f"{n_classes} classes")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    weights = buf.getvalue()
    manifest = dict(format=FORMAT, method=_normal(method_cfg), base_sha256=base_sha256,
                    class_names=list(class_names), weights=WEIGHTS,
                    weights_sha256=hashlib.sha256(weights).hexdigest(),
                    arrays={k: list(v.shape) for k, v in arrays.items()},
                    **({} if run is None else {"run": json.loads(json.dumps(run))}))
    if preprocessing is not None:
        preprocessing.save(path)
    atomic_write(os.path.join(path, WEIGHTS), lambda f: f.write(weights))
    text = json.dumps(manifest, indent=2).encode()
    atomic_write(os.path.join(path, MANIFEST), lambda f: f.write(text))
    return manifest


def check_export_dir(path: str) -> None:
    """Refuse (FileExistsError, naming the file) a `path` that is a file, or a folder holding
    anything but the files of an export or a manifest.json that is not an export's."""
    if os.path.isfile(path):
        raise FileExistsError(f"{path} is a file, not an adapter export folder; move it away")
    if not os.path.isdir(path):
        return
    for name in sorted(os.listdir(path)):
        if name not in (WEIGHTS, MANIFEST, *PREPROCESSING):
            raise FileExistsError(f"{path} holds {name}, which is not part of an adapter export "
                                  f"(only {', '.join((WEIGHTS, MANIFEST, *PREPROCESSING))} are "
                                  "replaced); move it out of the folder")
    file = os.path.join(path, MANIFEST)
    if os.path.exists(file) and _format(file) not in (FORMAT, _KRONA_TRANSPOSED):
        raise FileExistsError(f"{file} is not the manifest of an adapter export; move it out of "
                              "the folder")


def _format(file: str):
    """The `format` of a JSON manifest; None when the file is not a JSON object."""
    try:
        with open(file) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    return manifest.get("format") if isinstance(manifest, dict) else None


def read_adapter_manifest(path: str) -> dict:
    """The manifest of an export folder, with a clear error when `path` is not one."""
    file = os.path.join(path, MANIFEST)
    if not os.path.isfile(file):
        raise FileNotFoundError(f"{path} is not an adapter export: {file} is missing")
    with open(file) as f:
        manifest = json.load(f)
    fmt, method = manifest.get("format"), manifest.get("method", {}).get("name")
    if fmt == _KRONA_TRANSPOSED and method in ("krona", "krona_plus"):
        raise ValueError(f"{file}: a {method} export of format {fmt!r}, whose KronA factors are "
                         "in the transposed layout of an earlier version; train it again")
    if fmt not in (FORMAT, _KRONA_TRANSPOSED):
        raise ValueError(f"{file}: format {fmt!r}, expected {FORMAT!r}")
    return manifest


def load_adapters(base_params, path: str, *, tuned: TunedModel, base_sha256: str,
                  method_cfg: Mapping):
    """`base_params` with the exported leaves of folder `path` put in (adapters, head, …), for
    the model `tuned` (its method configured by `method_cfg`).

    Refused when the export was made on another base checkpoint, with another method
    config, or its files do not match each other or the base's shapes.
    """
    manifest = read_adapter_manifest(path)
    if manifest["base_sha256"] != base_sha256:
        raise ValueError(f"{path} was trained on base checkpoint sha256 "
                         f"{manifest['base_sha256']}, not on the given base {base_sha256}")
    want, have = _normal(method_cfg), manifest["method"]
    if want != have:
        diff = {k: (have.get(k), want.get(k)) for k in sorted(set(want) | set(have))
                if want.get(k) != have.get(k)}
        raise ValueError(f"{path} holds method {have.get('name')!r} with a different config "
                         f"(field: (exported, requested)): {diff}")
    with open(os.path.join(path, WEIGHTS), "rb") as f:
        weights = f.read()
    if hashlib.sha256(weights).hexdigest() != manifest["weights_sha256"]:
        raise ValueError(f"{os.path.join(path, WEIGHTS)} does not match the sha256 in its "
                         "manifest (corrupted, or from another export)")
    with np.load(io.BytesIO(weights)) as npz:
        arrays = {k: npz[k] for k in npz.files}
    params = _copy_tree(base_params)
    for name, value in arrays.items():
        *parents, leaf = name.split("/")
        node = params
        for key in parents:
            node = node.setdefault(key, {})
        old = node.get(leaf)
        if parents and parents[0] == "backbone" and (old is None or tuple(old.shape) != value.shape):
            raise ValueError(f"{path}: {name} has shape {value.shape} but the base has "
                             f"{None if old is None else tuple(old.shape)}")
        node[leaf] = value
    trained = set(stored_arrays(params, tuned))
    if trained != set(arrays):
        raise ValueError(f"{path} does not hold what method {want.get('name')!r} trains: "
                         f"missing {sorted(trained - set(arrays))[:5]}, "
                         f"unexpected {sorted(set(arrays) - trained)[:5]}")
    return params
