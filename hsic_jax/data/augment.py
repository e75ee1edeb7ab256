"""Training augmentation of hyperspectral patches: flips, radiation noise, mixture noise, mixup.

The transforms of `augment` follow DeepHyperX (Audebert et al., `HyperX` dataset), with the same
default probabilities and constants, and are applied in its order: flips, then radiation noise,
then mixture noise. Every sample gets its own key (split from the batch key), so its transforms do
not depend on the other samples, except for the partner that mixture noise draws from the batch.

`mix_batch` is the mixup / cutmix of the official SpectralGPT fine-tune (timm's `Mixup`), which
mixes whole batches and returns soft targets.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import optax

from hsic_jax.data.io import DataError


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
        Python numbers are static (a change recompiles); a probability may also be a traced
        scalar (a sweep's), which keeps its noise in the program at any value.
      radiation_alpha, mixture_alpha: (low, high) ranges of the uniform scale factors.
      noise_std: beta, the standard deviation of the additive Gaussian noise (DeepHyperX: 1/25).
    """
    on = {}  # which noises are part of the program: a traced probability always is
    for name, p in (("radiation_noise", radiation_noise), ("mixture_noise", mixture_noise)):
        if isinstance(p, jax.Array):
            on[name] = True
        elif not 0 <= p <= 1:
            raise DataError(f"{name} is a probability in [0, 1], got {p}")
        else:
            on[name] = p > 0
    if on["mixture_noise"] and labels is None:
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
        if on["radiation_noise"]:
            low, high = radiation_alpha
            alpha = low + (high - low) * u[3]
            x = jnp.where(u[2] < radiation_noise, alpha * x + noise[0], x)
        if on["mixture_noise"]:
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


@partial(jax.jit, static_argnames=("num_classes", "mixup_alpha", "cutmix_alpha", "switch_prob",
                                   "prob", "label_smoothing"))
def mix_batch(
    key: jax.Array,
    x: jax.Array,
    y: jax.Array,
    num_classes: int,
    *,
    mixup_alpha: float = 0.0,
    cutmix_alpha: float = 0.0,
    switch_prob: float = 0.5,
    prob: float = 1.0,
    label_smoothing: float = 0.0,
) -> tuple[jax.Array, jax.Array]:
    """Mixup or cutmix of a batch of patches with its reversal; returns (x (N, h, w, B), targets).

    timm's `Mixup` in 'batch' mode (timm 0.4.12), as the official SpectralGPT fine-tune uses it
    (mixup_alpha 0.8, cutmix_alpha 1.0, prob 1.0, switch_prob 0.5, label_smoothing 0.1). With
    probability `prob` the batch is mixed (else λ = 1: x as it is); it is cut when only
    `cutmix_alpha` > 0, or, when both alphas are, with probability `switch_prob`; λ ~ Beta(α, α)
    with the α of the chosen method. The partner of sample i is sample N - 1 - i (x[::-1]; for an
    odd N the middle sample is its own partner, where timm asserts an even N).
      mixup: x <- λ x + (1 - λ) x[::-1].
      cutmix: the box of rows [cy - cut_h // 2, cy + cut_h // 2) × columns [cx - cut_w // 2,
        cx + cut_w // 2), clipped to the patch, of every sample is taken from x[::-1]; cut_h =
        int(h sqrt(1 - λ)), cut_w = int(w sqrt(1 - λ)), cy ~ U{0, h - 1}, cx ~ U{0, w - 1}. λ is
        then corrected to 1 - box area / (h w), the share of the sample that is its own.
    targets = λ smooth(y) + (1 - λ) smooth(y[::-1]), smooth = one-hot with 1 - s + s / C on and
    s / C off (`optax.smooth_labels`). With both alphas 0, x is returned as it is.

    Args:
      key: a PRNG key for the batch.
      x: (N, h, w, B) float patches.
      y: (N,) int class of each patch, in [0, num_classes).
      num_classes: C, the width of the targets.
      mixup_alpha, cutmix_alpha: ≥ 0, the Beta parameters (0 = that method off).
      switch_prob: probability of cutmix when both alphas are > 0.
      prob: probability that a batch is mixed at all.
      label_smoothing: s in [0, 1].
      All but key, x and y are static (a change recompiles).

    Returns:
      (x mixed (N, h, w, B) of x's dtype, targets (N, C) float32 whose rows sum to 1).
    """
    if num_classes < 1:
        raise DataError(f"num_classes must be ≥ 1, got {num_classes}")
    for name, alpha in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha)):
        if not alpha >= 0:
            raise DataError(f"{name} must be ≥ 0, got {alpha}")
    for name, p in (("switch_prob", switch_prob), ("prob", prob),
                    ("label_smoothing", label_smoothing)):
        if not 0 <= p <= 1:
            raise DataError(f"{name} must be in [0, 1], got {p}")
    if x.ndim != 4:
        raise DataError(f"x must be patches (N, h, w, B), got shape {x.shape}")
    if y.shape != x.shape[:1]:
        raise DataError(f"labels y must have shape ({x.shape[0]},), got {y.shape}")
    smooth = optax.smooth_labels(jax.nn.one_hot(y, num_classes), label_smoothing)
    if mixup_alpha == 0 and cutmix_alpha == 0:
        return x, smooth
    k_apply, k_switch, k_lam, k_box = jax.random.split(key, 4)
    if mixup_alpha > 0 and cutmix_alpha > 0:
        cut = jax.random.uniform(k_switch) < switch_prob
    else:
        cut = jnp.asarray(cutmix_alpha > 0)
    alpha = jnp.where(cut, cutmix_alpha, mixup_alpha)
    lam = jax.random.beta(k_lam, alpha, alpha)
    flipped = x[::-1]
    mixed = lam.astype(x.dtype) * x + (1 - lam).astype(x.dtype) * flipped
    if cutmix_alpha > 0:
        box = _cutmix_box(k_box, lam, x.shape[1], x.shape[2])
        mixed = jnp.where(cut, jnp.where(box[None, :, :, None], flipped, x), mixed)
        lam = jnp.where(cut, 1 - box.mean(), lam)
    apply = jax.random.uniform(k_apply) < prob
    lam = jnp.where(apply, lam, 1.0)
    return jnp.where(apply, mixed, x), lam * smooth + (1 - lam) * smooth[::-1]


def _cutmix_box(key: jax.Array, lam: jax.Array, h: int, w: int) -> jax.Array:
    """(h, w) bool mask of timm's `rand_bbox` for a cut ratio sqrt(1 - lam) (see `mix_batch`).

    Comparing the row and column indices with the unclipped bounds clips the box to the patch.
    """
    ratio = jnp.sqrt(1 - lam)
    ky, kx = jax.random.split(key)

    def span(k: jax.Array, size: int) -> jax.Array:
        half = (size * ratio).astype(jnp.int32) // 2
        centre = jax.random.randint(k, (), 0, size)
        i = jnp.arange(size)
        return (i >= centre - half) & (i < centre + half)

    return span(ky, h)[:, None] & span(kx, w)[None, :]
