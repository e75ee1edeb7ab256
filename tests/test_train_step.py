"""The train steps: a patch step's epoch visits every training pixel once, in a seeded order;
a whole-scene step's loss is over the training pixels only; prediction in micro-batches gives the
whole batch's logits, and no patch family's logits depend on an input's batch-mates."""

import functools

import flax.linen as nn
import jax
import numpy as np
import optax
import pytest

from hsic_jax import models
from hsic_jax.adapters.methods import method_from_config
from hsic_jax.adapters.tuned import Target, TunedModel, example_input
from hsic_jax.train.optimizer import make_optimizer
from hsic_jax.train.step import classes as to_classes, epoch_order, scene_logits, scene_train_step


def test_epoch_order_puts_each_valid_index_once_before_the_padding():
    valid = np.array([True] * 37 + [False] * 11)
    key = jax.random.key(0)
    orders = [np.asarray(epoch_order(key, e, valid)) for e in range(3)]
    for order in orders:
        assert sorted(order[:37].tolist()) == list(range(37))
        assert sorted(order[37:].tolist()) == list(range(37, 48))
    assert not np.array_equal(orders[0], orders[1])  # reshuffled every epoch
    np.testing.assert_array_equal(orders[1], np.asarray(epoch_order(key, 1, valid)))  # reproducible
    assert not np.array_equal(orders[0], np.asarray(epoch_order(jax.random.key(1), 0, valid)))


class _TinyBackbone(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(5, (3, 3), name="conv")(x))
        return nn.Dense(5, name="v")(nn.relu(nn.Dense(5, name="q")(x)))


class _TinySceneModel(nn.Module):
    """A whole-scene model: a 3 × 3 convolution and two per-pixel layers, then a per-pixel
    classifier, `(N, H, W, B)` → `(N, H, W, C)`."""

    num_classes: int = 3
    input_shape: tuple = (4, 4, 2)

    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(self.num_classes, name="head")(_TinyBackbone(name="backbone")(x))


HP = {"label_smoothing": 0.0}  # the run's hyper-parameters the scene step reads itself


def _scene_setup():
    adaptable = {"q": Target("(q)"), "v": Target("(v)")}
    tuned = TunedModel.create(_TinySceneModel(), method_from_config({"name": "fft"}), adaptable)
    params = tuned.init(jax.random.key(0), example_input(tuned.module))
    labels = tuned.labels(params)
    tx = make_optimizer({"name": "adam", "lr": 1e-2, "weight_decay": 0.0, "b1": 0.9,
                         "b2": 0.999, "eps": 1e-8}, labels, optax.constant_schedule(1e-2))
    return tuned, params, labels, tx


def test_scene_step_loss_is_the_mean_cross_entropy_over_the_valid_training_pixels_only():
    tuned, params, labels, tx = _scene_setup()
    scene = jax.random.normal(jax.random.key(1), (5, 7, 2))  # H ≠ W: swapped axes cannot pass
    coords = np.array([[0, 6], [4, 1], [2, 3], [3, 5]], np.int32)
    y = np.array([2, 0, 1, 1], np.int32)
    valid = np.array([True, True, True, False])  # the last entry is padding
    state = {"step": np.int32(0), "params": params, "opt_state": tx.init(params)}
    step = jax.jit(functools.partial(scene_train_step, tuned=tuned, optimizer=lambda hp: (tx, None)))
    new, metrics = step(state, {}, scene, coords, y, valid, np.int32(0), HP)  # FFT: nothing frozen

    logits = np.asarray(tuned.apply(params, scene[None]))[0]
    picked = logits[coords[:3, 0], coords[:3, 1]]
    expected = -np.mean(jax.nn.log_softmax(picked)[np.arange(3), y[:3]])
    np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-5)
    np.testing.assert_allclose(metrics["accuracy"], np.mean(picked.argmax(-1) == y[:3]))
    assert int(new["step"]) == 1

    # The padding entry's label and position change nothing.
    other, metrics2 = step(state, {}, scene, np.array([[0, 6], [4, 1], [2, 3], [0, 0]], np.int32),
                           np.array([2, 0, 1, 2], np.int32), valid, np.int32(0), HP)
    np.testing.assert_allclose(metrics2["loss"], metrics["loss"], rtol=1e-6)
    for a, b in zip(jax.tree.leaves(new["params"]), jax.tree.leaves(other["params"])):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_scene_training_fits_the_training_pixels_and_predict_reads_the_scene_map_at_them():
    tuned, params, labels, tx = _scene_setup()
    scene = jax.random.normal(jax.random.key(2), (6, 6, 2))
    coords = np.argwhere(np.ones((6, 6), bool))[::3].astype(np.int32)
    y = (np.asarray(scene)[coords[:, 0], coords[:, 1], 0] > 0).astype(np.int32)
    valid = np.ones(len(y), bool)
    state = {"step": np.int32(0), "params": params, "opt_state": tx.init(params)}
    step = jax.jit(lambda s: scene_train_step(s, {}, scene, coords, y, valid, np.int32(0), HP,
                                              tuned=tuned, optimizer=lambda hp: (tx, None)))
    for _ in range(100):
        state, metrics = step(state)
    assert float(metrics["accuracy"]) == pytest.approx(1.0)

    classes, confidence = to_classes(scene_logits(state["params"], {}, scene, coords,
                                                  tuned=tuned))
    logits = np.asarray(tuned.apply(state["params"], scene[None]))[0]
    np.testing.assert_array_equal(classes, logits.argmax(-1)[coords[:, 0], coords[:, 1]])
    np.testing.assert_array_equal(classes, y)
    assert np.all((np.asarray(confidence) > 0.5) & (np.asarray(confidence) <= 1))


def test_a_frozen_backbone_compiles_each_dot_alone_on_cpu():
    """`compiler_options`: YNNPACK's one-dot fusions for a step with no trainable backbone
    kernel (LoRA, BitFit, a linear probe), XLA's defaults when the backbone's kernels train
    and on every other backend (these options are XLA:CPU's)."""
    from hsic_jax.train.step import compiler_options

    frozen = {"backbone": {"q": {"kernel": "frozen", "bias": "base"}}, "head": {"kernel": "base"},
              "adapters": {"q": {"a": "base", "b": "b_side"}}}
    trained = {"backbone": {"q": {"kernel": "base", "bias": "base"}}, "head": {"kernel": "base"}}
    if jax.default_backend() != "cpu":
        assert compiler_options(frozen) is None and compiler_options(trained) is None
        return
    assert compiler_options(frozen) == {
        "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}
    assert compiler_options(trained) is None
    jax.jit(lambda x: x @ x, compiler_options=compiler_options(frozen)).lower(
        np.ones((4, 4), np.float32)).compile()  # an option this XLA knows


def _small_spectralgpt(lora: bool = False):
    """A LoRA-tuned 2-block SpectralGPT on 8 × 8 × 6 inputs (2 groups × 4 tokens, width 16)
    with random adapters, and a padded random cube `(1, 20, 20, 6)`."""
    from hsic_jax.models.spectralgpt import ADAPTABLE, SpectralGPT

    module = SpectralGPT(num_classes=5, img_size=8, patch_size=4, tubelet=3, bands=6, width=16,
                         depth=2, heads=2)
    method = method_from_config(dict(name="lora", rank=2, targets=("q", "v")) if lora
                                else dict(name="fft"))
    tuned = TunedModel.create(module, method, ADAPTABLE)
    params = tuned.init(jax.random.key(0), example_input(module))
    params = jax.tree.map(lambda x: x + 0.1 * jax.random.normal(jax.random.key(1), x.shape),
                          params)  # LoRA's B starts at zero: make the adapters count
    cube = jax.random.normal(jax.random.key(2), (20, 20, 6))
    return tuned, params, cube


@pytest.mark.parametrize("n, most, size", [(24, 8, 8), (23, 8, 8), (24, 5, 4), (7, 100, None)])
def test_pixel_logits_in_micro_batches_are_the_whole_batchs(n, most, size):
    """`pixel_logits` cut into slices of at most `most` pixels (a divisor of n, or near-equal
    slices with the last padded) gives the logits of the whole batch at once, and of
    `TunedModel.apply` (adapters beside their kernels) on the same inputs."""
    from hsic_jax.train.step import Geometry, _slice_size, inputs, pixel_logits

    tuned, params, cube = _small_spectralgpt(lora=True)
    geo = Geometry(5, 8)
    coords = jax.random.randint(jax.random.key(3), (n, 2), 0, 16)
    padded = np.pad(np.asarray(cube), ((2, 2), (2, 2), (0, 0)))
    whole = pixel_logits(params, {}, padded, coords, tuned=tuned, geo=geo)
    sliced = jax.jit(functools.partial(pixel_logits, tuned=tuned, geo=geo, micro_batch=most))(
        params, {}, padded, coords)
    if size is not None:
        assert _slice_size(n, most) == size
        assert "while" in jax.jit(functools.partial(
            pixel_logits, tuned=tuned, geo=geo, micro_batch=most)).lower(
                params, {}, padded, coords).as_text()
    assert sliced.shape == (n, 5)
    np.testing.assert_allclose(sliced, whole, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(whole, tuned.apply(params, inputs(padded, coords, geo)),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family, fields", [
    ("spectralgpt", dict(img_size=8, patch_size=4, bands=6, width=16, depth=2, heads=2)),
    ("spectralformer", dict(patches=3, bands=6, band_patches=3, dim=16, depth=2, heads=2,
                            dim_head=8, mlp_dim=8)),
    ("hypersigma", dict(img_size=9, bands=6, patch_size=1, width=16, depth=4, heads=2,
                        interval=2, out_indices=(0, 1, 2, 3), n_points=2, num_tokens=4,
                        spat_classifier_in=32, spat_classifier1_in=32)),
])
def test_an_inputs_logits_do_not_depend_on_its_batch_mates(family, fields):
    """In evaluation, every patch family gives input 0 the same logits, to the bit, whatever
    the other inputs of its batch are (no batch statistics): what lets prediction pad its last
    batch and cut batches into micro-batches without moving a pixel's class."""
    module = models.family(family).model_from_config(dict(num_classes=5, **fields))
    x = jax.random.normal(jax.random.key(0), (6, *module.input_shape))
    params = module.init(jax.random.key(1), x[:1])
    apply = jax.jit(module.apply)
    first = apply(params, x)[0]
    np.testing.assert_array_equal(apply(params, x.at[1:].set(3 * x[1:] + 1))[0], first)
    assert not np.array_equal(apply(params, x)[1], first)  # the inputs do matter


def test_micro_batch_keeps_the_largest_activation_within_its_budget():
    """SpectralGPT's `activation_size` is the floats of one input's largest activation, here
    its MLP's hidden layer as the block computes it (tokens × 4 · width); SpectralFormer's the
    official Indian Pines model's attention scores (4 heads × 201²). `micro_batch` fits
    `_MICRO_BATCH_FLOATS` of it on a CPU; None for a family that does not give its size and
    on other backends."""
    from hsic_jax.models.spectralformer import SpectralFormer
    from hsic_jax.models.spectralgpt import SpectralGPT
    from hsic_jax.train.step import _MICRO_BATCH_FLOATS, micro_batch

    tuned, params, _ = _small_spectralgpt()
    _, state = jax.eval_shape(lambda p, x: tuned.module.apply(
        {"params": p}, x, capture_intermediates=lambda m, _: m.name == "fc1",
        mutable=["intermediates"]), params, example_input(tuned.module))
    hidden = jax.tree.leaves(state["intermediates"])[0]
    assert hidden.shape[1:] == (8, 64)  # (N, tokens, 4 · width)
    assert tuned.module.activation_size == 8 * 64
    assert SpectralFormer(num_classes=16, bands=200).activation_size == 4 * 201**2
    cpu_small = SpectralGPT(num_classes=16, img_size=32, patch_size=8, bands=12, width=192,
                            heads=3)
    on_cpu = jax.default_backend() == "cpu"
    assert micro_batch(cpu_small) == (_MICRO_BATCH_FLOATS // (64 * 768) if on_cpu else None)
    assert micro_batch(nn.Dense(3)) is None
