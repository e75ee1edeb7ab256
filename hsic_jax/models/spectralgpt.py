"""The SpectralGPT encoder (official `models_vit_tensor.VisionTransformer`) in Flax linen.

The input `(N, H, W, B)` is cut into 3-D tubelets of `tubelet` bands × `patch_size`²
pixels, giving T' = B / tubelet spectral groups × L = (H / patch_size)² spatial patches,
i.e. T'·L tokens ordered `t·L + h·W' + w` (spectral group slowest). There is no cls
token. Blocks are pre-norm (LayerNorm eps 1e-6, exact-erf GELU) with separate q, k, v
and proj linears. The pooled feature is the mean of the tokens (skipping token 0 by
default, like the official code), normed by `norm` and classified by `head`.

Parameters form one plain nested dict with two subtrees: `backbone` (the pretrained
encoder) and `head`. The model knows nothing about PEFT: `ADAPTABLE` names the linear
layers a method may target, and `hsic_jax.adapters.tuned` adds adapters to them from
outside (as a third subtree, `adapters`).

Masked pre-training (`hsic_jax.train.pretrain`) builds `SpectralMAE` (`build_mae`, the
family's side of the contract in `hsic_jax.models`), the official
`models_mae_spectral.MaskedAutoencoderViT`: the input's tokens (`patchify`) are hidden at
random, a `mask_ratio` of each sample's (`hsic_jax.models.mae.random_masking`), the encoder
sees only the visible ones (with separable position tables), and a light decoder fills the
hidden ones with a learnt mask token, adds its own separable position tables and predicts
every token's `tubelet · patch_size²` pixel values. Its parameters are `{'backbone': the
encoder's (the classifier's tree, with `pos_embed='separable'`), 'decoder': {embed,
mask_token, pos_embed_spatial, pos_embed_temporal, block_i, norm, pred}}`; the converter maps
the official `decoder_*` keys and `mask_token` onto `decoder` (`convert.spectralgpt`). The
official loss's second term (the squared error of the sum over spectral groups, on every
token, against the unnormalised target) is left out: it mixes a normalised prediction with an
unnormalised target.
"""

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hsic_jax.adapters.tuned import Target
from hsic_jax.models.common import (architecture_mismatch, check_input, dense_dot_general, gelu,
                                    matmul, module_fields, pre_norm_block,
                                    transformer_activation_size)
from hsic_jax.models.mae import random_masking

# Width, depth, heads and tubelet of the official factory functions
# (`vit_{base,large,huge}_patch8_128` in models_vit_tensor.py).
DISPLAY_NAME = "SpectralGPT"  # in reports and tables
REPORT_ORDER = 0  # its place among the families in reports (the paper's columns)
COLUMN_PER_METHOD = True  # the paper's subject: a report column per fine-tuning method
VARIANTS = {
    "base": dict(width=768, depth=12, heads=12, tubelet=3),
    "large": dict(width=1024, depth=24, heads=16, tubelet=3),
    "huge": dict(width=1280, depth=32, heads=16, tubelet=12),
}

POS_EMBED_MODES = ("joint", "separable")

LN_EPS = 1e-6


def layer_norm(name: str, dtype) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=LN_EPS, use_fast_variance=False, dtype=dtype, name=name)


def dense(features: int, name: str, dtype) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.xavier_uniform(), dtype=dtype,
                    dot_general=dense_dot_general, name=name)


# The input flags of `python -m convert spectralgpt`, for the hint when converted weights are
# missing.
CONVERT_INPUTS = "--checkpoint SpectralGPT+.pth"

# The linear layers a fine-tuning method may target, by name (hsic_jax.adapters.tuned).
ADAPTABLE = {
    "q": Target(r"(block_\d+)/attn/q"), "k": Target(r"(block_\d+)/attn/k"),
    "v": Target(r"(block_\d+)/attn/v"), "proj": Target(r"(block_\d+)/attn/proj"),
    "fc1": Target(r"(block_\d+)/mlp/fc1"), "fc2": Target(r"(block_\d+)/mlp/fc2"),
}


class Attention(nn.Module):
    """Multi-head self-attention with separate q, k, v and proj linears, `(N, S, D) -> (N, S, D)`."""

    heads: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        n, s, d = x.shape
        q, k, v = (dense(d, name, self.dtype)(x).reshape(n, s, self.heads, d // self.heads)
                   for name in "qkv")
        o = jax.nn.dot_product_attention(q, k, v)  # (N, S, heads, D / heads); scale head_dim^-0.5
        return dense(d, "proj", self.dtype)(o.reshape(n, s, d))


class Mlp(nn.Module):
    """fc1 → exact GELU → fc2, `(N, S, D) -> (N, S, D)`."""

    hidden: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        h = gelu(dense(self.hidden, "fc1", self.dtype)(x))
        return dense(x.shape[-1], "fc2", self.dtype)(h)


class Block(nn.Module):
    """Pre-norm transformer block with stochastic depth on both residual branches."""

    heads: int
    hidden: int
    drop_path: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        return pre_norm_block(x, Attention(self.heads, self.dtype, name="attn"),
                              Mlp(self.hidden, self.dtype, name="mlp"),
                              functools.partial(layer_norm, dtype=self.dtype), self.drop_path,
                              train)


class TubeletEmbed(nn.Module):
    """The official tubelet embedding, a 3-D convolution with kernel = stride = `(tubelet,
    patch, patch)` over (bands, H, W) with one input channel: `(N, H, W, B) -> (N, T'·L, D)`,
    token = group·L + row·grid + col.

    Its parameters are the convolution's (`kernel` `(t, p, p, 1, D)`, `bias` `(D,)`, as
    converted checkpoints hold them), but the forward cuts the tubelets out (a reshape and one
    transpose) and multiplies them by the kernel seen as `(t·p², D)`: one matmul, whose weight
    gradient is a plain `xᵀ @ dy` in the backward pass (XLA:CPU leaves a strided convolution's
    weight gradient a slow non-canonical convolution inside a scanned epoch program). The
    kernel is initialised like a Linear of t·p² inputs and D outputs (xavier over those fans),
    as the official MAE initialises its patch embedding (`w.view(D, -1)`)."""

    tubelet: int
    patch_size: int
    width: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        t, p, d = self.tubelet, self.patch_size, self.width
        kernel = self.param("kernel", nn.initializers.xavier_uniform(in_axis=(0, 1, 2, 3),
                                                                     out_axis=4), (t, p, p, 1, d))
        bias = self.param("bias", nn.initializers.zeros, (d,))
        x = patchify(x.astype(self.dtype), p, t)  # (N, T'·L, t·p²)
        return matmul(x, kernel.reshape(t * p * p, d).astype(self.dtype)) + bias.astype(self.dtype)


def patchify(x: jax.Array, patch_size: int, tubelet: int) -> jax.Array:
    """`(N, H, W, B)` → the tokens' pixels `(N, T'·L, tubelet·p²)`, token `t·L + h·W' + w`,
    each token's values in the official order (band within the tubelet, row, column)."""
    n, h, w, b = x.shape
    p, u = patch_size, tubelet
    x = x.reshape(n, h // p, p, w // p, p, b // u, u)  # n, gh, pi, gw, qi, t, u
    x = jnp.transpose(x, (0, 5, 1, 3, 6, 2, 4))  # n, t, gh, gw, u, pi, qi
    return x.reshape(n, (b // u) * (h // p) * (w // p), u * p * p)


def unpatchify(tokens: jax.Array, img_size: int, patch_size: int, tubelet: int) -> jax.Array:
    """The inverse of `patchify`: tokens `(N, T'·L, tubelet·p²)` → `(N, H, W, T'·tubelet)`."""
    n, p, u, g = tokens.shape[0], patch_size, tubelet, img_size // patch_size
    x = tokens.reshape(n, -1, g, g, u, p, p)  # n, t, gh, gw, u, pi, qi
    x = jnp.transpose(x, (0, 2, 5, 3, 6, 1, 4))  # n, gh, pi, gw, qi, t, u
    return x.reshape(n, img_size, img_size, -1)


class TubeletViT(nn.Module):
    """The encoder's architecture, shared by the classifier's `Encoder` and `SpectralMAE`: what
    a converted checkpoint's manifest records of it (`ENCODER_FIELDS`, with `pos_embed`)."""

    img_size: int
    patch_size: int
    tubelet: int
    bands: int
    width: int
    depth: int
    heads: int
    mlp_ratio: float


# (less the `parent` and `name` of every Flax module)
ENCODER_FIELDS = tuple(f.name for f in dataclasses.fields(TubeletViT)
                       if f.name not in ("parent", "name"))


class Encoder(TubeletViT):
    """Tubelet embedding, position embedding, blocks, pooling and the post-pool norm.

    `(N, H, W, B) -> (N, D)`. With `keep` `(N, K)` (token indices, masked pre-training:
    `SpectralMAE`) only those tokens go through the blocks, and the normed tokens `(N, K, D)`
    are returned instead of the pooled feature, as the official MAE encoder does.
    """

    pos_embed: str
    pool_skip_first: bool
    drop_path: float
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False, keep=None):
        check_input("SpectralGPT", x, (self.img_size, self.img_size, self.bands), "H, W, bands")
        n = x.shape[0]
        p, t, d = self.patch_size, self.tubelet, self.width
        grid, groups = self.img_size // p, self.bands // t
        x = TubeletEmbed(t, p, d, self.dtype, name="patch_embed")(x)  # token = t·L + h·grid + w
        x = x + self._position_embedding(groups, grid * grid).astype(x.dtype)
        if keep is not None:
            x = jnp.take_along_axis(x, keep[..., None], axis=1)

        rates = np.linspace(0.0, self.drop_path, self.depth)
        for i in range(self.depth):
            x = Block(self.heads, int(d * self.mlp_ratio), float(rates[i]), self.dtype,
                      name=f"block_{i}")(x, train)

        if keep is not None:
            return layer_norm("norm", self.dtype)(x)
        pooled = x[:, 1:].mean(axis=1) if self.pool_skip_first else x.mean(axis=1)
        return layer_norm("norm", self.dtype)(pooled)

    def _position_embedding(self, groups: int, tokens: int):
        """`(1, T'·L, D)`: one joint table (zero-init, official classification default) or spatial + spectral."""
        if self.pos_embed == "joint":
            return self.param("pos_embed", nn.initializers.zeros, (1, groups * tokens, self.width))
        return separable_position_embedding(self, groups, tokens, self.width)


def separable_position_embedding(module: nn.Module, groups: int, tokens: int, width: int):
    """`(1, T'·L, D)`: a spatial table `pos_embed_spatial` `(1, L, D)` plus a spectral one
    `pos_embed_temporal` `(1, T', D)`, parameters of `module` (inside its compact call)."""
    init = nn.initializers.truncated_normal(0.02)
    spatial = module.param("pos_embed_spatial", init, (1, tokens, width))
    spectral = module.param("pos_embed_temporal", init, (1, groups, width))
    return (spectral[:, :, None, :] + spatial[:, None, :, :]).reshape(1, groups * tokens, width)


class SpectralGPT(nn.Module):
    """SpectralGPT classifier: `(N, H, W, B)` float32 → logits `(N, num_classes)`."""

    num_classes: int
    img_size: int = 128
    patch_size: int = 8
    tubelet: int = 3
    bands: int = 12
    width: int = 768
    depth: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    pos_embed: str = "joint"
    pool_skip_first: bool = True
    drop_path: float = 0.0
    dropout: float = 0.0
    dtype: Any = jnp.float32

    def setup(self):
        check_geometry(self.img_size, self.patch_size, self.bands, self.tubelet, self.width,
                       self.heads, self.pos_embed)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """`(H, W, B)` of one input."""
        return self.img_size, self.img_size, self.bands

    @property
    def activation_size(self) -> int:
        """Floats of one input's largest activation (`transformer_activation_size`)."""
        tokens = (self.img_size // self.patch_size) ** 2 * (self.bands // self.tubelet)
        return transformer_activation_size(tokens, self.width, self.heads,
                                           int(self.mlp_ratio * self.width))

    @nn.compact
    def __call__(self, x, train: bool = False):
        feats = Encoder(self.img_size, self.patch_size, self.tubelet, self.bands, self.width,
                        self.depth, self.heads, self.mlp_ratio, self.pos_embed,
                        self.pool_skip_first, self.drop_path, self.dtype,
                        name="backbone")(x, train)
        feats = nn.Dropout(self.dropout, deterministic=not train)(feats)
        bound = 1.0 / np.sqrt(self.width)
        head = nn.Dense(
            self.num_classes, dtype=self.dtype, name="head", dot_general=dense_dot_general,
            kernel_init=nn.initializers.truncated_normal(2e-5),
            bias_init=lambda key, shape, dtype=jnp.float32: jax.random.uniform(
                key, shape, dtype, -bound, bound))
        return head(feats).astype(jnp.float32)


def check_geometry(img_size, patch_size, bands, tubelet, width, heads, pos_embed):
    """Raise a ValueError naming the value that does not fit the architecture."""
    if img_size % patch_size:
        raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
    if bands % tubelet:
        raise ValueError(f"{bands} bands do not split into tubelets of {tubelet} bands")
    if width % heads:
        raise ValueError(f"width {width} is not divisible by {heads} heads")
    if pos_embed not in POS_EMBED_MODES:
        raise ValueError(f"pos_embed {pos_embed!r} is not one of {POS_EMBED_MODES}")


def model_kwargs(cfg: Mapping) -> dict:
    """Keyword arguments of `SpectralGPT` from a config mapping (a `variant` fills the preset;
    `name`, the family's, is dropped)."""
    return module_fields(cfg, VARIANTS)


def model_from_config(cfg: Mapping) -> SpectralGPT:
    """A `SpectralGPT` from a mapping of its fields (as a converted checkpoint's manifest holds)."""
    return SpectralGPT(**model_kwargs(cfg))


def build(model_cfg: Mapping, *, input_size: int, bands: int, num_classes: int) -> SpectralGPT:
    """The classifier of `config.model` on `(input_size, input_size, bands)` inputs."""
    return model_from_config({**model_cfg, "img_size": input_size, "bands": bands,
                              "num_classes": num_classes})


# Model fields a converted checkpoint fixes (its manifest records them), and the config field
# that sets each one (the other fields are fixed by the pretrained weights themselves).
ARCHITECTURE = (*ENCODER_FIELDS, "pos_embed")
_CONFIG_FIELD = {"img_size": "data.input_size", "bands": "data.pca"}
_CONVERT_FLAGS = {"img_size": "--img-size", "pos_embed": "--pos-embed", "bands": "--bands"}


def pretrained_mismatch(converted: Mapping, module: SpectralGPT) -> str | None:
    """How a checkpoint converted with the model fields `converted` differs from `module`, and
    the config fields (and converter flags) that would make them agree; None when it fits."""
    return architecture_mismatch(
        converted, module, ARCHITECTURE,
        lambda field, value: f"--config.{_CONFIG_FIELD.get(field, f'model.{field}')}={value!r}",
        _CONVERT_FLAGS)


def layer_ids(module: SpectralGPT):
    """`(layer_of(path) -> id, num_layers)` of the official layer-wise lr decay (`layer_index`)."""
    return functools.partial(layer_index, depth=module.depth), module.depth + 1


def layer_index(path: str, depth: int) -> int:
    """The layer id of a '/'-joined parameter path under the official layer-wise lr decay.

    The BEiT rule of the official fine-tune (`lr_decay.get_layer_id_for_vit`, with
    `num_layers = depth + 1`): 0 for the tubelet embedding `backbone/patch_embed/...` and the
    joint `backbone/pos_embed`; i + 1 for `backbone/block_i/...` and for the adapter factors
    of that block, `adapters/block_i/...`; depth + 1 for everything else (`backbone/norm`,
    `head`). The official rule matches the name `pos_embed` exactly, so the separable
    `pos_embed_spatial` and `pos_embed_temporal` fall through to depth + 1 (no decay); this
    keeps that quirk.
    """
    parts = path.split("/")
    if parts[0] == "backbone" and (parts[1:2] == ["patch_embed"] or parts[1:] == ["pos_embed"]):
        return 0
    if parts[0] in ("backbone", "adapters") and len(parts) > 1 and parts[1].startswith("block_"):
        block = int(parts[1].removeprefix("block_"))
        if not 0 <= block < depth:
            raise ValueError(f"parameter {path!r} is in block {block} of a model of depth {depth}")
        return block + 1
    return depth + 1


# The official decoder of `mae_vit_base_patch8_128`: 512 wide, 4 blocks of 16 heads.
MAE_DECODER = dict(decoder_width=512, decoder_depth=4, decoder_heads=16)
MASK_RATIO = 0.9  # SpectralGPT's 90 % of the 3-D tokens (the paper; the official `forward`'s default)


class Decoder(nn.Module):
    """Visible tokens `(N, K, D)` → every token's predicted pixels `(N, T'·L, tubelet·p²)`."""

    groups: int
    tokens: int
    out: int
    width: int
    depth: int
    heads: int
    mlp_ratio: float
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, restore):
        n, d = x.shape[0], self.width
        x = dense(d, "embed", self.dtype)(x)
        mask_token = self.param("mask_token", nn.initializers.normal(0.02), (1, 1, d))
        total = self.groups * self.tokens
        hidden = jnp.broadcast_to(mask_token.astype(x.dtype), (n, total - x.shape[1], d))
        # visible tokens first, then the hidden ones; `restore` puts each back in its place
        x = jnp.take_along_axis(jnp.concatenate([x, hidden], axis=1), restore[..., None], axis=1)
        x = x + separable_position_embedding(self, self.groups, self.tokens, d).astype(x.dtype)
        for i in range(self.depth):
            x = Block(self.heads, int(d * self.mlp_ratio), dtype=self.dtype, name=f"block_{i}")(x)
        return dense(self.out, "pred", self.dtype)(layer_norm("norm", self.dtype)(x))


class SpectralMAE(TubeletViT):
    """`(N, H, W, B)` → `(pred (N, T'·L, tubelet·p²), mask (N, T'·L))`, mask 1 = hidden: the
    masked autoencoder of the family's pre-training contract (`build_mae`).

    The masking noise is the `'mask'` rng stream (`noise` `(N, T'·L)` uniform in [0, 1) may
    be given instead; at initialisation the first tokens are kept).
    """

    mlp_ratio: float = 4.0
    decoder_width: int = MAE_DECODER["decoder_width"]
    decoder_depth: int = MAE_DECODER["decoder_depth"]
    decoder_heads: int = MAE_DECODER["decoder_heads"]
    mask_ratio: float = MASK_RATIO
    dtype: Any = jnp.float32

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """`(H, W, B)` of one input."""
        return self.img_size, self.img_size, self.bands

    @property
    def token_grid(self) -> tuple[int, int]:
        """`(T', L)`: spectral groups and spatial patches."""
        return self.bands // self.tubelet, (self.img_size // self.patch_size) ** 2

    @property
    def num_tokens(self) -> int:
        """`T'·L`: the tokens of one input."""
        groups, tokens = self.token_grid
        return groups * tokens

    @property
    def num_visible(self) -> int:
        """Tokens the encoder sees: `int(T'·L · (1 - mask_ratio))`, as the official code."""
        return int(self.num_tokens * (1 - self.mask_ratio))

    def patchify(self, x: jax.Array) -> jax.Array:
        """Inputs `(N, H, W, B)` → each token's pixels `(N, T'·L, tubelet·p²)`, the target of
        its prediction."""
        return patchify(x, self.patch_size, self.tubelet)

    def unpatchify(self, tokens: jax.Array) -> jax.Array:
        """Each token's pixels `(N, T'·L, tubelet·p²)` → inputs `(N, H, W, B)`."""
        return unpatchify(tokens, self.img_size, self.patch_size, self.tubelet)

    def checkpoint_fields(self) -> dict:
        """What a converted checkpoint of these parameters records in its manifest: the
        encoder's fields (`model`, which `model_from_config` builds the classifier's encoder
        from) and the decoder's (`decoder`)."""
        return {"model": {**{k: getattr(self, k) for k in ENCODER_FIELDS},
                          "pos_embed": "separable"},
                "decoder": {"width": self.decoder_width, "depth": self.decoder_depth,
                            "heads": self.decoder_heads}}

    def checkpoint_mismatch(self, converted: Mapping) -> str | None:
        """Why an encoder converted with the model fields `converted` (a manifest's) cannot
        start this one's pre-training, and what to do; None when it can."""
        wrong = [f"{k}={converted.get(k)!r} (the config's: {getattr(self, k)!r})"
                 for k in ENCODER_FIELDS if converted.get(k) != getattr(self, k)]
        if wrong:
            return (f"an encoder with {', '.join(wrong)}; set config.model and config.data to "
                    "that architecture")
        if converted.get("pos_embed") != "separable":
            return ("a joint position table, not the separable ones pre-training learns: convert "
                    "the checkpoint again with --pos-embed separable")
        return None

    @nn.compact
    def __call__(self, x, train: bool = False, noise=None):
        groups, tokens = self.token_grid
        if noise is None:
            noise = (jnp.broadcast_to(jnp.arange(groups * tokens, dtype=jnp.float32),
                                      (x.shape[0], groups * tokens))
                     if self.is_initializing() else
                     jax.random.uniform(self.make_rng("mask"), (x.shape[0], groups * tokens)))
        keep, restore, mask = random_masking(noise, self.num_visible)
        latent = Encoder(self.img_size, self.patch_size, self.tubelet, self.bands, self.width,
                         self.depth, self.heads, self.mlp_ratio, "separable", True, 0.0,
                         self.dtype, name="backbone")(x, train, keep=keep)
        pred = Decoder(groups, tokens, self.tubelet * self.patch_size ** 2, self.decoder_width,
                       self.decoder_depth, self.decoder_heads, self.mlp_ratio, self.dtype,
                       name="decoder")(latent, restore)
        return pred.astype(jnp.float32), mask


def build_mae(model_cfg: Mapping, decoder_cfg: Mapping, *, input_size: int, bands: int,
              mask_ratio: float = MASK_RATIO) -> SpectralMAE:
    """The masked autoencoder of `config.model` (its variant or fields; the classifier's head,
    pooling, position-table mode and dropouts do not apply) with the decoder `decoder_cfg`
    (`width`, `depth`, `heads`), on `(input_size, input_size, bands)` inputs."""
    fields = model_kwargs({**model_cfg, "img_size": input_size, "bands": bands})
    encoder = {k: fields[k] for k in (*ENCODER_FIELDS, "dtype") if k in fields}
    decoder = {f"decoder_{k}": v for k, v in decoder_cfg.items()}
    return SpectralMAE(**encoder, **decoder, mask_ratio=mask_ratio)
