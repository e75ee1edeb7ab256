"""The interface every factored PEFT method implements.

A method that adds trainable factors to base linear layers (LoRA, KronA, LoKr) is an
`Adapter`: a frozen, hashable dataclass (so that it can be a static attribute of a Flax
module) that knows which layers it adapts, how to initialise the factors of one layer and
how to compute that layer's additive contribution. The encoder stores the factors of all
layers in one separate parameter subtree, `params['adapters'][f'block_{i}'][layer]`, and
adds `adapter(x, factors)` to the output of each targeted base layer inside the jitted
forward pass.
"""

import math
from typing import Protocol

import jax

# Names of the linear layers of a SpectralGPT block that an adapter can target, and where
# each one lives inside `params['backbone'][f'block_{i}']`.
LAYER_PATHS = {"q": "attn/q", "k": "attn/k", "v": "attn/v", "proj": "attn/proj",
               "fc1": "mlp/fc1", "fc2": "mlp/fc2"}
LAYERS = tuple(LAYER_PATHS)

# How the nonzero factor(s) of an adapter are drawn (the other factor starts at zero):
# 'gaussian' N(0, init_std²) as in the paper, or 'kaiming' = peft's
# kaiming_uniform(a=√5), i.e. U(±1/√fan_in).
FACTOR_INITS = ("gaussian", "kaiming")


class Adapter(Protocol):
    """A factored weight update ΔW applied in parallel to a base linear layer."""

    targets: tuple[str, ...]  # a subset of LAYERS

    def init(self, key: jax.Array, d_in: int, d_out: int) -> dict[str, jax.Array]:
        """Factors of one adapted `(d_in, d_out)` layer (one of them zero so that ΔW = 0)."""

    def __call__(self, x: jax.Array, factors: dict[str, jax.Array]) -> jax.Array:
        """Additive contribution `x @ ΔW` for `x` `(..., d_in)`, without building ΔW when cheaper."""

    def delta_kernel(self, factors: dict[str, jax.Array]) -> jax.Array:
        """ΔW as a `(d_in, d_out)` kernel (Flax layout), for merging into the base kernel."""


def check_adapter_fields(adapter, name: str) -> None:
    """Make `targets` a tuple (adapters are hashable) and raise a ValueError naming the
    field of a factored adapter that is out of range."""
    object.__setattr__(adapter, "targets", tuple(adapter.targets))
    unknown = set(adapter.targets) - set(LAYERS)
    if not adapter.targets or unknown:
        raise ValueError(f"{name} targets {tuple(adapter.targets)} must be a non-empty subset "
                         f"of {LAYERS}")
    if adapter.factor_init not in FACTOR_INITS:
        raise ValueError(f"{name} init {adapter.factor_init!r} is not one of {FACTOR_INITS}")
    if not adapter.init_std > 0:
        raise ValueError(f"{name} init_std must be > 0, got {adapter.init_std}")


def random_factor(key: jax.Array, shape: tuple[int, int], factor_init: str,
                  init_std: float) -> jax.Array:
    """A nonzero factor `(fan_in, fan_out)` in Flax layout, drawn as `factor_init` says.

    'kaiming' is peft's `kaiming_uniform_(a=√5)` on the PyTorch `(fan_out, fan_in)` tensor:
    U(±1/√fan_in).
    """
    if factor_init == "gaussian":
        return init_std * jax.random.normal(key, shape)
    bound = 1.0 / math.sqrt(shape[0])
    return jax.random.uniform(key, shape, minval=-bound, maxval=bound)


def init_adapters(key: jax.Array, adapter: Adapter, depth: int,
                  layer_shapes: dict[str, tuple[int, int]]) -> dict:
    """`{f'block_{i}': {layer: factors}}` for every block and targeted layer.

    Each layer's key is `fold_in(key, i·len(LAYERS) + LAYERS.index(layer))`, so the factors
    of a layer do not change when other layers are targeted too.
    """
    unknown = set(adapter.targets) - set(LAYERS)
    if unknown:
        raise ValueError(f"adapter targets {sorted(unknown)} are not layers of a block; valid: {LAYERS}")
    return {
        f"block_{i}": {
            layer: adapter.init(jax.random.fold_in(key, i * len(LAYERS) + LAYERS.index(layer)),
                                *layer_shapes[layer])
            for layer in adapter.targets
        }
        for i in range(depth)
    }
