"""Convert an official MambaHSI checkpoint (PyTorch) into a Flax checkpoint hsic-jax loads.

    python -m convert mambahsi --checkpoint RUNS/MambaHSI/UP/run0_seed0/best_tr30_val10.pth \\
        --out checkpoints/mambahsi_pavia_university

The official `train_MambaHSI.py` (li-yapeng/MambaHSI) saves the bare `net.state_dict()` of its
`MambaHSI(in_channels=bands, num_classes=C, hidden_dim=128)` whenever the validation OA is at
least the best so far (`best_tr{train}_val{val}.pth`). Its keys (`mamba_type='both'`, the
default): `patch_embedding.0.weight` (hidden, bands, 1, 1) and `.0.bias` (the 1 × 1
convolution), `patch_embedding.1.{weight,bias}` (GroupNorm); per block j ∈ {0, 2, 4} (1 and 3
are the poolings) `mamba.{j}.weights` (2: the fusion pair, with `use_att`) and, for each
branch `spa_mamba` and `spe_mamba`, `mamba.{j}.{branch}.mamba.{in_proj.weight,
conv1d.weight, conv1d.bias, x_proj.weight, dt_proj.weight, dt_proj.bias, A_log, D,
out_proj.weight}` (mamba_ssm's Mamba) and `mamba.{j}.{branch}.proj.0.{weight,bias}`
(GroupNorm); `cls_head.0.*` (1 × 1 convolution hidden → 128), `cls_head.1.*` (GroupNorm) and
`cls_head.3.*` (the classifier, 128 → C). With `mamba_type` 'spa' or 'spe' a block is
`mamba.{j}.mamba.*` and `mamba.{j}.proj.0.*`. A wrapper `{'state_dict': ...}` or
`{'model': ...}` is taken too.

The state_dict shows the bands, hidden_dim, classes, mamba_type (the 'both' keys, or for a
single-branch model the width of its Mamba layer: hidden_dim is 'spa', hidden_dim /
token_num 'spe'; `--mamba-type` decides when token_num would be 1), token_num (the spectral
Mamba's width), use_att (`weights` present), d_state, d_conv and expand; the rest comes from
flags named after the official arguments: `--group-num` (GroupNorm groups, default 4, the
official) and `--no-residual` (the official `use_residual=False`; default: residuals, the
official). `--num-classes` replaces a head of another size by a fresh one. Anything that does
not fit is refused with one line naming the key (and its shape) or file. `--out` follows the
rules of `convert.spectralgpt` (a new or empty folder, or an earlier conversion with
`--replace`).

The converted classifier, `hsic_jax.load_converted(DIR)(x)`, takes a whole scene `x`
`(1, H, W, bands)` — the raw bands, each stretched between its 2nd and 98th percentile, clipped
and quantised to 8 bits, / 255, as the official script prepares it — and returns per-pixel
logits `(1, H, W, C)` (the official quarter-resolution logits resized bilinearly with aligned
corners, as the official evaluation does), class i being the scene's label i + 1.
"""

import argparse
import logging
import sys
from collections.abc import Callable, Mapping

import numpy as np

from convert.common import (ConversionError, head_arguments, head_classes, linear,
                            load_state_dict, map_one_to_one, parser, run, same)
from hsic_jax.models.mambahsi import (MAMBA_TYPES, NUM_BLOCKS, check_geometry,
                                      model_from_config)

log = logging.getLogger("convert.mambahsi")

# What the converted model takes and gives, over the fields of its config (logged by `run`).
IO = ("a whole scene (1, H, W, {bands}) of per-band 2-98 % stretched, 8-bit quantised "
      "bands / 255 -> per-pixel logits (1, H, W, {num_classes})")

OFFICIAL_GROUP_NUM = 4
OFFICIAL_TOKEN_NUM = 4  # recorded for 'spa' models, which have no spectral branch to show it
STEM = "patch_embedding.0.weight"
HEAD = "cls_head.3.weight"


def _conv1x1(w):  # Conv2d (out, in, 1, 1) -> Dense (in, out)
    w = np.asarray(w)
    if w.ndim != 4 or w.shape[2:] != (1, 1):
        raise ValueError("expected a 1 x 1 Conv2d weight (out, in, 1, 1)")
    return w[:, :, 0, 0].T


def _conv1d(w):  # depthwise Conv1d (d, 1, k) -> (k, 1, d)
    w = np.asarray(w)
    if w.ndim != 3 or w.shape[1] != 1:
        raise ValueError("expected a depthwise Conv1d weight (channels, 1, width)")
    return w.transpose(2, 1, 0)


def _mamba_keys(official: str, flax: str) -> dict[str, tuple[str, Callable]]:
    """The keys of one mamba_ssm Mamba layer (`official` prefix) and of its branch's GroupNorm."""
    m, f = f"{official}mamba.", f"{flax}mamba/"
    return {m + "in_proj.weight": (f + "in_proj/kernel", linear),
            m + "conv1d.weight": (f + "conv1d/kernel", _conv1d),
            m + "conv1d.bias": (f + "conv1d/bias", same),
            m + "x_proj.weight": (f + "x_proj/kernel", linear),
            m + "dt_proj.weight": (f + "dt_proj/kernel", linear),
            m + "dt_proj.bias": (f + "dt_proj/bias", same),
            m + "A_log": (f + "A_log", same),
            m + "D": (f + "D", same),
            m + "out_proj.weight": (f + "out_proj/kernel", linear),
            official + "proj.0.weight": (flax + "norm/scale", same),
            official + "proj.0.bias": (flax + "norm/bias", same)}


def key_map(mamba_type: str, use_att: bool) -> dict[str, tuple[str, Callable]]:
    """Every official key of a model of `mamba_type` → (Flax path, transform)."""
    m = {STEM: ("backbone/embed/kernel", _conv1x1),
         "patch_embedding.0.bias": ("backbone/embed/bias", same),
         "patch_embedding.1.weight": ("backbone/embed_norm/scale", same),
         "patch_embedding.1.bias": ("backbone/embed_norm/bias", same)}
    for i in range(NUM_BLOCKS):
        j, flax = 2 * i, f"backbone/block_{i}/"  # mamba.{1,3} are the poolings
        if mamba_type == "both":
            m.update(_mamba_keys(f"mamba.{j}.spa_mamba.", flax + "spa/"))
            m.update(_mamba_keys(f"mamba.{j}.spe_mamba.", flax + "spe/"))
            if use_att:
                m[f"mamba.{j}.weights"] = (flax + "weights", same)
        else:
            m.update(_mamba_keys(f"mamba.{j}.", flax + mamba_type + "/"))
    m.update({"cls_head.0.weight": ("backbone/cls_proj/kernel", _conv1x1),
              "cls_head.0.bias": ("backbone/cls_proj/bias", same),
              "cls_head.1.weight": ("backbone/cls_norm/scale", same),
              "cls_head.1.bias": ("backbone/cls_norm/bias", same),
              HEAD: ("head/kernel", _conv1x1),
              "cls_head.3.bias": ("head/bias", same)})
    return m


def _shape(sd, key):
    return tuple(sd[key].shape)


def _need(sd, key, path, ndim, what):
    if key not in sd:
        raise ConversionError(f"{path}: missing key {key}; this is not a state_dict of the "
                              "official MambaHSI")
    if sd[key].ndim != ndim:
        raise ConversionError(f"{path}: key {key} has shape {_shape(sd, key)}; expected {what}")
    return sd[key].shape


def infer_architecture(sd: Mapping[str, np.ndarray], path: str, *, group_num: int,
                       use_residual: bool, mamba_type: str | None) -> dict:
    """The model fields the state_dict shows, completed by the flags."""
    hidden, bands, *_ = _need(sd, STEM, path, 4, "(hidden_dim, bands, 1, 1)")
    both = any(k.startswith("mamba.0.spa_mamba.") or k.startswith("mamba.0.spe_mamba.")
               for k in sd)
    single = "mamba.0.mamba.in_proj.weight" in sd
    if both == single:
        raise ConversionError(f"{path}: expected the keys of one official block layout, "
                              "mamba.0.spa_mamba.* and mamba.0.spe_mamba.* (mamba_type 'both') "
                              "or mamba.0.mamba.* ('spa', 'spe'); found "
                              f"{'both' if both else 'neither'}")
    if both:
        if mamba_type not in (None, "both"):
            raise ConversionError(f"{path}: --mamba-type {mamba_type}, but the checkpoint has "
                                  "both branches (mamba.0.spa_mamba.*, mamba.0.spe_mamba.*)")
        mamba_type, spa_prefix = "both", "mamba.0.spa_mamba.mamba."
        spe_prefix = "mamba.0.spe_mamba.mamba."
    else:
        width = _need(sd, "mamba.0.mamba.in_proj.weight", path, 2, "(2 · expand · d, d)")[1]
        if mamba_type is None:
            mamba_type = "spa" if width == hidden else "spe"
        if mamba_type == "both":
            raise ConversionError(f"{path}: --mamba-type both, but the checkpoint has one "
                                  "branch per block (mamba.0.mamba.*)")
        spa_prefix = spe_prefix = "mamba.0.mamba."

    in_key = spe_prefix + "in_proj.weight"
    rows, width = _need(sd, in_key, path, 2, "(2 · expand · d_model, d_model)")
    token_num = OFFICIAL_TOKEN_NUM
    if mamba_type != "spa":
        if hidden % width:
            raise ConversionError(f"{path}: key {in_key} has shape {_shape(sd, in_key)}: its "
                                  f"{width} inputs do not divide hidden_dim {hidden} "
                                  f"({STEM} {_shape(sd, STEM)}) into tokens")
        token_num = hidden // width
    elif width != hidden:
        raise ConversionError(f"{path}: key {in_key} has shape {_shape(sd, in_key)}; a spatial "
                              f"Mamba takes hidden_dim {hidden} inputs ({STEM} {_shape(sd, STEM)})")
    if rows % (2 * width):
        raise ConversionError(f"{path}: key {in_key} has shape {_shape(sd, in_key)}; expected "
                              "(2 · expand · d_model, d_model)")
    a_key, conv_key = spa_prefix + "A_log", spa_prefix + "conv1d.weight"
    d_state = _need(sd, a_key, path, 2, "(d_inner, d_state)")[1]
    d_conv = _need(sd, conv_key, path, 3, "(d_inner, 1, d_conv)")[2]
    arch = dict(bands=int(bands), hidden_dim=int(hidden), token_num=int(token_num),
                group_num=group_num, mamba_type=mamba_type, use_residual=use_residual,
                use_att=mamba_type == "both" and "mamba.0.weights" in sd,
                d_state=int(d_state), d_conv=int(d_conv), expand=int(rows // (2 * width)))
    try:
        check_geometry(**{k: arch[k] for k in ("bands", "hidden_dim", "token_num", "group_num",
                                               "mamba_type", "d_state", "d_conv", "expand")})
    except ValueError as e:
        raise ConversionError(f"{path}: {e} (key {STEM} {_shape(sd, STEM)})") from e
    return arch


def convert(sd: Mapping[str, np.ndarray], path: str, *, group_num: int = OFFICIAL_GROUP_NUM,
            use_residual: bool = True, mamba_type: str | None = None,
            num_classes: int | None = None, seed: int = 0) -> tuple[dict, dict]:
    """Map an official state_dict onto the Flax params of a MambaHSI classifier.

    Returns `(params, report)`; `report` holds the model config, the key map and the dropped
    and re-initialised keys.
    """
    arch = infer_architecture(sd, path, group_num=group_num, use_residual=use_residual,
                              mamba_type=mamba_type)
    ckpt_classes, num_classes = head_classes(sd, HEAD, path, num_classes)
    config = dict(num_classes=num_classes, **arch)
    model = model_from_config(config)
    return map_one_to_one(
        sd, key_map(arch["mamba_type"], arch["use_att"]), model, config, path=path, seed=seed,
        new_head=ckpt_classes != num_classes,
        what=f"an official MambaHSI (mamba_type {arch['mamba_type']}, use_att {arch['use_att']})")


def parse_args(argv=None) -> argparse.Namespace:
    p = parser("mambahsi",
               "Convert an official MambaHSI checkpoint (the state_dict that "
               "train_MambaHSI.py saves, best_tr30_val10.pth) into a Flax checkpoint "
               "folder for hsic-jax.",
               "the official state_dict (bare, or under 'state_dict' / 'model')")
    p.add_argument("--group-num", type=int, default=OFFICIAL_GROUP_NUM,
                   help=f"GroupNorm groups, not stored in the weights (default: "
                        f"{OFFICIAL_GROUP_NUM}, the official)")
    p.add_argument("--no-residual", action="store_true",
                   help="the model was built with use_residual=False (the weights do not tell; "
                        "the official model has residuals)")
    p.add_argument("--mamba-type", choices=MAMBA_TYPES, default=None,
                   help="the official mamba_type (default: from the keys; needed only for a "
                        "single-branch model whose spectral Mamba has one token)")
    head_arguments(p, "cls_head.3")
    return p.parse_args(argv)


def convert_args(args: argparse.Namespace) -> tuple[dict, dict]:
    """`convert` of the checkpoint and options the command line names."""
    return convert(load_state_dict(args.checkpoint), args.checkpoint,
                   group_num=args.group_num, use_residual=not args.no_residual,
                   mamba_type=args.mamba_type, num_classes=args.num_classes, seed=args.seed)


def main(argv=None) -> int:
    return run(parse_args(argv), "mambahsi", convert_args, log, io=IO)


if __name__ == "__main__":
    sys.exit(main())
