"""The interface every factored PEFT method implements.

A method that adds trainable factors to base linear layers (LoRA, KronA, LoKr) is an
`Adapter`: a frozen, hashable dataclass (so that it can be a static attribute of a Flax
module) that knows which layers it adapts, how to initialise the factors of one layer and
how to compute that layer's additive contribution. The encoder stores the factors of all
layers in one separate parameter subtree, `params['adapters'][f'block_{i}'][layer]`, and
adds `adapter(x, factors)` to the output of each targeted base layer inside the jitted
forward pass.
"""

from typing import Protocol

import jax

# Names of the linear layers of a SpectralGPT block that an adapter can target.
LAYERS = ("q", "k", "v", "proj", "fc1", "fc2")


class Adapter(Protocol):
    """A factored weight update ΔW applied in parallel to a base linear layer."""

    targets: tuple[str, ...]  # a subset of LAYERS

    def init(self, key: jax.Array, d_in: int, d_out: int) -> dict[str, jax.Array]:
        """Factors of one adapted `(d_in, d_out)` layer (one of them zero so that ΔW = 0)."""

    def __call__(self, x: jax.Array, factors: dict[str, jax.Array]) -> jax.Array:
        """Additive contribution `x @ ΔW` for `x` `(..., d_in)`, without building ΔW when cheaper."""

    def delta_kernel(self, factors: dict[str, jax.Array]) -> jax.Array:
        """ΔW as a `(d_in, d_out)` kernel (Flax layout), for merging into the base kernel."""


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
