"""Adapters injected into any model family from outside, by parameter path (`adapters.tuned`):
a toy family with a fused q/k/v layer, checked against the adapted weights built by hand."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hsic_jax.adapters import TunedModel, method_from_config
from hsic_jax.adapters.tuned import Target, find_sites

D, INNER, C = 6, 4, 3


class Toy(nn.Module):
    """A family in miniature: a fused qkv layer and an output layer per block, then a head."""

    num_classes: int = C
    input_shape = (1, 1, D)

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = x.reshape(x.shape[0], D)
        h = ToyBackbone(name="backbone")(h)
        return nn.Dense(self.num_classes, name="head")(h)


class ToyBackbone(nn.Module):
    @nn.compact
    def __call__(self, h):
        for i in range(2):
            qkv = nn.Dense(3 * INNER, use_bias=False, name=f"layer_{i}_to_qkv")
            h = nn.Dense(D, name=f"out_{i}")(jnp.tanh(qkv(h)))
        return h


ADAPTABLE = {"q": Target(r"layer_(\d+)_to_qkv", part=(0, 3)),
             "v": Target(r"layer_(\d+)_to_qkv", part=(2, 3)),
             "out": Target(r"out_(\d+)")}


def tuned(method_cfg) -> TunedModel:
    return TunedModel.create(Toy(), method_from_config(method_cfg), ADAPTABLE)


def randomise(tree, seed):
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree.unflatten(treedef, [jax.random.normal(k, p.shape) for k, p in zip(keys, leaves)])


def reference_logits(params, x, method_cfg):
    """The forward with every adapted weight built explicitly: W + s·A·B in the adapted columns."""
    scale = method_cfg["alpha"] / method_cfg["rank"]
    h = x.reshape(x.shape[0], D)
    bb, ad = params["backbone"], params["adapters"]
    for i in range(2):
        w = np.array(bb[f"layer_{i}_to_qkv"]["kernel"])
        for target, cols in (("q", slice(0, INNER)), ("v", slice(2 * INNER, 3 * INNER))):
            if target in method_cfg["targets"]:
                f = ad[str(i)][target]
                w[:, cols] += scale * np.asarray(f["a"]) @ np.asarray(f["b"])
        h = np.tanh(h @ w)
        w = np.array(bb[f"out_{i}"]["kernel"])
        if "out" in method_cfg["targets"]:
            f = ad[str(i)]["out"]
            w += scale * np.asarray(f["a"]) @ np.asarray(f["b"])
        h = h @ w + np.asarray(bb[f"out_{i}"]["bias"])
    return h @ np.asarray(params["head"]["kernel"]) + np.asarray(params["head"]["bias"])


@pytest.mark.parametrize("targets", [("q", "v"), ("v",), ("q", "out")])
def test_adapters_on_parts_of_a_fused_layer_equal_the_explicit_weights(targets):
    cfg = dict(name="lora", rank=2, alpha=3.0, targets=targets)
    model = tuned(cfg)
    params = randomise(model.init(jax.random.key(0), jnp.zeros((1, 1, 1, D))), 1)
    assert sorted((s.group, s.target) for s in model.sites) == sorted(
        (str(i), t) for i in range(2) for t in targets)
    x = np.random.RandomState(0).randn(5, 1, 1, D).astype(np.float32)
    with jax.default_matmul_precision("highest"):
        got = np.asarray(model.apply(params, x))
        merged = np.asarray(Toy().apply({"params": model.merge(params)}, x))
        predicted = np.asarray(model.apply_merged(params, x))
    want = reference_logits(params, x, cfg)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(merged, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(predicted, want, rtol=1e-5, atol=1e-5)


def test_factors_do_not_depend_on_the_other_targets():
    key = jax.random.key(3)
    alone = tuned(dict(name="lora", targets=("v",))).init(key, jnp.zeros((1, 1, 1, D)))
    both = tuned(dict(name="lora", targets=("q", "v"))).init(key, jnp.zeros((1, 1, 1, D)))
    np.testing.assert_array_equal(alone["adapters"]["1"]["v"]["a"], both["adapters"]["1"]["v"]["a"])
    assert alone["adapters"]["1"]["v"]["a"].shape == (D, 4)  # the v slice: INNER outputs
    assert both["adapters"]["1"]["v"]["b"].shape == (4, INNER)


def test_bitfit_trains_the_targeted_layers_biases():
    model = tuned(dict(name="bitfit", targets=("out",)))
    params = model.init(jax.random.key(0), jnp.zeros((1, 1, 1, D)))
    labels = model.labels(params)
    assert labels["backbone"]["out_1"]["bias"] == "base"
    assert labels["backbone"]["out_1"]["kernel"] == "frozen"
    # A target without biases is refused when the model is built, naming the ones with biases.
    with pytest.raises(ValueError, match=r"config.method.targets: q have no bias in this model "
                                         r".* the targets with biases here are \['out'\]"):
        tuned(dict(name="bitfit", targets=("q",)))


def test_targets_the_model_does_not_have_are_refused():
    with pytest.raises(ValueError, match=r"method targets \['k'\]: \['k'\]; the adaptable layers "
                                         r"of this model are \['out', 'q', 'v'\]"):
        tuned(dict(name="lora", targets=("k",)))
    shapes = {"block": {"kernel": jax.ShapeDtypeStruct((2, 2), jnp.float32)}}
    with pytest.raises(ValueError, match=r"method targets \['q'\] match no layer of this model"):
        find_sites(shapes, ADAPTABLE, ("q",))


@pytest.mark.parametrize("name", ["fft", "linear_probe"])
def test_a_method_that_uses_no_targets_ignores_them(name):
    """FFT and the linear probe run on a model whose layers the config's targets do not name
    (a new family keeps the default ('q', 'v') for them); the methods that use targets
    refuse those."""
    model = tuned(dict(name=name, targets=("k",)))
    assert model.sites == ()
    params = model.init(jax.random.key(0), jnp.zeros((1, 1, 1, D)))
    labels = jax.tree.leaves(model.labels(params))
    assert set(labels) == ({"base"} if name == "fft" else {"base", "frozen"})
    for other in ("bitfit", "lora"):
        with pytest.raises(ValueError, match=r"method targets \['k'\]"):
            tuned(dict(name=other, targets=("k",)))
