"""LoRA (Hu et al. 2022) as HF peft defines it, in Flax kernel layout.

ΔW = (alpha / rank) · a @ b with `a` `(d_in, rank)` and `b` `(rank, d_out)`, so a layer's
output is `x @ W + bias + (alpha / rank) · (x @ a) @ b`. peft's `lora_A.weight` is `a.T`
and `lora_B.weight` is `b.T`. `b` starts at zero and `a` is random, so ΔW = 0 at step 0.
LoRA+ is LoRA with `b`'s learning rate × λ (see `hsic_jax.adapters.methods`).
"""

import dataclasses

import jax
import jax.numpy as jnp

from hsic_jax.adapters.base import Factored, random_factor


@dataclasses.dataclass(frozen=True)
class LoRA(Factored):
    """Rank-`rank` update with scale `alpha / rank` on each targeted layer."""

    rank: int = 4
    alpha: float = 4.0

    def __post_init__(self):
        super().__post_init__()
        if self.rank < 1:
            raise ValueError(f"LoRA rank must be ≥ 1, got {self.rank}")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def init(self, key: jax.Array, d_in: int, d_out: int) -> dict[str, jax.Array]:
        """`{'a': (d_in, rank) random, 'b': (rank, d_out) zeros}`."""
        return {"a": random_factor(key, (d_in, self.rank), self.factor_init, self.init_std),
                "b": jnp.zeros((self.rank, d_out))}

    def __call__(self, x: jax.Array, factors: dict[str, jax.Array]) -> jax.Array:
        """`(..., d_in) -> (..., d_out)`: scale · (x @ a) @ b, never building ΔW."""
        return self.scale * ((x @ factors["a"].astype(x.dtype)) @ factors["b"].astype(x.dtype))

    def delta_kernel(self, factors: dict[str, jax.Array]) -> jax.Array:
        """ΔW `(d_in, d_out)` = scale · a @ b."""
        return self.scale * (factors["a"] @ factors["b"])
