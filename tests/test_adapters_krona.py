"""KronA: the vec-trick forward equals x @ kron(a, b) built explicitly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hsic_jax.adapters import KronA, kron_matmul


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6), st.integers(1, 6),
       st.integers(0, 2**31 - 1))
def test_kron_matmul_equals_explicit_kron(a1, a2, b1, b2, seed):
    rng = np.random.RandomState(seed)
    a, b = rng.randn(a1, a2).astype(np.float32), rng.randn(b1, b2).astype(np.float32)
    x = rng.randn(2, 3, a1 * b1).astype(np.float32)
    got = np.asarray(kron_matmul(jnp.asarray(x), jnp.asarray(a), jnp.asarray(b)))
    np.testing.assert_allclose(got, x @ np.kron(a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("a_shape,b_shape", [((384, 2), (2, 384)), ((2, 384), (384, 2)),
                                             ((24, 32), (32, 24)), ((16, 48), (48, 16))])
def test_paper_shapes_forward_and_delta_kernel(a_shape, b_shape):
    """Both contraction orders (the first two cases pick different ones) and merge."""
    adapter = KronA(a_shape, b_shape, scale=0.5)
    rng = np.random.RandomState(0)
    factors = {"a": jnp.asarray(rng.randn(*a_shape).astype(np.float32)),
               "b": jnp.asarray(rng.randn(*b_shape).astype(np.float32))}
    x = rng.randn(4, 768).astype(np.float32)
    want = x @ (0.5 * np.kron(np.asarray(factors["a"]), np.asarray(factors["b"])))
    with jax.default_matmul_precision("highest"):
        got = np.asarray(adapter(jnp.asarray(x), factors))
        delta = np.asarray(adapter.delta_kernel(factors))
    scale = np.abs(want).max()
    np.testing.assert_allclose(got / scale, want / scale, rtol=0, atol=1e-6)
    np.testing.assert_allclose(x @ delta / scale, want / scale, rtol=0, atol=1e-5)


def test_init_a_random_b_zero_and_1536_parameters():
    factors = KronA((384, 2), (2, 384), init_std=0.1).init(jax.random.key(0), 768, 768)
    assert factors["a"].shape == (384, 2) and factors["b"].shape == (2, 384)
    assert not np.asarray(factors["b"]).any()
    assert abs(float(np.std(factors["a"])) / 0.1 - 1) < 0.1
    assert sum(f.size for f in factors.values()) == 1536


def test_shapes_that_do_not_fit_the_layer_are_refused():
    with pytest.raises(ValueError, match=r"\(768, 768\) kernel but the targeted layer is \(768, 3072\)"):
        KronA((384, 2), (2, 384)).init(jax.random.key(0), 768, 3072)
    with pytest.raises(ValueError, match="a_shape"):
        KronA((384,), (2, 384))
