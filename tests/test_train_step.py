"""Batches of the train step: each epoch visits every training pixel once, in a seeded order."""

import jax
import numpy as np

from hsic_jax.train.step import epoch_order


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
