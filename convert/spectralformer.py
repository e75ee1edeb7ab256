"""Convert an official SpectralFormer checkpoint (PyTorch) into a Flax checkpoint hsic-jax loads.

    python -m convert spectralformer --checkpoint log/SpectralFormer_patch_indian.pt \\
        --out checkpoints/spectralformer_patch_indian --patches 7 --mode CAF

The official repository (danfenghong/IEEE_TGRS_SpectralFormer) saves the bare
`model.state_dict()` of its `vit_pytorch.ViT` (its demo loads them back with
`model.load_state_dict(torch.load(path))`): keys `pos_embedding` (1, B + 1, dim), `cls_token`,
`patch_to_embedding.*` (dim, patches²·band_patches), `transformer.layers.{i}.0.fn.norm.*`,
`transformer.layers.{i}.0.fn.fn.to_qkv.weight` (no bias), `...to_out.0.*`,
`transformer.layers.{i}.1.fn.norm.*`, `...fn.fn.net.{0,3}.*`, `transformer.skipcat.{j}.*`
(Conv2d (B + 1, B + 1, 1, 2), built in both modes) and `mlp_head.{0,1}.*`. A wrapper
`{'state_dict': ...}` or `{'model': ...}` is taken too.

The state_dict shows the bands, width, depth, q/k/v width, feed-forward width, classes and
patches² × band_patches; the rest comes from flags named after the official arguments:
`--patches` (or `--band-patches`: the other follows from `patch_to_embedding.weight`), `--mode`
(ViT or CAF: the weights are the same in both, the forward is not; `transformer.skipcat.*` is
dropped in ViT mode), `--heads` (default 4, the official demo's; dim_head = q width / heads)
and `--num-classes` (a head of another size is replaced by a fresh one). Anything that does
not fit is refused with one line naming the key or file. `--out` follows the rules of
`convert.spectralgpt` (a new or empty folder, or an earlier conversion with `--replace`).

The converted classifier, `hsic_jax.load_converted(DIR)(x)`, takes `x` of shape
`(N, patches, patches, bands)` — per-band min-max normalised neighbourhoods of the raw bands,
mirror-padded at the border, as the official demo builds them — and returns `(N, C)` logits in
the checkpoint's own class order. The official Indian Pines file (`IndianPine.mat`, whose
`TR`/`TE` maps the official checkpoints were trained on) numbers its classes differently from
the usual 1–16 order: `OFFICIAL_INDIAN_PINES_CLASSES` below, logit i being class i + 1 of that
file. That order is not written in the official repository (its `data/readme.md` only says
"Put input HSI data here"; the file itself is on Google Drive / Baidu, not reachable from here);
it is the order of the SpectralFormer paper's Indian Pines table, 13 classes of 50 training
pixels then the three of 15 (695 in all, 9,671 test pixels, the counts the official demo's
comments give), and the order a third-party SpectralFormer derivative reading the same file
uses for its class names. Check it against the file's `TR` counts before relying on it.
"""

import argparse
import logging
import re
import sys
from collections.abc import Callable, Mapping

import numpy as np

from convert.common import (ConversionError, head_arguments, head_classes, heads_argument,
                            linear, load_state_dict, map_one_to_one, parser, run, same)
from hsic_jax.models.spectralformer import MODES, check_geometry, model_from_config

log = logging.getLogger("convert.spectralformer")

# What the converted model takes and gives, over the fields of its config (logged by `run`).
IO = ("(N, {patches}, {patches}, {bands}) per-band min-max normalised neighbourhoods "
      "-> (N, {num_classes}) logits")

# The official demo's model (`demo.py`: ViT(dim=64, depth=5, heads=4, mlp_dim=8, dropout=0.1,
# emb_dropout=0.1)); dim_head follows from the weights and the heads.
OFFICIAL_HEADS = 4
OFFICIAL_DROPOUT = 0.1

# Class i + 1 of the official IndianPine.mat (logit i of its checkpoints); see the module
# docstring for where this order comes from and how sure it is.
OFFICIAL_INDIAN_PINES_CLASSES = (
    "Corn-notill", "Corn-mintill", "Corn", "Grass-pasture", "Grass-trees", "Hay-windrowed",
    "Soybean-notill", "Soybean-mintill", "Soybean-clean", "Wheat", "Woods",
    "Buildings-Grass-Trees-Drives", "Stone-Steel-Towers", "Alfalfa", "Grass-pasture-mowed", "Oats",
)

SKIPCAT = re.compile(r"transformer\.skipcat\.\d+\.(weight|bias)")
LAYER = re.compile(r"transformer\.layers\.(\d+)\.")


def _skipcat(w):  # Conv2d (out, in, 1, 2) -> (column, in, out)
    w = np.asarray(w)
    if w.ndim != 4 or w.shape[2:] != (1, 2):
        raise ValueError("expected a Conv2d weight (tokens, tokens, 1, 2)")
    return w[:, :, 0, :].transpose(2, 1, 0)


def key_map(depth: int, mode: str) -> dict[str, tuple[str, Callable]]:
    """Every official key of a model of `depth` layers in `mode` → (Flax path, transform)."""
    m = {"patch_to_embedding.weight": ("backbone/patch_embed/kernel", linear),
         "patch_to_embedding.bias": ("backbone/patch_embed/bias", same),
         "cls_token": ("backbone/cls_token", same),
         "pos_embedding": ("backbone/pos_embed", same)}
    for i in range(depth):
        attn, ff, flax = f"transformer.layers.{i}.0.fn.", f"transformer.layers.{i}.1.fn.", f"backbone/layer_{i}/"
        m.update({
            attn + "norm.weight": (flax + "attn_norm/scale", same),
            attn + "norm.bias": (flax + "attn_norm/bias", same),
            attn + "fn.to_qkv.weight": (flax + "attn/to_qkv/kernel", linear),
            attn + "fn.to_out.0.weight": (flax + "attn/to_out/kernel", linear),
            attn + "fn.to_out.0.bias": (flax + "attn/to_out/bias", same),
            ff + "norm.weight": (flax + "ff_norm/scale", same),
            ff + "norm.bias": (flax + "ff_norm/bias", same),
            ff + "fn.net.0.weight": (flax + "ff/fc1/kernel", linear),
            ff + "fn.net.0.bias": (flax + "ff/fc1/bias", same),
            ff + "fn.net.3.weight": (flax + "ff/fc2/kernel", linear),
            ff + "fn.net.3.bias": (flax + "ff/fc2/bias", same),
        })
    if mode == "CAF":
        for j in range(depth - 2):
            m[f"transformer.skipcat.{j}.weight"] = (f"backbone/skipcat_{j}/kernel", _skipcat)
            m[f"transformer.skipcat.{j}.bias"] = (f"backbone/skipcat_{j}/bias", same)
    m.update({"mlp_head.0.weight": ("backbone/norm/scale", same),
              "mlp_head.0.bias": ("backbone/norm/bias", same),
              "mlp_head.1.weight": ("head/kernel", linear),
              "mlp_head.1.bias": ("head/bias", same)})
    return m


def _shape(sd, key):
    return tuple(sd[key].shape)


def infer_architecture(sd: Mapping[str, np.ndarray], path: str, *, mode: str,
                       patches: int | None, band_patches: int | None,
                       heads: int | None) -> dict:
    """The model fields the state_dict shows, completed by the flags."""
    for key in ("pos_embedding", "patch_to_embedding.weight", "cls_token"):
        if key not in sd:
            raise ConversionError(f"{path}: key {key} is missing; this is not a state_dict of "
                                  "the official SpectralFormer (vit_pytorch.ViT)")
    pos, embed = sd["pos_embedding"], sd["patch_to_embedding.weight"]
    if pos.ndim != 3 or pos.shape[0] != 1 or pos.shape[1] < 2:
        raise ConversionError(f"{path}: key pos_embedding has shape {_shape(sd, 'pos_embedding')}; "
                              "expected (1, bands + 1, dim)")
    bands, dim = pos.shape[1] - 1, pos.shape[2]
    if embed.ndim != 2 or embed.shape[0] != dim:
        raise ConversionError(f"{path}: key patch_to_embedding.weight has shape "
                              f"{_shape(sd, 'patch_to_embedding.weight')}; expected (dim, "
                              f"patches² · band_patches) with dim {dim} (pos_embedding)")
    patch_dim = embed.shape[1]
    patches, band_patches = _patch_geometry(patch_dim, patches, band_patches, path)
    layers = sorted({int(m.group(1)) for k in sd if (m := LAYER.match(k))})
    if not layers:
        raise ConversionError(f"{path}: no transformer.layers.* keys; this is not a state_dict "
                              "of the official SpectralFormer")
    depth = layers[-1] + 1
    qkv_key = "transformer.layers.0.0.fn.fn.to_qkv.weight"
    ff_key = "transformer.layers.0.1.fn.fn.net.0.weight"
    for key in (qkv_key, ff_key):
        if key not in sd:
            raise ConversionError(f"{path}: missing key {key}")
    qkv = sd[qkv_key]
    if qkv.ndim != 2 or qkv.shape[0] % 3:
        raise ConversionError(f"{path}: key {qkv_key} has shape {_shape(sd, qkv_key)}; expected "
                              "(3 · heads · dim_head, dim)")
    inner = qkv.shape[0] // 3
    heads = OFFICIAL_HEADS if heads is None else heads
    if heads < 1 or inner % heads:
        raise ConversionError(f"{path}: key {qkv_key} has {inner} outputs each for q, k and v, "
                              f"which do not split into {heads} heads; pass --heads")
    arch = dict(patches=patches, bands=bands, band_patches=band_patches, dim=dim, depth=depth,
                heads=heads, dim_head=inner // heads, mlp_dim=sd[ff_key].shape[0], mode=mode,
                dropout=OFFICIAL_DROPOUT, emb_dropout=OFFICIAL_DROPOUT)
    try:
        check_geometry(patches, bands, band_patches, mode)
    except ValueError as e:
        raise ConversionError(f"{path}: {e} (key patch_to_embedding.weight "
                              f"{_shape(sd, 'patch_to_embedding.weight')}, {bands} bands)") from e
    return arch


def _patch_geometry(patch_dim: int, patches: int | None, band_patches: int | None,
                    path: str) -> tuple[int, int]:
    """`(patches, band_patches)` with patches² · band_patches = `patch_dim`, from either flag."""
    where = f"{path}: key patch_to_embedding.weight has {patch_dim} inputs = patches² × band_patches"
    if patches is None and band_patches is None:
        raise ConversionError(f"{where}; pass --patches (7 for the official patch-wise models, 1 "
                              "for the pixel-wise ones and ViT) or --band-patches")
    if patches is not None and (patches < 1 or patch_dim % (patches * patches)):
        raise ConversionError(f"{where}, which --patches {patches} does not divide")
    if band_patches is None:
        band_patches = patch_dim // (patches * patches)
    elif patches is None:
        if band_patches < 1 or patch_dim % band_patches or \
                round((patch_dim // band_patches) ** 0.5) ** 2 != patch_dim // band_patches:
            raise ConversionError(f"{where}, which --band-patches {band_patches} does not fit")
        patches = round((patch_dim // band_patches) ** 0.5)
    if patches * patches * band_patches != patch_dim:
        raise ConversionError(f"{where}; --patches {patches} and --band-patches {band_patches} "
                              f"give {patches * patches * band_patches}")
    return patches, band_patches


def convert(sd: Mapping[str, np.ndarray], path: str, *, mode: str, patches: int | None = None,
            band_patches: int | None = None, heads: int | None = None,
            num_classes: int | None = None, seed: int = 0) -> tuple[dict, dict]:
    """Map an official state_dict onto the Flax params of a SpectralFormer classifier.

    Returns `(params, report)`; `report` holds the model config, the key map and the dropped
    and re-initialised keys.
    """
    arch = infer_architecture(sd, path, mode=mode, patches=patches, band_patches=band_patches,
                              heads=heads)
    ckpt_classes, num_classes = head_classes(sd, "mlp_head.1.weight", path, num_classes)
    config = dict(num_classes=num_classes, **arch)
    model = model_from_config(config)
    return map_one_to_one(
        sd, key_map(arch["depth"], mode), model, config, path=path, seed=seed,
        new_head=ckpt_classes != num_classes,
        what=f"an official SpectralFormer of depth {arch['depth']} in {mode} mode",
        drop=lambda key: mode == "ViT" and SKIPCAT.fullmatch(key))  # built, unused in ViT mode


def parse_args(argv=None) -> argparse.Namespace:
    p = parser("spectralformer",
               "Convert an official SpectralFormer checkpoint (the state_dict of "
               "vit_pytorch.ViT, e.g. log/SpectralFormer_patch_*.pt) into a Flax checkpoint "
               "folder for hsic-jax.",
               "the official state_dict (bare, or under 'state_dict' / 'model')", "FILE.pt")
    p.add_argument("--mode", required=True, choices=MODES,
                   help="the official --mode the checkpoint was trained with: CAF (SpectralFormer, "
                        "cross-layer adaptive fusion) or ViT (its skipcat tensors are dropped); "
                        "the weights do not tell")
    p.add_argument("--patches", type=int, default=None,
                   help="the official --patches, the input's spatial size (1 pixel-wise, 7 "
                        "patch-wise); with --band-patches or alone (band_patches follows from "
                        "patch_to_embedding.weight)")
    p.add_argument("--band-patches", type=int, default=None,
                   help="the official --band_patches (odd), bands per token; needed only "
                        "without --patches")
    heads_argument(p, f"{OFFICIAL_HEADS}, the official demo's; dim_head = q width / heads")
    head_arguments(p, "mlp_head")
    return p.parse_args(argv)


def convert_args(args: argparse.Namespace) -> tuple[dict, dict]:
    """`convert` of the checkpoint and options the command line names."""
    return convert(load_state_dict(args.checkpoint), args.checkpoint, mode=args.mode,
                   patches=args.patches, band_patches=args.band_patches, heads=args.heads,
                   num_classes=args.num_classes, seed=args.seed)


def main(argv=None) -> int:
    return run(parse_args(argv), "spectralformer", convert_args, log, io=IO)


if __name__ == "__main__":
    sys.exit(main())
