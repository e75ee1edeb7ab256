"""KronA: the paper's layout ΔW = A ⊗ B (out × in), the vec-trick forward, init and shapes."""

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


def paper_delta_w(a, b, scale):
    """The paper's ΔW = s · (A ⊗ B), built explicitly in the out × in (PyTorch) layout."""
    return scale * np.kron(a, b)


@pytest.mark.parametrize("a_shape,b_shape,d_in,d_out", [
    ((384, 2), (2, 384), 768, 768),   # Indian Pines, Botswana, WHU-Hi-LongKou
    ((24, 32), (32, 24), 768, 768),   # Pavia University
    ((16, 48), (48, 16), 768, 768),   # Houston 2013
    ((2, 3), (5, 4), 12, 10),         # not square: out = r1·b1 = 10, in = r2·b2 = 12
    ((5, 1), (2, 12), 12, 10),
])
def test_forward_and_merge_equal_the_papers_kron_in_out_by_in_layout(a_shape, b_shape, d_in, d_out):
    adapter = KronA(a_shape, b_shape, scale=0.5)
    rng = np.random.RandomState(0)
    a, b = rng.randn(*a_shape).astype(np.float32), rng.randn(*b_shape).astype(np.float32)
    factors = {"a": jnp.asarray(a), "b": jnp.asarray(b)}
    delta_w = paper_delta_w(a, b, 0.5)
    assert delta_w.shape == (d_out, d_in)
    x = rng.randn(4, d_in).astype(np.float32)
    want = x @ delta_w.T  # y = ΔW x for each token
    with jax.default_matmul_precision("highest"):
        got = np.asarray(adapter(jnp.asarray(x), factors))
        kernel = np.asarray(adapter.delta_kernel(factors))
    scale = np.abs(want).max()
    np.testing.assert_allclose(got / scale, want / scale, rtol=0, atol=1e-6)
    np.testing.assert_allclose(kernel, delta_w.T, rtol=1e-6, atol=0)  # Flax kernel = ΔWᵀ


def test_the_transposed_reading_is_a_different_adapter():
    """Guard for the test above: kron(A, B) in the Flax (in × out) layout differs from the paper's."""
    rng = np.random.RandomState(1)
    a, b = rng.randn(24, 32), rng.randn(32, 24)
    assert not np.allclose(np.kron(a, b), np.kron(a, b).T)


def test_init_a_random_b_zero_with_the_papers_shapes_and_1536_parameters():
    factors = KronA((24, 32), (32, 24), init_std=0.1).init(jax.random.key(0), 768, 768)
    assert factors["a"].shape == (24, 32) and factors["b"].shape == (32, 24)
    assert not np.asarray(factors["b"]).any()
    assert abs(float(np.std(factors["a"])) / 0.1 - 1) < 0.1
    assert sum(f.size for f in factors.values()) == 1536


def test_kaiming_init_of_a_uses_its_in_side_as_fan_in():
    a = KronA((5, 4), (2, 3), factor_init="kaiming").init(jax.random.key(0), 12, 10)["a"]
    assert a.shape == (5, 4)
    assert 0.4 < float(np.abs(a).max()) <= 1 / np.sqrt(4)  # U(±1/√r2): r2 = 4 is A's in side


def test_shapes_that_do_not_fit_the_layer_are_refused():
    with pytest.raises(ValueError, match=r"\(768, 768\) = \(out, in\) weight but the targeted "
                                         r"layer is \(3072, 768\)"):
        KronA((384, 2), (2, 384)).init(jax.random.key(0), 768, 3072)
    with pytest.raises(ValueError, match=r"\(out, in\)"):  # transposed shapes for a non-square layer
        KronA((2, 3), (5, 4)).init(jax.random.key(0), 10, 12)
    with pytest.raises(ValueError, match="a_shape"):
        KronA((384,), (2, 384))
