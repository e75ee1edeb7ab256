"""A converted SpectralGPT checkpoint on disk: `DIR/params` (orbax) + `DIR/manifest.json`.

`save_converted` writes into a missing or empty folder, or replaces an earlier conversion
when asked to; it refuses any other folder, so that nothing it did not write is lost. It
builds the checkpoint in a temporary folder and moves it into place only when complete, so
an existing checkpoint is never lost to a failed write either.
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

import flax.linen as nn
import jax
import numpy as np
import orbax.checkpoint as ocp


MANIFEST = "manifest.json"
PARAMS = "params"
FORMAT = "hsic-jax-converted/1"
# Manifests written before `format` existed are recognised by these keys.
_FORMAT_0_KEYS = {"source_sha256", "model", "key_map"}
# The family of manifests (and results) written before families were named.
FIRST_FAMILY = "spectralgpt"


def save_converted(out_dir: str, params: Mapping, manifest: Mapping, *,
                   replace: bool = False) -> None:
    """Write `params` (nested dict of arrays) and `manifest` (JSON-able) to `out_dir` atomically.

    `out_dir` must be missing, empty, or (with `replace`) an earlier conversion, which is
    removed only after the new one is complete (`check_out_dir`). `manifest['model']` must
    hold the model config accepted by `model_from_config`; `format` is added.
    """
    out_dir = os.path.abspath(out_dir)
    state = check_out_dir(out_dir, replace)
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    stage = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.",
                             dir=out_dir if state == "empty" else os.path.dirname(out_dir))
    try:
        new = os.path.join(stage, "x")
        os.mkdir(new)  # mode 0o777 less the umask (mkdtemp's would be 0o700)
        with ocp.StandardCheckpointer() as ckptr:
            ckptr.save(os.path.join(new, PARAMS), jax.tree.map(np.asarray, dict(params)))
        with open(os.path.join(new, MANIFEST), "w") as f:
            json.dump({"format": FORMAT, **manifest}, f, indent=2)
        if state == "empty":  # the user's folder stays, with its own mode; the manifest last
            for name in (PARAMS, MANIFEST):
                os.replace(os.path.join(new, name), os.path.join(out_dir, name))
        elif state == "missing":  # fails on a non-empty folder made meanwhile
            os.replace(new, out_dir)
        else:
            _replace_dir(new, out_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def check_out_dir(out_dir: str, replace: bool) -> str:
    """What `out_dir` is: `missing`, `empty` or (with `replace`) `conversion`; else refused.

    Raises FileExistsError, naming the folder, for a file, a folder holding anything but an
    earlier conversion (`manifest.json` of the converter and `params/`), and an earlier
    conversion without `replace`.
    """
    if not os.path.lexists(out_dir):
        return "missing"
    if not os.path.isdir(out_dir):
        raise FileExistsError(f"--out {out_dir} is a file, not a folder; give --out a new folder")
    entries = sorted(os.listdir(out_dir))
    if not entries:
        return "empty"
    if not is_conversion(out_dir):
        named = next((e for e in entries if e not in (PARAMS, MANIFEST)), entries[0])
        raise FileExistsError(f"--out {out_dir} is not empty (it holds {named}) and is not "
                              "an earlier conversion; give --out a new or empty folder")
    if not replace:
        raise FileExistsError(f"--out {out_dir} holds an earlier conversion; pass --replace to "
                              "replace it, or give --out another folder")
    return "conversion"


def is_conversion(folder: str) -> bool:
    """Whether `folder` holds an earlier conversion and nothing else: `params/` and a converter
    manifest (with this `format`, or the keys of the manifests written before it had one)."""
    if not set(os.listdir(folder)) <= {PARAMS, MANIFEST}:
        return False
    try:
        with open(os.path.join(folder, MANIFEST)) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and (manifest.get("format") == FORMAT
                                           or _FORMAT_0_KEYS <= manifest.keys())


def _replace_dir(src: str, dst: str) -> None:
    """Move the complete folder `src` to `dst`; an old `dst` is removed only afterwards."""
    old = None
    if os.path.exists(dst):
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(dst)}.old.", dir=os.path.dirname(dst))
        os.replace(dst, os.path.join(old, "x"))
    os.replace(src, dst)
    if old:
        shutil.rmtree(old)


def _convert_inputs(family: str) -> str:
    """The input flags of `python -m convert FAMILY`: the family's `CONVERT_INPUTS`, or one
    `--checkpoint`."""
    from hsic_jax.models import FAMILIES, family as module  # the package imports this module
    default = "--checkpoint WEIGHTS.pt"
    return getattr(module(family), "CONVERT_INPUTS", default) if family in FAMILIES else default


def read_manifest(ckpt_dir: str, family: str = "FAMILY") -> dict:
    """The manifest of a converted checkpoint, with a clear error when the folder is not one
    (naming the converter command of `family`)."""
    path = os.path.join(ckpt_dir, MANIFEST)
    if not os.path.isfile(path):
        inside = sorted(os.path.join(ckpt_dir, d) for d in _subdirs(ckpt_dir)
                        if os.path.isfile(os.path.join(ckpt_dir, d, MANIFEST)))
        if inside:  # e.g. a pre-training workdir
            raise FileNotFoundError(
                f"{ckpt_dir} is not a converted checkpoint, but holds one: set "
                f"--config.pretrained_dir={inside[0]}"
                + (f" (or one of {inside[1:]})" if len(inside) > 1 else ""))
        raise FileNotFoundError(
            f"{ckpt_dir} is not a converted checkpoint: {path} is missing. Convert the PyTorch "
            f"weights with: python -m convert {family} {_convert_inputs(family)} --out {ckpt_dir}")
    with open(path) as f:
        return json.load(f)


def _subdirs(path: str) -> list[str]:
    """The folders directly inside `path` (none when it is not a folder)."""
    return [d.name for d in os.scandir(path) if d.is_dir()] if os.path.isdir(path) else []


def manifest_family(manifest: Mapping) -> str:
    """The model family (`config.model.name`) whose parameters a converted checkpoint holds."""
    return manifest.get("family", FIRST_FAMILY)


def load_params(ckpt_dir: str) -> dict:
    """The params pytree of a converted checkpoint, as numpy arrays."""
    read_manifest(ckpt_dir)
    with ocp.StandardCheckpointer() as ckptr:
        params = ckptr.restore(os.path.abspath(os.path.join(ckpt_dir, PARAMS)))
    return jax.tree.map(np.asarray, params)


@dataclasses.dataclass(frozen=True)
class Classifier:
    """A classifier of any model family with its parameters: `clf(x)` → logits `(N, C)` (a
    whole-scene family's, `TASK = 'scene'`: per-pixel logits `(N, H, W, C)`)."""

    module: nn.Module
    params: dict
    config: dict
    manifest: dict

    def __call__(self, x: Any) -> jax.Array:
        """`x` `(N, *module.input_shape)` float32 → logits `(N, C)` (eval mode; a whole-scene
        family: `x` `(N, H, W, B)` → `(N, H, W, C)`)."""
        return _apply(self.module, self.params, x)


@functools.partial(jax.jit, static_argnums=0)
def _apply(module, params, x):
    return module.apply({"params": params}, x, train=False)


def load_converted(ckpt_dir: str) -> Classifier:
    """Load a folder written by the converter (`python -m convert FAMILY`, or `save_converted`):
    the module of the manifest's `family` (SpectralGPT for manifests without one) built from
    its `model` fields, with the converted parameters (the classifier's only: the MAE decoder
    a SpectralGPT pre-training conversion keeps, `manifest['decoder']`, is left out)."""
    from hsic_jax.models import family  # the families import this module

    manifest = read_manifest(ckpt_dir)
    config = dict(manifest["model"])
    if "num_classes" not in config:
        raise ValueError(f"{ckpt_dir} holds an encoder without a classifier (a pre-training's "
                         "output): fine-tune it with run.py and --config.init=pretrained "
                         f"--config.pretrained_dir={ckpt_dir}")
    module = family(manifest_family(manifest)).model_from_config(config)
    params = load_params(ckpt_dir)
    if "decoder" in manifest:  # not the classifier's; it would only ride along on every call
        params = {k: v for k, v in params.items() if k != "decoder"}
    return Classifier(module, params, config, manifest)
