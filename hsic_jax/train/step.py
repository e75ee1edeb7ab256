"""The jitted train and predict steps, for one seed (`jax.vmap` runs several side by side).

A train state is a plain dict `{'step': int32 (), 'params': ..., 'opt_state': ...}`. Batches
are built inside the step from the padded scene on the device: the step's indices come
from a permutation that depends only on `(seed key, epoch)`, so a resumed run draws the
same batches as an uninterrupted one.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from hsic_jax.adapters.tuned import TunedModel
from hsic_jax.data.augment import augment, mix_batch
from hsic_jax.data.patches import extract_patches, resize_patches
from hsic_jax.train.optimizer import freeze, keep_frozen


@dataclasses.dataclass(frozen=True)
class Geometry:
    """How a pixel becomes a model input: its `neighborhood`² pixels resized to `input_size`²
    with `resize` ('bilinear' or 'bicubic', see `hsic_jax.data.patches.resize_patches`)."""

    neighborhood: int
    input_size: int
    resize: str = "bilinear"


def inputs(padded: jax.Array, coords: jax.Array, geo: Geometry) -> jax.Array:
    """Model inputs `(N, input_size, input_size, B)` for pixel coordinates `(N, 2)`."""
    patches = extract_patches(padded, coords, geo.neighborhood)
    if geo.input_size == geo.neighborhood:  # the model takes the neighbourhood as it is
        return patches
    return resize_patches(patches, geo.input_size, geo.resize)


def epoch_order(key: jax.Array, epoch: jax.Array, valid: jax.Array) -> jax.Array:
    """A random order of the `valid` entries `(N,)` first, then the padding, for one epoch."""
    noise = jax.random.uniform(jax.random.fold_in(key, epoch), valid.shape)
    return jnp.argsort(jnp.where(valid, noise, 2.0))


def train_step(state: dict, padded: jax.Array, coords: jax.Array, labels: jax.Array,
               valid: jax.Array, seed: jax.Array, *, tuned: TunedModel,
               tx: optax.GradientTransformation,
               param_labels: Any, geo: Geometry, batch_size: int, steps_per_epoch: int,
               augment_cfg: dict, label_smoothing: float) -> tuple[dict, dict]:
    """One optimizer step of one seed.

    `padded` `(H + 2r, W + 2r, B)` is the scene; `coords` `(N, 2)`, `labels` `(N,)` and
    `valid` `(N,)` are that seed's training pixels (padded to a common N across seeds);
    `seed` is an int32 scalar. `augment_cfg` holds the flags of `augment` and the `mixup` /
    `cutmix` alphas of `mix_batch` (which also smooths the labels). Returns the new state and
    `{'loss', 'accuracy'}` (accuracy against the unmixed labels).
    """
    order_key, steps_key = jax.random.split(jax.random.key(seed))
    step = state["step"]
    epoch, i = step // steps_per_epoch, step % steps_per_epoch
    idx = jax.lax.dynamic_slice(epoch_order(order_key, epoch, valid), (i * batch_size,), (batch_size,))
    aug_key, dropout_key = jax.random.split(jax.random.fold_in(steps_key, step))
    y = labels[idx]
    flips_and_noise = dict(augment_cfg)
    mixup, cutmix = flips_and_noise.pop("mixup", 0.0), flips_and_noise.pop("cutmix", 0.0)
    x = augment(aug_key, inputs(padded, coords[idx], geo), y, **flips_and_noise)
    x, targets = mix_batch(jax.random.fold_in(aug_key, 1), x, y, tuned.module.num_classes,
                           mixup_alpha=mixup, cutmix_alpha=cutmix, label_smoothing=label_smoothing)

    def loss_fn(params):
        logits = tuned.apply(freeze(params, param_labels), x, train=True,
                             rngs={"dropout": dropout_key})
        return optax.softmax_cross_entropy(logits, targets).mean(), logits

    (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = keep_frozen(optax.apply_updates(state["params"], updates), state["params"], param_labels)
    metrics = {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == y)}
    return {"step": step + 1, "params": params, "opt_state": opt_state}, metrics


def predict(params: Any, padded: jax.Array, coords: jax.Array, *, tuned: TunedModel,
            geo: Geometry) -> tuple[jax.Array, jax.Array]:
    """Predicted classes `(N,)` in 0..C-1 and their softmax probabilities `(N,)` (the
    confidence) for pixel coordinates `(N, 2)`, in eval mode."""
    logits = tuned.apply(params, inputs(padded, coords, geo), train=False)
    return jnp.argmax(logits, axis=-1), jnp.max(jax.nn.softmax(logits, axis=-1), axis=-1)
