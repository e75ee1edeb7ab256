"""HyperSIGMA (Wang et al., TPAMI 2025; official `SSFusionFramework`) in Flax linen.

The official classifier (WHU-Sigma/HyperSIGMA, `ImageClassification/model/ss_fusion_cls.py`
with `SpatViT_fusion_patch.SpatViT` and `SpecViT_fusion.SpectralVisionTransformer`, built
by `demo cls hypersigma.ipynb` as `SSFusionFramework(img_size=33, in_channels=30,
patch_size=2, classes=class_num + 1, model_size='base')`) runs two ViTs on the same
`(N, H, W, B)` input and fuses them:

Spatial ViT. A `patch_size` × `patch_size` convolution (`spat_patch_embed`, stride
`patch_size`, the last row and column of a 33-pixel input dropped) gives a
(H/p) × (W/p) grid of tokens (row-major), plus a learnt position table (`spat_pos_embed`),
then `depth` pre-norm blocks (LayerNorm eps 1e-6, exact GELU, stochastic depth rising
linearly from 0 to `drop_path`). Block i uses full multi-head self-attention when
(i + 1) % `interval` == 0 and sparse sampling attention otherwise (below). The outputs of the
blocks `out_indices` (3, 5, 7, 11 for ViT-B) are laid back onto the grid and go through the
official FPN of the patch size: for `patch_size` 1 and 2 a 2 × 2 stride-2 transposed
convolution (`spat_fpn1`) of the first, the second as it is, 2 × 2 and 4 × 4 max pooling of
the third and fourth; 4 and 8 have no transposed convolution. The official `SpatViT.norm`
is never applied.

Sparse sampling attention (`SampleAttention`): one fused `qkv` linear; `sampling_offsets`
(a linear of q, `heads` × `n_points` × 2 outputs, (x, y) per point) moves each token's
`n_points` sampling points per head away from its own grid cell, in grid cells; k and v of
each head are read there by bilinear interpolation of the token grid, exactly as the
official `F.grid_sample(mode='bilinear', padding_mode='zeros', align_corners=False)` of
`2 · (reference + offset / (W, H)) - 1` with the reference at the cell centre
((j + 0.5) / W, (i + 0.5) / H): the point of token (i, j) lies at pixel (j + dx, i + dy),
corners outside the grid read zero. The `n_points` dot products q·k (× head_dim^-0.5) are
softmaxed over the points and weight the sampled v; then `proj`. `grid_sample_zeros` is that
sampling as one vectorised gather (four corners at once, no loop over points or pixels).

Spectral ViT. Each pixel's spectrum is average-pooled to `num_tokens` values
(`AdaptiveAvgPool1d`: bin t averages bands ⌊t·B/T⌋ … ⌈(t+1)·B/T⌉ - 1, so 30 bands give 100
overlapping bins), the T = `num_tokens` tokens are the pooled band images (`H·W` pixels each)
mapped by a linear (`spec_spat_map`, H·W → width), plus `spec_pos_embed`, then the same kind
of blocks, their sampling attention on a √T × √T grid of the tokens (10 × 10). Only the
output of block `out_indices[0]` (block 3 of ViT-B) is used: `spec_l1` (width → 128, no bias)
maps it to `(N, T, 128)`.

Fusion. The spectral feature, averaged over its 128 channels, is `(N, T)`; four gates
`fc_spec{k}` (T → 128 → ReLU → 128 → sigmoid, no biases) give w_k. The four spatial maps,
in the official order (k = 1: the last block's, 4 × 4; k = 2: 8 × 8; k = 3: 16 × 16; k = 4:
the upsampled 32 × 32 one), are reduced to 128 channels by 1 × 1 convolutions (`DR{k}`, no
bias), scaled by (1 + w_k), averaged over the map and concatenated (512). The official
`classifier` (`head`: 512 → 256 → dropout 0.4 → 128 → dropout 0.4 → classes; no
non-linearity) gives the logits.

Classes. The official notebook reads labels 0 … C from the ground truth (0 = unlabelled)
and builds `classes = C + 1` outputs; training pixels are never 0, so output 0 (background)
is never a target, but it is in the training softmax. Our labels are 0 … C-1: `num_classes`
= C, our class c is the official output c + 1, and the module returns the C logits of the
classes. The official background output (row 0 of `classifier.4`) is `head/background`: in
training the module returns it after the classes (`(N, C + 1)`), and the train step's
cross-entropy covers it with a target of 0 (`hsic_jax.train.step`), as the official loss
does; in evaluation it is left out, so a pixel is always given one of the C classes (the
official argmax may pick the background, which counts as an error). The official counts
(183,804,468 for Indian Pines, …; 3,332 per class) are reproduced exactly.

Parameters that never receive a gradient. The official classifier builds, and we keep under
`backbone/unused` (never computed; declared at initialisation only, zero, so that
conversions load one to one and the counts match), 64,381,744 + 3,203 · (C + 1) parameters of
ViT-B (64,436,195 for Indian Pines):

  spec_block_{4..11}       the spectral blocks after block out_indices[0] = 3, computed by
                           the official forward but their outputs never used (57,441,216)
  spec_norm                spectral ViT's final LayerNorm, never applied (1,536)
  spec_conv_{q,k,v}_{0..3} 12 Conv(T, T, 1) of the spectral ViT, never called (121,200)
  spat_norm                spatial ViT's final LayerNorm, never applied (1,536)
  spat_classifier_{0,1,2}  the spatial ViT's own classifier, Linear(49152, 128) → 64 →
                           classes (6,299,840 + 65 · (C + 1))
  spat_cls                 Conv(4 · width, classes, 1) of the spatial ViT (3,073 · (C + 1))
  spat_classifier1_{0,1,2} Linear(3072, 128) → 64 → classes (401,600 + 65 · (C + 1))
  conv_features, conv      Conv(width, 64, 1) and Conv(512, 128, 1) of the fusion (114,816)

(49152 and 3072, the in-features of the spatial ViT's unused classifiers, are hard-coded in
the official code whatever the width: `spat_classifier_in`, `spat_classifier1_in`.) Under
fine-tuning with AdamW the unused parameters only shrink by weight decay (torch skips
parameters without a gradient); they never change the logits.

Parameters: `{'backbone': {spat_patch_embed, spat_pos_embed, spat_block_i/{norm1,
attn/{qkv, sampling_offsets, proj}, norm2, mlp/{fc1, fc2}}, spat_fpn1, spec_spat_map,
spec_pos_embed, spec_block_i (i ≤ out_indices[0]), spec_l1, fc_spec{k}/{squeeze, excite},
DR{k}, unused/...}, 'head': {fc_0, fc_1, kernel, bias, background}}` (`head/kernel` the C
columns of the official `classifier.4` after the background one, `head/background` that one). `ADAPTABLE` names q, k and v as thirds of
the fused `qkv` (the official `reshape(B, N, 3, -1)` order), `proj`, `fc1` and `fc2` of the
blocks of both ViTs that feed the logits (`spat_block_i`, `spec_block_i`; the unused spectral
blocks are not adapted). `qkv` has a bias, one vector for q, k and v: BitFit on q or v trains
all of it (k's third included, which the sampling attention does not ignore).

Initialisation follows the official one (ViT linears N(0, 0.02²) with zero bias, proj and fc2
of block i divided by √(2(i + 1)), position tables N(0, 0.02²), convolutions and the fusion's
layers torch's default U(±1/√fan_in)); the unused parameters are zero.
"""

import functools
import math
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hsic_jax.adapters.tuned import Target
from hsic_jax.models.common import (architecture_mismatch, check_input, config_fix,
                                    dense_dot_general, gelu, matmul, module_fields, pre_norm_block)

# Width, depth, heads, attention interval and fused blocks of the official model sizes
# (`SSFusionFramework(model_size=...)`); the spectral ViT's feature is block out_indices[0].
DISPLAY_NAME = "HyperSIGMA"  # in reports and tables
REPORT_ORDER = 3  # its place among the families in reports (the paper's columns)
VARIANTS = {
    "base": dict(width=768, depth=12, heads=12, interval=3, out_indices=(3, 5, 7, 11)),
    "large": dict(width=1024, depth=24, heads=16, interval=6, out_indices=(7, 11, 15, 23)),
    "huge": dict(width=1280, depth=32, heads=16, interval=8, out_indices=(10, 15, 20, 31)),
}

# The official spatial FPN per patch size (`SpatViT.__init__`): what becomes of the maps of
# the four out_indices blocks. 'up': ConvTranspose2d(width, width, 2, stride 2); 'poolK':
# MaxPool2d(K, K); 'id': as it is. Other patch sizes have no FPN in the official code.
FPN = {
    1: ("up", "id", "pool2", "pool4"),
    2: ("up", "id", "pool2", "pool4"),
    4: ("id", "pool1", "pool2", "pool4"),
    8: ("id", "pool1", "pool2", "pool4"),
    11: ("id", "id", "id", "id"),
}

LN_EPS = 1e-6
FUSED = 128  # channels of DR{k}, spec_l1 and the gates (hard-coded in the official code)

# The input flags of `python -m convert hypersigma` (the authors' pretrained encoders), for the
# hint when converted weights are missing.
CONVERT_INPUTS = ("--spatial spat-vit-base-ultra-checkpoint-1599.pth "
                  "--spectral spec-vit-base-ultra-checkpoint-1599.pth")

# The linear layers a fine-tuning method may target (hsic_jax.adapters.tuned), by the names
# SpectralGPT uses for the same roles, so that `method.targets` carries over.
_BLOCK = r"((?:spat|spec)_block_\d+)"
ADAPTABLE = {
    "q": Target(_BLOCK + r"/attn/qkv", part=(0, 3)),
    "k": Target(_BLOCK + r"/attn/qkv", part=(1, 3)),
    "v": Target(_BLOCK + r"/attn/qkv", part=(2, 3)),
    "proj": Target(_BLOCK + r"/attn/proj"),
    "fc1": Target(_BLOCK + r"/mlp/fc1"),
    "fc2": Target(_BLOCK + r"/mlp/fc2"),
}


# ---------------------------------------------------------------- initialisers

# timm's trunc_normal_(std=.02) truncates at ±2 (absolute), i.e. ±100σ: a normal.
_VIT_INIT = nn.initializers.normal(0.02)
# torch's default Linear / Conv init: U(±1/√fan_in) for the weight and the bias.
_TORCH_KERNEL = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _uniform(fan_in: int):
    bound = 1.0 / math.sqrt(fan_in)
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def _vit_dense(features: int, name: str, dtype, use_bias: bool = True, rescale: float = 1.0):
    """A Linear of the ViTs: N(0, 0.02²) (divided by `rescale`, the official
    `fix_init_weight` of proj and fc2), zero bias."""
    init = _VIT_INIT if rescale == 1.0 else (
        lambda key, shape, dtype=jnp.float32: _VIT_INIT(key, shape, dtype) / rescale)
    return nn.Dense(features, use_bias=use_bias, kernel_init=init, dtype=dtype,
                    dot_general=dense_dot_general, name=name)


def _torch_dense(features: int, fan_in: int, name: str, dtype, use_bias: bool = True):
    """A Linear (or 1 × 1 convolution) with torch's default init."""
    return nn.Dense(features, use_bias=use_bias, kernel_init=_TORCH_KERNEL,
                    bias_init=_uniform(fan_in), dtype=dtype, dot_general=dense_dot_general,
                    name=name)


def _layer_norm(name: str, dtype) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=LN_EPS, use_fast_variance=False, dtype=dtype, name=name)


# ---------------------------------------------------------------- sampling attention

def reference_points(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The official `get_reference_points`: the normalised cell centres `(H·W,)` x and y of
    the tokens in row-major order, ((j + 0.5) / W, (i + 0.5) / H), in float32."""
    ref_x = (np.arange(width, dtype=np.float32) + np.float32(0.5)) / np.float32(width)
    ref_y = (np.arange(height, dtype=np.float32) + np.float32(0.5)) / np.float32(height)
    return (np.tile(ref_x, height).astype(np.float32),
            np.repeat(ref_y, width).astype(np.float32))


def grid_sample_zeros(maps: jax.Array, ix: jax.Array, iy: jax.Array, height: int,
                      width: int) -> jax.Array:
    """Bilinear sampling with zero padding, torch's `grid_sample(mode='bilinear',
    padding_mode='zeros')` on pixel coordinates.

    `maps` `(G, H·W, C)` (row-major grids), `ix`, `iy` `(G, M)` pixel coordinates (x along W);
    returns `(G, M, C)`: Σ over the four neighbouring pixels of weight × value, the weights
    as torch computes them, a neighbour outside the grid contributing zero. One gather of the
    four corners, no loop.
    """
    x0, y0 = jnp.floor(ix), jnp.floor(iy)
    x1, y1 = x0 + 1.0, y0 + 1.0
    xs = jnp.stack([x0, x1, x0, x1], axis=-1)  # nw, ne, sw, se
    ys = jnp.stack([y0, y0, y1, y1], axis=-1)
    weights = jnp.stack([(x1 - ix) * (y1 - iy), (ix - x0) * (y1 - iy),
                         (x1 - ix) * (iy - y0), (ix - x0) * (iy - y0)], axis=-1)  # (G, M, 4)
    inside = (xs >= 0) & (xs <= width - 1) & (ys >= 0) & (ys <= height - 1)
    weights = jnp.where(inside, weights, 0.0).astype(maps.dtype)
    index = (jnp.clip(ys, 0, height - 1) * width + jnp.clip(xs, 0, width - 1)).astype(jnp.int32)
    g, m = ix.shape
    # Whole rows of C values per index (a gather of (G, 4M) row indices; take_along_axis would
    # broadcast an index per value, C times the memory, in the forward and in its gradient).
    corners = jax.vmap(lambda grid, rows: grid[rows])(maps, index.reshape(g, m * 4))
    corners = corners.reshape(g, m, 4, maps.shape[-1])  # (G, M, 4, C)
    return jnp.einsum("gmk,gmkc->gmc", weights, corners)


class SampleAttention(nn.Module):
    """Sparse sampling attention on a `grid` (H, W) of the N = H·W tokens, `(B, N, D) -> (B, N, D)`.

    `rescale` divides `proj`'s initial kernel (the official `fix_init_weight`).
    """

    heads: int
    n_points: int
    grid: tuple[int, int]
    rescale: float = 1.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        b, n, d = x.shape
        h, p, c = self.heads, self.n_points, d // self.heads
        height, width = self.grid
        qkv = _vit_dense(3 * d, "qkv", self.dtype)(x)
        q, k, v = jnp.split(qkv, 3, axis=-1)  # the official reshape(B, N, 3, -1)
        offsets = _vit_dense(h * p * 2, "sampling_offsets", self.dtype)(q)
        offsets = offsets.reshape(b, n, h, p, 2).astype(jnp.float32)
        ref_x, ref_y = reference_points(height, width)
        # As the official code: location = ref + offset / (W, H), grid = 2 · location - 1, then
        # grid_sample's unnormalisation with align_corners=False, ((grid + 1) · size - 1) / 2.
        grid_x = 2.0 * (ref_x[None, :, None, None] + offsets[..., 0] / np.float32(width)) - 1.0
        grid_y = 2.0 * (ref_y[None, :, None, None] + offsets[..., 1] / np.float32(height)) - 1.0
        ix = ((grid_x + 1.0) * width - 1.0) / 2.0  # (B, N, heads, P) pixel coordinates
        iy = ((grid_y + 1.0) * height - 1.0) / 2.0
        per_head = lambda t: jnp.transpose(t, (0, 2, 1, 3)).reshape(b * h, n * p)
        kv = jnp.concatenate([k.reshape(b, n, h, c), v.reshape(b, n, h, c)], axis=-1)
        kv = jnp.transpose(kv, (0, 2, 1, 3)).reshape(b * h, n, 2 * c)  # (B·heads, H·W, 2c)
        # Rematerialised in the backward pass: the four gathered corners (4 × the sampled
        # values) are not kept for it, only the inputs, as torch's grid_sample keeps them.
        sampled = jax.checkpoint(grid_sample_zeros, static_argnums=(3, 4))(
            kv, per_head(ix), per_head(iy), height, width)
        sampled = sampled.reshape(b, h, n, p, 2 * c)
        sampled_k, sampled_v = sampled[..., :c], sampled[..., c:]
        logits = jnp.einsum("bnhc,bhnpc->bhnp", q.reshape(b, n, h, c), sampled_k) * c ** -0.5
        attn = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(sampled_v.dtype)
        o = jnp.einsum("bhnp,bhnpc->bnhc", attn, sampled_v).reshape(b, n, d)
        return _vit_dense(d, "proj", self.dtype, rescale=self.rescale)(o)


class PatchEmbed(nn.Module):
    """The official patch embedding, a `p × p` convolution of stride `p` (padding 'VALID': the
    last rows and columns of an image that is not a multiple of `p` are dropped): `(N, H, W, C)
    -> (N, (H // p)·(W // p), D)`, token = row·(W // p) + col.

    Its parameters are the convolution's (`kernel` `(p, p, C, D)`, `bias` `(D,)`, torch's
    default init), but the forward cuts the patches out (a reshape and one transpose) and
    multiplies them by the kernel seen as `(p²·C, D)`: one matmul, whose weight gradient is a
    plain `xᵀ @ dy` (as SpectralGPT's `TubeletEmbed`)."""

    width: int
    patch_size: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        n, h, w, c = x.shape
        p, gh, gw = self.patch_size, h // self.patch_size, w // self.patch_size
        kernel = self.param("kernel", _TORCH_KERNEL, (p, p, c, self.width))
        bias = self.param("bias", _uniform(p * p * c), (self.width,))
        x = x[:, :gh * p, :gw * p].reshape(n, gh, p, gw, p, c).transpose(0, 1, 3, 2, 4, 5)
        x = x.reshape(n, gh * gw, p * p * c).astype(self.dtype)
        return matmul(x, kernel.reshape(p * p * c, self.width).astype(self.dtype)) + bias.astype(
            self.dtype)


class Attention(nn.Module):
    """Full multi-head self-attention with the official fused `qkv`, `(B, N, D) -> (B, N, D)`."""

    heads: int
    rescale: float = 1.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        b, n, d = x.shape
        qkv = _vit_dense(3 * d, "qkv", self.dtype)(x).reshape(b, n, 3, self.heads, d // self.heads)
        o = jax.nn.dot_product_attention(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2])
        return _vit_dense(d, "proj", self.dtype, rescale=self.rescale)(o.reshape(b, n, d))


class Mlp(nn.Module):
    """fc1 → exact GELU → fc2 (fc2's initial kernel divided by `rescale`)."""

    hidden: int
    rescale: float = 1.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        h = gelu(_vit_dense(self.hidden, "fc1", self.dtype)(x))
        return _vit_dense(x.shape[-1], "fc2", self.dtype, rescale=self.rescale)(h)


class Block(nn.Module):
    """Pre-norm block: sampling attention on `grid` (`sample`) or full attention, then the MLP,
    stochastic depth on both residual branches. `layer` (0-based) sets the official init
    rescaling of proj and fc2 by 1/√(2 (layer + 1))."""

    heads: int
    hidden: int
    sample: bool
    n_points: int
    grid: tuple[int, int]
    layer: int
    drop_path: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        rescale = math.sqrt(2.0 * (self.layer + 1))
        attn = (SampleAttention(self.heads, self.n_points, self.grid, rescale, self.dtype, name="attn")
                if self.sample else Attention(self.heads, rescale, self.dtype, name="attn"))
        return pre_norm_block(x, attn, Mlp(self.hidden, rescale, self.dtype, name="mlp"),
                              functools.partial(_layer_norm, dtype=self.dtype), self.drop_path,
                              train)


class ConvTranspose2x2(nn.Module):
    """torch's ConvTranspose2d(C, C', 2, stride 2): `y[2i + a, 2j + b] = x[i, j] · kernel[a, b] +
    bias`, `(N, H, W, C) -> (N, 2H, 2W, C')`; `kernel` `(2, 2, C, C')`."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        n, hh, ww, _ = x.shape
        init = _uniform(self.features * 4)  # torch's fan-in of a transposed convolution
        kernel = self.param("kernel", init, (2, 2, x.shape[-1], self.features))
        bias = self.param("bias", init, (self.features,))
        y = jnp.einsum("nhwi,abio->nhawbo", x, kernel.astype(self.dtype))
        return y.reshape(n, 2 * hh, 2 * ww, self.features) + bias.astype(self.dtype)


def adaptive_pool_matrix(size: int, out: int) -> np.ndarray:
    """`(size, out)`: column t averages inputs ⌊t·size/out⌋ … ⌈(t+1)·size/out⌉ - 1, as
    torch's `AdaptiveAvgPool1d(out)`."""
    m = np.zeros((size, out), np.float32)
    for t in range(out):
        start, end = (t * size) // out, -((-(t + 1) * size) // out)
        m[start:end, t] = 1.0 / (end - start)
    return m


# ---------------------------------------------------------------- the classifier

def _block_shapes(width: int, hidden: int, sample: bool, heads: int, points: int) -> dict:
    """The parameter shapes of one `Block`, as a nested dict."""
    dense = lambda i, o: {"kernel": (i, o), "bias": (o,)}
    norm = {"scale": (width,), "bias": (width,)}
    attn = {"qkv": dense(width, 3 * width), "proj": dense(width, width)}
    if sample:
        attn["sampling_offsets"] = dense(width, heads * points * 2)
    return {"norm1": norm, "attn": attn, "norm2": dict(norm),
            "mlp": {"fc1": dense(width, hidden), "fc2": dense(hidden, width)}}


def unused_shapes(classes: int, width: int, depth: int, heads: int, mlp_ratio: float,
                  interval: int, first_unused: int, n_points: int, num_tokens: int,
                  spat_classifier_in: int, spat_classifier1_in: int) -> dict:
    """The shapes of the official parameters that never take part in the logits (module
    docstring), as a nested dict: `classes` is the official C + 1, `first_unused` the first
    spectral block after out_indices[0]."""
    d, t, hidden = width, num_tokens, int(width * mlp_ratio)
    dense = lambda i, o, bias=True: {"kernel": (i, o), **({"bias": (o,)} if bias else {})}
    tree: dict = {f"spec_block_{i}": _block_shapes(d, hidden, (i + 1) % interval != 0, heads,
                                                   n_points)
                  for i in range(first_unused, depth)}
    tree["spec_norm"] = tree["spat_norm"] = {"scale": (d,), "bias": (d,)}
    for j in range(4):  # Conv2d / Conv1d(T, T, 1) of the spectral ViT
        for which in "qkv":
            tree[f"spec_conv_{which}_{j}"] = dense(t, t)
    for prefix, first in (("spat_classifier", spat_classifier_in),
                          ("spat_classifier1", spat_classifier1_in)):
        for j, (i, o) in enumerate(((first, 128), (128, 64), (64, classes))):
            tree[f"{prefix}_{j}"] = dense(i, o)
    tree["spat_cls"] = dense(4 * d, classes)
    tree["conv_features"] = dense(d, 64, bias=False)
    tree["conv"] = dense(4 * FUSED, FUSED)
    return tree


def _flat(tree: Mapping, prefix: str = "") -> tuple[tuple[str, tuple[int, ...]], ...]:
    out = []
    for k, v in tree.items():
        out.extend(_flat(v, f"{prefix}{k}/") if isinstance(v, Mapping) else [(f"{prefix}{k}", v)])
    return tuple(out)


class _Zeros(nn.Module):
    """Declares parameters `entries` (('a/b/kernel', shape), ...) as nested modules, zero."""

    entries: tuple[tuple[str, tuple[int, ...]], ...]

    @nn.compact
    def __call__(self):
        children: dict = {}
        for path, shape in self.entries:
            head, _, rest = path.partition("/")
            if rest:
                children.setdefault(head, []).append((rest, shape))
            else:
                self.param(head, nn.initializers.zeros, tuple(shape))
        for name, entries in children.items():
            _Zeros(tuple(entries), name=name)()


class _Gate(nn.Module):
    """The official `fc_spec{k}`: Linear(T, 128) → ReLU → Linear(128, 128) → sigmoid, no biases."""

    tokens: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = nn.relu(_torch_dense(FUSED, self.tokens, "squeeze", self.dtype, use_bias=False)(x))
        return nn.sigmoid(_torch_dense(FUSED, FUSED, "excite", self.dtype, use_bias=False)(x))


class Backbone(nn.Module):
    """The two ViTs and the fusion: `(N, H, W, B) -> (N, 512)`, the official classifier's input."""

    num_classes: int
    img_size: int
    bands: int
    patch_size: int
    width: int
    depth: int
    heads: int
    mlp_ratio: float
    interval: int
    out_indices: tuple[int, ...]
    n_points: int
    num_tokens: int
    spat_classifier_in: int
    spat_classifier1_in: int
    drop_path: float
    dtype: Any = jnp.float32

    def _block(self, prefix: str, i: int, grid: tuple[int, int]) -> Block:
        rate = float(np.linspace(0.0, self.drop_path, self.depth)[i])
        return Block(self.heads, int(self.width * self.mlp_ratio), (i + 1) % self.interval != 0,
                     self.n_points, grid, i, rate, self.dtype, name=f"{prefix}_block_{i}")

    @nn.compact
    def __call__(self, x, train: bool = False):
        check_input("HyperSIGMA", x, (self.img_size, self.img_size, self.bands), "H, W, bands")
        n, d, p = x.shape[0], self.width, self.patch_size
        x = x.astype(self.dtype)

        # Spatial ViT: patch tokens, position table, blocks, the FPN of the four out_indices.
        h = PatchEmbed(d, p, self.dtype, name="spat_patch_embed")(x)  # (N, gh·gw, D)
        gh, gw = self.img_size // p, self.img_size // p
        h = h + self.param("spat_pos_embed", _VIT_INIT, (1, gh * gw, d)).astype(h.dtype)
        maps = []
        for i in range(self.depth):
            h = self._block("spat", i, (gh, gw))(h, train)
            if i in self.out_indices:
                maps.append(h.reshape(n, gh, gw, d))
        for j, op in enumerate(FPN[p]):
            if op == "up":
                maps[j] = ConvTranspose2x2(d, self.dtype, name=f"spat_fpn{j + 1}")(maps[j])
            elif op.startswith("pool") and op != "pool1":
                k = int(op.removeprefix("pool"))
                maps[j] = nn.max_pool(maps[j], (k, k), strides=(k, k), padding="VALID")

        # Spectral ViT: band-pooled images as tokens, blocks up to out_indices[0], spec_l1.
        t, side = self.num_tokens, math.isqrt(self.num_tokens)
        pool = jnp.asarray(adaptive_pool_matrix(self.bands, t), self.dtype)
        s = jnp.einsum("nhwb,bt->nthw", x, pool).reshape(n, t, self.img_size ** 2)
        s = _vit_dense(d, "spec_spat_map", self.dtype)(s)
        s = s + self.param("spec_pos_embed", _VIT_INIT, (1, t, d)).astype(s.dtype)
        last = self.out_indices[0]
        for i in range(last + 1):
            s = self._block("spec", i, (side, side))(s, train)
        spec = _vit_dense(FUSED, "spec_l1", self.dtype, use_bias=False)(s)  # (N, T, 128)

        # Fusion: gates from the spectral feature, 1 × 1 reductions of the spatial maps.
        gate_in = spec.mean(axis=-1)  # (N, T): the official AdaptiveAvgPool1d(1)
        fused = []
        for k in range(1, 5):
            gate = _Gate(t, self.dtype, name=f"fc_spec{k}")(gate_in)
            feature = _torch_dense(FUSED, d, f"DR{k}", self.dtype, use_bias=False)(maps[4 - k])
            fused.append(((1.0 + gate[:, None, None, :]) * feature).mean(axis=(1, 2)))

        if self.is_initializing():  # declared with their official shapes, never computed
            _Zeros(_flat(unused_shapes(self.num_classes + 1, d, self.depth, self.heads,
                                       self.mlp_ratio, self.interval, last + 1, self.n_points, t,
                                       self.spat_classifier_in, self.spat_classifier1_in)),
                   name="unused")()
        return jnp.concatenate(fused, axis=-1)  # (N, 512)


class Head(nn.Module):
    """The official `classifier`: Linear(512, 256) → dropout → Linear(256, 128) → dropout →
    Linear(128, classes): `kernel` `(128, C)`, `bias` `(C,)` are the official rows 1 … C of
    `classifier.4`, `background` its row 0. The background output is returned in training only,
    after the C classes (the official softmax covers it; no pixel has it as its label): `(N, C +
    1)` with `train`, `(N, C)` otherwise."""

    num_classes: int
    dropout: float
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        drop = nn.Dropout(self.dropout, deterministic=not train)
        x = drop(_torch_dense(256, 4 * FUSED, "fc_0", self.dtype)(x))
        x = drop(_torch_dense(FUSED, 256, "fc_1", self.dtype)(x))
        kernel = self.param("kernel", _TORCH_KERNEL, (FUSED, self.num_classes))
        bias = self.param("bias", _uniform(FUSED), (self.num_classes,))
        logits = x @ kernel.astype(self.dtype) + bias.astype(self.dtype)
        background = _torch_dense(1, FUSED, "background", self.dtype)(x)
        return jnp.concatenate([logits, background], axis=-1) if train else logits


class HyperSIGMA(nn.Module):
    """HyperSIGMA classifier: `(N, img_size, img_size, bands)` float32 → logits `(N, num_classes)`.

    Defaults are the official notebook's ViT-B model on 33 × 33 patches of 30 PCA components
    with 2-pixel patches: 8 sampling points, 100 spectral tokens, stochastic depth 0.1 in both
    ViTs, dropout 0.4 in the classifier.
    """

    num_classes: int
    img_size: int = 33
    bands: int = 30
    patch_size: int = 2
    width: int = 768
    depth: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    interval: int = 3
    out_indices: tuple[int, ...] = (3, 5, 7, 11)
    n_points: int = 8
    num_tokens: int = 100
    spat_classifier_in: int = 49152
    spat_classifier1_in: int = 3072
    drop_path: float = 0.1
    dropout: float = 0.4
    dtype: Any = jnp.float32

    def setup(self):
        check_geometry(self.img_size, self.patch_size, self.width, self.heads, self.depth,
                       self.interval, tuple(self.out_indices), self.num_tokens, self.num_classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """`(img_size, img_size, bands)` of one input."""
        return self.img_size, self.img_size, self.bands

    @nn.compact
    def __call__(self, x, train: bool = False):
        feats = Backbone(self.num_classes, self.img_size, self.bands, self.patch_size,
                         self.width, self.depth, self.heads, self.mlp_ratio, self.interval,
                         tuple(self.out_indices), self.n_points, self.num_tokens,
                         self.spat_classifier_in, self.spat_classifier1_in, self.drop_path,
                         self.dtype, name="backbone")(x, train)
        return Head(self.num_classes, self.dropout, self.dtype, name="head")(feats, train).astype(
            jnp.float32)


def check_geometry(img_size, patch_size, width, heads, depth, interval, out_indices,
                   num_tokens, num_classes) -> None:
    """Raise a ValueError naming the value that does not fit the official architecture."""
    if patch_size not in FPN:
        raise ValueError(f"patch_size {patch_size} has no FPN in the official SpatViT; it is one "
                         f"of {sorted(FPN)}")
    grid = img_size // patch_size
    need = {1: 4, 2: 4, 4: 4, 8: 4, 11: 1}[patch_size]
    if grid < need:
        raise ValueError(f"img_size {img_size} gives a {grid} × {grid} token grid with patch_size "
                         f"{patch_size}; the FPN's 4 × 4 max pooling needs at least {need}")
    if width % heads:
        raise ValueError(f"width {width} is not divisible by {heads} heads")
    if interval < 1:
        raise ValueError(f"interval {interval} must be >= 1")
    if (len(out_indices) != 4 or list(out_indices) != sorted(set(out_indices))
            or not 0 <= out_indices[0] or out_indices[-1] >= depth):
        raise ValueError(f"out_indices {tuple(out_indices)} must be 4 increasing block indices "
                         f"below depth {depth}")
    if math.isqrt(num_tokens) ** 2 != num_tokens:
        raise ValueError(f"num_tokens {num_tokens} is not a square: the spectral sampling "
                         "attention lays the tokens on a √T × √T grid")
    if num_classes < 1:
        raise ValueError(f"num_classes {num_classes} must be >= 1")


def model_kwargs(cfg: Mapping) -> dict:
    """Keyword arguments of `HyperSIGMA` from a config mapping (a `variant`, the official
    `model_size`, fills the preset; `name`, the family's, is dropped)."""
    cfg = module_fields(cfg, VARIANTS)
    if "out_indices" in cfg:
        cfg["out_indices"] = tuple(int(i) for i in cfg["out_indices"])
    return cfg


def model_from_config(cfg: Mapping) -> HyperSIGMA:
    """A `HyperSIGMA` from a mapping of its fields (as a converted checkpoint's manifest holds)."""
    return HyperSIGMA(**model_kwargs(cfg))


def build(model_cfg: Mapping, *, input_size: int, bands: int, num_classes: int) -> HyperSIGMA:
    """The classifier of `config.model` on `(input_size, input_size, bands)` inputs (the
    official `img_size` and `in_channels`; set `data.input_size = data.neighborhood`)."""
    return model_from_config({**model_cfg, "img_size": input_size, "bands": bands,
                              "num_classes": num_classes})


# Model fields a converted checkpoint fixes (its manifest records them). num_classes is one:
# the unused spatial classifiers inside the backbone have the official C + 1 outputs.
ARCHITECTURE = ("img_size", "bands", "patch_size", "width", "depth", "heads", "mlp_ratio",
                "interval", "out_indices", "n_points", "num_tokens", "spat_classifier_in",
                "spat_classifier1_in", "num_classes")
_CONVERT_FLAGS = {"img_size": "--img-size", "bands": "--bands", "patch_size": "--patch-size",
                  "num_classes": "--num-classes", "n_points": "--n-points"}


def pretrained_mismatch(converted: Mapping, module: HyperSIGMA) -> str | None:
    """How a checkpoint converted with the model fields `converted` differs from `module`, and
    the config fields (or converter flags) that would make them agree; None when it fits."""
    def fix(field, value):
        if field == "img_size":
            return f"--config.data.input_size={value} --config.data.neighborhood={value}"
        if field == "bands":
            return f"--config.data.pca={value}"
        if field == "num_classes":
            return f"a scene of {value} classes"
        return config_fix(field, value)

    return architecture_mismatch(converted, module, ARCHITECTURE, fix, _CONVERT_FLAGS)


def layer_ids(module: HyperSIGMA):
    """`(layer_of(path) -> id, num_layers)` for layer-wise lr decay (`optim.layer_decay`).

    The official notebook configures mmengine's `LayerDecayOptimizerConstructor_ViT`
    (num_layers 12, rate 0.9), whose rule matches names starting with `backbone.`; the names
    of `SSFusionFramework` start with `spat_encoder.` / `spec_encoder.` / …, so every
    parameter lands in the top layer and the official recipe trains without decay
    (`configs/hypersigma.py` sets `optim.layer_decay = 1`). For trying decay, this applies the
    rule as it was meant to both ViTs: 0 for the patch embeddings and position tables
    (`spat_patch_embed`, `spat_pos_embed`, `spec_spat_map`, `spec_pos_embed`), i + 1 for
    block i of either ViT (and its adapters), depth + 1 for the rest (FPN, fusion, head).
    """
    return functools.partial(layer_index, depth=module.depth), module.depth + 1


_EMBEDDINGS = ("spat_patch_embed", "spat_pos_embed", "spec_spat_map", "spec_pos_embed")


def layer_index(path: str, depth: int) -> int:
    """The layer id of a '/'-joined parameter path (see `layer_ids`)."""
    parts = path.split("/")
    if parts[0] == "backbone" and len(parts) > 1 and parts[1] in _EMBEDDINGS:
        return 0
    if parts[0] in ("backbone", "adapters") and len(parts) > 1:
        for prefix in ("spat_block_", "spec_block_"):
            if parts[1].startswith(prefix):
                block = int(parts[1].removeprefix(prefix))
                if not 0 <= block < depth:
                    raise ValueError(f"parameter {path!r} is in block {block} of a model of "
                                     f"depth {depth}")
                return block + 1
    return depth + 1
