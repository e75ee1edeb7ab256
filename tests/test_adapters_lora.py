"""LoRA against HF peft: copy peft's factors into ours and compare the adapted layer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from peft import LoraConfig, get_peft_model

from hsic_jax.adapters import LoRA


class TwoLinears(torch.nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.q = torch.nn.Linear(d_in, d_out)
        self.v = torch.nn.Linear(d_in, d_out)

    def forward(self, x):
        return self.q(x) + self.v(x)


def peft_lora(d_in, d_out, rank, alpha, **kw):
    torch.manual_seed(0)
    return get_peft_model(TwoLinears(d_in, d_out),
                          LoraConfig(r=rank, lora_alpha=alpha, target_modules=["q", "v"], **kw))


def t2n(t):
    return t.detach().numpy()


@pytest.mark.parametrize("d_in,d_out,rank,alpha", [(48, 48, 4, 4), (48, 96, 4, 8), (96, 24, 3, 1)])
def test_lora_layer_equals_peft(d_in, d_out, rank, alpha):
    model = peft_lora(d_in, d_out, rank, alpha)
    layer = model.base_model.model.q
    torch.nn.init.normal_(layer.lora_B["default"].weight)  # peft starts B at zero
    x = np.random.RandomState(0).randn(2, 5, d_in).astype(np.float32)
    with torch.no_grad():
        want = t2n(layer(torch.from_numpy(x)))
    base = layer.base_layer
    factors = {"a": jnp.asarray(t2n(layer.lora_A["default"].weight).T),
               "b": jnp.asarray(t2n(layer.lora_B["default"].weight).T)}
    adapter = LoRA(rank=rank, alpha=alpha)
    with jax.default_matmul_precision("highest"):  # a GPU's default is TF32
        delta = np.asarray(adapter(jnp.asarray(x), factors))
        delta_kernel = np.asarray(adapter.delta_kernel(factors))
    got = x @ t2n(base.weight).T + t2n(base.bias) + delta
    scale = np.abs(want).max()  # float32 rounding is relative to the outputs' magnitude (~10)
    np.testing.assert_allclose(got / scale, want / scale, rtol=0, atol=1e-6)
    kernel = t2n(base.weight).T + delta_kernel
    np.testing.assert_allclose(x @ kernel + t2n(base.bias), want, rtol=0, atol=1e-5)


def test_lora_shapes_and_count_equal_peft():
    model = peft_lora(48, 96, 4, 4)
    peft_count = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    factors = LoRA(rank=4).init(jax.random.key(0), 48, 96)
    assert {k: v.shape for k, v in factors.items()} == {"a": (48, 4), "b": (4, 96)}
    assert 2 * sum(v.size for v in factors.values()) == peft_count


def test_gaussian_init_zero_b_and_configured_std():
    f = LoRA(rank=8, init_std=0.05).init(jax.random.key(1), 768, 768)
    assert not np.any(np.asarray(f["b"]))
    assert abs(float(np.std(f["a"])) / 0.05 - 1) < 0.05


def test_kaiming_init_matches_peft_distribution():
    """peft's default: A ~ kaiming_uniform(a=√5) = U(±1/√d_in), B = 0."""
    ours = LoRA(rank=8, factor_init="kaiming").init(jax.random.key(2), 768, 768)
    peft_a = t2n(peft_lora(768, 768, 8, 8).base_model.model.q.lora_A["default"].weight)
    bound = 1 / np.sqrt(768)
    for a in (np.asarray(ours["a"]), peft_a):
        assert np.abs(a).max() <= bound and np.abs(a).max() > 0.99 * bound
    assert abs(np.std(ours["a"]) / np.std(peft_a) - 1) < 0.05
    assert not np.any(np.asarray(ours["b"]))


def test_bad_fields_are_refused():
    with pytest.raises(ValueError, match="rank"):
        LoRA(rank=0)
    with pytest.raises(ValueError, match="targets must name at least one layer"):
        LoRA(targets=())  # which names are layers is the model's to say (test_adapters_tuned)
    with pytest.raises(ValueError, match="init"):
        LoRA(factor_init="orthogonal")
