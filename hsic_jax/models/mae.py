"""SpectralGPT's masked autoencoder (official `models_mae_spectral.MaskedAutoencoderViT`) in Flax.

Pre-training (`hsic_jax.train.pretrain`) learns a SpectralGPT encoder without labels: the
input `(N, H, W, B)` is cut into the encoder's 3-D tokens (tubelets of `tubelet` bands ×
`patch_size`² pixels, token `t·L + h·W' + w`), a random `mask_ratio` of each sample's tokens
is hidden (per-sample shuffling by argsort of uniform noise, the official `random_masking`),
the encoder sees only the visible ones (with their separable position embeddings), and a
light decoder fills the hidden ones with a learnt mask token, adds its own separable position
embeddings and predicts every token's `tubelet · patch_size²` pixel values. The loss
(`mae_loss`) is the mean squared error on the hidden tokens only, against the tokens'
pixels normalised per token (`patchify`, `norm_pix`: the official `norm_pix_loss`).

The official loss adds a second term (the squared error of the sum over spectral groups,
on every token, against the unnormalised target); it is left out here: it mixes a
normalised prediction with an unnormalised target.

Parameters: `{'backbone': the SpectralGPT encoder's (the same tree as the classifier's, with
`pos_embed='separable'`), 'decoder': {embed, mask_token, pos_embed_spatial,
pos_embed_temporal, block_i, norm, pred}}`; the converter maps the official `decoder_*`
keys and `mask_token` onto `decoder` (`convert.spectralgpt`).
"""

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from hsic_jax.models.spectralgpt import Block, Encoder, dense, layer_norm, model_kwargs

# The official decoder of `mae_vit_base_patch8_128`: 512 wide, 4 blocks of 16 heads.
DECODER = dict(decoder_width=512, decoder_depth=4, decoder_heads=16)
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
        init = nn.initializers.truncated_normal(0.02)
        spatial = self.param("pos_embed_spatial", init, (1, self.tokens, d))
        spectral = self.param("pos_embed_temporal", init, (1, self.groups, d))
        x = x + (spectral[:, :, None] + spatial[:, None]).reshape(1, total, d).astype(x.dtype)
        for i in range(self.depth):
            x = Block(self.heads, int(d * self.mlp_ratio), dtype=self.dtype, name=f"block_{i}")(x)
        return dense(self.out, "pred", self.dtype)(layer_norm("norm", self.dtype)(x))


class SpectralMAE(nn.Module):
    """`(N, H, W, B)` → `(pred (N, T'·L, tubelet·p²), mask (N, T'·L))`, mask 1 = hidden.

    The masking noise is the `'mask'` rng stream (`noise` `(N, T'·L)` uniform in [0, 1) may
    be given instead; at initialisation the first tokens are kept).
    """

    img_size: int
    patch_size: int
    tubelet: int
    bands: int
    width: int
    depth: int
    heads: int
    mlp_ratio: float = 4.0
    decoder_width: int = DECODER["decoder_width"]
    decoder_depth: int = DECODER["decoder_depth"]
    decoder_heads: int = DECODER["decoder_heads"]
    mask_ratio: float = MASK_RATIO
    dtype: Any = jnp.float32

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """`(H, W, B)` of one input."""
        return self.img_size, self.img_size, self.bands

    @property
    def num_tokens(self) -> tuple[int, int]:
        """`(T', L)`: spectral groups and spatial patches."""
        return self.bands // self.tubelet, (self.img_size // self.patch_size) ** 2

    @property
    def num_visible(self) -> int:
        """Tokens the encoder sees: `int(T'·L · (1 - mask_ratio))`, as the official code."""
        groups, tokens = self.num_tokens
        return int(groups * tokens * (1 - self.mask_ratio))

    @nn.compact
    def __call__(self, x, train: bool = False, noise=None):
        groups, tokens = self.num_tokens
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


def random_masking(noise: jax.Array, num_visible: int):
    """Per-sample random masking from `noise` `(N, L)`: the `num_visible` tokens of smallest
    noise are kept. Returns `keep` `(N, K)` (their indices, by increasing noise), `restore`
    `(N, L)` (where each token sits in `[kept, hidden]` order) and `mask` `(N, L)` float32,
    1 for a hidden token."""
    shuffle = jnp.argsort(noise, axis=1)
    restore = jnp.argsort(shuffle, axis=1)
    return shuffle[:, :num_visible], restore, (restore >= num_visible).astype(jnp.float32)


def patchify(x: jax.Array, patch_size: int, tubelet: int) -> jax.Array:
    """`(N, H, W, B)` → the tokens' pixels `(N, T'·L, tubelet·p²)`, each token's values in the
    official order (band within the tubelet, row, column)."""
    n, h, w, b = x.shape
    p, u = patch_size, tubelet
    x = x.reshape(n, h // p, p, w // p, p, b // u, u)  # n, gh, pi, gw, qi, t, u
    x = jnp.transpose(x, (0, 5, 1, 3, 6, 2, 4))  # n, t, gh, gw, u, pi, qi
    return x.reshape(n, (b // u) * (h // p) * (w // p), u * p * p)


def norm_pix(target: jax.Array, eps: float = 1e-6) -> jax.Array:
    """Each token's pixels `(..., P)` less their mean, over their (unbiased, as torch's `var`)
    standard deviation."""
    mean = target.mean(axis=-1, keepdims=True)
    var = target.var(axis=-1, keepdims=True, ddof=1)
    return (target - mean) / jnp.sqrt(var + eps)


def mae_loss(pred: jax.Array, target: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean over the hidden tokens (`mask` `(N, L)` = 1) of each token's mean squared error
    between `pred` and `target` `(N, L, P)`."""
    per_token = jnp.mean((pred - target) ** 2, axis=-1)
    return jnp.sum(per_token * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def mae_from_config(model_cfg: Mapping, decoder_cfg: Mapping, *, input_size: int, bands: int,
                    mask_ratio: float = MASK_RATIO) -> SpectralMAE:
    """The MAE of a SpectralGPT `config.model` (its variant or fields; the classifier's head,
    pooling, position-table mode and dropouts do not apply) with the decoder `decoder_cfg`
    (`width`, `depth`, `heads`), on `(input_size, input_size, bands)` inputs."""
    fields = model_kwargs({**model_cfg, "img_size": input_size, "bands": bands})
    encoder = {k: fields[k] for k in ("img_size", "patch_size", "tubelet", "bands", "width",
                                      "depth", "heads", "mlp_ratio", "dtype") if k in fields}
    decoder = {f"decoder_{k}": v for k, v in decoder_cfg.items()}
    return SpectralMAE(**encoder, **decoder, mask_ratio=mask_ratio)


def unpatchify(tokens: jax.Array, img_size: int, patch_size: int, tubelet: int) -> jax.Array:
    """The inverse of `patchify`: tokens `(N, T'·L, tubelet·p²)` → `(N, H, W, T'·tubelet)`."""
    n, p, u, g = tokens.shape[0], patch_size, tubelet, img_size // patch_size
    x = tokens.reshape(n, -1, g, g, u, p, p)  # n, t, gh, gw, u, pi, qi
    x = jnp.transpose(x, (0, 2, 5, 3, 6, 1, 4))  # n, gh, pi, gw, qi, t, u
    return x.reshape(n, img_size, img_size, -1)
