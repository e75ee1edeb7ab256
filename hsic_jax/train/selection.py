"""Model selection on the validation pixels: the trainable leaves of the best state so far.

With `config.select = 'best_val'` the loop keeps, per seed, a copy of the trainable leaves
(adapters, head, BitFit biases; everything for FFT) of the state with the highest
validation OA, and the epoch it came from. The frozen backbone is not copied: it is the same
in every state. The copy is checkpointed with the train state, so a resumed run selects
the same state as an uninterrupted one. The test pixels are never looked at: the test set
is predicted once, after training, with the selected parameters.

Trees here are plain nested dicts. Per-seed arrays carry a leading seed axis `(S, ...)`.
"""

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from hsic_jax.adapters.methods import FROZEN


def trainable(params: Mapping, labels: Mapping) -> dict:
    """The sub-dict of `params` with every leaf whose label is not frozen (empty dicts dropped)."""
    out = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            sub = trainable(value, labels[key])
            if sub:
                out[key] = sub
        elif labels[key] != FROZEN:
            out[key] = value
    return out


def with_trainable(params: Mapping, sub: Mapping) -> dict:
    """`params` with the leaves of `sub` (a `trainable` sub-dict) put in their places."""
    out = dict(params)
    for key, value in sub.items():
        out[key] = with_trainable(params[key], value) if isinstance(value, Mapping) else value
    return out


def init_best(params: Mapping, labels: Mapping, num_seeds: int) -> dict:
    """No state selected yet: `{'params': trainable copy, 'val_oa': (S,) -1, 'epoch': (S,) 0}`."""
    return {"params": trainable(params, labels),
            "val_oa": jnp.full((num_seeds,), -1.0, jnp.float32),
            "epoch": jnp.zeros((num_seeds,), jnp.int32)}


@jax.jit
def update_best(best: dict, sub: dict, val_oa: jax.Array, epoch: jax.Array) -> dict:
    """Per seed, the state of `sub` (at `epoch`, validation OA `val_oa` `(S,)`) where it beats `best`.

    Ties keep the earlier state.
    """
    better = val_oa > best["val_oa"]

    def pick(new, old):
        return jnp.where(better.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)

    return {"params": jax.tree.map(pick, sub, best["params"]),
            "val_oa": jnp.where(better, val_oa, best["val_oa"]),
            "epoch": jnp.where(better, epoch, best["epoch"])}


def selected_params(params: Any, best: dict | None) -> Any:
    """The parameters to test: the best validation state's, or `params` (the last) without one."""
    return params if best is None else with_trainable(params, best["params"])
