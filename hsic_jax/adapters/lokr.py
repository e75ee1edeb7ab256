"""LoKr (LyCORIS; HF peft `LoKrConfig`): a Kronecker update with a low-rank right block.

peft factorises a Linear layer's dims with `factorization(dim, factor)`:
(in_m, in_n) = fact(d_in), (out_l, out_k) = fact(d_out). In Flax kernel layout
ΔW = (alpha / rank) · kron(w1, w2) with the left block w1 `(in_m, out_l)` and the right
block w2 `(in_n, out_k)`. The right block is the low-rank product w2_a `(in_n, r)` @ w2_b
`(r, out_k)` when r < max(in_n, out_k) / 2, else one full matrix `w2`; the left block is
full unless `decompose_both` and r < max(in_m, out_l) / 2 (then w1_a `(in_m, r)` @ w1_b
`(r, out_l)`). The scale is alpha / rank even when both blocks are full, as in peft.

Mapping to peft's PyTorch tensors (all transposed): w1 = lokr_w1ᵀ, w2 = lokr_w2ᵀ,
w2_a = lokr_w2_bᵀ, w2_b = lokr_w2_aᵀ, w1_a = lokr_w1_bᵀ, w1_b = lokr_w1_aᵀ (peft writes
w1 = w1_a @ w1_b in (out, in) layout, so its `_a` factor is the output side).
Init as peft's `init_weights=True`: the output side of the left block (w1, or w1_b) is
zero, every other factor random.
"""

import dataclasses

import jax
import jax.numpy as jnp

from hsic_jax.adapters.base import Factored, random_factor
from hsic_jax.adapters.krona import kron_matmul


def factorization(dim: int, factor: int = -1) -> tuple[int, int]:
    """peft's `factorization`: `(factor, dim // factor)` when `factor` divides `dim`, else
    the divisor pair (m ≤ n, m·n = dim) nearest √dim, stepping through divisors no larger
    than `factor` (-1: no bound). E.g. 768 → (24, 32); with factor 8, 768 → (8, 96)."""
    if factor > 0 and dim % factor == 0:
        return factor, dim // factor
    limit = dim if factor == -1 else factor
    m, n = 1, dim
    while m < n:
        new_m = next(d for d in range(m + 1, dim + 1) if dim % d == 0)
        if new_m > limit:
            break
        m, n = new_m, dim // new_m
    return min(m, n), max(m, n)


@dataclasses.dataclass(frozen=True)
class LoKr(Factored):
    """peft's LoKr for Linear layers (no rank or module dropout)."""

    factor: int = 8
    rank: int = 8
    alpha: float = 8.0
    decompose_both: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.rank < 1:
            raise ValueError(f"LoKr rank must be ≥ 1, got {self.rank}")
        if self.factor == 0 or self.factor < -1:
            raise ValueError(f"LoKr factor must be -1 or a positive int, got {self.factor}")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def block_shapes(self, d_in: int, d_out: int) -> dict[str, tuple[int, int]]:
        """Shape of every factor of a `(d_in, d_out)` layer, by name."""
        (in_m, in_n), (out_l, out_k) = factorization(d_in, self.factor), factorization(d_out, self.factor)
        r = self.rank
        shapes = {}
        if self.decompose_both and r < max(in_m, out_l) / 2:
            shapes.update(w1_a=(in_m, r), w1_b=(r, out_l))
        else:
            shapes.update(w1=(in_m, out_l))
        if r < max(in_n, out_k) / 2:
            shapes.update(w2_a=(in_n, r), w2_b=(r, out_k))
        else:
            shapes.update(w2=(in_n, out_k))
        return shapes

    def init(self, key: jax.Array, d_in: int, d_out: int) -> dict[str, jax.Array]:
        """Zero output side of the left block (w1 or w1_b); random everything else."""
        shapes = self.block_shapes(d_in, d_out)
        keys = dict(zip(sorted(shapes), jax.random.split(key, len(shapes))))
        return {name: (jnp.zeros(shape) if name in ("w1", "w1_b") else
                       random_factor(keys[name], shape, self.factor_init, self.init_std))
                for name, shape in shapes.items()}

    def __call__(self, x: jax.Array, factors: dict[str, jax.Array]) -> jax.Array:
        """`(..., d_in) -> (..., d_out)` by the vec trick; only the small blocks are built."""
        w1, w2 = (b.astype(x.dtype) for b in self.blocks(factors))
        return self.scale * kron_matmul(x, w1, w2)

    def delta_kernel(self, factors: dict[str, jax.Array]) -> jax.Array:
        """ΔW `(d_in, d_out)` = scale · kron(w1, w2)."""
        return self.scale * jnp.kron(*self.blocks(factors))

    @staticmethod
    def blocks(factors: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
        """The left `(in_m, out_l)` and right `(in_n, out_k)` blocks from their factors."""
        w1 = factors["w1"] if "w1" in factors else factors["w1_a"] @ factors["w1_b"]
        w2 = factors["w2"] if "w2" in factors else factors["w2_a"] @ factors["w2_b"]
        return w1, w2
