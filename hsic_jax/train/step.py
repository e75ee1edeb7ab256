"""The jitted train and predict steps, for one seed (`jax.vmap` runs several side by side).

A train state is a plain dict `{'step': int32 (), 'params': ..., 'opt_state': ...}` whose
`params` are the trainable parameters; every step also takes `frozen`, the rest, which the
seeds share (`jax.vmap(..., in_axes=None)`: a frozen layer's matmul runs once over every
seed's rows) and which gets no gradient. The steps of each task shape of gradient-trained
families (`hsic_jax.train.tasks` binds their settings):

  'patch'  `train_step` / `pixel_logits`: batches are built inside the step from the padded scene
           on the device, one neighbourhood per pixel; the step's indices come from a
           permutation that depends only on `(seed key, epoch)`, so a resumed run draws the
           same batches as an uninterrupted one.
  'scene'  `scene_train_step` / `scene_logits`: the whole scene is one input, one step per
           epoch, the loss is the mean over the training pixels of the per-pixel logits.
  'mae'    `mae_train_step`: masked pre-training of an encoder, batches as 'patch'.

`classes` turns logits into the predicted classes and their confidence.
"""

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from hsic_jax.adapters.methods import FROZEN
from hsic_jax.adapters.tuned import TunedModel
from hsic_jax.data.augment import augment, mix_batch
from hsic_jax.data.patches import extract_patches, resize_patches
from hsic_jax.models.mae import mae_loss, norm_pix
from hsic_jax.train.partition import combine


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


def train_step(state: dict, frozen: dict, padded: jax.Array, coords: jax.Array,
               labels: jax.Array, valid: jax.Array, seed: jax.Array, hp: dict, *,
               tuned: TunedModel, optimizer, geo: Geometry, batch_size: int,
               steps_per_epoch: int, augment_cfg: dict,
               drop_last: bool = True) -> tuple[dict, dict]:
    """One optimizer step of one seed.

    `padded` `(H + 2r, W + 2r, B)` is the scene; `coords` `(N, 2)`, `labels` `(N,)` and
    `valid` `(N,)` are that seed's training pixels (padded to a common N across seeds);
    `seed` is an int32 scalar; `hp` the run's hyper-parameters (scalars, traced in a sweep:
    `hsic_jax.train.sweep`), from which `optimizer(hp)` builds `(tx, schedule)`.
    `augment_cfg` holds the flags of `augment` (a noise with a probability > 0 is in the
    program, at this run's `hp` probability) and the `mixup` / `cutmix` alphas of
    `mix_batch`; the mixed targets are then smoothed by `hp['label_smoothing']` (smoothing is
    linear: the same as smoothing each one-hot before mixing). Returns the new state and
    `{'loss', 'accuracy'}` (accuracy against the unmixed labels).

    `drop_last=False` keeps the epoch's last, partial batch (as a torch `DataLoader` does by
    default): its missing entries are padding with weight 0, and the loss is the mean over
    the batch's real entries (`batch_indices`).
    """
    x, y, weights, aug_key, dropout_key = _batch(
        state["step"], padded, coords, labels, valid, seed, hp, geo=geo, batch_size=batch_size,
        steps_per_epoch=steps_per_epoch, augment_cfg=augment_cfg, drop_last=drop_last)
    x, targets = mix_batch(jax.random.fold_in(aug_key, 1), x, y, tuned.module.num_classes,
                           mixup_alpha=augment_cfg.get("mixup", 0.0),
                           cutmix_alpha=augment_cfg.get("cutmix", 0.0))
    targets = optax.smooth_labels(targets, hp["label_smoothing"])
    mean = jnp.mean if drop_last else functools.partial(_weighted_mean, weights)

    def loss_fn(params):
        logits = tuned.apply(combine(params, frozen), x, train=True,
                             rngs={"dropout": dropout_key})
        return mean(optax.softmax_cross_entropy(logits, never_targets(targets, logits))), logits

    state, loss, logits = _update(state, loss_fn, optimizer(hp)[0])
    classes = logits[..., :targets.shape[-1]]  # not a never-target output
    return state, {"loss": loss, "accuracy": mean(jnp.argmax(classes, -1) == y)}


def never_targets(targets: jax.Array, logits: jax.Array) -> jax.Array:
    """`targets` `(N, C)` with a zero column for each output of `logits` `(N, C + E)` after the C
    classes: a model may return, in training, outputs that no pixel has as its label but that
    its softmax covers (HyperSIGMA's official background output)."""
    extra = logits.shape[-1] - targets.shape[-1]
    return targets if extra == 0 else jnp.pad(targets, ((0, 0), (0, extra)))


def batch_indices(step: jax.Array, valid: jax.Array, seed: jax.Array, *, batch_size: int,
                  steps_per_epoch: int, drop_last: bool = True) -> tuple[jax.Array, jax.Array]:
    """Which training pixels step `step` of one seed trains on: indices `(batch_size,)` into
    the seed's pixels (`valid` `(N,)` marks the real ones) and their weights `(batch_size,)`
    float32.

    Each epoch visits the valid pixels in a new random order that depends only on `(seed,
    epoch)` (`epoch_order`), `batch_size` at a time. With `drop_last` every step's batch is
    full (weights 1; the pixels of an epoch's incomplete last batch are not visited that
    epoch); without it the last step of an epoch takes the remainder, the rest of its batch
    padding of weight 0 (as a torch `DataLoader(shuffle=True)` with its default
    `drop_last=False`).
    """
    order_key = jax.random.split(jax.random.key(seed))[0]
    epoch, i = step // steps_per_epoch, step % steps_per_epoch
    order = epoch_order(order_key, epoch, valid)
    if not drop_last:  # room for a last batch that runs past the end (no clamped slice)
        order = jnp.concatenate([order, jnp.zeros(batch_size, order.dtype)])
    idx = jax.lax.dynamic_slice(order, (i * batch_size,), (batch_size,))
    if drop_last:
        return idx, jnp.ones(batch_size, jnp.float32)
    position = i * batch_size + jnp.arange(batch_size)
    return idx, (position < jnp.sum(valid)).astype(jnp.float32)


def _weighted_mean(weights: jax.Array, values: jax.Array) -> jax.Array:
    return jnp.sum(weights * values) / jnp.maximum(jnp.sum(weights), 1.0)


def _batch(step: jax.Array, padded: jax.Array, coords: jax.Array, labels: jax.Array,
           valid: jax.Array, seed: jax.Array, hp: dict, *, geo: Geometry, batch_size: int,
           steps_per_epoch: int, augment_cfg: dict, drop_last: bool = True):
    """Step `step`'s batch of one seed (arguments as `train_step`'s): its inputs
    `(batch, input_size, input_size, B)` flipped and noised by `augment` (not mixed), their
    labels `(batch,)` and weights `(batch,)` (`batch_indices`), the key of the augmentation
    and the key of the step's other randomness."""
    idx, weights = batch_indices(step, valid, seed, batch_size=batch_size,
                                 steps_per_epoch=steps_per_epoch, drop_last=drop_last)
    steps_key = jax.random.split(jax.random.key(seed))[1]
    aug_key, step_key = jax.random.split(jax.random.fold_in(steps_key, step))
    y = labels[idx]
    flips_and_noise = {k: v for k, v in augment_cfg.items() if k not in ("mixup", "cutmix")}
    for noise in ("radiation_noise", "mixture_noise"):  # in the program: at this run's rate
        if flips_and_noise.get(noise, 0.0) > 0:
            flips_and_noise[noise] = hp[noise]
    x = augment(aug_key, inputs(padded, coords[idx], geo), y, **flips_and_noise)
    return x, y, weights, aug_key, step_key


def mae_train_step(state: dict, frozen: dict, padded: jax.Array, coords: jax.Array,
                   labels: jax.Array, valid: jax.Array, seed: jax.Array, hp: dict, *,
                   tuned: TunedModel, optimizer, geo: Geometry, batch_size: int,
                   steps_per_epoch: int, augment_cfg: dict, norm_pix_loss: bool) -> tuple[dict, dict]:
    """One optimizer step of masked pre-training of one seed: the batch as `train_step` draws it
    from the pixels `coords` (`labels` unused), each input's tokens masked at random by the
    family's masked autoencoder `tuned.module` (`build_mae`, `hsic_jax.models`), the loss
    `mae_loss` on the hidden tokens against their pixels (`tuned.module.patchify`, normalised
    per token with `norm_pix_loss`). Returns the new state and `{'loss'}`."""
    x, _, _, _, key = _batch(state["step"], padded, coords, labels, valid, seed, hp, geo=geo,
                          batch_size=batch_size, steps_per_epoch=steps_per_epoch,
                          augment_cfg=augment_cfg)
    dropout_key, mask_key = jax.random.split(key)
    target = tuned.module.patchify(x)
    if norm_pix_loss:
        target = norm_pix(target)

    def loss_fn(params):
        pred, mask = tuned.apply(combine(params, frozen), x, train=True,
                                 rngs={"dropout": dropout_key, "mask": mask_key})
        return mae_loss(pred, target, mask), pred

    state, loss, _ = _update(state, loss_fn, optimizer(hp)[0])
    return state, {"loss": loss}


def scene_train_step(state: dict, frozen: dict, scene: jax.Array, coords: jax.Array,
                     labels: jax.Array, valid: jax.Array, seed: jax.Array, hp: dict, *,
                     tuned: TunedModel, optimizer) -> tuple[dict, dict]:
    """One optimizer step of one seed of a whole-scene model: the scene `(H, W, B)` is the
    input, the loss the mean cross-entropy of the per-pixel logits over the `valid` training
    pixels `coords` `(N, 2)` with `labels` `(N,)`; `hp` and `optimizer` as in `train_step`.
    Returns the new state and `{'loss', 'accuracy'}`."""
    dropout_key = jax.random.fold_in(jax.random.key(seed), state["step"])
    targets = optax.smooth_labels(jax.nn.one_hot(labels, tuned.module.num_classes),
                                  hp["label_smoothing"])
    weights = valid / jnp.maximum(jnp.sum(valid), 1)

    def loss_fn(params):
        logits = tuned.apply(combine(params, frozen), scene[None], train=True,
                             rngs={"dropout": dropout_key})[0][coords[:, 0], coords[:, 1]]
        return jnp.sum(weights * optax.softmax_cross_entropy(logits, targets)), logits

    state, loss, logits = _update(state, loss_fn, optimizer(hp)[0])
    return state, {"loss": loss, "accuracy": jnp.sum(weights * (jnp.argmax(logits, -1) == labels))}


def _update(state: dict, loss_fn, tx: optax.GradientTransformation):
    """The state after one update of the trainable parameters along the gradient of
    `loss_fn(params) -> (loss, output)`; returns `(state, loss, output)`."""
    (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    return {"step": state["step"] + 1, "params": params, "opt_state": opt_state}, loss, logits


def pixel_logits(params: dict, frozen: dict, padded: jax.Array, coords: jax.Array, *,
                 tuned: TunedModel, geo: Geometry, micro_batch: int | None = None) -> jax.Array:
    """Logits `(N, C)` at pixel coordinates `(N, 2)` of the padded cube, in eval mode
    (adapters merged into their kernels first: `TunedModel.merge`), `micro_batch` pixels a
    forward at the most (`lax.map` over slices of the batch, `_slice_size`; None: all at
    once). Each pixel's logits depend neither on the others nor on how the batch is cut."""
    merged = tuned.merge(combine(params, frozen))

    def logits(c):  # (M, 2) -> (M, C)
        return tuned.module.apply({"params": merged}, inputs(padded, c, geo), train=False)

    n = coords.shape[0]
    if micro_batch is None or n <= micro_batch:
        return logits(coords)
    size = _slice_size(n, micro_batch)
    slices = -(-n // size)
    padding = jnp.broadcast_to(coords[:1], (slices * size - n, 2))  # the first pixel again
    out = jax.lax.map(logits, jnp.concatenate([coords, padding]).reshape(slices, size, 2))
    return out.reshape(slices * size, -1)[:n]


def _slice_size(n: int, most: int) -> int:
    """Pixels a slice when `n` are cut into slices of at most `most`: the largest divisor of
    `n` up to `most` if it is at least half of it, else near-equal slices (the last padded)."""
    divisor = max(d for d in range(1, most + 1) if n % d == 0)
    return divisor if 2 * divisor >= most else -(-n // -(-n // most))


# XLA:CPU runs a forward faster in micro-batches whose activations stay in the caches.
# Batches of 256 pixels (AMD EPYC, 2 cores), with the budget's slices: SpectralGPT cpu-small
# (6 × 192, 64 tokens) 1.18× in slices of 32 pixels, the demo encoder 1.31× in slices of 64,
# ViT-B (2 blocks, batch 64) 1.09× in slices of 8; SpectralFormer (Indian Pines, 201 tokens)
# 1.50× in slices of 8. Slices of half or twice the size were no faster, a quarter slower.
_MICRO_BATCH_FLOATS = 2**21


def micro_batch(module) -> int | None:
    """Pixels a forward of `module` in prediction: on a CPU as many as keep their largest
    activation (`module.activation_size` floats each, where the family gives it) within
    `_MICRO_BATCH_FLOATS`; otherwise None (the whole batch at once)."""
    size = getattr(module, "activation_size", None)
    if jax.default_backend() != "cpu" or size is None:
        return None
    return max(1, _MICRO_BATCH_FLOATS // size)


def scene_logits(params: dict, frozen: dict, scene: jax.Array, coords: jax.Array, *,
                 tuned: TunedModel) -> jax.Array:
    """`pixel_logits` for a whole-scene model: one forward of the scene `(H, W, B)`, read at
    the pixel coordinates `(N, 2)`."""
    return tuned.apply_merged(combine(params, frozen), scene[None])[0][coords[:, 0], coords[:, 1]]


def classes(logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Predicted classes `(N,)` in 0..C-1 and their softmax probabilities `(N,)` (the
    confidence) of logits `(N, C)`."""
    return jnp.argmax(logits, axis=-1), jnp.max(jax.nn.softmax(logits, axis=-1), axis=-1)


# XLA:CPU fuses a transformer block's backward matmuls and their elementwise neighbours into one
# YNNPACK subgraph by default; without the weight gradients (a frozen backbone) it runs faster
# with each dot on its own (cpu-small LoRA and KronA+ steps ~1.12× on 2 cores), with them (FFT)
# slower. A forward pass alone (prediction) is faster so too (a cpu-small batch of 256 1.18×).
_FROZEN_BACKBONE_CPU = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}


def predict_compiler_options() -> dict | None:
    """XLA options of a prediction program (no gradients): on a CPU each dot its own YNNPACK
    fusion; otherwise XLA's defaults (None). The run's test predictions and map and
    `hsic_jax.predict` compile with the same options, so their classes agree bit for bit."""
    return _FROZEN_BACKBONE_CPU if jax.default_backend() == "cpu" else None


def seeds_predict_program(predict: Callable) -> Callable:
    """`predict(params, frozen, cube, coords)` of one run, vmapped over the runs' leading axis
    of `params`, `cube` and `coords` and jitted with `predict_compiler_options`: the one program
    the loop's test predictions and map and `hsic_jax.predict` of a single run compile."""
    return jax.jit(jax.vmap(predict, in_axes=(0, None, 0, 0)),
                   compiler_options=predict_compiler_options())


def compiler_options(labels) -> dict | None:
    """XLA options of the train step of a run whose parameters are labelled `labels`
    (`hsic_jax.adapters.methods`): on a CPU, when no kernel of the backbone trains, each dot
    its own YNNPACK fusion; otherwise XLA's defaults (None)."""
    if jax.default_backend() != "cpu":
        return None
    backbone = jax.tree_util.tree_leaves_with_path(labels.get("backbone", {}))
    kernels = [label for path, label in backbone if getattr(path[-1], "key", None) == "kernel"]
    return _FROZEN_BACKBONE_CPU if all(label == FROZEN for label in kernels) else None
