"""A converted SpectralGPT checkpoint on disk: `DIR/params` (orbax) + `DIR/manifest.json`.

`save_converted` writes both into a temporary sibling folder and moves it into place only
when complete, so an existing checkpoint is never lost to a failed write.
`load_converted(DIR)` gives a ready classifier: `clf(x)` maps `(N, H, W, B)` float32 to
logits `(N, C)`.
"""

import dataclasses
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from hsic_jax.model.spectralgpt import SpectralGPT, model_from_config

MANIFEST = "manifest.json"
PARAMS = "params"


def save_converted(out_dir: str, params: Mapping, manifest: Mapping) -> None:
    """Write `params` (nested dict of arrays) and `manifest` (JSON-able) to `out_dir` atomically.

    `manifest['model']` must hold the model config accepted by `model_from_config`.
    """
    out_dir = os.path.abspath(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.", dir=parent)
    try:
        with ocp.StandardCheckpointer() as ckptr:
            ckptr.save(os.path.join(tmp, PARAMS), jax.tree.map(np.asarray, dict(params)))
        with open(os.path.join(tmp, MANIFEST), "w") as f:
            json.dump(manifest, f, indent=2)
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace_dir(src: str, dst: str) -> None:
    """Move the complete folder `src` to `dst`; an old `dst` is removed only afterwards."""
    old = None
    if os.path.exists(dst):
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(dst)}.old.", dir=os.path.dirname(dst))
        os.replace(dst, os.path.join(old, "x"))
    os.replace(src, dst)
    if old:
        shutil.rmtree(old)


def read_manifest(ckpt_dir: str) -> dict:
    """The manifest of a converted checkpoint, with a clear error when the folder is not one."""
    path = os.path.join(ckpt_dir, MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{ckpt_dir} is not a converted SpectralGPT checkpoint: {path} is missing. Convert "
            "the PyTorch weights with: python -m convert.spectralgpt --checkpoint "
            f"SpectralGPT+.pth --out {ckpt_dir}")
    with open(path) as f:
        return json.load(f)


def load_params(ckpt_dir: str) -> dict:
    """The params pytree of a converted checkpoint, as numpy arrays."""
    read_manifest(ckpt_dir)
    with ocp.StandardCheckpointer() as ckptr:
        params = ckptr.restore(os.path.abspath(os.path.join(ckpt_dir, PARAMS)))
    return jax.tree.map(np.asarray, params)


@dataclasses.dataclass(frozen=True)
class Classifier:
    """A SpectralGPT classifier with its parameters: `clf(x)` → logits `(N, C)`."""

    module: SpectralGPT
    params: dict
    config: dict
    manifest: dict

    def __call__(self, x: Any) -> jax.Array:
        """`x` `(N, H, W, B)` float32 → logits `(N, C)` (eval mode)."""
        return _apply(self.module, self.params, x)


@functools.partial(jax.jit, static_argnums=0)
def _apply(module, params, x):
    return module.apply({"params": params}, x, train=False)


def load_converted(ckpt_dir: str) -> Classifier:
    """Load a folder written by `python -m convert.spectralgpt` (or `save_converted`)."""
    manifest = read_manifest(ckpt_dir)
    config = dict(manifest["model"])
    return Classifier(model_from_config(config), load_params(ckpt_dir), config, manifest)
