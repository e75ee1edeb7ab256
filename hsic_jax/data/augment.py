"""Training augmentation of hyperspectral patches: flips, radiation noise, mixture noise.

The transforms follow DeepHyperX (Audebert et al., `HyperX` dataset), with the same default
probabilities and constants, and are applied in its order: flips, then radiation noise, then
mixture noise. Every sample gets its own key (split from the batch key), so its transforms do not
depend on the other samples, except for the partner that mixture noise draws from the batch.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from hsic_jax.data.io import DataError


@partial(jax.jit, static_argnames=("flip", "radiation_noise", "mixture_noise"))
def augment(
    key: jax.Array,
    patches: jax.Array,
    labels: jax.Array | None = None,
    *,
    flip: bool = True,
    radiation_noise: float = 0.1,
    mixture_noise: float = 0.2,
    radiation_alpha: tuple[float, float] = (0.9, 1.1),
    mixture_alpha: tuple[float, float] = (0.01, 1.0),
    noise_std: float = 1 / 25,
) -> jax.Array:
    """Augments a batch of patches (N, h, w, B); returns (N, h, w, B).

    For each sample x (h, w, B), independently:
      flip: with probability 1/2 mirror left-right (x[:, ::-1], DeepHyperX's fliplr), then with
        probability 1/2 mirror up-down (x[::-1], flipud).
      radiation noise, with probability `radiation_noise`:
        x <- alpha * x + noise_std * n,  alpha ~ U(radiation_alpha) per sample, n ~ N(0, 1) per element.
      mixture noise, with probability `mixture_noise`:
        x <- (a1 * x + a2 * y) / (a1 + a2) + noise_std * n,  a1, a2 ~ U(mixture_alpha), n ~ N(0, 1),
        where y is another patch of the batch with the same label (drawn uniformly among them; x
        itself if none), taken before augmentation. DeepHyperX mixes each pixel with a random
        pixel of that pixel's class from the whole training set; here the partner is a whole patch
        of the centre pixel's class from the batch, so the transform stays inside one jitted step.

    Args:
      key: a PRNG key for the batch.
      patches: (N, h, w, B) float.
      labels: (N,) int class of each patch; required when `mixture_noise` > 0.
      flip, radiation_noise, mixture_noise: enable flips; probabilities of the two noises (0 = off).
        These are static (a change recompiles); the arguments below are traced.
      radiation_alpha, mixture_alpha: (low, high) ranges of the uniform scale factors.
      noise_std: beta, the standard deviation of the additive Gaussian noise (DeepHyperX: 1/25).
    """
    for name, p in (("radiation_noise", radiation_noise), ("mixture_noise", mixture_noise)):
        if not 0 <= p <= 1:
            raise DataError(f"{name} is a probability in [0, 1], got {p}")
    if mixture_noise > 0 and labels is None:
        raise DataError("mixture noise mixes patches of the same class: pass labels (N,)")
    n = patches.shape[0]
    if labels is not None and labels.shape != (n,):
        raise DataError(f"labels must have shape ({n},), got {labels.shape}")
    keys = jax.vmap(lambda k: jax.random.split(k, 3))(jax.random.split(key, n))  # (N, 3) keys per sample
    partners = patches if labels is None else patches[_same_class_partner(keys[:, 2], labels)]

    def one(k: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
        # All of a sample's draws come from two calls (few PRNG kernels keep compilation fast):
        # u: flip lr, flip ud, radiation on, alpha, mixture on, a1, a2; noise: radiation, mixture.
        u = jax.random.uniform(k[0], (7,), x.dtype)
        noise = noise_std * jax.random.normal(k[1], (2,) + x.shape, x.dtype)
        if flip:
            x = jnp.where(u[0] < 0.5, x[:, ::-1], x)
            x = jnp.where(u[1] < 0.5, x[::-1], x)
        if radiation_noise > 0:
            low, high = radiation_alpha
            alpha = low + (high - low) * u[3]
            x = jnp.where(u[2] < radiation_noise, alpha * x + noise[0], x)
        if mixture_noise > 0:
            low, high = mixture_alpha
            a1, a2 = low + (high - low) * u[5], low + (high - low) * u[6]
            x = jnp.where(u[4] < mixture_noise, (a1 * x + a2 * y) / (a1 + a2) + noise[1], x)
        return x

    return jax.vmap(one)(keys, patches, partners)


def _same_class_partner(keys: jax.Array, labels: jax.Array) -> jax.Array:
    """(N,) index of a uniformly drawn other sample with the same label (the sample itself if none)."""
    n = labels.shape[0]
    same = (labels[:, None] == labels[None, :]) & ~jnp.eye(n, dtype=bool)
    scores = jax.vmap(lambda k: jax.random.uniform(k, (n,)))(keys)
    best = jnp.argmax(jnp.where(same, scores, -1.0), axis=1)
    return jnp.where(same.any(axis=1), best, jnp.arange(n))
