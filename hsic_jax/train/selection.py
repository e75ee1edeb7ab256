"""Model selection on the validation pixels: the trainable leaves of the best state so far.

With `config.select = 'best_val'` the loop keeps, per seed, a copy of the trainable
parameters (adapters, head, BitFit biases; everything for FFT: the train state's `params`,
see `hsic_jax.train.partition`) of the state with the highest validation OA, and the epoch
it came from. The frozen part is shared by every state and not copied. The copy is
checkpointed with the train state, so a resumed run selects the same state as an
uninterrupted one. The test pixels are never looked at: the test set is predicted once,
after training, with the selected parameters.

Trees here are plain nested dicts. Per-seed arrays carry a leading seed axis `(S, ...)`.
"""

import jax
import jax.numpy as jnp


@jax.jit
def init_best(params: dict) -> dict:
    """No state selected yet: `{'params': a copy of params, 'val_oa': (S,) -1, 'epoch': (S,) 0}`
    (`params` are the trainable parameters `(S, ...)`)."""
    num_seeds = jax.tree.leaves(params)[0].shape[0]
    return {"params": jax.tree.map(jnp.copy, params),
            "val_oa": jnp.full((num_seeds,), -1.0, jnp.float32),
            "epoch": jnp.zeros((num_seeds,), jnp.int32)}


@jax.jit
def update_best(best: dict, params: dict, val_oa: jax.Array, epoch: jax.Array) -> dict:
    """Per seed, the state of `params` (at `epoch`, validation OA `val_oa` `(S,)`) where it
    beats `best`. Ties keep the earlier state.
    """
    better = val_oa > best["val_oa"]

    def pick(new, old):
        return jnp.where(better.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)

    return {"params": jax.tree.map(pick, params, best["params"]),
            "val_oa": jnp.where(better, val_oa, best["val_oa"]),
            "epoch": jnp.where(better, epoch, best["epoch"])}


def selected_params(params: dict, best: dict | None) -> dict:
    """The trainable parameters to test: the best validation state's, or `params` (the last)
    without one."""
    return params if best is None else best["params"]
