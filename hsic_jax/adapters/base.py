"""The interface every factored PEFT method implements.

A method that adds trainable factors to base linear layers (LoRA, KronA, LoKr) is an
`Adapter`: a frozen, hashable dataclass (so that it can be a static argument of jitted
functions) that knows the names of the layers it adapts, how to initialise the factors of
one layer and how to compute that layer's additive contribution. Where those layers are in
a model, and how the contribution is added to them, is `hsic_jax.adapters.tuned`'s job: the
factors of all layers live in one separate parameter subtree, `params['adapters']`.
"""

import dataclasses
import math
from typing import Protocol

import jax

# How the nonzero factor(s) of an adapter are drawn (the other factor starts at zero):
# 'gaussian' N(0, init_std²) as in the paper, or 'kaiming' = peft's
# kaiming_uniform(a=√5), i.e. U(±1/√fan_in).
FACTOR_INITS = ("gaussian", "kaiming")


class Adapter(Protocol):
    """A factored weight update ΔW applied in parallel to a base linear layer."""

    targets: tuple[str, ...]  # names of the model's adaptable layers (its family's ADAPTABLE)

    def init(self, key: jax.Array, d_in: int, d_out: int) -> dict[str, jax.Array]:
        """Factors of one adapted `(d_in, d_out)` layer (one of them zero so that ΔW = 0)."""

    def __call__(self, x: jax.Array, factors: dict[str, jax.Array]) -> jax.Array:
        """Additive contribution `x @ ΔW` for `x` `(..., d_in)`, without building ΔW when cheaper."""

    def delta_kernel(self, factors: dict[str, jax.Array]) -> jax.Array:
        """ΔW as a `(d_in, d_out)` kernel (Flax layout), for merging into the base kernel."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Factored:
    """The fields every `Adapter` shares (keyword-only, after its own): the layers it targets
    and how its nonzero factor is drawn (`random_factor`), checked when it is built; a
    subclass's own checks extend `__post_init__`."""

    targets: tuple[str, ...] = ("q", "v")
    factor_init: str = "gaussian"
    init_std: float = 0.02

    def __post_init__(self):
        """Make `targets` a tuple (adapters are hashable); refuse a field out of range, naming
        it and the adapter."""
        name = type(self).__name__
        object.__setattr__(self, "targets", tuple(self.targets))
        if not self.targets:
            raise ValueError(f"{name} targets must name at least one layer")
        if self.factor_init not in FACTOR_INITS:
            raise ValueError(f"{name} init {self.factor_init!r} is not one of {FACTOR_INITS}")
        if not self.init_std > 0:
            raise ValueError(f"{name} init_std must be > 0, got {self.init_std}")


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
