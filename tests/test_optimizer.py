"""Optimizer: schedule, labels → multi_transform AdamW, frozen leaves, LoRA+/KronA+ λ, the
gradient of the trainable part only, layer-wise learning-rate decay."""

import math

import jax
import jax.extend as jex
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from hsic_jax.adapters import TunedModel, method_from_config
from hsic_jax.adapters.export import npz_bytes, stored_arrays
from hsic_jax.count import load_config, param_shapes
from hsic_jax.adapters.methods import path_name
from hsic_jax.models import model_from_config
from hsic_jax.models.spectralgpt import ADAPTABLE, layer_index
from hsic_jax.train.optimizer import decay_mask, layer_decay_scales, make_optimizer, make_schedule
from hsic_jax.train.partition import combine, split

D, DEPTH, C = 48, 1, 5
TINY = dict(num_classes=C, img_size=16, patch_size=8, tubelet=3, bands=12, width=D,
            depth=DEPTH, heads=4)
OPTIM = dict(name="adamw", lr=1e-2, min_lr=0.0, schedule="cosine", warmup_epochs=0, b1=0.9,
             b2=0.999, eps=1e-8, weight_decay=0.05)
LORA = dict(name="lora", rank=4, alpha=4.0)
KRONA = dict(name="krona", a_shape=(8, 6), b_shape=(6, 8))


def batch(seed=0, n=4):
    rng = np.random.RandomState(seed)
    return (jnp.asarray(rng.randn(n, 16, 16, 12).astype(np.float32)),
            jnp.asarray(rng.randint(0, C, n)))


def setup(method_cfg):
    method = method_from_config(method_cfg)
    model = TunedModel.create(model_from_config(TINY), method, ADAPTABLE)
    params = jax.jit(model.init)(jax.random.key(0), batch()[0])
    return method, model, params, model.labels(params)


def loss_fn(model, frozen):
    """The loss of the trainable parameters, as the train step has it."""
    def loss(trainable, x, y):
        logits = model.apply(combine(trainable, frozen), x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss


def train(method_cfg, steps, params=None, decay=None):
    """`steps` real AdamW steps; returns (params after each step, first updates, opt_state).

    With `decay`, the learning rates decay layer-wise by that factor (`layer_index`).
    """
    method, model, init, labels = setup(method_cfg)
    trainable, frozen = split(init if params is None else params, labels)
    trainable_labels, _ = split(labels, labels)
    scales = None if decay is None else layer_decay_scales(
        trainable_labels, lambda path: layer_index(path, DEPTH), DEPTH + 1, decay)
    tx = make_optimizer(OPTIM, trainable_labels, make_schedule(OPTIM, 100, 10), method.lam, scales)

    @jax.jit
    def step(trainable, opt_state, x, y):
        grads = jax.grad(loss_fn(model, frozen))(trainable, x, y)
        updates, opt_state = tx.update(grads, opt_state, trainable)
        return optax.apply_updates(trainable, updates), opt_state, updates

    opt_state, history, first = tx.init(trainable), [], None
    for i in range(steps):
        trainable, opt_state, updates = step(trainable, opt_state, *batch(i))
        first = updates if first is None else first
        history.append(combine(trainable, frozen))
    return history, first, opt_state


def test_schedule_is_linear_warmup_then_cosine_to_min_lr():
    cfg = dict(OPTIM, lr=1e-3, min_lr=1e-5, warmup_epochs=2)
    sched = make_schedule(cfg, total_steps=100, steps_per_epoch=10)
    official = lambda e: (1e-3 * e / 2 if e < 2 else
                          1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi * (e - 2) / 8)))
    for step in (0, 5, 19, 20, 37, 60, 99, 100):
        assert float(sched(step)) == pytest.approx(official(step / 10), rel=1e-5, abs=1e-12)
    assert float(sched(0)) == 0.0 and float(sched(200)) == pytest.approx(1e-5)
    with pytest.raises(ValueError, match="warmup_epochs = 20 is 200 steps, more than the 100"):
        make_schedule(dict(cfg, warmup_epochs=20), 100, 10)


def test_weight_decay_only_on_matrices_not_position_embeddings():
    params = setup(dict(name="fft"))[2]
    mask = decay_mask(params)
    assert mask["backbone"]["block_0"]["attn"]["q"]["kernel"]
    assert mask["backbone"]["patch_embed"]["kernel"] and mask["head"]["kernel"]
    assert not mask["backbone"]["pos_embed"]
    assert not mask["backbone"]["block_0"]["attn"]["q"]["bias"]
    assert not mask["backbone"]["norm"]["scale"]


def toy_tree():
    """Params of ones (a position table, a frozen matrix, two factors, a bias) and their labels."""
    ones = lambda *shape: jnp.ones(shape)
    params = {"backbone": {"pos_embed": ones(1, 4, 3), "k": ones(3, 3)},
              "adapters": {"a": ones(3, 2), "b": ones(2, 3)}, "head": {"bias": ones(3)}}
    labels = {"backbone": {"pos_embed": "base", "k": "frozen"},
              "adapters": {"a": "base", "b": "b_side"}, "head": {"bias": "base"}}
    return params, labels


def test_adamw_decays_matrices_and_scales_b_side_by_lambda():
    """With zero gradients an AdamW step is pure weight decay: -lr·wd·p on ≥ 2-D leaves."""
    params, labels = toy_tree()
    tx = make_optimizer(OPTIM, labels, make_schedule(OPTIM, 100, 10), lam=3.0)
    updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
    decay = -OPTIM["lr"] * OPTIM["weight_decay"]
    np.testing.assert_allclose(updates["adapters"]["a"], decay * params["adapters"]["a"], rtol=1e-6)
    np.testing.assert_allclose(updates["adapters"]["b"], 3 * decay * params["adapters"]["b"],
                               rtol=1e-6)
    for leaf in (updates["backbone"]["pos_embed"], updates["backbone"]["k"],
                 updates["head"]["bias"]):
        assert not np.asarray(leaf).any()


def test_frozen_leaves_bitwise_unchanged_and_without_state():
    method, _, params, labels = setup(LORA)
    # A frozen -0.0 would come back as +0.0 from apply_updates with a zero update.
    params["backbone"]["block_0"]["attn"]["k"]["bias"] = -jnp.zeros(D)
    history, _, opt_state = train(LORA, steps=3, params=params)
    final = history[-1]
    flat = lambda t: jax.tree.leaves(t)
    for old, new, label in zip(flat(params), flat(final), flat(labels)):
        if label == "frozen":
            assert np.array_equal(np.asarray(old).view(np.uint32), np.asarray(new).view(np.uint32))
        else:
            assert not np.array_equal(old, new)
    assert np.signbit(final["backbone"]["block_0"]["attn"]["k"]["bias"]).all()
    float_state = [a for a in flat(opt_state) if jnp.issubdtype(a.dtype, jnp.floating)]
    trainable = sum(p.size for p, l in zip(flat(params), flat(labels)) if l != "frozen")
    assert sum(a.size for a in float_state) == 2 * trainable  # mu and nu only
    assert all(a.size == 1 for a in flat(opt_state) if not jnp.issubdtype(a.dtype, jnp.floating))


def test_krona_optimizer_state_is_twice_the_adapter_not_the_model():
    shapes, tuned = param_shapes(load_config("configs/botswana_krona.py"))
    labels = tuned.labels(shapes)
    tx = make_optimizer(OPTIM, labels, make_schedule(OPTIM, 100, 10), tuned.method.lam)
    state = jax.eval_shape(tx.init, shapes)
    state_bytes = sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(state))
    stored = stored_arrays(shapes, tuned)
    trainable_bytes = 4 * sum(a.size for a in stored.values())
    model_bytes = 4 * sum(a.size for a in jax.tree.leaves(shapes))
    assert trainable_bytes == 4 * 47_630
    assert 2 * trainable_bytes <= state_bytes <= 2 * trainable_bytes + 64
    assert state_bytes <= 2.1 * npz_bytes(stored) and state_bytes < model_bytes / 800


def test_lora_plus_with_lambda_one_equals_lora_step_for_step():
    lora = train(LORA, steps=2)[0]
    plus = train(dict(LORA, name="lora_plus", lam=1.0), steps=2)[0]
    for a, b in zip(lora, plus):
        jax.tree.map(np.testing.assert_array_equal, a, b)


@pytest.mark.parametrize("cfg", [LORA, KRONA], ids=["lora_plus", "krona_plus"])
def test_first_b_side_step_is_lambda_times_plain(cfg):
    """LoRA+ and KronA+ scale B's (the zero-initialised factor's) step by λ, nothing else."""
    lam = 4.0
    plain = train(cfg, steps=1)[1]
    plus = train(dict(cfg, name=cfg["name"] + "_plus", lam=lam), steps=1)[1]
    for block, layers in plain["adapters"].items():
        for layer, factors in layers.items():
            ours = plus["adapters"][block][layer]
            assert np.abs(factors["b"]).max() > 0
            np.testing.assert_allclose(ours["b"], lam * factors["b"], rtol=1e-6)
            np.testing.assert_array_equal(ours["a"], factors["a"])
    jax.tree.map(np.testing.assert_array_equal, plus["head"], plain["head"])


def vit_b_scales(**model_cfg):
    """{path: scale} of the official ViT-B layer decay (0.75 over 13 layers)."""
    model = model_from_config(dict(variant="base", img_size=32, num_classes=16, **model_cfg))
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 12)))["params"]
    scales = layer_decay_scales(shapes, lambda path: layer_index(path, 12), 13, 0.75)
    return {path_name(path): s for path, s in jax.tree_util.tree_leaves_with_path(scales)}


def test_vit_b_layer_decay_scales_are_the_official_ones():
    scales = vit_b_scales()
    assert len(scales) == 2 + 1 + 12 * 16 + 2 + 2  # patch_embed, pos_embed, blocks, norm, head
    assert all(type(s) is float for s in scales.values())
    for path in ("backbone/patch_embed/kernel", "backbone/patch_embed/bias",
                 "backbone/pos_embed"):
        assert scales[path] == pytest.approx(0.02376, abs=5e-6) == 0.75**13
    assert scales["backbone/block_0/attn/q/kernel"] == pytest.approx(0.03168, abs=5e-6)
    assert scales["backbone/block_0/norm1/scale"] == 0.75**12
    assert scales["backbone/block_5/mlp/fc2/bias"] == 0.75**7
    assert scales["backbone/block_11/attn/proj/kernel"] == 0.75
    assert scales["backbone/block_11/norm2/bias"] == 0.75
    for path in ("backbone/norm/scale", "backbone/norm/bias", "head/kernel", "head/bias"):
        assert scales[path] == 1.0
    separable = vit_b_scales(pos_embed="separable")
    assert "backbone/pos_embed" not in separable  # the official name match misses these two:
    assert separable["backbone/pos_embed_spatial"] == 1.0
    assert separable["backbone/pos_embed_temporal"] == 1.0
    assert separable["backbone/patch_embed/kernel"] == 0.75**13


def test_layer_index_of_adapter_factors_and_bad_blocks():
    assert layer_index("adapters/block_3/q/a", 12) == 4
    assert layer_index("backbone/block_3/attn/q/kernel", 12) == 4
    assert layer_index("backbone/pos_embed_temporal", 12) == layer_index("head/bias", 12) == 13
    with pytest.raises(ValueError, match="'adapters/block_12/q/a' is in block 12 of a model of "
                                         "depth 12"):
        layer_index("adapters/block_12/q/a", 12)


def test_lr_scale_multiplies_the_whole_adamw_step_including_weight_decay():
    """Under scale s a leaf's update is s × its unscaled update, its weight decay part too."""
    params, labels = toy_tree()
    scales = {"backbone": {"pos_embed": 0.25, "k": 0.5}, "adapters": {"a": 0.5, "b": 0.125},
              "head": {"bias": 1.0}}
    schedule = make_schedule(OPTIM, 100, 10)
    plain = make_optimizer(OPTIM, labels, schedule, lam=3.0)
    scaled = make_optimizer(OPTIM, labels, schedule, lam=3.0, lr_scales=scales)
    grads = jax.tree.map(lambda p: jnp.linspace(-1.0, 2.0, p.size).reshape(p.shape), params)
    for g in (grads, jax.tree.map(jnp.zeros_like, grads)):  # zero gradients: weight decay alone
        ref, _ = plain.update(g, plain.init(params), params)
        ours, state = scaled.update(g, scaled.init(params), params)
        jax.tree.map(lambda u, r, s: np.testing.assert_allclose(u, s * r, rtol=1e-6),
                     ours, ref, scales)
        assert not np.asarray(ours["backbone"]["k"]).any()  # frozen: no update
    decay = -OPTIM["lr"] * OPTIM["weight_decay"]
    np.testing.assert_allclose(ours["adapters"]["b"], 0.125 * 3 * decay * params["adapters"]["b"],
                               rtol=1e-6)
    assert np.abs(np.asarray(ours["adapters"]["a"])).min() > 0
    float_state = [a for a in jax.tree.leaves(state) if jnp.issubdtype(a.dtype, jnp.floating)]
    assert sum(a.size for a in float_state) == 2 * (12 + 6 + 6 + 3)  # none for the frozen k


def test_layer_decay_scales_each_first_step_and_frozen_leaves_stay():
    plain = train(dict(name="fft"), steps=1)[1]
    decayed = train(dict(name="fft"), steps=1, decay=0.5)[1]
    scales = {"backbone/patch_embed/kernel": 0.25, "backbone/pos_embed": 0.25,
              "backbone/block_0/attn/q/kernel": 0.5, "backbone/block_0/norm1/bias": 0.5,
              "backbone/norm/scale": 1.0, "head/kernel": 1.0}
    flat = lambda t: {path_name(p): np.asarray(a)
                      for p, a in jax.tree_util.tree_leaves_with_path(t)}
    plain, decayed = flat(plain), flat(decayed)
    for path, s in scales.items():
        assert np.abs(plain[path]).max() > 0
        np.testing.assert_allclose(decayed[path], s * plain[path], rtol=1e-6)
    _, _, params, labels = setup(LORA)  # adapter factors decay with their block (scale 0.5)
    plain = train(LORA, steps=1)[1]["adapters"]["block_0"]
    history, decayed, _ = train(LORA, steps=2, decay=0.5)
    for layer, factors in plain.items():
        for name, update in factors.items():
            assert np.abs(update).max() > 0
            np.testing.assert_allclose(decayed["adapters"]["block_0"][layer][name], 0.5 * update,
                                       rtol=1e-6)
    for old, new, label in zip(jax.tree.leaves(params), jax.tree.leaves(history[-1]),
                               jax.tree.leaves(labels)):
        assert np.array_equal(old, new) == (label == "frozen")


def dot_shapes(jaxpr) -> list[tuple[int, ...]]:
    """Output shapes of every dot_general in `jaxpr` and its sub-jaxprs."""
    shapes = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            shapes.append(tuple(eqn.outvars[0].aval.shape))
    for sub in jex.core.subjaxprs(jaxpr):
        shapes += dot_shapes(sub)
    return shapes


def grad_dots(method_cfg):
    method, model, params, labels = setup(method_cfg)
    x, y = batch()
    trainable, frozen = split(params, labels)
    loss = loss_fn(model, frozen)
    forward = dot_shapes(jax.make_jaxpr(loss)(trainable, x, y).jaxpr)
    backward = dot_shapes(jax.make_jaxpr(jax.grad(loss))(trainable, x, y).jaxpr)
    return forward, backward


FROZEN_KERNELS = {(D, D), (D, 4 * D), (4 * D, D)}  # q, k, v, proj, fc1, fc2


def test_no_frozen_weight_gradient():
    _, fft = grad_dots(dict(name="fft"))
    # the detector sees dW (and the tubelet embedding's, (t·p², D) = (4D, D) here)
    assert sum(s in FROZEN_KERNELS for s in fft) == 6 * DEPTH + 1
    _, lora = grad_dots(LORA)
    assert sum(s in FROZEN_KERNELS for s in lora) == 0
    assert lora.count((D, 4)) >= 2 * DEPTH and lora.count((4, D)) >= 2 * DEPTH  # dA, dB
    forward, lp = grad_dots(dict(name="linear_probe"))
    assert len(lp) == len(forward) + 1  # only the head's weight gradient: no backward pass
    assert sum(s in FROZEN_KERNELS for s in lp) == 0


@pytest.mark.parametrize("step_offset", [0, 1])
def test_adam_and_step_schedule_equal_torch(step_offset):
    """optim.name='adam' with schedule='step' is torch.optim.Adam (L2 weight decay on every
    leaf) under StepLR stepped every epoch: after the epoch (`step_offset` 0) or before it,
    as the official SpectralFormer script does (`step_offset` 1)."""
    import torch

    cfg = dict(OPTIM, name="adam", lr=5e-3, weight_decay=5e-3, schedule="step", step_epochs=2,
               step_gamma=0.5, step_offset=step_offset)
    steps_per_epoch = 3
    rng = np.random.RandomState(0)
    w0 = rng.randn(4, 3).astype(np.float32)
    grads = rng.randn(12, 4, 3).astype(np.float32)
    tx = make_optimizer(cfg, {"w": "base"}, make_schedule(cfg, 12, steps_per_epoch))
    params, state = {"w": jnp.asarray(w0)}, None
    state = tx.init(params)
    ours = []
    for g in grads:
        updates, state = tx.update({"w": jnp.asarray(g)}, state, params)
        params = optax.apply_updates(params, updates)
        ours.append(np.asarray(params["w"]))
    w = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    opt = torch.optim.Adam([w], lr=5e-3, weight_decay=5e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    rates = []
    for i, g in enumerate(grads):
        if step_offset and i % steps_per_epoch == 0:
            sched.step()  # the official SpectralFormer loop: before each epoch
        rates.append(opt.param_groups[0]["lr"])
        w.grad = torch.from_numpy(g.copy())
        opt.step()
        np.testing.assert_allclose(ours[i], w.detach().numpy(), rtol=1e-5, atol=1e-6)
        if not step_offset and (i + 1) % steps_per_epoch == 0:
            sched.step()
    assert rates == [5e-3 * 0.5 ** ((i // steps_per_epoch + step_offset) // 2) for i in range(12)]
    assert not np.allclose(ours[-1], ours[-2])
