"""Augmentation: each transform checked against its definition, per-sample keys, probabilities;
mixup / cutmix against timm's batch-mode `Mixup`."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from hsic_jax.data.augment import augment, mix_batch
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


C = 16
KEYS = jax.random.split(jax.random.PRNGKey(9), 2000)


def mix_inputs():
    """(8, 7, 10, 3) patches whose partners differ everywhere, labels 0..7 (partners differ)."""
    return jax.random.normal(jax.random.PRNGKey(10), (8, 7, 10, 3)), jnp.arange(8)


def mix_many(**kw):
    """mix_batch of the same batch under each of KEYS: ((K, 8, 7, 10, 3), (K, 8, C)), numpy."""
    x, y = mix_inputs()
    out, targets = jax.vmap(lambda k: mix_batch(k, x, y, C, **kw))(KEYS)
    return np.asarray(out), np.asarray(targets)


def own_share(targets):
    """λ of each batch (K,), read from targets without label smoothing: target of sample 0's class."""
    return targets[:, 0, 0]


def test_targets_are_distributions_with_timm_on_off_values():
    x, y = mix_inputs()
    _, targets = mix_many(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1)
    np.testing.assert_allclose(targets.sum(-1), 1.0, rtol=1e-5)
    assert targets.min() >= 0
    on, off = 1 - 0.1 + 0.1 / C, 0.1 / C
    smooth = np.where(np.eye(C)[np.asarray(y)] == 1, on, off)  # timm's mixup_target, per method
    lam = (targets[:, 0, 0] - off) / (on - off)
    expected = lam[:, None, None] * smooth + (1 - lam[:, None, None]) * smooth[::-1]
    np.testing.assert_allclose(targets, expected, atol=1e-6)
    assert np.mean(lam < 1 - 1e-6) > 0.9  # most batches mix (an empty cutmix box: λ = 1)
    plain = mix_batch(KEYS[0], x, y, C, label_smoothing=0.1)[1]
    assert set(np.unique(np.asarray(plain))) == {np.float32(on), np.float32(off)}


def test_no_alpha_returns_x_and_the_smoothed_one_hot():
    x, y = mix_inputs()
    out, targets = mix_batch(KEYS[0], x, y, C, label_smoothing=0.1)
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(targets, optax.smooth_labels(jax.nn.one_hot(y, C), 0.1))
    assert targets.dtype == jnp.float32


def test_prob_zero_mixes_nothing():
    x, y = mix_inputs()
    out, targets = mix_many(mixup_alpha=0.8, cutmix_alpha=1.0, prob=0.0)
    np.testing.assert_array_equal(out, np.broadcast_to(x, out.shape))
    np.testing.assert_array_equal(targets, np.broadcast_to(jax.nn.one_hot(y, C), targets.shape))


def test_mixup_is_the_convex_combination_with_the_reversed_batch():
    x, _ = mix_inputs()
    out, targets = mix_many(mixup_alpha=0.8)
    lam = own_share(targets)
    w = lam.reshape(-1, 1, 1, 1, 1)
    np.testing.assert_allclose(out, w * x + (1 - w) * x[::-1], atol=1e-5)
    assert np.mean((lam > 0.01) & (lam < 0.99)) > 0.9
    # Beta(0.8, 0.8): mean 1/2, variance 0.64 / (2.56 · 2.6) = 0.0962 (a uniform λ: 0.0833).
    assert lam.mean() == pytest.approx(0.5, abs=0.03)
    assert lam.var() == pytest.approx(0.0962, abs=0.006)


def cut_regions(out):
    """(K, h, w) bool: where each batch's output is the reversed batch (else it must be x)."""
    x, _ = mix_inputs()
    x = np.asarray(x)
    replaced = (out == x[::-1]).all(axis=(1, 4))
    kept = (out == x).all(axis=(1, 4))
    return replaced, kept


def test_cutmix_replaces_one_rectangle_with_the_reversed_batch():
    out, targets = mix_many(cutmix_alpha=1.0)
    replaced, kept = cut_regions(out)
    assert (replaced ^ kept).all()  # every pixel of every sample: x or the reversed x
    for box in replaced:
        rows, cols = box.any(axis=1), box.any(axis=0)
        np.testing.assert_array_equal(box, rows[:, None] & cols[None, :])
        for span in (rows, cols):  # contiguous: one run of True
            assert np.count_nonzero(np.diff(span.astype(int)) != 0) <= 2
    np.testing.assert_allclose(replaced.mean(axis=(1, 2)), 1 - own_share(targets), atol=1e-6)
    sizes = replaced.sum(axis=(1, 2))
    assert (sizes > 0).mean() > 0.85 and len(np.unique(sizes)) > 10  # boxes of many sizes


def test_switch_prob_picks_cutmix_that_often():
    out, _ = mix_many(mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.3)
    replaced, kept = cut_regions(out)
    cut = (replaced ^ kept).all(axis=(1, 2))  # a mixup batch is neither x nor its reversal
    assert cut.mean() == pytest.approx(0.3, abs=0.05)  # binomial sd ≈ 0.01


def test_bad_mix_arguments():
    x, y = mix_inputs()
    key = KEYS[0]
    for kw, match in ((dict(mixup_alpha=-0.1), "mixup_alpha must be ≥ 0, got -0.1"),
                      (dict(cutmix_alpha=-1.0), "cutmix_alpha must be ≥ 0"),
                      (dict(switch_prob=1.5), r"switch_prob must be in \[0, 1\], got 1.5"),
                      (dict(prob=-0.5), r"^prob must be in \[0, 1\], got -0.5"),
                      (dict(label_smoothing=2.0), r"label_smoothing must be in \[0, 1\]")):
        with pytest.raises(DataError, match=match):
            mix_batch(key, x, y, C, **kw)
    with pytest.raises(DataError, match=r"labels y must have shape \(8,\), got \(7,\)"):
        mix_batch(key, x, y[:7], C, mixup_alpha=0.8)
    with pytest.raises(DataError, match="num_classes must be ≥ 1, got 0"):
        mix_batch(key, x, y, 0)
