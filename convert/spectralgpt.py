"""Convert a PyTorch SpectralGPT checkpoint into a Flax checkpoint that hsic-jax loads.

    python -m convert.spectralgpt --checkpoint SpectralGPT+.pth --out checkpoints/spectralgpt_plus_32

Accepts the pre-training checkpoints `SpectralGPT.pth` / `SpectralGPT+.pth` (encoder +
MAE decoder, separable position embeddings) and checkpoints written by the official
fine-tuning script (joint `pos_embed`, `head.*`). Every encoder tensor is mapped and
transposed to Flax layout onto `backbone/...` (and `head/...`); the MAE decoder of a
pre-training checkpoint (`mask_token`, `decoder_*`) is kept too, mapped onto `decoder/...` of
`hsic_jax.models.spectralgpt.SpectralMAE` (its width and depth read off the tensors, its heads
`--decoder-heads`; the manifest records them as `decoder`); a fine-tune checkpoint has no
decoder and its params no `decoder` subtree. Spatial position grids (the encoder's and the
decoder's) are resampled to the requested image size with PyTorch's bicubic kernel.
Anything that does not fit is refused with a one-line message naming the key or file. The
output folder holds an orbax checkpoint (`params/`) and `manifest.json` (source sha256,
model config, decoder architecture, key map, dropped and re-initialised keys). `--out` must
be a new or empty folder, or an earlier conversion with `--replace` (replaced only once the
new one is complete); anything else, the current folder and a folder holding the checkpoint
are refused before any work.
"""

import argparse
import logging
import re
import sys
from collections.abc import Callable, Mapping

import jax
import numpy as np

from convert.common import (ConversionError, head_classes, heads_argument, heads_by_width,
                            import_torch, linear, mapped, param_shapes, parser, read_checkpoint,
                            run, same, unflatten)
from hsic_jax.models.posemb import resample_grid, resample_joint
from hsic_jax.models.spectralgpt import VARIANTS, SpectralMAE, check_geometry, model_from_config

log = logging.getLogger("convert.spectralgpt")

# What the converted model takes and gives, over the fields of its config (logged by `run`).
IO = ("(N, {img_size}, {img_size}, {bands}) patches of normalised bands (PCA "
      "components) -> (N, {num_classes}) logits")

# Keys of the MAE pre-training decoder (present in SpectralGPT(+).pth): mapped onto `decoder/`.
DECODER = re.compile(r"^(decoder_|mask_token$)")
DECODER_HEADS = 16  # the official decoder's (`decoder_num_heads`); not stored in the weights

POS_KEYS = ("pos_embed", "pos_embed_spatial", "pos_embed_temporal")


def _conv3d(w):  # (D, 1, t, p, p) -> (t, p, p, 1, D)
    return np.asarray(w).transpose(2, 3, 4, 1, 0)


def _weight_and_bias(torch_layer: str, flax_layer: str, weight: Callable = linear,
                     flax_weight: str = "kernel") -> tuple[tuple[str, str, Callable], ...]:
    """The two entries of a torch layer with a weight and a bias (a `Linear` by default):
    `{torch_layer}.weight` / `.bias` onto `{flax_layer}/{flax_weight}` / `/bias`."""
    return ((torch_layer + r"\.weight", f"{flax_layer}/{flax_weight}", weight),
            (torch_layer + r"\.bias", flax_layer + "/bias", same))


def _layer_norm(torch_layer: str, flax_layer: str) -> tuple[tuple[str, str, Callable], ...]:
    """A torch `LayerNorm`'s weight and bias onto the Flax `LayerNorm`'s scale and bias."""
    return _weight_and_bias(torch_layer, flax_layer, same, "scale")


def _blocks_and_norm(torch_prefix: str, flax_prefix: str) -> tuple[tuple[str, str, Callable], ...]:
    """The entries of a stack of `Block`s and the norm after it (the encoder's and the MAE
    decoder's are the same layout): torch `{torch_prefix}blocks.i.…` and `{torch_prefix}norm.…`
    onto `{flax_prefix}/block_i/…` and `{flax_prefix}/norm/…`."""
    t, f = re.escape(torch_prefix) + r"blocks\.(\d+)\.", flax_prefix + "/block_{0}/"
    return (*_layer_norm(t + "(norm1|norm2)", f + "{1}"),
            *_weight_and_bias(t + r"attn\.(q|k|v|proj)", f + "attn/{1}"),
            *_weight_and_bias(t + r"mlp\.(fc1|fc2)", f + "mlp/{1}"),
            *_layer_norm(re.escape(torch_prefix) + "norm", flax_prefix + "/norm"))


# (torch key pattern, Flax path template, transform). Groups of the pattern fill the template.
KEY_MAP: tuple[tuple[str, str, Callable], ...] = (
    *_weight_and_bias(r"patch_embed\.proj", "backbone/patch_embed", _conv3d),
    (r"(pos_embed|pos_embed_spatial|pos_embed_temporal)", "backbone/{0}", same),
    *_blocks_and_norm("", "backbone"),
    *_weight_and_bias("head", "head"),
)

# The official MAE decoder (sep_pos_embed=True, cls_embed=False) onto `SpectralMAE`'s `decoder`.
DECODER_MAP: tuple[tuple[str, str, Callable], ...] = (
    (r"mask_token", "decoder/mask_token", same),
    *_weight_and_bias("decoder_embed", "decoder/embed"),
    (r"decoder_(pos_embed_spatial|pos_embed_temporal)", "decoder/{0}", same),
    *_blocks_and_norm("decoder_", "decoder"),
    *_weight_and_bias("decoder_pred", "decoder/pred"),
)


def flax_path(key: str) -> tuple[str, Callable] | None:
    """The Flax path (`'a/b/c'`) and transform of a torch encoder or decoder key, or None if
    unknown."""
    for pattern, template, transform in DECODER_MAP if DECODER.match(key) else KEY_MAP:
        m = re.fullmatch(pattern, key)
        if m:
            return template.format(*m.groups()), transform
    return None


def load_state_dict(path: str) -> tuple[dict[str, np.ndarray], dict]:
    """`checkpoint['model']` of a `.pth` file as float32 numpy arrays, and its `args` as a dict
    (read by `convert.common.read_checkpoint`)."""
    torch = import_torch()
    ckpt = read_checkpoint(path)
    if "model" not in ckpt:
        raise ConversionError(f"{path} has no 'model' entry (top-level keys: {sorted(ckpt)[:8]}); "
                              "expected {'model': state_dict, ...} as the SpectralGPT scripts save it")
    sd = ckpt["model"]
    if not isinstance(sd, Mapping) or not all(torch.is_tensor(v) for v in sd.values()):
        raise ConversionError(f"{path}: checkpoint['model'] is not a state_dict of tensors")
    args = vars(ckpt["args"]) if isinstance(ckpt.get("args"), argparse.Namespace) else {}
    return {k: v.detach().to(torch.float32).numpy() for k, v in sd.items()}, args


def infer_architecture(sd: Mapping[str, np.ndarray], path: str, heads: int | None = None) -> dict:
    """Width, depth, patch size, tubelet and MLP ratio read off the encoder tensors.

    The number of heads leaves no trace in the weights: it is the official variant's for
    the checkpoint's width unless given.
    """
    fused = sorted(k for k in sd if ".attn.to_qkv." in k or ".attn.qkv." in k)
    if fused:
        raise ConversionError(
            f"{path}: key {fused[0]} is a fused qkv projection, from SpectralGPT code before "
            "commit 9f8a632 (issue #17 of the official repo); only separate attn.q/k/v checkpoints "
            "are supported")
    if "patch_embed.proj.weight" not in sd:
        raise ConversionError(f"{path}: key patch_embed.proj.weight is missing; this is not a "
                              "SpectralGPT encoder checkpoint")
    w = sd["patch_embed.proj.weight"]
    if w.ndim != 5 or w.shape[1] != 1 or w.shape[3] != w.shape[4]:
        raise ConversionError(f"{path}: key patch_embed.proj.weight has shape {w.shape}; expected "
                              "(width, 1, tubelet, patch, patch) of a 3-D tubelet embedding")
    width, _, tubelet, patch, _ = w.shape
    depth = len({int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))})
    if heads is None:
        heads = {v["width"]: v["heads"] for v in VARIANTS.values()}.get(width)
    if heads is None:
        raise ConversionError(f"{path}: width {width} (patch_embed.proj.weight) matches no "
                              f"SpectralGPT variant (widths {sorted(v['width'] for v in VARIANTS.values())}); "
                              "pass --heads")
    mlp = sd.get("blocks.0.mlp.fc1.weight")
    mlp_ratio = mlp.shape[0] / width if mlp is not None else 4.0
    return dict(width=width, depth=depth, heads=heads, patch_size=patch, tubelet=tubelet,
                mlp_ratio=mlp_ratio)


def _checkpoint_groups(sd: Mapping[str, np.ndarray], patch: int,
                       source_img_size: int | None) -> tuple[int, str] | None:
    """Spectral groups T' the checkpoint was trained with, and the key that says so, if known.

    A joint `pos_embed` (T'·G² tokens) tells T' only with the source image size (the
    official scripts' `args.input_size`).
    """
    if "pos_embed_temporal" in sd:
        return sd["pos_embed_temporal"].shape[1], "pos_embed_temporal"
    if "pos_embed" in sd and source_img_size:
        return sd["pos_embed"].shape[1] // (source_img_size // patch) ** 2, "pos_embed"
    return None


def infer_decoder(sd: Mapping[str, np.ndarray], path: str, heads: int = DECODER_HEADS) -> dict | None:
    """Width and depth of the MAE decoder read off its tensors (`mask_token`, `decoder_*`), with
    `heads`; None for a checkpoint without one (fine-tuned)."""
    keys = [k for k in sd if DECODER.match(k)]
    if not keys:
        return None
    source = next((k for k in ("decoder_embed.weight", "mask_token") if k in sd), None)
    if source is None:
        raise ConversionError(f"{path}: missing key decoder_embed.weight (the checkpoint has "
                              f"{len(keys)} MAE decoder tensors, e.g. {sorted(keys)[0]})")
    width = sd[source].shape[0] if source == "decoder_embed.weight" else sd[source].shape[-1]
    blocks = {int(m.group(1)) for k in keys if (m := re.match(r"decoder_blocks\.(\d+)\.", k))}
    depth = max(blocks) + 1 if blocks else 0
    if heads < 1 or width % heads:
        raise ConversionError(f"{path}: decoder width {width} ({source} {tuple(sd[source].shape)}) "
                              f"is not divisible by {heads} heads; pass --decoder-heads")
    return dict(width=int(width), depth=depth, heads=heads)


def _decoder_shapes(arch: Mapping, decoder: Mapping, img_size: int, bands: int) -> dict:
    """The shapes of `SpectralMAE`'s `decoder` params by '/'-joined path (`decoder/...`)."""
    mae = SpectralMAE(img_size=img_size, patch_size=arch["patch_size"], tubelet=arch["tubelet"],
                      bands=bands, width=arch["width"], depth=arch["depth"], heads=arch["heads"],
                      mlp_ratio=arch["mlp_ratio"], decoder_width=decoder["width"],
                      decoder_depth=decoder["depth"], decoder_heads=decoder["heads"])
    return {k: v for k, v in param_shapes(mae)[1].items() if k.startswith("decoder/")}


def convert(sd: Mapping[str, np.ndarray], path: str, *, img_size: int, bands: int,
            num_classes: int | None, pos_embed: str, heads: int | None = None,
            source_img_size: int | None = None, seed: int = 0,
            decoder_heads: int = DECODER_HEADS) -> tuple[dict, dict]:
    """Map a torch state_dict onto the Flax params of a SpectralGPT classifier, and its MAE
    decoder (if any) onto `decoder` (`hsic_jax.models.spectralgpt.SpectralMAE`'s).

    Returns `(params, report)`; `report` holds the model config, the decoder's architecture
    (`decoder`: width, depth, heads; only with a decoder), the key map and the dropped and
    re-initialised keys.
    """
    arch = infer_architecture(sd, path, heads)
    groups, grid = _grid(sd, path, arch, img_size=img_size, bands=bands, pos_embed=pos_embed,
                         source_img_size=source_img_size)
    num_classes = head_classes(sd, "head.weight", path, num_classes)[1]
    config = dict(num_classes=num_classes, img_size=img_size, bands=bands, pos_embed=pos_embed,
                  **arch)
    log.info("mapping %d tensors onto the model", len(sd))
    model = model_from_config(config)
    x, expected = param_shapes(model, seed)
    flags = f"--bands {bands}, tubelet {arch['tubelet']}"  # what sets the spectral groups
    decoder = infer_decoder(sd, path, decoder_heads)
    if decoder is not None:
        _check_decoder_groups(sd, path, groups, decoder["width"], flags)
        expected.update(_decoder_shapes(arch, decoder, img_size, bands))

    def resample(key: str, value: np.ndarray) -> np.ndarray:
        try:
            return _resample(key, value, groups, grid)
        except ValueError as e:
            raise ConversionError(f"{path}: key {key} {tuple(sd[key].shape)}: {e} ({flags})") from e

    ckpt_classes = sd["head.weight"].shape[0] if "head.weight" in sd else None
    params, key_map, dropped = {}, {}, []
    for key, value in sd.items():
        target, transform = _target(key, value, path, expected, decoder)
        unused_pos = target not in expected  # a position table the chosen mode does not use
        if unused_pos or (target.startswith("head/") and ckpt_classes != num_classes):
            dropped.append(key)
            continue
        params[target] = mapped(key, value, target, lambda v: resample(key, transform(v)),
                                expected, path)
        key_map[key] = target
    missing = sorted(set(expected) - set(params))
    _check_missing(missing, path)
    report = dict(model=config, **({} if decoder is None else dict(decoder=decoder)),
                  key_map=key_map, dropped=sorted(dropped), reinitialised=missing)
    return unflatten({**params, **_initial(model, x, seed, missing)}), report


def _grid(sd: Mapping[str, np.ndarray], path: str, arch: Mapping, *, img_size: int, bands: int,
          pos_embed: str, source_img_size: int | None) -> tuple[int, int]:
    """`(groups, grid)` of the model `arch` at `img_size` on `bands`: its spectral groups and
    the side of its token grid, refused when the geometry does not fit or the checkpoint was
    trained on other spectral groups."""
    try:
        check_geometry(img_size, arch["patch_size"], bands, arch["tubelet"], arch["width"],
                       arch["heads"], pos_embed)
    except ValueError as e:
        raise ConversionError(f"{path}: {e}") from e
    groups, grid = bands // arch["tubelet"], img_size // arch["patch_size"]
    known = _checkpoint_groups(sd, arch["patch_size"], source_img_size)
    if known is not None and known[0] != groups:
        raise ConversionError(
            f"{path}: key {known[1]} has {known[0]} spectral groups "
            f"({known[0] * arch['tubelet']} bands in tubelets of {arch['tubelet']}); "
            f"--bands {bands} gives {groups}")
    return groups, grid


def _check_decoder_groups(sd: Mapping[str, np.ndarray], path: str, groups: int, width: int,
                          flags: str) -> None:
    """Refuse a decoder spectral table of other groups than the encoder's `groups` (which
    `flags` give)."""
    temporal = sd.get("decoder_pos_embed_temporal")
    if temporal is not None and temporal.ndim == 3 and temporal.shape[1] != groups:
        raise ConversionError(
            f"{path}: key decoder_pos_embed_temporal has shape {tuple(temporal.shape)}: "
            f"{temporal.shape[1]} spectral groups; the encoder's are {groups} ({flags}), "
            f"expected {(1, groups, width)}")


def _target(key: str, value: np.ndarray, path: str, expected: Mapping,
            decoder: Mapping | None) -> tuple[str, Callable]:
    """The Flax path and transform of the torch `key`, refused when the model has no place
    for it (`expected`: the model's parameter shapes, with the decoder's)."""
    found = flax_path(key)
    if found is None:
        part = "MAE decoder (sep_pos_embed=True, cls_embed=False)" if DECODER.match(key) else "encoder"
        raise ConversionError(f"{path}: key {key} {tuple(value.shape)} is not part of the "
                              f"SpectralGPT {part} (no Flax parameter to map it to)")
    if found[0].startswith("decoder/") and found[0] not in expected:
        raise ConversionError(f"{path}: key {key} {tuple(value.shape)} has no place in the "
                              f"MAE decoder of {decoder['depth']} blocks (no parameter {found[0]})")
    return found


def _initial(model, x: jax.Array, seed: int, targets: list[str]) -> dict[str, np.ndarray]:
    """The values of the parameters `targets` ('/'-joined paths) in `model`'s initialisation
    from `seed`, computed op by op as this converter always has: `common.fresh`'s one program
    rounds the initialisers' floats otherwise in the last bits, and a re-conversion gives the
    head it gave before."""
    if not targets:
        return {}
    init = model.init(jax.random.key(seed), x)["params"]
    flat = {"/".join(k.key for k in p): v for p, v in jax.tree_util.tree_leaves_with_path(init)}
    return {t: np.asarray(flat[t]) for t in targets}


def _check_missing(missing: list[str], path: str) -> None:
    """Refuse a conversion that leaves model tensors other than the head and the position
    tables (which are drawn fresh) without a value: `missing` ('/'-joined paths)."""
    missing_decoder = [t for t in missing if t.startswith("decoder/")]
    if missing_decoder:
        raise ConversionError(f"{path}: missing key {torch_key(missing_decoder[0])} "
                              f"({len(missing_decoder)} MAE decoder tensors missing in all)")
    not_allowed = [t for t in missing
                   if not (t.startswith("head/") or t.split("/")[-1] in POS_KEYS)]
    if not_allowed:
        raise ConversionError(f"{path}: missing key {torch_key(not_allowed[0])} "
                              f"({len(not_allowed)} encoder tensors missing in all)")


def _resample(key: str, value: np.ndarray, groups: int, grid: int) -> np.ndarray:
    """Resample the spatial grid of a position table to `grid × grid` (PyTorch bicubic)."""
    if key in ("pos_embed_spatial", "decoder_pos_embed_spatial"):
        return np.asarray(resample_grid(value, grid))
    if key == "pos_embed":
        return np.asarray(resample_joint(value, groups, grid))
    return value


def torch_key(target: str) -> str:
    """The torch key of a Flax path, e.g. `backbone/block_3/attn/q/kernel` -> `blocks.3.attn.q.weight`,
    `decoder/block_0/mlp/fc1/bias` -> `decoder_blocks.0.mlp.fc1.bias`."""
    if target.startswith("decoder/"):
        parts = target.removeprefix("decoder/").split("/")
        parts[-1] = {"kernel": "weight", "scale": "weight"}.get(parts[-1], parts[-1])
        if parts == ["mask_token"]:
            return "mask_token"
        return "decoder_" + ".".join(parts).replace("block_", "blocks.")
    parts = target.removeprefix("backbone/").split("/")
    parts[-1] = {"kernel": "weight", "scale": "weight"}.get(parts[-1], parts[-1])
    key = ".".join(parts).replace("block_", "blocks.")
    return key.replace("patch_embed.", "patch_embed.proj.")


def parse_args(argv=None) -> argparse.Namespace:
    p = parser("spectralgpt",
               "Convert a PyTorch SpectralGPT checkpoint (SpectralGPT.pth, SpectralGPT+.pth "
               "or an official fine-tuned one) into a Flax checkpoint folder for hsic-jax.",
               "PyTorch checkpoint {'model': state_dict, ...} as the official scripts save it")
    p.add_argument("--img-size", type=int, default=32,
                   help="input size in pixels (square); position grids are resampled to "
                        "img-size / patch with PyTorch bicubic (default: 32, the paper's)")
    p.add_argument("--bands", type=int, default=12,
                   help="number of input bands (PCA components); must be a multiple of the "
                        "tubelet and match the checkpoint's spectral groups (default: 12)")
    p.add_argument("--num-classes", type=int, default=None,
                   help="classes of the head; a checkpoint without a head (pre-training) needs it, "
                        "and a head of another size is replaced by a fresh one (default: the "
                        "checkpoint's head)")
    p.add_argument("--pos-embed", choices=("joint", "separable"), default="joint",
                   help="joint: one zero-initialised learnable table, the official classification "
                        "default and the paper's setting (pre-trained tables are dropped); "
                        "separable: spatial + spectral tables, loaded from a pre-training "
                        "checkpoint (default: joint)")
    heads_argument(p, f"the official variant's for the checkpoint's width: {heads_by_width(VARIANTS)}")
    p.add_argument("--decoder-heads", type=int, default=DECODER_HEADS,
                   help="attention heads of the MAE decoder of a pre-training checkpoint (not "
                        "stored in the weights; its width and depth are read off the tensors; "
                        f"default: {DECODER_HEADS}, the official)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the parameters that are initialised fresh (head, position table)")
    return p.parse_args(argv)


def convert_args(args: argparse.Namespace) -> tuple[dict, dict]:
    """`convert` of the checkpoint and options the command line names."""
    sd, ckpt_args = load_state_dict(args.checkpoint)
    return convert(sd, args.checkpoint, img_size=args.img_size, bands=args.bands,
                   num_classes=args.num_classes, pos_embed=args.pos_embed, heads=args.heads,
                   source_img_size=ckpt_args.get("input_size"), seed=args.seed,
                   decoder_heads=args.decoder_heads)


def main(argv=None) -> int:
    return run(parse_args(argv), "spectralgpt", convert_args, log, io=IO)


if __name__ == "__main__":
    sys.exit(main())
