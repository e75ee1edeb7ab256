"""SpectralFormer (Hong et al., TGRS 2021; official `vit_pytorch.ViT`) in Flax linen.

One token per band. The input `(N, p, p, B)` (`p` = `patches`, the official `--patches`: 1 is
pixel-wise, 7 the official patch-wise setting) is regrouped inside the forward, as the
official `demo.py`'s `gain_neighborhood_band` does on the host: the token of band j holds the
p² pixels of `band_patches` bands around j (group-wise spectral embedding, GSE), the band
indices wrapping around the spectrum (band -1 is band B - 1). The groups come in the official
order, which for `band_patches` ≥ 5 is not monotonic: pixel-wise (p = 1) the offsets are
`-h, …, -1, 0, 1, …, h`, patch-wise (p > 1) `-1, -2, …, -h, 0, 1, …, h` (h = band_patches // 2);
within a group the p² pixels are in row-major order. Only odd `band_patches` exist (the
official code fails on even ones).

The B tokens of `band_patches`·p² values are embedded by a linear layer (`patch_embed`), a
learnt cls token is prepended, a learnt position table (B + 1 entries) added, then dropout
(`emb_dropout`) and `depth` pre-norm transformer layers (LayerNorm eps 1e-5; attention with a
fused, bias-free `to_qkv` of `heads` × `dim_head` outputs each for q, k and v, `to_out` and
dropout; a feed-forward `fc1` → exact GELU → dropout → `fc2` → dropout of `mlp_dim` hidden
units). `mode='CAF'` (cross-layer adaptive fusion) feeds layer i ≥ 2 with a 1 × 2 convolution
(`skipcat_{i-2}`: B + 1 token channels in and out) of its input and the input of layer i - 2
before that layer's own fusion; `mode='ViT'` has no fusion and no skipcat parameters (the
official module builds them in both modes, unused in ViT mode; the converter drops them).
The cls token's output goes through the official `mlp_head`: its LayerNorm (`backbone/norm`,
like SpectralGPT's post-pool norm) and its Linear, the classifier (`head`), so that a linear
probe trains the classifier alone.

Inputs, as the official demo builds them: the scene's raw bands min-max normalised per band
over the whole scene (`data.normalize='minmax'`, `data.pca=None`), mirror-padded with the
edge pixel repeated (`data.padding='symmetric'`, the official `mirror_hsi`), the p × p
neighbourhood of each pixel (`data.neighborhood = data.input_size = p`). A converted official
checkpoint (`python -m convert spectralformer`) gives logits in its own class order; the
official Indian Pines file's is not the usual 1–16 one (Corn-notill, Corn-mintill, Corn,
Grass-pasture, Grass-trees, Hay-windrowed, Soybean-notill, Soybean-mintill, Soybean-clean,
Wheat, Woods, Buildings-Grass-Trees-Drives, Stone-Steel-Towers, Alfalfa, Grass-pasture-mowed,
Oats; `convert.spectralformer.OFFICIAL_INDIAN_PINES_CLASSES`, where its provenance is given).

Parameters: `{'backbone': {patch_embed, cls_token, pos_embed, layer_i/{attn_norm,
attn/{to_qkv, to_out}, ff_norm, ff/{fc1, fc2}}, skipcat_j, norm}, 'head'}`. `ADAPTABLE`
names q, k and v as the thirds of `to_qkv`'s outputs (the official chunk(3) order), `proj`
(`to_out`) and `fc1`, `fc2`; `to_qkv` has no bias, so BitFit on q, k or v is refused.
"""

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hsic_jax.adapters.tuned import Target
from hsic_jax.models.common import (architecture_mismatch, check_input, config_fix,
                                    dense_dot_general, gelu, module_fields,
                                    transformer_activation_size)

MODES = ("CAF", "ViT")

LN_EPS = 1e-5  # torch.nn.LayerNorm's default, as the official code uses

# The linear layers a fine-tuning method may target (hsic_jax.adapters.tuned); the names of
# SpectralGPT's layers of the same role, so that `method.targets` carries over.
DISPLAY_NAME = "SpectralFormer"  # in reports and tables
REPORT_ORDER = 1  # its place among the families in reports (the paper's columns)
ADAPTABLE = {
    "q": Target(r"(layer_\d+)/attn/to_qkv", part=(0, 3)),
    "k": Target(r"(layer_\d+)/attn/to_qkv", part=(1, 3)),
    "v": Target(r"(layer_\d+)/attn/to_qkv", part=(2, 3)),
    "proj": Target(r"(layer_\d+)/attn/to_out"),
    "fc1": Target(r"(layer_\d+)/ff/fc1"),
    "fc2": Target(r"(layer_\d+)/ff/fc2"),
}


_KERNEL_INIT = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")  # U(±1/√fan_in)


def _bias_init(fan_in: int):
    bound = 1.0 / np.sqrt(fan_in)
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def _dense(features: int, fan_in: int, name: str, dtype, use_bias: bool = True) -> nn.Dense:
    return nn.Dense(features, use_bias=use_bias, kernel_init=_KERNEL_INIT,
                    bias_init=_bias_init(fan_in), dtype=dtype, dot_general=dense_dot_general,
                    name=name)


def _layer_norm(name: str, dtype) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=LN_EPS, use_fast_variance=False, dtype=dtype, name=name)


def band_offsets(band_patches: int, patches: int) -> tuple[int, ...]:
    """The band offset of each of the `band_patches` groups of a token, in the official order
    (`gain_neighborhood_band`: its left groups run outwards when patch-wise, inwards when
    pixel-wise)."""
    half = band_patches // 2
    left = [-(i + 1) for i in range(half)] if patches > 1 else [i - half for i in range(half)]
    return (*left, 0, *range(1, half + 1))


def group_bands(x: jax.Array, band_patches: int) -> jax.Array:
    """`(N, p, p, B)` → the tokens `(N, B, band_patches·p²)`: token j holds, group after group
    (`band_offsets`), the p² pixels (row-major) of band (j + offset) mod B."""
    n, p, _, b = x.shape
    offsets = np.asarray(band_offsets(band_patches, p))
    index = (np.arange(b)[None, :] + offsets[:, None]) % b  # (G, B)
    grouped = x.reshape(n, p * p, b)[:, :, index]  # (N, p², G, B)
    return jnp.transpose(grouped, (0, 3, 2, 1)).reshape(n, b, len(offsets) * p * p)


class Attention(nn.Module):
    """Multi-head self-attention with the official fused, bias-free `to_qkv`, then `to_out`."""

    heads: int
    dim_head: int
    dropout: float
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        n, s, d = x.shape
        inner = self.heads * self.dim_head
        qkv = _dense(3 * inner, d, "to_qkv", self.dtype, use_bias=False)(x)
        q, k, v = (t.reshape(n, s, self.heads, self.dim_head) for t in jnp.split(qkv, 3, axis=-1))
        o = jax.nn.dot_product_attention(q, k, v)  # softmax(q·k / √dim_head)·v per head
        o = _dense(d, inner, "to_out", self.dtype)(o.reshape(n, s, inner))
        return nn.Dropout(self.dropout, deterministic=not train)(o)


class FeedForward(nn.Module):
    """fc1 → exact GELU → dropout → fc2 → dropout (the official `FeedForward.net`)."""

    hidden: int
    dropout: float
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        d = x.shape[-1]
        drop = nn.Dropout(self.dropout, deterministic=not train)
        h = drop(gelu(_dense(self.hidden, d, "fc1", self.dtype)(x)))
        return drop(_dense(d, self.hidden, "fc2", self.dtype)(h))


class Layer(nn.Module):
    """One pre-norm transformer layer: x + attn(norm(x)), then + ff(norm(·))."""

    heads: int
    dim_head: int
    mlp_dim: int
    dropout: float
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x + Attention(self.heads, self.dim_head, self.dropout, self.dtype, name="attn")(
            _layer_norm("attn_norm", self.dtype)(x), train)
        return x + FeedForward(self.mlp_dim, self.dropout, self.dtype, name="ff")(
            _layer_norm("ff_norm", self.dtype)(x), train)


class SkipCat(nn.Module):
    """Cross-layer adaptive fusion, the official `Conv2d(T, T, [1, 2])` with the T tokens as
    channels and `x`, `earlier` as the two columns: `(N, T, D), (N, T, D) -> (N, T, D)`,
    `y[n, o] = bias[o] + Σ_i kernel[0, i, o]·x[n, i] + kernel[1, i, o]·earlier[n, i]`."""

    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, earlier):
        t = x.shape[1]
        kernel = self.param("kernel", _KERNEL_INIT, (2, t, t))  # (column, in, out); fan-in 2·T
        bias = self.param("bias", _bias_init(2 * t), (t,))
        kernel, bias = kernel.astype(self.dtype), bias.astype(self.dtype)
        y = jnp.einsum("nid,io->nod", x, kernel[0]) + jnp.einsum("nid,io->nod", earlier, kernel[1])
        return y + bias[None, :, None]


class Encoder(nn.Module):
    """GSE tokens, cls token, position table, the layers (with CAF) and the `mlp_head` norm.

    `(N, p, p, B) -> (N, dim)`.
    """

    patches: int
    bands: int
    band_patches: int
    dim: int
    depth: int
    heads: int
    dim_head: int
    mlp_dim: int
    mode: str
    dropout: float
    emb_dropout: float
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        check_input("SpectralFormer", x, (self.patches, self.patches, self.bands),
                    "patches, patches, bands")
        n = x.shape[0]
        tokens = group_bands(x.astype(self.dtype), self.band_patches)
        x = _dense(self.dim, tokens.shape[-1], "patch_embed", self.dtype)(tokens)  # (N, B, D)
        normal = nn.initializers.normal(1.0)  # torch.randn, as the official parameters
        cls = self.param("cls_token", normal, (1, 1, self.dim))
        x = jnp.concatenate([jnp.broadcast_to(cls, (n, 1, self.dim)).astype(x.dtype), x], axis=1)
        x = x + self.param("pos_embed", normal, (1, self.bands + 1, self.dim)).astype(x.dtype)
        x = nn.Dropout(self.emb_dropout, deterministic=not train)(x)

        inputs = []  # the input of each layer, before its fusion
        for i in range(self.depth):
            inputs.append(x)
            if self.mode == "CAF" and i > 1:
                x = SkipCat(self.dtype, name=f"skipcat_{i - 2}")(x, inputs[i - 2])
            x = Layer(self.heads, self.dim_head, self.mlp_dim, self.dropout, self.dtype,
                      name=f"layer_{i}")(x, train)
        return _layer_norm("norm", self.dtype)(x[:, 0])


class SpectralFormer(nn.Module):
    """SpectralFormer classifier: `(N, patches, patches, bands)` float32 → logits `(N, C)`.

    Defaults are the official demo's model (`dim` 64, `depth` 5, `heads` 4, `mlp_dim` 8,
    dropout 0.1, the official `ViT`'s `dim_head` 16) in CAF mode.
    """

    num_classes: int
    patches: int = 1
    bands: int = 200
    band_patches: int = 1
    dim: int = 64
    depth: int = 5
    heads: int = 4
    dim_head: int = 16
    mlp_dim: int = 8
    mode: str = "CAF"
    dropout: float = 0.1
    emb_dropout: float = 0.1
    dtype: Any = jnp.float32

    def setup(self):
        check_geometry(self.patches, self.bands, self.band_patches, self.mode)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """`(patches, patches, bands)` of one input."""
        return self.patches, self.patches, self.bands

    @property
    def activation_size(self) -> int:
        """Floats of one input's largest activation (`transformer_activation_size`): a token
        per band and the class token, the fused `to_qkv`'s output its widest layer."""
        return transformer_activation_size(self.bands + 1, self.dim, self.heads,
                                           max(self.mlp_dim, 3 * self.heads * self.dim_head))

    @nn.compact
    def __call__(self, x, train: bool = False):
        feats = Encoder(self.patches, self.bands, self.band_patches, self.dim, self.depth,
                        self.heads, self.dim_head, self.mlp_dim, self.mode, self.dropout,
                        self.emb_dropout, self.dtype, name="backbone")(x, train)
        head = _dense(self.num_classes, self.dim, "head", self.dtype)
        return head(feats).astype(jnp.float32)


def check_geometry(patches: int, bands: int, band_patches: int, mode: str) -> None:
    """Raise a ValueError naming the value that does not fit the architecture."""
    if not (isinstance(patches, (int, np.integer)) and patches >= 1):
        raise ValueError(f"patches {patches!r} must be an integer >= 1")
    if not (isinstance(band_patches, (int, np.integer)) and band_patches >= 1
            and band_patches % 2):
        raise ValueError(f"band_patches {band_patches!r} must be an odd integer >= 1 (the "
                         "band and as many neighbours on each side)")
    if band_patches > bands:
        raise ValueError(f"band_patches {band_patches} is more than the {bands} bands")
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {MODES}")


def model_from_config(cfg: Mapping) -> SpectralFormer:
    """A `SpectralFormer` from a mapping of its fields (as a converted checkpoint's manifest holds)."""
    return SpectralFormer(**module_fields(cfg))


def build(model_cfg: Mapping, *, input_size: int, bands: int, num_classes: int) -> SpectralFormer:
    """The classifier of `config.model` on `(input_size, input_size, bands)` inputs
    (`input_size` is the official `patches`: set `data.input_size = data.neighborhood`)."""
    return model_from_config({**model_cfg, "patches": input_size, "bands": bands,
                              "num_classes": num_classes})


# Model fields a converted checkpoint fixes (its manifest records them).
ARCHITECTURE = ("patches", "bands", "band_patches", "dim", "depth", "heads", "dim_head",
                "mlp_dim", "mode")

def pretrained_mismatch(converted: Mapping, module: SpectralFormer) -> str | None:
    """How a checkpoint converted with the model fields `converted` differs from `module`, and
    the config fields that would make them agree; None when it fits."""
    def fix(field, value):
        if field == "patches":
            return f"--config.data.input_size={value} --config.data.neighborhood={value}"
        return config_fix(field, value)

    return architecture_mismatch(converted, module, ARCHITECTURE, fix)
