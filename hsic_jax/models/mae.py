"""Masked autoencoding, what every family's masked autoencoder shares (masked pre-training,
`hsic_jax.train.pretrain`): the per-sample random masking of the official `random_masking`,
the per-token normalisation of the target (`norm_pix`: the official `norm_pix_loss`) and the
loss on the hidden tokens (`mae_loss`). A family's own masked autoencoder (its `build_mae`,
e.g. `hsic_jax.models.spectralgpt.SpectralMAE`) cuts the input into its tokens.
"""

import jax
import jax.numpy as jnp


def random_masking(noise: jax.Array, num_visible: int):
    """Per-sample random masking from `noise` `(N, L)`: the `num_visible` tokens of smallest
    noise are kept. Returns `keep` `(N, K)` (their indices, by increasing noise), `restore`
    `(N, L)` (where each token sits in `[kept, hidden]` order) and `mask` `(N, L)` float32,
    1 for a hidden token."""
    shuffle = jnp.argsort(noise, axis=1)
    restore = jnp.argsort(shuffle, axis=1)
    return shuffle[:, :num_visible], restore, (restore >= num_visible).astype(jnp.float32)


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
