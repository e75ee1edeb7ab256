"""KronA (Edalati et al. 2022): a Kronecker-product update, and the vec trick that applies it.

ΔW = scale · kron(a, b) with `a` `(a1, a2)` and `b` `(b1, b2)`, a1·b1 = d_in, a2·b2 = d_out,
in Flax kernel layout: kron(a, b)[i·b1 + j, k·b2 + l] = a[i, k] · b[j, l].
The forward never builds ΔW: each token x `(d_in,)` is reshaped row-major to X `(a1, b1)`
and x @ kron(a, b) = vec(aᵀ X b), which costs O(a1·b1·(a2 + b2)) instead of
O(a1·b1·a2·b2) per token.

`a` is random and `b` starts at zero, so ΔW = 0 at step 0. With the paper's Indian Pines
shapes a `(384, 2)`, b `(2, 384)` this mirrors LoRA exactly: `a` contracts 384 input
coordinates down to 2 (LoRA's random down-projection A), `b` expands 2 to 384 output
coordinates (LoRA's zero-initialised up-projection B).

KronA+ and the factor that gets λ·lr. LoRA+ (Hayou et al. 2024) shows that with A
random and B = 0, a step on A changes the output through B (initially zero, then small)
after a sum over the d_in input coordinates, whereas a step on B changes it through
A·x, which is already Θ(1): efficient feature learning needs η_B/η_A = λ > 1, larger
for wider inputs. In KronA the roles are the same: `b` is the zero-initialised factor
whose update reaches the output through the already-random aᵀX, and `a`'s update only
acts through `b`, which starts at zero. KronA+ therefore scales the learning rate of `b`
by λ, as LoRA+ does for B (`hsic_jax.adapters.methods` labels `adapters/.../b` as
`b_side`; `tests/test_optimizer.py` checks that the first AdamW step of `b` is λ times
KronA's and that of `a` is unchanged).
"""

import dataclasses

import jax
import jax.numpy as jnp

from hsic_jax.adapters.base import check_adapter_fields, random_factor


def kron_matmul(x: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """x @ kron(a, b) by the vec trick: `(..., a1·b1) -> (..., a2·b2)`.

    The two contractions are done in the cheaper order, chosen from the static shapes.
    """
    (a1, a2), (b1, b2) = a.shape, b.shape
    if x.shape[-1] != a1 * b1:
        raise ValueError(f"kron_matmul: input width {x.shape[-1]} ≠ a1·b1 = {a1}·{b1}")
    xm = x.reshape(*x.shape[:-1], a1, b1)
    if a1 * b1 * a2 + a2 * b1 * b2 <= a1 * b1 * b2 + a1 * b2 * a2:
        y = jnp.einsum("jl,...kj->...kl", b, jnp.einsum("ik,...ij->...kj", a, xm))
    else:
        y = jnp.einsum("ik,...il->...kl", a, jnp.einsum("...ij,jl->...il", xm, b))
    return y.reshape(*x.shape[:-1], a2 * b2)


@dataclasses.dataclass(frozen=True)
class KronA:
    """ΔW = scale · kron(a, b) on each targeted layer (every targeted layer must be
    `(a_shape[0]·b_shape[0], a_shape[1]·b_shape[1])`)."""

    a_shape: tuple[int, int]
    b_shape: tuple[int, int]
    scale: float = 1.0
    targets: tuple[str, ...] = ("q", "v")
    factor_init: str = "gaussian"
    init_std: float = 0.02

    def __post_init__(self):
        check_adapter_fields(self, "KronA")
        for name in ("a_shape", "b_shape"):
            shape = tuple(getattr(self, name))
            if len(shape) != 2 or min(shape) < 1:
                raise ValueError(f"KronA {name} must be two positive ints, got {shape}")
            object.__setattr__(self, name, tuple(int(v) for v in shape))

    def init(self, key: jax.Array, d_in: int, d_out: int) -> dict[str, jax.Array]:
        """`{'a': a_shape random, 'b': b_shape zeros}` for a `(d_in, d_out)` layer."""
        (a1, a2), (b1, b2) = self.a_shape, self.b_shape
        if (a1 * b1, a2 * b2) != (d_in, d_out):
            raise ValueError(
                f"KronA a_shape {self.a_shape} ⊗ b_shape {self.b_shape} gives a "
                f"({a1 * b1}, {a2 * b2}) kernel but the targeted layer is ({d_in}, {d_out}); "
                "choose shapes with a1·b1 = d_in and a2·b2 = d_out")
        return {"a": random_factor(key, self.a_shape, self.factor_init, self.init_std),
                "b": jnp.zeros(self.b_shape)}

    def __call__(self, x: jax.Array, factors: dict[str, jax.Array]) -> jax.Array:
        """`(..., d_in) -> (..., d_out)`: scale · x @ kron(a, b) by the vec trick."""
        return self.scale * kron_matmul(x, factors["a"].astype(x.dtype),
                                        factors["b"].astype(x.dtype))

    def delta_kernel(self, factors: dict[str, jax.Array]) -> jax.Array:
        """ΔW `(d_in, d_out)` = scale · kron(a, b)."""
        return self.scale * jnp.kron(factors["a"], factors["b"])
