"""Convert HyperSIGMA checkpoints (PyTorch) into a Flax checkpoint hsic-jax loads.

    python -m convert hypersigma --spatial spat-vit-base-ultra-checkpoint-1599.pth \\
        --spectral spec-vit-base-ultra-checkpoint-1599.pth --num-classes 16 \\
        --out checkpoints/hypersigma_indian_pines
    python -m convert hypersigma --checkpoint weights/model.pth --out checkpoints/hypersigma_ft

Two kinds of input:

Pretrained encoders (`--spatial` and `--spectral`): the MAE checkpoints the HyperSIGMA
authors distribute (`spat-vit-{base,large,huge}-ultra-checkpoint-1599.pth`,
`spec-vit-...`), as the official pretraining (`Pretrain/util/misc.save_model`) writes them:
`{'model': state_dict, 'optimizer', 'epoch', 'scaler', 'args'}` (a bare state_dict, one under
'state_dict', and a 'module.' prefix are taken too). The weights are transferred as the
official classification notebook (`ImageClassification/demo cls hypersigma.ipynb`) does:

  spatial   keys with `patch_embed.proj`, `spat_map`, `spat_output_maps` or `pos_embed` are
            deleted (the patch embedding of 100 pretraining bands and the 8 × 8 position
            table of 64-pixel pretraining images fit neither 30 PCA components nor a 16 × 16
            grid; the notebook does not interpolate), the rest is prefixed `spat_encoder.`;
  spectral  keys with `patch_embed.proj`, `spat_map` (64² pretraining pixels) or
            `fpn1.0.weight` are deleted, the rest prefixed `spec_encoder.`;

then only keys of `SSFusionFramework` are kept (the MAE decoder, `decoder_*` and
`mask_token`, falls away) and must fit its shapes: the transformer blocks of both encoders,
their final norms, the spectral position table (1, 100, width) when its token count matches
(it must: the notebook's `load_state_dict` fails otherwise), and `sampling_offsets` of the
sampling-attention blocks if the checkpoint has them (the MAE pretraining code trains plain
attention, so they are usually initialised fresh). Everything else (patch embedding,
position table and FPN of the spatial ViT, `spat_map` and `l1` of the spectral ViT, the
fusion and the classifier) is initialised fresh, as the official model initialises it (the
parameters that never reach the logits, `backbone/unused`, to zero).
`--num-classes` is needed (the classifier and, inside the backbone, the unused spatial
classifiers have C + 1 outputs). The official `SpecViT.init_weights` (unused by the
classifier) would interpolate the spectral `pos_embed` after dropping its first row; the
notebook loads it as it is, and so does this.

A fine-tuned `SSFusionFramework` (`--checkpoint`): the bare `model.state_dict()` the
notebook saves (`weights/model.pth`), or one under 'model' / 'state_dict'; every key must map,
none may be missing. Its architecture comes from the weights (width, depth, patch size,
bands, image size, spectral tokens, sampling points, classes = rows of `classifier.4` - 1);
`--num-classes` other than the checkpoint's replaces the classifier (and the unused spatial
classifiers) with fresh ones.

Heads, the attention interval and the fused blocks are not in the weights: they are the
official model size's for the checkpoint's width (768 base, 1024 large, 1280 huge) unless
given (`--heads`, `--interval`, `--out-indices`). The classifier's background output (row 0
of `classifier.4`) goes to `head/background` (see `hsic_jax.models.hypersigma`). Anything that does not fit is refused with one line naming the
key (and its shapes) or the file. `--out` follows the rules of `convert.spectralgpt`.
"""

import argparse
import logging
import math
import re
import sys
from collections.abc import Callable, Mapping

import numpy as np

from convert.common import (ConversionError, heads_argument, heads_by_width, linear,
                            load_state_dict, mapped, param_shapes, params_and_report, parser,
                            run, same)
from hsic_jax.models.hypersigma import FPN, VARIANTS, check_geometry, model_from_config

# Where a checkpoint keeps its state_dict: the official pretraining saves {'model': ..., ...};
# the notebook's fine-tuned weights are bare.
WRAPPERS = ("model", "state_dict")

log = logging.getLogger("convert.hypersigma")

# What the converted model takes and gives, over the fields of its config (logged by `run`).
IO = ("(N, {img_size}, {img_size}, {bands}) patches -> (N, {num_classes}) logits "
      "(official output c + 1 is our class c)")

OFFICIAL = dict(img_size=33, bands=30, patch_size=2, num_tokens=100, n_points=8,
                drop_path=0.1, dropout=0.4)

# What the official notebook deletes from each pretrained checkpoint (substrings of keys),
# before prefixing them with the encoder's name.
NOTEBOOK_DELETES = {"spatial": ("patch_embed.proj", "spat_map", "spat_output_maps", "pos_embed"),
                    "spectral": ("patch_embed.proj", "spat_map", "fpn1.0.weight", "patch_embed")}
PREFIX = {"spatial": "spat_encoder.", "spectral": "spec_encoder."}
# Transformer-block tensors a pretrained encoder must provide.
BLOCK_CORE = ("norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias",
              "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias",
              "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias")


# ---------------------------------------------------------------- transforms (torch → Flax)

def _pointwise(w):  # Conv2d (out, in, 1, 1) or Conv1d (out, in, 1) -> (in, out)
    w = np.asarray(w)
    if w.ndim not in (3, 4) or any(s != 1 for s in w.shape[2:]):
        raise ValueError("expected a 1 × 1 convolution weight (out, in, 1[, 1])")
    return w.reshape(w.shape[0], w.shape[1]).T


def _conv(w):  # Conv2d (out, in, kh, kw) -> (kh, kw, in, out)
    w = np.asarray(w)
    if w.ndim != 4:
        raise ValueError("expected a Conv2d weight (out, in, kh, kw)")
    return w.transpose(2, 3, 1, 0)


def _conv_transpose(w):  # ConvTranspose2d (in, out, 2, 2) -> (2, 2, in, out)
    w = np.asarray(w)
    if w.ndim != 4 or w.shape[2:] != (2, 2):
        raise ValueError("expected a ConvTranspose2d weight (in, out, 2, 2)")
    return w.transpose(2, 3, 0, 1)


def _rows(start, stop, transform):  # a slice of the output rows of a Linear weight or bias
    return lambda w: transform(np.asarray(w)[start:stop])


# ---------------------------------------------------------------- the key map

def _block_keys(torch_prefix: str, flax_prefix: str, sample: bool) -> dict:
    m = {}
    for norm in ("norm1", "norm2"):
        m[f"{torch_prefix}{norm}.weight"] = [(f"{flax_prefix}/{norm}/scale", same)]
        m[f"{torch_prefix}{norm}.bias"] = [(f"{flax_prefix}/{norm}/bias", same)]
    layers = ["attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"]
    if sample:
        layers.append("attn.sampling_offsets")
    for layer in layers:
        path = f"{flax_prefix}/{layer.replace('.', '/')}"
        m[f"{torch_prefix}{layer}.weight"] = [(f"{path}/kernel", linear)]
        m[f"{torch_prefix}{layer}.bias"] = [(f"{path}/bias", same)]
    return m


def _dense_keys(torch_name: str, flax_path: str, transform=linear, bias=True) -> dict:
    m = {f"{torch_name}.weight": [(f"{flax_path}/kernel", transform)]}
    if bias:
        m[f"{torch_name}.bias"] = [(f"{flax_path}/bias", same)]
    return m


def key_map(arch: Mapping) -> dict[str, list[tuple[str, Callable]]]:
    """Every key of an official `SSFusionFramework` of `arch` → [(Flax path, transform)]
    (two targets for `classifier.4.*`: its background row and the class rows)."""
    depth, interval, last = arch["depth"], arch["interval"], arch["out_indices"][0]
    classes = arch["num_classes"] + 1
    m: dict = {}
    # spatial ViT
    m.update(_dense_keys("spat_encoder.patch_embed.proj", "backbone/spat_patch_embed", _conv))
    m["spat_encoder.pos_embed"] = [("backbone/spat_pos_embed", same)]
    for i in range(depth):
        m.update(_block_keys(f"spat_encoder.blocks.{i}.", f"backbone/spat_block_{i}",
                             (i + 1) % interval != 0))
    m["spat_encoder.norm.weight"] = [("backbone/unused/spat_norm/scale", same)]
    m["spat_encoder.norm.bias"] = [("backbone/unused/spat_norm/bias", same)]
    for j, op in enumerate(FPN[arch["patch_size"]]):
        if op == "up":
            m.update(_dense_keys(f"spat_encoder.fpn{j + 1}.0", f"backbone/spat_fpn{j + 1}",
                                 _conv_transpose))
    for name in ("classifier", "classifier1"):
        for j in range(3):
            m.update(_dense_keys(f"spat_encoder.{name}.{j}", f"backbone/unused/spat_{name}_{j}"))
    m.update(_dense_keys("spat_encoder.cls", "backbone/unused/spat_cls", _pointwise))
    # spectral ViT
    m.update(_dense_keys("spec_encoder.spat_map", "backbone/spec_spat_map"))
    m["spec_encoder.pos_embed"] = [("backbone/spec_pos_embed", same)]
    for i in range(depth):
        where = f"backbone/spec_block_{i}" if i <= last else f"backbone/unused/spec_block_{i}"
        m.update(_block_keys(f"spec_encoder.blocks.{i}.", where, (i + 1) % interval != 0))
    m["spec_encoder.norm.weight"] = [("backbone/unused/spec_norm/scale", same)]
    m["spec_encoder.norm.bias"] = [("backbone/unused/spec_norm/bias", same)]
    for j in range(4):
        for which in "qkv":
            m.update(_dense_keys(f"spec_encoder.conv_{which}.{j}",
                                 f"backbone/unused/spec_conv_{which}_{j}", _pointwise))
    m.update(_dense_keys("spec_encoder.l1", "backbone/spec_l1", bias=False))
    # fusion and classifier
    m.update(_dense_keys("conv_features", "backbone/unused/conv_features", _pointwise, bias=False))
    m.update(_dense_keys("conv", "backbone/unused/conv", _pointwise))
    for k in range(1, 5):
        m.update(_dense_keys(f"DR{k}", f"backbone/DR{k}", _pointwise, bias=False))
        m.update(_dense_keys(f"fc_spec{k}.0", f"backbone/fc_spec{k}/squeeze", bias=False))
        m.update(_dense_keys(f"fc_spec{k}.2", f"backbone/fc_spec{k}/excite", bias=False))
    m.update(_dense_keys("classifier.0", "head/fc_0"))
    m.update(_dense_keys("classifier.2", "head/fc_1"))
    m["classifier.4.weight"] = [("head/background/kernel", _rows(0, 1, linear)),
                                ("head/kernel", _rows(1, classes, linear))]
    m["classifier.4.bias"] = [("head/background/bias", _rows(0, 1, same)),
                              ("head/bias", _rows(1, classes, same))]
    return m


# ---------------------------------------------------------------- loading

# ---------------------------------------------------------------- architecture

def _variant(width: int, path: str, key: str, shape, heads, interval, out_indices) -> dict:
    """Heads, interval and fused blocks: the flags, else the official model size's for `width`."""
    preset = next((v for v in VARIANTS.values() if v["width"] == width), None)
    if preset is None and None in (heads, interval, out_indices):
        raise ConversionError(f"{path}: key {key} {tuple(shape)} has width {width}, which is "
                              f"no official model size (widths "
                              f"{sorted(v['width'] for v in VARIANTS.values())}); pass --heads, "
                              "--interval and --out-indices")
    preset = preset or {}
    return dict(heads=heads or preset["heads"], interval=interval or preset["interval"],
                out_indices=tuple(out_indices or preset["out_indices"]), depth=preset.get("depth"))


def _depth(sd: Mapping, prefix: str) -> int:
    found = {int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))}
    return max(found) + 1 if found else 0


def _need(sd: Mapping, key: str, path: str, what: str) -> np.ndarray:
    if key not in sd:
        raise ConversionError(f"{path}: key {key} is missing; this is not {what}")
    return sd[key]


def _points(sd: Mapping, prefix: str, depth: int, interval: int, heads: int,
            path: str, default: int | None) -> int | None:
    """The sampling points of the blocks' `sampling_offsets` (heads · points · 2 outputs):
    the checkpoint's, else `default` (None when neither says)."""
    for i in range(depth):
        key = f"{prefix}{i}.attn.sampling_offsets.weight"
        if key in sd:
            out = sd[key].shape[0]
            if out % (2 * heads):
                raise ConversionError(f"{path}: key {key} has shape {tuple(sd[key].shape)}, whose "
                                      f"{out} outputs are not heads ({heads}) × points × 2")
            points = out // (2 * heads)
            if default is not None and default != points:
                raise ConversionError(f"{path}: key {key} has shape {tuple(sd[key].shape)}: "
                                      f"{points} sampling points, not --n-points {default}")
            return points
    return default


def infer_full(sd: Mapping, path: str, *, heads=None, interval=None, out_indices=None,
               n_points=None) -> dict:
    """The architecture of a fine-tuned `SSFusionFramework` state_dict."""
    what = "a state_dict of the official SSFusionFramework"
    embed = _need(sd, "spat_encoder.patch_embed.proj.weight", path, what)
    if embed.ndim != 4 or embed.shape[2] != embed.shape[3]:
        raise ConversionError(f"{path}: key spat_encoder.patch_embed.proj.weight has shape "
                              f"{tuple(embed.shape)}; expected (width, bands, patch, patch)")
    width, bands, patch = embed.shape[:3]
    spat_map = _need(sd, "spec_encoder.spat_map.weight", path, what)
    img = math.isqrt(spat_map.shape[-1]) if spat_map.ndim == 2 else 0
    if spat_map.ndim != 2 or img * img != spat_map.shape[1] or spat_map.shape[0] != width:
        raise ConversionError(f"{path}: key spec_encoder.spat_map.weight has shape "
                              f"{tuple(spat_map.shape)}; expected ({width}, img_size²)")
    pos = _need(sd, "spec_encoder.pos_embed", path, what)
    if pos.ndim != 3 or pos.shape[0] != 1 or pos.shape[2] != width:
        raise ConversionError(f"{path}: key spec_encoder.pos_embed has shape {tuple(pos.shape)}; "
                              f"expected (1, tokens, {width})")
    head = _need(sd, "classifier.4.weight", path, what)
    if head.ndim != 2 or head.shape[0] < 2:
        raise ConversionError(f"{path}: key classifier.4.weight has shape {tuple(head.shape)}; "
                              "expected (classes + 1, 128)")
    v = _variant(width, path, "spat_encoder.patch_embed.proj.weight", embed.shape, heads,
                 interval, out_indices)
    depth = _depth(sd, "spat_encoder.blocks.")
    fc1 = _need(sd, "spat_encoder.blocks.0.mlp.fc1.weight", path, what)
    arch = dict(img_size=img, bands=bands, patch_size=patch, width=width, depth=depth,
                heads=v["heads"], mlp_ratio=fc1.shape[0] / width, interval=v["interval"],
                out_indices=v["out_indices"],
                n_points=_points(sd, "spat_encoder.blocks.", depth, v["interval"], v["heads"],
                                 path, n_points) or OFFICIAL["n_points"],
                num_tokens=pos.shape[1],
                spat_classifier_in=_need(sd, "spat_encoder.classifier.0.weight", path, what).shape[1],
                spat_classifier1_in=_need(sd, "spat_encoder.classifier1.0.weight", path, what).shape[1],
                num_classes=head.shape[0] - 1)
    return arch


def infer_pretrained(spatial: Mapping, spectral: Mapping, paths: Mapping[str, str], *,
                     num_classes: int, img_size: int, bands: int, patch_size: int,
                     num_tokens: int, heads=None, interval=None, out_indices=None,
                     n_points=None) -> dict:
    """The architecture of a classifier on the pretrained encoders (their width, depth and
    sampling points; the input geometry and classes from the flags)."""
    dims = {}
    for role, sd in (("spatial", spatial), ("spectral", spectral)):
        qkv = _need(sd, "blocks.0.attn.qkv.weight", paths[role],
                    f"a HyperSIGMA {role} ViT checkpoint")
        if qkv.ndim != 2 or qkv.shape[0] != 3 * qkv.shape[1]:
            raise ConversionError(f"{paths[role]}: key blocks.0.attn.qkv.weight has shape "
                                  f"{tuple(qkv.shape)}; expected (3 · width, width)")
        dims[role] = (qkv.shape[1], _depth(sd, "blocks."))
    if dims["spatial"] != dims["spectral"]:
        raise ConversionError(f"{paths['spectral']}: width × depth {dims['spectral']} (key "
                              f"blocks.0.attn.qkv.weight) differ from the spatial checkpoint's "
                              f"{dims['spatial']}; SSFusionFramework builds both alike")
    width, depth = dims["spatial"]
    v = _variant(width, paths["spatial"], "blocks.0.attn.qkv.weight",
                 spatial["blocks.0.attn.qkv.weight"].shape, heads, interval, out_indices)
    if v["depth"] is not None and v["depth"] != depth and None in (heads, interval, out_indices):
        raise ConversionError(f"{paths['spatial']}: missing key blocks.{depth}.attn.qkv.weight: "
                              f"{depth} blocks, the official width-{width} model has {v['depth']}")
    fc1 = spatial.get("blocks.0.mlp.fc1.weight")
    points = {role: _points(sd, "blocks.", depth, v["interval"], v["heads"], paths[role], n_points)
              for role, sd in (("spatial", spatial), ("spectral", spectral))}
    if None not in points.values() and points["spatial"] != points["spectral"]:
        raise ConversionError(f"{paths['spectral']}: {points['spectral']} sampling points per "
                              f"head (sampling_offsets), the spatial checkpoint "
                              f"{points['spatial']}; SSFusionFramework builds both alike")
    found = points["spatial"] or points["spectral"] or OFFICIAL["n_points"]
    return dict(img_size=img_size, bands=bands, patch_size=patch_size, width=width, depth=depth,
                heads=v["heads"], mlp_ratio=(fc1.shape[0] / width if fc1 is not None else 4.0),
                interval=v["interval"], out_indices=v["out_indices"], n_points=found,
                num_tokens=num_tokens, spat_classifier_in=49152, spat_classifier1_in=3072,
                num_classes=num_classes)


# ---------------------------------------------------------------- conversion

def _model_and_shapes(arch: Mapping, path: str, seed: int):
    config = dict(arch, drop_path=OFFICIAL["drop_path"], dropout=OFFICIAL["dropout"])
    try:
        check_geometry(arch["img_size"], arch["patch_size"], arch["width"], arch["heads"],
                       arch["depth"], arch["interval"], tuple(arch["out_indices"]),
                       arch["num_tokens"], arch["num_classes"])
    except ValueError as e:
        raise ConversionError(f"{path}: {e}") from e
    model = model_from_config(config)
    return (config, model, *param_shapes(model, seed))


def _place(params: dict, km: dict, key: str, value, mapping, expected, where: str,
           skip: Callable[[str], bool] = lambda t: False) -> None:
    for target, transform in mapping[key]:
        if skip(target):
            continue
        params[target] = mapped(key, value, target, transform, expected, where)
        km.setdefault(key, []).append(target)


def convert_full(sd: Mapping[str, np.ndarray], path: str, *, num_classes: int | None = None,
                 heads=None, interval=None, out_indices=None, n_points=None,
                 seed: int = 0) -> tuple[dict, dict]:
    """Map a fine-tuned `SSFusionFramework` state_dict onto the Flax params; `(params, report)`."""
    arch = infer_full(sd, path, heads=heads, interval=interval, out_indices=out_indices,
                      n_points=n_points)
    ckpt_classes = arch["num_classes"]
    if num_classes is not None:
        if num_classes < 1:
            raise ConversionError(f"--num-classes {num_classes}: expected an integer >= 1")
        arch["num_classes"] = num_classes
    config, model, x, expected = _model_and_shapes(arch, path, seed)
    mapping = key_map({**arch, "num_classes": ckpt_classes})
    targets = {t for pairs in mapping.values() for t, _ in pairs}
    assert targets == set(expected), sorted(targets ^ set(expected))[:5]
    new_head = ckpt_classes != arch["num_classes"]
    class_dependent = lambda t: t.startswith("head/") or any(
        t.startswith(f"backbone/unused/{n}") for n in ("spat_classifier", "spat_cls"))
    class_keys = {k for k, pairs in mapping.items() if any(class_dependent(t) for t, _ in pairs)}
    log.info("mapping %d tensors onto the model", len(sd))
    params, km, dropped = {}, {}, []
    for key, value in sd.items():
        if key not in mapping:
            raise ConversionError(f"{path}: key {key} {tuple(value.shape)} is not part of an "
                                  f"official SSFusionFramework of depth {arch['depth']} and "
                                  f"interval {arch['interval']} (no Flax parameter to map it to)")
        if new_head and key in class_keys:
            dropped.append(key)
            continue
        _place(params, km, key, value, mapping, expected, path)
    missing = [k for k in mapping if k not in sd and not (new_head and k in class_keys)]
    if missing:
        raise ConversionError(f"{path}: missing key {missing[0]} ({len(missing)} tensors of the "
                              "official model missing in all)")
    return params_and_report(params, expected, model, x, seed, config, km, dropped)


def _check_classes(num_classes: int | None) -> None:
    """Refuse a classifier on pretrained encoders without a class count of at least 1."""
    if num_classes is None or num_classes < 1:
        raise ConversionError("pretrained encoders have no classifier: pass --num-classes C "
                              "(the scene's classes, without background)")


def convert_pretrained(spatial: Mapping[str, np.ndarray], spectral: Mapping[str, np.ndarray],
                       paths: Mapping[str, str], *, num_classes: int,
                       img_size: int = OFFICIAL["img_size"], bands: int = OFFICIAL["bands"],
                       patch_size: int = OFFICIAL["patch_size"],
                       num_tokens: int = OFFICIAL["num_tokens"], heads=None, interval=None,
                       out_indices=None, n_points=None, seed: int = 0) -> tuple[dict, dict]:
    """The classifier on the pretrained spatial and spectral encoders, transferred as the
    official notebook does (module docstring); `(params, report)`. Keys in the report are the
    notebook's, prefixed `spat_encoder.` / `spec_encoder.`."""
    _check_classes(num_classes)
    arch = infer_pretrained(spatial, spectral, paths, num_classes=num_classes,
                            img_size=img_size, bands=bands, patch_size=patch_size,
                            num_tokens=num_tokens, heads=heads, interval=interval,
                            out_indices=out_indices, n_points=n_points)
    config, model, x, expected = _model_and_shapes(arch, paths["spatial"], seed)
    mapping = key_map(arch)
    params, km, dropped = {}, {}, []
    for role, sd in (("spatial", spatial), ("spectral", spectral)):
        for i in range(arch["depth"]):
            for name in BLOCK_CORE:
                if f"blocks.{i}.{name}" not in sd:
                    raise ConversionError(f"{paths[role]}: missing key blocks.{i}.{name} (the "
                                          f"{role} ViT's {arch['depth']} blocks are pretrained)")
        for key, value in sd.items():
            full = PREFIX[role] + key
            if any(f in key for f in NOTEBOOK_DELETES[role]) or full not in mapping:
                dropped.append(full)  # deleted by the notebook, or not part of the classifier
                continue
            if full == "spec_encoder.pos_embed" and value.shape != tuple(expected["backbone/spec_pos_embed"]):
                raise ConversionError(f"{paths[role]}: key pos_embed has shape {tuple(value.shape)}; "
                                      f"the model expects {tuple(expected['backbone/spec_pos_embed'])} "
                                      f"({num_tokens} spectral tokens): pass --num-tokens "
                                      f"{value.shape[1] if value.ndim == 3 else '?'}")
            _place(params, km, full, value, mapping, expected, paths[role])
    return params_and_report(params, expected, model, x, seed, config, km, dropped)


# ---------------------------------------------------------------- command line

def _indices(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(","))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated block indices, got {text!r}") from e


def parse_args(argv=None) -> argparse.Namespace:
    p = parser("hypersigma",
               "Convert HyperSIGMA checkpoints into a Flax checkpoint folder for hsic-jax: "
               "the pretrained spatial and spectral encoders (--spatial, --spectral), "
               "transferred as the official classification notebook does, or a fine-tuned "
               "SSFusionFramework state_dict (--checkpoint).",
               "a fine-tuned SSFusionFramework state_dict (bare, as the official notebook "
               "saves it, or under 'model' / 'state_dict'); or give --spatial and --spectral",
               checkpoint_required=False)
    p.add_argument("--spatial", metavar="FILE.pth",
                   help="pretrained spatial ViT, e.g. spat-vit-base-ultra-checkpoint-1599.pth")
    p.add_argument("--spectral", metavar="FILE.pth",
                   help="pretrained spectral ViT, e.g. spec-vit-base-ultra-checkpoint-1599.pth")
    p.add_argument("--num-classes", type=int, default=None,
                   help="classes of the scene, without background (the official classifier has "
                        "one more output); needed with --spatial/--spectral; with --checkpoint, "
                        "a number other than the checkpoint's replaces its classifiers")
    p.add_argument("--img-size", type=int, default=OFFICIAL["img_size"],
                   help="input patch size in pixels, with --spatial/--spectral (default 33, "
                        "the official notebook's)")
    p.add_argument("--bands", type=int, default=OFFICIAL["bands"],
                   help="input bands (PCA components), with --spatial/--spectral (default 30)")
    p.add_argument("--patch-size", type=int, default=OFFICIAL["patch_size"], choices=sorted(FPN),
                   help="spatial ViT patch size, with --spatial/--spectral (default 2)")
    p.add_argument("--num-tokens", type=int, default=OFFICIAL["num_tokens"],
                   help="spectral tokens, with --spatial/--spectral (default 100, the official "
                        "NUM_TOKENS; must match the spectral checkpoint's pos_embed)")
    p.add_argument("--n-points", type=int, default=None,
                   help="sampling points per head (default: the checkpoint's sampling_offsets, "
                        "else 8, the official)")
    heads_argument(p, f"the official model size's for the width: {heads_by_width(VARIANTS)}")
    p.add_argument("--interval", type=int, default=None,
                   help="block i has full attention when (i + 1) %% interval == 0, sampling "
                        "attention otherwise (default: the official 3 / 6 / 8)")
    p.add_argument("--out-indices", type=_indices, default=None, metavar="I,J,K,L",
                   help="the four fused blocks (default: the official 3,5,7,11 / 7,11,15,23 / "
                        "10,15,20,31); the spectral ViT's feature is the first")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the parameters that are initialised fresh")
    return p.parse_args(argv)


def convert_args(args: argparse.Namespace) -> tuple[dict, dict]:
    """`convert_pretrained` of `--spatial` and `--spectral`, or `convert_full` of `--checkpoint`,
    with the options the command line names."""
    flags = dict(heads=args.heads, interval=args.interval, out_indices=args.out_indices,
                 n_points=args.n_points, seed=args.seed)
    if args.checkpoint is not None:
        return convert_full(load_state_dict(args.checkpoint, WRAPPERS), args.checkpoint,
                            num_classes=args.num_classes, **flags)
    _check_classes(args.num_classes)  # before reading the encoders
    spatial = load_state_dict(args.spatial, WRAPPERS)
    spectral = load_state_dict(args.spectral, WRAPPERS)
    return convert_pretrained(spatial, spectral, _sources(args), num_classes=args.num_classes,
                              img_size=args.img_size, bands=args.bands,
                              patch_size=args.patch_size, num_tokens=args.num_tokens, **flags)


def _sources(args: argparse.Namespace) -> dict[str, str] | None:
    """`{role: path}` of the pretrained encoders, or None for a fine-tuned `--checkpoint`."""
    if args.checkpoint is not None:
        return None
    return {"spatial": args.spatial, "spectral": args.spectral}


def main(argv=None) -> int:
    args = parse_args(argv)
    pretrained = args.spatial is not None or args.spectral is not None
    if pretrained == (args.checkpoint is not None) or (pretrained and None in (args.spatial,
                                                                                args.spectral)):
        print("error: give either --checkpoint (a fine-tuned SSFusionFramework) or both "
              "--spatial and --spectral (the pretrained encoders)", file=sys.stderr)
        return 2
    return run(args, "hypersigma", convert_args, log, sources=_sources(args), io=IO)


if __name__ == "__main__":
    sys.exit(main())
