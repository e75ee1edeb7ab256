"""PCA (against scikit-learn) and normalisation (against explicit formulas)."""

import re

import numpy as np
import pytest
from sklearn.decomposition import PCA as SklearnPCA
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from hsic_jax.data.io import DataError
from hsic_jax.data.preprocess import (BIGEARTHNET_MEAN, BIGEARTHNET_STD, NORMALIZATIONS, PCA,
                                      Normalization, Preprocessing, fit_pca, normalize, prepare)
from hsic_jax.data.scenes import load_scene

# docs/spectralgpt.md section 3, BigEarthNet-S2 12 bands.
BEN_MEAN = [1370.19151926, 1184.3824625, 1120.77120066, 1136.26026392, 1263.73947144, 1645.40315151,
            1846.87040806, 1762.59530783, 1972.62420416, 582.72633433, 1732.16362238, 1247.91870117]
BEN_STD = [633.15169573, 650.2842772, 712.12507725, 965.23119807, 948.9819932, 1108.06650639,
           1258.36394548, 1233.1492281, 1364.38688993, 472.37967789, 1310.36996126, 1087.6020813]

# Share of the variance of the 200 bands kept by 12 components on Indian Pines (reported in the README).
IP_PCA12_VARIANCE = 0.97434


@pytest.fixture(scope="module")
def cube():
    return load_scene("indian_pines").cube


@pytest.fixture(scope="module")
def pca(cube):
    return fit_pca(cube, 12)


def test_pca_matches_sklearn_on_indian_pines(cube):
    part = cube[:30]  # 4,350 pixels of the real scene keep sklearn's full SVD fast
    x = part.reshape(-1, 200).astype(np.float64)
    ref = SklearnPCA(12, svd_solver="full").fit(x)
    pca = fit_pca(part, 12)
    np.testing.assert_allclose(pca.explained_variance_ratio, ref.explained_variance_ratio_, rtol=1e-5)
    signs = np.sign(np.sum(pca.components * ref.components_.T, axis=0))  # sklearn's signs are its own choice
    np.testing.assert_allclose(pca.components, ref.components_.T * signs, atol=1e-5)
    projected = np.asarray(pca.apply(part)).reshape(-1, 12)
    np.testing.assert_allclose(projected, ref.transform(x) * signs, atol=0.02)  # values up to ~1.8e4


def test_pca_variance_share_on_indian_pines(pca):
    assert pca.components.shape == (200, 12)
    assert float(pca.explained_variance_ratio.sum()) == pytest.approx(IP_PCA12_VARIANCE, abs=1e-5)
    assert (np.diff(pca.explained_variance_ratio) <= 0).all()


def test_pca_is_reproducible_with_deterministic_signs(cube, pca):
    again = fit_pca(cube, 12)
    np.testing.assert_array_equal(again.components, pca.components)
    np.testing.assert_array_equal(again.mean, pca.mean)
    largest = pca.components[np.abs(pca.components).argmax(0), np.arange(12)]
    assert (largest > 0).all()
    # Negating the data flips every axis; the sign rule flips them back.
    np.testing.assert_allclose(fit_pca(-cube, 12).components, pca.components, atol=1e-6)


def test_pca_save_load(tmp_path, pca):
    pca.save(tmp_path / "pca.npz")
    loaded = PCA.load(tmp_path / "pca.npz")
    for name in ("mean", "components", "explained_variance_ratio"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(pca, name))
    assert [p.name for p in tmp_path.iterdir()] == ["pca.npz"]
    np.savez(tmp_path / "bad.npz", mean=np.zeros(3), components=np.zeros((4, 2)), explained_variance_ratio=np.zeros(2))
    with pytest.raises(DataError, match=r"bad\.npz: inconsistent PCA shapes mean \(3,\), components \(4, 2\)"):
        PCA.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "partial.npz", mean=np.zeros(3))
    with pytest.raises(DataError, match=r"lacks key\(s\) \['components', 'explained_variance_ratio'\]"):
        PCA.load(tmp_path / "partial.npz")


def test_pca_bad_input(pca):
    with pytest.raises(DataError, match="cube has 10 bands; PCA to 12 components needs 1 <= k <= 10"):
        fit_pca(np.ones((4, 4, 10)), 12)
    with pytest.raises(DataError, match=r"expects a cube \(H, W, B\), got shape \(16, 10\)"):
        fit_pca(np.ones((16, 10)), 3)
    with pytest.raises(DataError, match="cube has 5 bands but the PCA was fitted on 200"):
        pca.apply(np.ones((2, 2, 5)))


def test_normalize_modes_against_formulas():
    rng = np.random.default_rng(0)
    x = rng.normal(1000, 300, (6, 5, 12)).astype(np.float32)
    x[..., 3] = 7.0  # a constant channel
    flat = x.reshape(-1, 12).astype(np.float64)
    ben = (flat - np.array(BEN_MEAN)) / np.array(BEN_STD)
    np.testing.assert_allclose(np.asarray(normalize(x, "bigearthnet")).reshape(-1, 12), ben, rtol=1e-5, atol=1e-5)
    minmax = MinMaxScaler().fit_transform(flat)
    np.testing.assert_allclose(np.asarray(normalize(x, "minmax")).reshape(-1, 12), minmax, atol=1e-5)
    zscore = StandardScaler().fit_transform(flat)
    np.testing.assert_allclose(np.asarray(normalize(x, "zscore")).reshape(-1, 12), zscore, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(normalize(x, "none")), x)
    with pytest.raises(DataError, match="needs 12 channels .* got 5"):
        normalize(x[..., :5], "bigearthnet")
    with pytest.raises(DataError, match="unknown normalisation 'l2'"):
        normalize(x, "l2")


def test_prepare(cube, pca):
    out, fitted = prepare(cube, pca_components=12, normalization="bigearthnet")
    assert out.shape == (145, 145, 12) and out.dtype == np.float32
    np.testing.assert_array_equal(fitted.pca.components, pca.components)
    reused, same = prepare(cube, normalization="bigearthnet", pca=pca)
    assert same.pca is pca
    np.testing.assert_array_equal(np.asarray(reused), np.asarray(out))
    raw, none = prepare(cube[..., :12], pca_components=None, normalization="minmax")
    assert none.pca is None and raw.shape == (145, 145, 12) and float(raw.max()) == 1.0


def test_band_names_travel_with_the_preprocessing_and_a_bad_bands_file_is_named(cube, tmp_path):
    """Names saved as `bands.json` load back; none saved load as None; a file of another
    length than the bands is refused naming it and the count."""
    _, fitted = prepare(cube, pca_components=12, normalization="zscore")
    (tmp_path / "plain").mkdir()
    fitted.save(str(tmp_path / "plain"))
    assert Preprocessing.load(str(tmp_path / "plain")).band_names is None
    assert not (tmp_path / "plain" / "bands.json").exists()
    names = tuple(f"{400 + 10 * b} nm" for b in range(200))
    fitted.replace(band_names=names).save(str(tmp_path), "_seed3")
    assert Preprocessing.load(str(tmp_path), "_seed3").band_names == names
    (tmp_path / "bands.json").write_text('{"band_names": ["a", "b"]}')
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'bands.json'}: band_names is "
                                                  "not a list of 200 names")):
        Preprocessing.load(str(tmp_path), "_seed3")


@pytest.mark.parametrize("mode", NORMALIZATIONS)
def test_a_fitted_preprocessing_normalises_another_cube_with_the_scenes_statistics(
        cube, mode, tmp_path):
    """`prepare`'s fitted `Preprocessing`, saved and loaded, maps a new cube with the
    statistics of the scene it was fitted on (numpy oracle), bit-identical to the scene's own
    inputs pixel by pixel, and as any window of it."""
    out, fitted = prepare(cube, pca_components=12, normalization=mode)
    fitted.save(str(tmp_path))
    loaded = Preprocessing.load(str(tmp_path))
    assert loaded.normalization.mode == mode and loaded.bands == 200
    np.testing.assert_array_equal(np.asarray(loaded.apply(cube)), np.asarray(out))
    window = cube[40:71, 100:145]
    np.testing.assert_array_equal(np.asarray(loaded.apply(window)),
                                  np.asarray(out)[40:71, 100:145])
    new = cube[:20, :30].astype(np.float32) * 1.5  # brighter: outside the scene's range
    x = np.asarray(fitted.pca.apply(cube), np.float64).reshape(-1, 12)
    y = np.asarray(fitted.pca.apply(new), np.float64)
    want = {"bigearthnet": lambda: (y - np.asarray(BIGEARTHNET_MEAN)) / np.asarray(BIGEARTHNET_STD),
            "minmax": lambda: (y - x.min(0)) / (x.max(0) - x.min(0)),
            "zscore": lambda: (y - x.mean(0)) / x.std(0),
            "stretch": lambda: np.floor(np.clip((y - np.percentile(x, 2, axis=0)) / (
                np.percentile(x, 98, axis=0) - np.percentile(x, 2, axis=0) + 1e-6), 0, 1) * 255) / 255,
            "none": lambda: y}[mode]()
    got = np.asarray(loaded.apply(new))
    if mode == "stretch":  # 8-bit levels: a value on a level's edge may round either way
        assert np.mean(got != want.astype(np.float32)) < 1e-3
        assert np.abs(got - want).max() <= 1 / 255 + 1e-6
    else:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_a_normalisation_file_of_the_wrong_shape_is_refused(tmp_path):
    path = tmp_path / "normalization.npz"
    np.savez(path, mode=np.asarray("zscore"), shift=np.zeros(3), scale=np.ones(4),
             zero=np.zeros(3, bool))
    with pytest.raises(DataError, match=r"normalization.npz: normalisation of mode 'zscore' "
                                        r"with shapes shift \(3,\), scale \(4,\)"):
        Normalization.load(path)
    np.savez(path, mode=np.asarray("zscore"), shift=np.zeros(3))
    with pytest.raises(DataError, match=r"lacks key\(s\) \['scale', 'zero'\]"):
        Normalization.load(path)


def test_fit_on_given_pixels_only_against_sklearn(cube):
    """fit_on='train': PCA and normalisation statistics come from the given pixels, not the scene."""
    rng = np.random.default_rng(0)
    pixels = np.stack([rng.integers(0, 145, 500), rng.integers(0, 145, 500)], axis=1)
    spectra = cube[pixels[:, 0], pixels[:, 1]].astype(np.float64)
    ref = SklearnPCA(12, svd_solver="full").fit(spectra)
    pca = fit_pca(cube, 12, pixels)
    np.testing.assert_allclose(pca.explained_variance_ratio, ref.explained_variance_ratio_, rtol=1e-4)
    np.testing.assert_allclose(pca.mean, ref.mean_, rtol=1e-6)
    assert np.abs(pca.mean - fit_pca(cube, 12).mean).max() > 1  # not the scene's statistics

    out, _ = prepare(cube, pca_components=12, normalization="zscore", fit_pixels=pixels)
    signs = np.sign(np.sum(pca.components * ref.components_.T, axis=0))
    want = StandardScaler().fit(ref.transform(spectra) * signs).transform(
        ref.transform(cube.reshape(-1, 200).astype(np.float64)) * signs)
    np.testing.assert_allclose(np.asarray(out).reshape(-1, 12), want, atol=2e-3)
    minmax = np.asarray(normalize(out, "minmax", pixels))
    fitted = minmax[pixels[:, 0], pixels[:, 1]]
    np.testing.assert_allclose(fitted.min(0), 0, atol=1e-6)
    np.testing.assert_allclose(fitted.max(0), 1, atol=1e-6)
    assert minmax.min() < -1e-3 or minmax.max() > 1 + 1e-3  # the other pixels are not squeezed in
    with pytest.raises(DataError, match=r"more than 12 pixels to fit on, got 5"):
        fit_pca(cube, 12, pixels[:5])
    with pytest.raises(DataError, match=r"\(N, 2\) \(row, col\), got shape \(500,\)"):
        fit_pca(cube, 12, pixels[:, 0])


def _official_stretch(image: np.ndarray) -> np.ndarray:
    """MambaHSI's ImageStretching then ToTensor's / 255, written out in numpy from its source."""
    bands = []
    for i in range(image.shape[2]):
        band = image[:, :, i]
        low, high = np.percentile(band, 2), np.percentile(band, 98)
        bands.append((band - low) / (high - low + 1e-6))
    return (np.clip(np.stack(bands, axis=-1), 0, 1) * 255).astype(np.uint8) / 255.0


def test_stretch_is_mambahsi_official_input_on_the_real_scene(cube):
    part = cube[:40].astype(np.float64)  # the raw Indian Pines bands (integers)
    ours = np.asarray(normalize(part, "stretch"))
    official = _official_stretch(part)
    np.testing.assert_allclose(ours, official, atol=1e-6)  # the same 8-bit level everywhere
    assert 0.015 < np.mean(official == 0) < 0.03 and 0.015 < np.mean(official == 1) < 0.03
