"""KronA (Edalati et al. 2022) and KronA+ exactly as the paper defines them, applied by the vec trick.

The layout, and why it matters. The paper (section 4.3 and its Fig. 2) writes an adapted
weight in the PyTorch layout W ∈ ℝ^{p×q} (out × in, y = W x), the factors as
A ∈ ℝ^{r1×r2} and B ∈ ℝ^{(p/r1)×(q/r2)}, and the update as

    ΔW = scale · (A ⊗ B)        (p × q, out × in)

with A `(384, 2)` and B `(2, 384)` for Indian Pines, Botswana and WHU-Hi-LongKou, A `(24, 32)`
for Pavia University and A `(16, 48)` for Houston 2013 ("B is the reverse"). The config fields
`a_shape` and `b_shape` are these shapes: `a_shape = (r1, r2)`, `b_shape = (p/r1, q/r2)`. Flax
kernels are the transpose, in × out, so the kernel update is
ΔWᵀ = scale · (Aᵀ ⊗ Bᵀ). Reading the paper's shapes in the Flax layout instead would give
the transposed Kronecker structure (which pairs of input and output coordinates share a
factor entry) and a zero-initialised factor of A's shape, a different adapter with the
same parameter count; `tests/test_adapters_krona.py` pins the paper's layout against an
explicit `np.kron(A, B)`.

The forward never builds ΔW: each token x `(q,)` is reshaped row-major to X `(r2, q/r2)`
and (A ⊗ B) x = vec(A X Bᵀ) `(r1, p/r1)`, which costs O(q·(r1 + p/r1)) per token instead of
O(p·q) (`kron_matmul` does this in the cheaper contraction order).

Initialisation and KronA+. B is zero and A random (N(0, σ²) as in the paper, or peft's
kaiming uniform), so ΔW = 0 at step 0. KronA+ trains with A ← A − η∇A and B ← B − λη∇B
(Fig. 2): λ scales the learning rate of B, the zero-initialised factor, as LoRA+ (Hayou et
al. 2024) does for its zero-initialised B. The reason carries over: a step on B reaches the
output through the already random A, whereas a step on A acts only through B, which starts
at zero, so the two factors learn features at different speeds and λ > 1 balances them.
(`hsic_jax.adapters.methods` labels `adapters/.../b` `b_side`; `tests/test_optimizer.py`
checks that B's first step is λ times KronA's and that A's is unchanged.)
"""

import dataclasses

import jax
import jax.numpy as jnp

from hsic_jax.adapters.base import Factored, random_factor


def kron_matmul(x: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """x @ kron(a, b) by the vec trick: `(..., a1·b1) -> (..., a2·b2)`.

    With x reshaped row-major to X `(a1, b1)`, x @ kron(a, b) = vec(aᵀ X b). The two
    contractions are done in the cheaper order, chosen from the static shapes.
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
class KronA(Factored):
    """ΔW = scale · (A ⊗ B) in the out × in layout, on each targeted `(d_in, d_out)` layer.

    `a_shape = (r1, r2)` and `b_shape = (d_out / r1, d_in / r2)` as in the paper.
    """

    a_shape: tuple[int, int]
    b_shape: tuple[int, int]
    scale: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        for name in ("a_shape", "b_shape"):
            shape = tuple(getattr(self, name))
            if len(shape) != 2 or min(shape) < 1:
                raise ValueError(f"KronA {name} must be two positive ints, got {shape}")
            object.__setattr__(self, name, tuple(int(v) for v in shape))

    def init(self, key: jax.Array, d_in: int, d_out: int) -> dict[str, jax.Array]:
        """`{'a': a_shape random, 'b': b_shape zeros}` for a `(d_in, d_out)` layer."""
        (r1, r2), (b1, b2) = self.a_shape, self.b_shape
        if (r1 * b1, r2 * b2) != (d_out, d_in):
            raise ValueError(
                f"KronA a_shape {self.a_shape} ⊗ b_shape {self.b_shape} gives a "
                f"({r1 * b1}, {r2 * b2}) = (out, in) weight but the targeted layer is "
                f"({d_out}, {d_in}) (out, in); choose a_shape (r1, r2) and b_shape "
                f"({d_out}/r1, {d_in}/r2), as the paper does")
        # random_factor draws (fan_in, fan_out) tensors; A's fan_in is r2 (out × in layout).
        a = random_factor(key, self.a_shape[::-1], self.factor_init, self.init_std).T
        return {"a": a, "b": jnp.zeros(self.b_shape)}

    def __call__(self, x: jax.Array, factors: dict[str, jax.Array]) -> jax.Array:
        """`(..., d_in) -> (..., d_out)`: scale · x @ (A ⊗ B)ᵀ = scale · x @ (Aᵀ ⊗ Bᵀ)."""
        a, b = (factors[k].astype(x.dtype) for k in ("a", "b"))
        return self.scale * kron_matmul(x, a.T, b.T)

    def delta_kernel(self, factors: dict[str, jax.Array]) -> jax.Array:
        """ΔWᵀ `(d_in, d_out)` (Flax layout) = scale · (A ⊗ B)ᵀ."""
        return self.scale * jnp.kron(factors["a"], factors["b"]).T
