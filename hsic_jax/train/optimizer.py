"""The optimizer of a fine-tuning method: labels, schedule, AdamW, layer decay.

The train step (in `hsic_jax.train`) is

    labels = tuned.labels(params)                       # static: close over it, do not jit it
    trainable, frozen = partition.split(params, labels)
    tx = make_optimizer(config.optim, partition.split(labels, labels)[0],
                        make_schedule(config.optim, total, per_epoch), method.lam)
    grads = jax.grad(lambda p: loss(partition.combine(p, frozen)))(trainable)
    updates, opt_state = tx.update(grads, opt_state, trainable)
    trainable = optax.apply_updates(trainable, updates)

The gradient is taken with respect to the trainable leaves only, so JAX computes no weight
gradient for a frozen layer (and, for a linear probe, no backward pass through the backbone
at all) and the frozen leaves stay bit for bit. `make_optimizer` also takes labels with
frozen leaves (`optax.set_to_zero()`, no optimizer state).

Layer-wise learning-rate decay (the official recipe: 0.75 over depth + 1 layers) passes
`lr_scales=layer_decay_scales(params, *family.layer_ids(module), 0.75)` to `make_optimizer`.

`optim.name` 'adamw' is AdamW (decoupled weight decay on ≥ 2-D leaves but position tables,
the official SpectralGPT rule); 'adam' is torch.optim.Adam (the decay added to every leaf's
gradient before the moments, as the official SpectralFormer trains).
"""

import math
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import optax

from hsic_jax.adapters.methods import B_SIDE, BASE, FROZEN, path_name

OPTIMIZERS = ("adamw", "adam")
SCHEDULES = ("cosine", "step")


def make_schedule(optim_cfg: Mapping, total_steps: int, steps_per_epoch: int) -> optax.Schedule:
    """The learning rate per step, of `optim.schedule`:

    'cosine': linear warm-up from 0 over `warmup_epochs`, then cosine from `lr` to `min_lr`,
      per step, as the official SpectralGPT fine-tune does per iteration;
    'step': `lr · step_gamma^⌊(epoch + step_offset) / step_epochs⌋`, as torch's StepLR
      stepped every epoch: after it (`step_offset` 0) or, as the official SpectralFormer
      script calls `scheduler.step()`, before it (`step_offset` 1: the rate drops one epoch
      earlier, in the 30th epoch of 300 instead of the 31st).
    """
    lr, min_lr = optim_cfg["lr"], optim_cfg["min_lr"]  # Python floats, or traced (a sweep)
    if optim_cfg["schedule"] == "step":
        every = int(optim_cfg["step_epochs"]) * steps_per_epoch
        offset = int(optim_cfg["step_offset"]) * steps_per_epoch
        gamma = optim_cfg["step_gamma"]
        return lambda step: lr * gamma ** ((jnp.asarray(step) + offset) // every).astype(
            jnp.float32)
    warmup = int(round(float(optim_cfg["warmup_epochs"]) * steps_per_epoch))
    if total_steps < 1 or steps_per_epoch < 1:
        raise ValueError(f"schedule needs total_steps ≥ 1 and steps_per_epoch ≥ 1, got "
                         f"{total_steps} and {steps_per_epoch}")
    if warmup > total_steps:
        raise ValueError(f"optim.warmup_epochs = {optim_cfg['warmup_epochs']} is "
                         f"{warmup} steps, more than the {total_steps} steps of training")
    decay = max(total_steps - warmup, 1)

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        ramp = lr * step / max(warmup, 1)
        progress = jnp.clip((step - warmup) / decay, 0.0, 1.0)
        cosine = min_lr + (lr - min_lr) * 0.5 * (1.0 + jnp.cos(math.pi * progress))
        return jnp.where(step < warmup, ramp, cosine)

    return schedule


def decay_mask(params):
    """True for leaves that get weight decay: ≥ 2-D, except position embeddings.

    (The official recipe exempts 1-D parameters and `pos_embed*`.) Leaves that are not
    arrays (optax's `MaskedNode` inside `multi_transform`) are kept as they are.
    """
    return jax.tree_util.tree_map_with_path(
        lambda path, p: p.ndim >= 2 and "pos_embed" not in path_name(path), params)


def layer_decay_scales(params, layer_of: Callable[[str], int], num_layers: int,
                       decay: float):
    """A pytree like `params` of Python floats: decay ** (num_layers - layer_of(path)).

    `layer_of` maps a '/'-joined parameter path to its layer id in [0, num_layers] (the
    BEiT rule of timm's `param_groups_lrd`: the top layer trains at the full rate).
    """
    return jax.tree_util.tree_map_with_path(
        lambda path, _: float(decay) ** (num_layers - layer_of(path_name(path))), params)


def make_optimizer(optim_cfg: Mapping, labels, schedule: optax.Schedule,
                   lam: float = 1.0, lr_scales=None) -> optax.GradientTransformation:
    """Adam(W) at `schedule` for 'base' leaves, at λ·`schedule` for 'b_side', nothing for 'frozen'.

    `lam` and `optim_cfg`'s lr, min_lr and weight decay may be traced scalars: a sweep builds
    the optimizer inside the step from each run's values (`hsic_jax.train.sweep`).

    `lr_scales`, a pytree of floats like `labels`, multiplies each leaf's final update: the
    Adam step and the decoupled weight decay both scale, as the learning rate of a torch
    param group with `lr_scale` does (see `layer_decay_scales`).
    """

    b1, b2, eps = (float(optim_cfg[k]) for k in ("b1", "b2", "eps"))
    weight_decay = optim_cfg["weight_decay"]  # a Python float, or traced (a sweep)

    def adam(scale):
        def lr(step):
            return scale * schedule(step)

        if optim_cfg["name"] == "adam":  # torch.optim.Adam: L2 in the gradient, every leaf
            return optax.chain(optax.add_decayed_weights(weight_decay),
                               optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
                               optax.scale_by_learning_rate(lr))
        return optax.adamw(lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay, mask=decay_mask)

    tx = optax.multi_transform(
        {FROZEN: optax.set_to_zero(), BASE: adam(1.0), B_SIDE: adam(lam)}, labels)
    if lr_scales is None:
        return tx
    return optax.chain(tx, optax.stateless(
        lambda updates, _: jax.tree.map(lambda u, s: s * u, updates, lr_scales)))

