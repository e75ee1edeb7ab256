"""The train state: trainable parameters per seed, the frozen ones once for every seed."""

import jax
import numpy as np
import pytest

from hsic_jax.count import load_config
from hsic_jax.train.partition import combine, split
from hsic_jax.train.state import create_train_state, init_params, tuned_model

from tests.test_train_protocol import tiny_demo


def tiny(method: dict):
    config = tiny_demo()
    config.method = method
    return config, tuned_model(config, num_classes=16, bands=12)


@pytest.mark.parametrize("method", [dict(name="lora", rank=2, alpha=2.0, init="gaussian",
                                         init_std=0.02), dict(name="linear_probe")])
def test_each_seed_has_its_own_trainable_part_and_all_share_seed_zeros_frozen_part(method):
    config, tuned = tiny(method)
    seeds = [5, 6, 7]
    setup, state, frozen = create_train_state(config, tuned, seeds, steps_per_epoch=2)
    for s, seed in enumerate(seeds):
        trainable, own_frozen = split(init_params(tuned, jax.random.key(seed)), setup.labels)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[s], b, rtol=1e-6),
                     state["params"], trainable)
        if s == 0:
            jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), frozen, own_frozen)
    assert all(a.shape[0] == 3 for a in jax.tree.leaves(state))  # the seed axis
    labels = jax.tree.leaves(split(setup.labels, setup.labels)[1])
    assert labels and set(labels) == {"frozen"}
    assert jax.tree.structure(combine(jax.tree.map(lambda a: a[0], state["params"]), frozen)) \
        == jax.tree.structure(setup.labels)
    if method["name"] == "linear_probe":
        assert set(state["params"]) == {"head"}


def test_fft_has_nothing_frozen():
    config, tuned = tiny(dict(name="fft"))
    _, state, frozen = create_train_state(config, tuned, [0, 1], steps_per_epoch=2)
    assert frozen == {} and "backbone" in state["params"]


def test_five_seeds_of_a_vit_b_krona_plus_run_hold_about_one_backbone():
    """At ViT-B, the state of 5 seeds of a PEFT run (shapes only: nothing allocated) is at
    most 1.2 × that of one seed: the 86 M frozen parameters are held once."""
    config = load_config("configs/indian_pines_krona_plus.py")
    config.init = "random"
    tuned = tuned_model(config, num_classes=16, bands=12)

    def nbytes(seeds):
        tree = jax.eval_shape(lambda: create_train_state(config, tuned, seeds, 10)[1:])
        return sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(tree))

    one, five = nbytes([0]), nbytes(list(range(5)))
    assert one > 300e6 and five <= 1.2 * one


def test_a_swept_init_std_scales_each_runs_factors():
    config, tuned = tiny(dict(name="lora_plus", rank=2, alpha=2.0, init="gaussian",
                              init_std=0.02, lam=2.0))
    _, state, _ = create_train_state(config, tuned, [3, 3], 2, init_std=[0.02, 0.08])
    factors = jax.tree.leaves(state["params"]["adapters"])
    assert any(np.abs(f[0]).max() > 0 for f in factors)
    for f in factors:  # A drawn at the run's std, B zero either way
        np.testing.assert_allclose(f[1], 4 * f[0], rtol=1e-6)
