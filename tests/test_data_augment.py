"""Augmentation: each transform checked against its definition, per-sample keys, probabilities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hsic_jax.data.augment import augment
from hsic_jax.data.io import DataError

OFF = dict(flip=False, radiation_noise=0.0, mixture_noise=0.0)


def batch(n=1024, seed=0):
    """(n, 4, 4, 2): every test uses this shape, so each configuration compiles once."""
    return np.asarray(jax.random.normal(jax.random.PRNGKey(seed), (n, 4, 4, 2)))


def test_flips_are_the_four_mirror_images_with_probability_half():
    x = batch()
    y = np.asarray(augment(jax.random.PRNGKey(1), x, **{**OFF, "flip": True}))
    kinds = []
    for xi, yi in zip(x, y):
        images = [xi, xi[:, ::-1], xi[::-1], xi[::-1, ::-1]]
        matches = [k for k, im in enumerate(images) if np.array_equal(yi, im)]
        assert len(matches) == 1
        kinds.append(matches[0])
    counts = np.bincount(kinds, minlength=4) / len(kinds)
    np.testing.assert_allclose(counts, 0.25, atol=0.05)


def test_radiation_noise_scales_each_sample_by_alpha():
    x = batch()
    rad = {**OFF, "radiation_noise": 1.0}
    y = np.asarray(augment(jax.random.PRNGKey(2), x, **rad, noise_std=0.0))
    alpha = (y * x).sum((1, 2, 3)) / (x * x).sum((1, 2, 3))  # least-squares scale of each sample
    np.testing.assert_allclose(y, alpha[:, None, None, None] * x, atol=1e-5)
    assert alpha.min() >= 0.9 and alpha.max() <= 1.1 and alpha.std() == pytest.approx(0.2 / 12**0.5, rel=0.1)
    noisy = np.asarray(augment(jax.random.PRNGKey(2), x, **rad, noise_std=0.5))
    assert np.std(noisy - y) == pytest.approx(0.5, rel=0.05)  # same alphas (same keys), plus N(0, 0.5^2)
    narrow = np.asarray(augment(jax.random.PRNGKey(2), x, **rad, noise_std=0.0, radiation_alpha=(2.0, 2.0)))
    np.testing.assert_allclose(narrow, 2 * x, rtol=1e-6)


def test_mixture_noise_blends_with_a_same_class_sample():
    x = batch()
    labels = np.append(np.arange(1023) // 3, 341)  # 341 classes of 3 samples and one of 1
    y = np.asarray(augment(jax.random.PRNGKey(3), x, labels, **{**OFF, "mixture_noise": 1.0}, noise_std=0.0))
    for i in range(0, 1024, 7):
        partners = [j for j in np.flatnonzero(labels == labels[i]) if j != i]
        if not partners:
            np.testing.assert_allclose(y[i], x[i], atol=1e-6)
            continue
        fits = []
        for j in partners:  # y = x_i + t (x_j - x_i), t = a2 / (a1 + a2) in [0.01/1.01, 1/1.01]
            d = (x[j] - x[i]).ravel()
            t = d @ (y[i] - x[i]).ravel() / (d @ d)
            fits.append((np.abs(x[i] + t * (x[j] - x[i]) - y[i]).max(), t))
        err, t = min(fits)
        assert err < 1e-5 and 0.0099 <= t <= 0.991


def test_each_sample_has_its_own_key():
    x = batch()
    kw = dict(flip=True, radiation_noise=0.1, mixture_noise=0.0)
    y = np.asarray(augment(jax.random.PRNGKey(4), x, **kw))
    x2 = x.copy()
    x2[5] += 10.0
    y2 = np.asarray(augment(jax.random.PRNGKey(4), x2, **kw))
    others = np.arange(len(x)) != 5
    np.testing.assert_array_equal(y[others], y2[others])
    assert not np.array_equal(y, np.asarray(augment(jax.random.PRNGKey(5), x, **kw)))
    np.testing.assert_array_equal(y, np.asarray(augment(jax.random.key(4), x, **kw)))  # typed keys work too


def test_probabilities():
    x = batch()
    labels = np.zeros(len(x), np.int32)
    rad = np.asarray(augment(jax.random.PRNGKey(6), x, **{**OFF, "radiation_noise": 0.1}))
    mix = np.asarray(augment(jax.random.PRNGKey(7), x, labels, **{**OFF, "mixture_noise": 0.2}))
    assert np.mean(np.any(rad != x, axis=(1, 2, 3))) == pytest.approx(0.1, abs=0.03)
    assert np.mean(np.any(mix != x, axis=(1, 2, 3))) == pytest.approx(0.2, abs=0.04)
    np.testing.assert_array_equal(np.asarray(augment(jax.random.PRNGKey(8), x, **OFF)), x)


def test_bad_arguments():
    x = jnp.zeros((4, 3, 3, 2))
    with pytest.raises(DataError, match="pass labels"):
        augment(jax.random.PRNGKey(0), x)
    with pytest.raises(DataError, match=r"labels must have shape \(4,\), got \(3,\)"):
        augment(jax.random.PRNGKey(0), x, jnp.zeros(3, jnp.int32))
    with pytest.raises(DataError, match=r"radiation_noise is a probability in \[0, 1\], got 1.5"):
        augment(jax.random.PRNGKey(0), x, radiation_noise=1.5, mixture_noise=0.0)
