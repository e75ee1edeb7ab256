"""Method configs and labels: which leaves each method trains, and refused mismatches."""

from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hsic_jax.adapters import B_SIDE, BASE, FROZEN, TunedModel, method_from_config
from hsic_jax.models import model_from_config
from hsic_jax.models.spectralgpt import ADAPTABLE

D, DEPTH, C, HIDDEN = 48, 2, 5, 192
TINY = dict(num_classes=C, img_size=16, patch_size=8, tubelet=3, bands=12, width=D,
            depth=DEPTH, heads=4)
CFGS = {
    "linear_probe": dict(name="linear_probe"),
    "bitfit": dict(name="bitfit"),
    "lora": dict(name="lora", rank=4, alpha=4.0),
    "lora_plus": dict(name="lora_plus", rank=4, alpha=4.0, lam=2.0),
    "krona": dict(name="krona", a_shape=(8, 6), b_shape=(6, 8)),
    "krona_plus": dict(name="krona_plus", a_shape=(8, 6), b_shape=(6, 8), lam=2.0),
    "lokr": dict(name="lokr", factor=4, rank=2, alpha=2.0),
    "fft": dict(name="fft"),
}
HEAD = D * C + C
# Trainable leaves by hand: per adapted matrix, the factor sizes; q and v in each block.
EXPECTED = {
    "linear_probe": HEAD,
    "bitfit": 2 * DEPTH * D + HEAD,
    "lora": 2 * DEPTH * (D * 4 + 4 * D) + HEAD,
    "krona": 2 * DEPTH * (8 * 6 + 6 * 8) + HEAD,
    # factorization(48, 4) = (4, 12): w1 (4, 4), w2 = (12, 2) @ (2, 12)
    "lokr": 2 * DEPTH * (4 * 4 + 12 * 2 + 2 * 12) + HEAD,
}
EXPECTED["lora_plus"], EXPECTED["krona_plus"] = EXPECTED["lora"], EXPECTED["krona"]


def tuned(method) -> TunedModel:
    return TunedModel.create(model_from_config(TINY), method, ADAPTABLE)


def tiny_params(method):
    return jax.jit(tuned(method).init)(jax.random.key(0), jnp.zeros((1, 16, 16, 12)))


def flat_labels(params, labels):
    names = ["/".join(k.key for k in path) for path, _ in
             jax.tree_util.tree_flatten_with_path(params)[0]]
    return dict(zip(names, jax.tree.leaves(labels)))


@pytest.mark.parametrize("name", CFGS)  # the paper's methods; a new one brings its own tests
def test_labels_train_exactly_the_methods_parameters(name):
    method = method_from_config(CFGS[name])
    params = tiny_params(method)
    labels = flat_labels(params, tuned(method).labels(params))
    sizes = {k: int(np.prod(v.shape)) for k, v in
             zip(labels, jax.tree.leaves(params))}
    trainable = sum(sizes[k] for k, l in labels.items() if l != FROZEN)
    total = sum(sizes.values())
    assert trainable == (total if name == "fft" else EXPECTED[name])
    assert labels["head/kernel"] == BASE and labels["head/bias"] == BASE
    if name != "fft":
        assert labels["backbone/norm/scale"] == FROZEN  # LP: the post-pool norm stays frozen
        assert all(l == FROZEN for k, l in labels.items()
                   if k.startswith("backbone/") and not k.endswith(("attn/q/bias", "attn/v/bias")))
    if name == "bitfit":
        assert labels["backbone/block_1/attn/v/bias"] == BASE
        assert labels["backbone/block_1/attn/k/bias"] == FROZEN
    b_side = sorted(k for k, l in labels.items() if l == B_SIDE)
    if name.endswith("_plus"):
        assert b_side == [f"adapters/block_{i}/{t}/b" for i in range(DEPTH) for t in "qv"]
    else:
        assert b_side == []


def test_targets_select_layers():
    method = method_from_config(dict(name="lora", targets=("k", "fc1", "fc2")))
    params = tiny_params(method)
    assert set(params["adapters"]["block_0"]) == {"k", "fc1", "fc2"}
    assert params["adapters"]["block_0"]["fc1"]["b"].shape == (4, HIDDEN)
    bitfit = method_from_config(dict(name="bitfit", targets=("proj", "fc2")))
    labels = flat_labels(params := tiny_params(bitfit), tuned(bitfit).labels(params))
    assert [k for k, l in labels.items() if l == BASE and k.startswith("backbone")] == [
        f"backbone/block_{i}/{p}/bias" for i in range(DEPTH) for p in ("attn/proj", "mlp/fc2")]


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="'dora' is not one of"):
        method_from_config(dict(name="dora"))
    with pytest.raises(ValueError, match=r"'lora' has no field\(s\) \['a_shape'\]"):
        method_from_config(dict(name="lora", a_shape=(8, 6)))
    with pytest.raises(ValueError, match=r"'lora' has no field\(s\) \['lam'\]"):
        method_from_config(dict(name="lora", lam=2.0))
    with pytest.raises(ValueError, match="a_shape"):
        method_from_config(dict(name="krona", a_shape=None, b_shape=None))
    with pytest.raises(ValueError, match="lam must be > 0"):
        method_from_config(dict(name="lora_plus", lam=0.0))
    with pytest.raises(ValueError, match=r"method targets \['qkv'\]: \['qkv'\]; the adaptable "
                                         r"layers of this model are \['fc1', 'fc2', 'k', "):
        tuned(method_from_config(dict(name="bitfit", targets=("qkv",))))


def test_params_of_another_method_are_refused():
    lora = method_from_config(CFGS["lora"])
    lp = method_from_config(CFGS["linear_probe"])
    plain, adapted = tiny_params(lp), tiny_params(lora)
    with pytest.raises(ValueError, match=r"no parameter matches \['adapters/\.\*'\]"):
        tuned(lora).labels(plain)
    with pytest.raises(ValueError, match="no rule for parameters"):
        tuned(lp).labels(adapted)


def test_kron_shapes_must_fit_the_targets():
    method = method_from_config(dict(name="krona", a_shape=(8, 6), b_shape=(6, 8),
                                     targets=("fc1",)))
    with pytest.raises(ValueError, match=r"\(48, 48\) = \(out, in\) weight but the targeted "
                                         r"layer is \(192, 48\)"):
        tiny_params(method)


def test_labels_work_on_shapes_only():
    model = tuned(method_from_config(CFGS["krona_plus"]))
    shapes = jax.eval_shape(model.init, jax.random.key(0),
                            jax.ShapeDtypeStruct((1, 16, 16, 12), jnp.float32))
    counts = Counter(jax.tree.leaves(model.labels(shapes)))
    assert counts[B_SIDE] == 2 * DEPTH and counts[BASE] == 2 * DEPTH + 2
