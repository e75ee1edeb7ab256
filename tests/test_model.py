"""Encoder options beyond the official forward: variants, pooling, drop path, bf16, input checks."""

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hsic_jax import models
from hsic_jax.models import VARIANTS, model_from_config

TINY = dict(width=48, depth=3, heads=3, patch_size=4, img_size=16, bands=12, num_classes=5)


def n_params(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def init(model, size=16, bands=12):
    return model.init(jax.random.key(0), jnp.zeros((1, size, size, bands)))["params"]


@pytest.mark.parametrize("variant,expected", [
    # Encoder without position table (spectralgpt.md §7) + joint table of 4·16 tokens + head of 16.
    ("base", 85_204_224 + 64 * 768 + 768 * 16 + 16),
    ("large", None), ("huge", None)])
def test_variant_parameter_counts(variant, expected):
    model = model_from_config(dict(variant=variant, img_size=32, num_classes=16))
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 12)))["params"]
    v = VARIANTS[variant]
    d, depth = v["width"], v["depth"]
    per_block = 4 * (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d) + 2 * 2 * d  # attn, mlp, norms
    tokens = (12 // v["tubelet"]) * 16
    embed = v["tubelet"] * 64 * d + d
    total = embed + tokens * d + depth * per_block + 2 * d + d * 16 + 16
    assert n_params(shapes) == total
    if expected is not None:
        assert total == expected


@pytest.mark.parametrize("family", ["spectralgpt", "hypersigma"])
def test_a_variant_fills_the_fields_not_given_and_an_unknown_one_is_refused(family):
    fam = models.family(family)
    model = fam.model_from_config(dict(name=family, variant="large", depth=2, num_classes=3))
    assert (model.width, model.heads, model.depth) == (1024, 16, 2)  # the preset's, then ours
    with pytest.raises(ValueError, match=r"model variant 'giant' is not one of "
                                         r"\['base', 'huge', 'large'\]"):
        fam.model_from_config(dict(variant="giant", num_classes=3))


def test_pooling_flag_changes_the_features():
    official = model_from_config(TINY)
    params = init(official)
    x = jax.random.normal(jax.random.key(1), (2, 16, 16, 12))
    clean = model_from_config({**TINY, "pool_skip_first": False})
    a = official.apply({"params": params}, x)
    b = clean.apply({"params": params}, x)
    assert not np.allclose(a, b)


def test_drop_path_is_per_sample_and_only_in_training():
    model = model_from_config({**TINY, "drop_path": 0.5, "num_classes": 3})
    params = init(model)
    x = jnp.tile(jax.random.normal(jax.random.key(1), (1, 16, 16, 12)), (8, 1, 1, 1))
    eval_out = model.apply({"params": params}, x)
    np.testing.assert_allclose(eval_out, model.apply({"params": params}, x), rtol=0)
    train = lambda k: model.apply({"params": params}, x, train=True, rngs={"dropout": jax.random.key(k)})
    out = train(2)
    # Identical inputs give different outputs per sample: whole branches are dropped per sample.
    assert len({tuple(np.round(np.asarray(r), 5)) for r in out}) > 1
    np.testing.assert_allclose(out, train(2), rtol=0)


def test_bfloat16_compute_keeps_float32_params_and_stays_close():
    model32 = model_from_config(TINY)
    model16 = model_from_config({**TINY, "dtype": "bfloat16"})
    params = init(model16)
    assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype("float32")}
    x = jax.random.normal(jax.random.key(3), (4, 16, 16, 12))
    y32 = model32.apply({"params": params}, x)
    y16 = model16.apply({"params": params}, x)
    assert y16.dtype == jnp.float32
    assert float(jnp.abs(y16 - y32).max() / jnp.abs(y32).max()) < 0.05


def test_wrong_input_shape_is_named():
    model = model_from_config(TINY)
    params = init(model)
    with pytest.raises(ValueError, match=r"\(2, 16, 16, 10\).*\(N, 16, 16, 12\)"):
        model.apply({"params": params}, jnp.zeros((2, 16, 16, 10)))


@pytest.mark.parametrize("change,message", [({"img_size": 18}, "not a multiple of patch_size"),
                                            ({"bands": 10}, "do not split into tubelets"),
                                            ({"heads": 5}, "not divisible by 5 heads"),
                                            ({"pos_embed": "sincos"}, "pos_embed 'sincos'"),
                                            ({"variant": "giant"}, "variant 'giant'")])
def test_bad_geometry_is_named(change, message):
    with pytest.raises(ValueError, match=message):
        model = model_from_config({**TINY, **change})
        init(model, size=model.img_size, bands=model.bands)


def record_calls(model, params, x, **kwargs):
    """`[(module, args, output)]` of every module call during `model.apply` (flax interceptors)."""
    calls = []

    def interceptor(next_fun, args, kwargs_, context):
        out = next_fun(*args, **kwargs_)
        if context.method_name == "__call__":
            calls.append((context.module, args, out))
        return out

    with nn.intercept_methods(interceptor):
        model.apply({"params": params}, x, **kwargs)
    return calls


def test_drop_path_rate_rises_linearly_from_zero_over_the_blocks():
    """Official rule: block i drops its branches with rate linspace(0, drop_path, depth)[i]."""
    model = model_from_config({**TINY, "depth": 5, "drop_path": 0.2})
    params = init(model)
    blocks = [m for m, _, _ in record_calls(model, params, jnp.zeros((1, 16, 16, 12)))
              if type(m).__name__ == "Block"]
    assert [m.name for m in blocks] == [f"block_{i}" for i in range(5)]
    np.testing.assert_allclose([m.drop_path for m in blocks], [0.0, 0.05, 0.1, 0.15, 0.2])


@pytest.mark.parametrize("skip_first", [True, False])
def test_pooled_feature_is_the_mean_over_tokens_1_to_n(skip_first):
    """The official pooling `x[:, 1:].mean(1)` drops token 0 (spectral group 0, top-left patch)."""
    model = model_from_config({**TINY, "pool_skip_first": skip_first})
    params = init(model)
    x = jax.random.normal(jax.random.key(4), (2, 16, 16, 12))
    calls = record_calls(model, params, x)
    tokens = np.asarray(next(out for m, _, out in calls if m.name == f"block_{TINY['depth'] - 1}"))
    pooled = np.asarray(next(args[0] for m, args, _ in calls if m.name == "norm"))
    assert tokens.shape == (2, 4 * 16, 48)
    want = tokens[:, 1:].sum(1) / (tokens.shape[1] - 1) if skip_first else tokens.mean(1)
    np.testing.assert_allclose(pooled, want, rtol=1e-6, atol=1e-6)
    other = tokens[:, :-1].mean(1) if skip_first else tokens[:, 1:].mean(1)
    assert np.abs(pooled - other).max() > 1e-3  # the check above can tell the tokens apart


# ---------------------------------------------------------------- the dense layers' matmul

def test_dense_matmul_has_the_gradients_of_a_plain_matmul():
    """`matmul` (every SpectralGPT Dense and the tubelet embedding): the values and both
    gradients of `x @ kernel`, for 2-D and 3-D inputs, narrowing and widening kernels (the
    weight gradient transposes the narrower of `x` and `dy`)."""
    from hsic_jax.models.common import matmul

    rng = np.random.RandomState(0)
    for (d_in, d_out), shape in itertools.product(((6, 5), (5, 6)), ((7,), (3, 4))):
        kernel = jnp.asarray(rng.randn(d_in, d_out), jnp.float32)
        x = jnp.asarray(rng.randn(*shape, d_in), jnp.float32)
        w = jnp.asarray(rng.randn(*shape, d_out), jnp.float32)  # a loss that weighs outputs
        ours = jax.value_and_grad(lambda a, b: jnp.sum(w * matmul(a, b)) ** 2, (0, 1))(x, kernel)
        plain = jax.value_and_grad(lambda a, b: jnp.sum(w * (a @ b)) ** 2, (0, 1))(x, kernel)
        jax.tree.map(lambda o, p: np.testing.assert_allclose(
            o, p, rtol=1e-5, atol=1e-6 * np.abs(p).max()), ours, plain)


def test_dense_matmul_computes_no_gradient_of_a_frozen_kernel():
    """Differentiated in `x` only, the backward pass holds one dot (dx), not the kernel's."""
    from hsic_jax.models.common import matmul

    x, kernel = jnp.ones((3, 4, 6)), jnp.ones((6, 5))
    frozen = str(jax.make_jaxpr(jax.grad(lambda a: jnp.sum(matmul(a, kernel))))(x))
    assert frozen.count("dot_general") == 2, frozen  # the forward's and dx; no (6, 5) dW
    trained = str(jax.make_jaxpr(jax.grad(lambda a, b: jnp.sum(matmul(a, b)), (0, 1)))(x, kernel))
    assert trained.count("dot_general") == 3  # and dW
