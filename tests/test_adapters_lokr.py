"""LoKr against HF peft (factorisation rule, block shapes, layer output) and explicit kron."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from peft import LoKrConfig, get_peft_model
from peft.tuners.lokr.layer import factorization as peft_factorization

from hsic_jax.adapters import LoKr, factorization

# Our factor name -> (peft tensor name); ours is the transpose of peft's.
PEFT_NAMES = {"w1": "lokr_w1", "w1_a": "lokr_w1_b", "w1_b": "lokr_w1_a",
              "w2": "lokr_w2", "w2_a": "lokr_w2_b", "w2_b": "lokr_w2_a"}


class OneLinear(torch.nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.q = torch.nn.Linear(d_in, d_out)

    def forward(self, x):
        return self.q(x)


def t2n(t):
    return t.detach().numpy()


def test_factorization_equals_peft():
    for dim in range(1, 1100):
        for factor in (-1, 1, 2, 3, 4, 5, 7, 8, 12, 16, 24):
            assert factorization(dim, factor) == peft_factorization(dim, factor), (dim, factor)
    assert factorization(768, 8) == (8, 96) and factorization(768) == (24, 32)


CASES = [  # d_in, d_out, factor, rank, alpha, decompose_both
    (48, 96, 8, 2, 4, False),     # low-rank right block, full left block
    (48, 48, -1, 8, 8, False),    # rank ≥ half the right block: full right block
    (96, 64, 4, 1, 2, True),      # both blocks low-rank
    (768, 768, 8, 8, 8, False),   # the paper's: 8×8 left, 96×96 as 96·8 + 8·96
]


@pytest.mark.parametrize("d_in,d_out,factor,rank,alpha,both", CASES)
def test_lokr_layer_equals_peft(d_in, d_out, factor, rank, alpha, both):
    torch.manual_seed(0)
    model = get_peft_model(OneLinear(d_in, d_out), LoKrConfig(
        r=rank, alpha=alpha, decompose_factor=factor, decompose_both=both,
        target_modules=["q"], init_weights=False))  # every factor random
    layer = model.base_model.model.q
    adapter = LoKr(factor=factor, rank=rank, alpha=alpha, decompose_both=both, targets=("q",))
    shapes = adapter.block_shapes(d_in, d_out)
    factors = {}
    for ours, theirs in PEFT_NAMES.items():
        if "default" in getattr(layer, theirs):
            factors[ours] = jnp.asarray(t2n(getattr(layer, theirs)["default"]).T)
    assert {k: v.shape for k, v in factors.items()} == shapes
    peft_count = sum(p.numel() for n, p in model.named_parameters() if "lokr_" in n)
    assert sum(int(np.prod(s)) for s in shapes.values()) == peft_count

    x = np.random.RandomState(0).randn(2, 3, d_in).astype(np.float32)
    with torch.no_grad():
        want = t2n(layer(torch.from_numpy(x)))
        base_w, base_b = t2n(layer.base_layer.weight), t2n(layer.base_layer.bias)
        peft_delta = t2n(layer.get_delta_weight("default"))
    got = x @ base_w.T + base_b + np.asarray(adapter(jnp.asarray(x), factors))
    scale = np.abs(want).max()
    np.testing.assert_allclose(got / scale, want / scale, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(adapter.delta_kernel(factors)), peft_delta.T,
                               rtol=0, atol=1e-6 * np.abs(peft_delta).max())


def test_paper_lokr_has_1600_parameters_per_matrix():
    factors = LoKr(factor=8, rank=8, alpha=8).init(jax.random.key(0), 768, 768)
    assert {k: v.shape for k, v in factors.items()} == {
        "w1": (8, 8), "w2_a": (96, 8), "w2_b": (8, 96)}
    assert sum(v.size for v in factors.values()) == 1600


def test_vec_trick_equals_explicit_kron():
    adapter = LoKr(factor=4, rank=2, alpha=3)
    rng = np.random.RandomState(1)
    factors = {k: jnp.asarray(rng.randn(*s).astype(np.float32))
               for k, s in adapter.block_shapes(24, 40).items()}
    w1, w2 = factors["w1"], factors["w2_a"] @ factors["w2_b"]
    x = rng.randn(3, 24).astype(np.float32)
    want = x @ (1.5 * np.kron(np.asarray(w1), np.asarray(w2)))
    np.testing.assert_allclose(np.asarray(adapter(jnp.asarray(x), factors)), want,
                               rtol=1e-5, atol=1e-5)


def test_init_left_block_zero_like_peft():
    """peft's init_weights=True: the left block's output side is zero, all else kaiming."""
    for both in (False, True):
        adapter = LoKr(factor=8, rank=2, decompose_both=both, factor_init="kaiming")
        factors = adapter.init(jax.random.key(3), 768, 768)
        zero = "w1_b" if both else "w1"
        for name, f in factors.items():
            f = np.asarray(f)
            if name == zero:
                assert not f.any()
            else:
                assert 0 < np.abs(f).max() <= 1 / np.sqrt(f.shape[0])
        assert not np.asarray(adapter.delta_kernel(factors)).any()


def test_bad_fields_are_refused():
    with pytest.raises(ValueError, match="rank"):
        LoKr(rank=0)
    with pytest.raises(ValueError, match="factor"):
        LoKr(factor=0)
