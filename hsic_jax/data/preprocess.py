"""Spectral preprocessing: PCA to k components, then normalisation of each channel.

The paper reduces every scene to 12 PCA components (the backbone was pre-trained on 12 Sentinel-2
bands) and normalises them with BigEarthNet's 12-band statistics (Indian Pines, Pavia University,
Houston 2013, Botswana) or with min-max (WHU-Hi-LongKou). PCA and the normalisation statistics are
fitted on all pixels of the scene, labelled or not (no labels are used; the paper's and the field's
practice, `data.fit_on = 'scene'`), or on given pixels only, e.g. the training pixels
(`fit_on = 'train'`), so that nothing about the test pixels' spectra shapes the inputs.
"""

from __future__ import annotations

import json
import os

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from hsic_jax.data.io import DataError, atomic_write, write_json

# BigEarthNet-S2 12-band statistics used by SpectralGPT's fine-tuning (bands B1, B2, B3, B4, B5, B6,
# B7, B8, B8A, B9, B11, B12), see docs/spectralgpt.md section 3.
BIGEARTHNET_MEAN = (
    1370.19151926, 1184.3824625, 1120.77120066, 1136.26026392, 1263.73947144, 1645.40315151,
    1846.87040806, 1762.59530783, 1972.62420416, 582.72633433, 1732.16362238, 1247.91870117,
)
BIGEARTHNET_STD = (
    633.15169573, 650.2842772, 712.12507725, 965.23119807, 948.9819932, 1108.06650639,
    1258.36394548, 1233.1492281, 1364.38688993, 472.37967789, 1310.36996126, 1087.6020813,
)
BANDS_FILE = "bands.json"  # a run's band names, `Preprocessing.save`
NORMALIZATIONS = ("bigearthnet", "minmax", "zscore", "stretch", "none")

STRETCH_PERCENTILES = (2.0, 98.0)  # MambaHSI's ImageStretching


@flax.struct.dataclass
class PCA:
    """A fitted PCA (a pytree of arrays).

    Attributes:
      mean: (B,) per-band mean of the fitted cube.
      components: (B, k) principal axes as columns, by decreasing variance; each column's entry of
        largest magnitude is positive (deterministic signs).
      explained_variance_ratio: (k,) each component's share of the total variance of the B bands.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray

    def apply(self, cube) -> jax.Array:
        """Projects a (H, W, B) cube onto the components: (H, W, k) float32, (x - mean) @ components."""
        if cube.shape[-1] != self.mean.shape[0]:
            raise DataError(f"cube has {cube.shape[-1]} bands but the PCA was fitted on {self.mean.shape[0]}")
        return _project(jnp.asarray(cube, jnp.float32), jnp.asarray(self.mean), jnp.asarray(self.components))

    def save(self, path: str | os.PathLike) -> None:
        """Writes the PCA as .npz (atomically)."""
        arrays = {k: np.asarray(getattr(self, k)) for k in ("mean", "components", "explained_variance_ratio")}
        atomic_write(path, lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike) -> PCA:
        """Reads a PCA written by `save`, checking its keys and shapes."""
        arrays = _read_npz(path, ("mean", "components", "explained_variance_ratio"), "PCA")
        mean, comps, ratio = arrays["mean"], arrays["components"], arrays["explained_variance_ratio"]
        if mean.ndim != 1 or comps.ndim != 2 or comps.shape[0] != mean.shape[0] or ratio.shape != comps.shape[1:]:
            raise DataError(
                f"{os.fspath(path)}: inconsistent PCA shapes mean {mean.shape}, components {comps.shape}, "
                f"explained_variance_ratio {ratio.shape}; expected (B,), (B, k), (k,)"
            )
        return cls(mean, comps, ratio)


def _read_npz(path: str | os.PathLike, keys: tuple[str, ...], what: str) -> dict:
    """`{key: array}` of a .npz file holding at least `keys` (a `what` file)."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise DataError(f"{path}: not a readable .npz file ({e})") from e
    missing = set(keys) - set(arrays)
    if missing:
        raise DataError(f"{path}: {what} file lacks key(s) {sorted(missing)}")
    return arrays


@jax.jit
def _project(cube: jax.Array, mean: jax.Array, components: jax.Array) -> jax.Array:
    return jnp.matmul(cube - mean.astype(jnp.float32), components.astype(jnp.float32),
                      precision=jax.lax.Precision.HIGHEST)


def fit_pca(cube, k: int = 12, pixels=None) -> PCA:
    """Fits a PCA with k components to the spectra of a (H, W, B) cube: of all H * W pixels, or of
    the (N, 2) (row, col) `pixels` only.

    The fit is an eigen-decomposition of the (B, B) covariance, done once on the host in float64 so
    that the fitted transform is precise and identical whatever accelerator the run uses; applying
    it (`PCA.apply`) is a jitted matmul on the device.
    """
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise DataError(f"PCA expects a cube (H, W, B), got shape {cube.shape}")
    b = cube.shape[-1]
    x = _spectra(cube, pixels)
    if not 1 <= k <= b:
        raise DataError(f"cube has {b} bands; PCA to {k} components needs 1 <= k <= {b}")
    if len(x) <= k:
        raise DataError(f"PCA to {k} components needs more than {k} pixels to fit on, got {len(x)}")
    mean = x.mean(axis=0, dtype=np.float64)
    cov = np.zeros((b, b))
    for start in range(0, len(x), 65536):  # bounded memory: (65536, B) float64 at a time
        chunk = x[start : start + 65536].astype(np.float64) - mean
        cov += chunk.T @ chunk
    cov /= len(x) - 1
    eigenvalues, eigenvectors = np.linalg.eigh(cov)  # ascending
    eigenvalues, eigenvectors = np.clip(eigenvalues[::-1], 0, None), eigenvectors[:, ::-1]
    components = eigenvectors[:, :k]
    largest = np.abs(components).argmax(axis=0)
    components = components * np.sign(components[largest, np.arange(k)])
    ratio = eigenvalues[:k] / eigenvalues.sum()
    return PCA(mean.astype(np.float32), components.astype(np.float32), ratio.astype(np.float32))


def _spectra(cube, pixels) -> np.ndarray:
    """(N, B) spectra of the (N, 2) (row, col) `pixels` of a (H, W, B) cube, or of all its pixels."""
    if pixels is None:
        return np.asarray(cube).reshape(-1, cube.shape[-1])
    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.shape[1] != 2:
        raise DataError(f"pixels to fit on must be (N, 2) (row, col), got shape {pixels.shape}")
    return np.asarray(cube)[pixels[:, 0], pixels[:, 1]]


def normalize(cube, mode: str, pixels=None) -> jax.Array:
    """Normalises each channel of a (H, W, C) cube; returns (H, W, C) float32.

    Modes (statistics per channel c over all H * W pixels, or over the (N, 2) (row, col) `pixels`):
      'bigearthnet': (x_c - m_c) / s_c with BigEarthNet-S2's fixed mean m and std s of Sentinel-2
        band c (C must be 12). On PCA components this is a fixed affine map per channel, the paper's
        choice: component c (mean 0 over the scene, variance lambda_c) becomes a channel of mean
        -m_c / s_c and std sqrt(lambda_c) / s_c. It neither centres nor whitens the components; it
        only puts them on the numeric scale of standardised Sentinel-2 reflectances (x 10^4).
      'minmax': (x_c - min_c) / (max_c - min_c), in [0, 1]; a constant channel becomes 0.
      'zscore': (x_c - mean_c) / std_c (population std); a constant channel becomes 0.
      'stretch': the official MambaHSI input (`utils/HSICommonUtils.ImageStretching`, then
        `ToTensor`): (x_c - p2_c) / (p98_c - p2_c + 1e-6) with the 2nd and 98th percentiles
        (linear interpolation, numpy's default), clipped to [0, 1], quantised to 8 bits by
        truncation and divided by 255.
      'none': unchanged.

    The same as `fit_normalization(cube, mode, pixels).apply(cube)`.
    """
    return fit_normalization(cube, mode, pixels).apply(cube)


@flax.struct.dataclass
class Normalization:
    """A fitted per-channel normalisation (`normalize`'s modes; a pytree of arrays), so that the
    statistics of a run's scene normalise any other cube: `apply(x)` is
    `(x - shift) / scale`, 0 on the channels marked `zero`, and for 'stretch' clipped to [0, 1]
    and quantised to 8 bits.

    Attributes:
      mode: one of `NORMALIZATIONS` (static).
      shift: (C,) subtracted (float64 for 'stretch', float32 otherwise).
      scale: (C,) divided by (never 0).
      zero: (C,) bool, channels set to 0 ('zscore' of a constant channel).
    """

    shift: np.ndarray
    scale: np.ndarray
    zero: np.ndarray
    mode: str = flax.struct.field(pytree_node=False, default="none")

    def apply(self, cube) -> jax.Array:
        """The (H, W, C) cube normalised: (H, W, C) float32."""
        if cube.shape[-1] != self.shift.shape[0]:
            raise DataError(f"cube has {cube.shape[-1]} channels but the normalisation was "
                            f"fitted on {self.shift.shape[0]}")
        if self.mode == "stretch":
            with jax.enable_x64(True):
                return _apply_stretch(jnp.asarray(cube, jnp.float64), jnp.asarray(self.shift),
                                      jnp.asarray(self.scale)).astype(jnp.float32)
        return _apply(jnp.asarray(cube, jnp.float32), jnp.asarray(self.shift),
                      jnp.asarray(self.scale), jnp.asarray(self.zero))

    def save(self, path: str | os.PathLike) -> None:
        """Writes the normalisation as .npz (atomically)."""
        arrays = {"mode": np.asarray(self.mode), "shift": np.asarray(self.shift),
                  "scale": np.asarray(self.scale), "zero": np.asarray(self.zero)}
        atomic_write(path, lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Normalization:
        """Reads a normalisation written by `save`, checking its keys and shapes."""
        arrays = _read_npz(path, ("mode", "shift", "scale", "zero"), "normalisation")
        mode, shift = str(arrays["mode"]), arrays["shift"]
        if mode not in NORMALIZATIONS or shift.ndim != 1 or any(
                arrays[k].shape != shift.shape for k in ("scale", "zero")):
            raise DataError(f"{os.fspath(path)}: normalisation of mode {mode!r} with shapes "
                            f"shift {shift.shape}, scale {arrays['scale'].shape}, zero "
                            f"{arrays['zero'].shape}; expected a mode of {NORMALIZATIONS} and "
                            "three (C,) arrays")
        return cls(shift, arrays["scale"], arrays["zero"].astype(bool), mode)


def fit_normalization(cube, mode: str, pixels=None) -> Normalization:
    """The statistics of `normalize(cube, mode, pixels)`, fitted on the (H, W, C) `cube`'s
    pixels (all, or the (N, 2) (row, col) `pixels`)."""
    if mode not in NORMALIZATIONS:
        raise DataError(f"unknown normalisation {mode!r}; expected one of {NORMALIZATIONS}")
    if mode == "bigearthnet" and cube.shape[-1] != len(BIGEARTHNET_MEAN):
        raise DataError(f"BigEarthNet standardisation needs 12 channels (e.g. PCA to 12), got {cube.shape[-1]}")
    pixels = None if pixels is None else np.asarray(pixels)
    if mode == "stretch":
        with jax.enable_x64(True):
            shift, scale = _fit_stretch(jnp.asarray(cube, jnp.float64), pixels)
            return Normalization(np.asarray(shift), np.asarray(scale),
                                 np.zeros(shift.shape, bool), mode)
    shift, scale, zero = _fit(jnp.asarray(cube, jnp.float32), pixels, mode)
    return Normalization(np.asarray(shift), np.asarray(scale), np.asarray(zero), mode)


def _sample(cube: jax.Array, pixels: jax.Array | None) -> jax.Array:
    """(N, C) the spectra of the (N, 2) `pixels` of a (H, W, C) cube, or of all its pixels."""
    return cube.reshape(-1, cube.shape[-1]) if pixels is None else cube[pixels[:, 0], pixels[:, 1]]


@jax.jit(static_argnames="mode")
def _fit(cube: jax.Array, pixels: jax.Array | None, mode: str):
    """`(shift, scale, zero)` (C,) of `mode` from the `pixels` (N, 2) of `cube` (H, W, C)
    (None: every pixel)."""
    sample = _sample(cube, pixels)
    channels = cube.shape[-1]
    never = jnp.zeros(channels, bool)
    if mode == "bigearthnet":
        return (jnp.asarray(BIGEARTHNET_MEAN, jnp.float32),
                jnp.asarray(BIGEARTHNET_STD, jnp.float32), never)
    if mode == "minmax":
        low, high = sample.min(axis=0), sample.max(axis=0)
        return low, jnp.where(high > low, high - low, 1.0), never
    if mode == "zscore":  # a constant channel (max == min) gives exactly 0, not rounding noise / tiny std
        std, constant = sample.std(axis=0), sample.max(axis=0) == sample.min(axis=0)
        return sample.mean(axis=0), jnp.where(constant, 1.0, std), constant
    return jnp.zeros(channels, jnp.float32), jnp.ones(channels, jnp.float32), never


@jax.jit
def _apply(cube: jax.Array, shift: jax.Array, scale: jax.Array, zero: jax.Array) -> jax.Array:
    return jnp.where(zero, 0.0, (cube - shift) / scale)


@jax.jit
def _fit_stretch(cube: jax.Array, pixels: jax.Array | None):
    """`(shift, scale)` (C,) float64 of 'stretch': the 2nd percentile and the 2nd-to-98th
    range + 1e-6 of the `pixels` (N, 2) of `cube` (H, W, C) (None: every pixel), in float64
    as the official numpy code, so that the 8-bit levels are the same."""
    low, high = jnp.percentile(_sample(cube, pixels), jnp.asarray(STRETCH_PERCENTILES), axis=0)
    return low, high - low + 1e-6


@jax.jit
def _apply_stretch(cube: jax.Array, shift: jax.Array, scale: jax.Array) -> jax.Array:
    stretched = jnp.clip((cube - shift) / scale, 0.0, 1.0)
    return jnp.floor(stretched * 255.0) / 255.0


@flax.struct.dataclass
class Preprocessing:
    """What turns a scene's spectra into a model's input channels, fitted once: the PCA (None:
    the bands as they are) and the normalisation; and the names of the bands it takes, when the
    scene's file named them (None: known by count only)."""

    pca: PCA | None
    normalization: Normalization
    band_names: tuple[str, ...] | None = flax.struct.field(pytree_node=False, default=None)

    def apply(self, cube) -> jax.Array:
        """(H, W, B) spectra -> (H, W, C) float32 model inputs, pixel by pixel."""
        return self.normalization.apply(jnp.asarray(cube, jnp.float32) if self.pca is None
                                        else self.pca.apply(cube))

    @property
    def bands(self) -> int:
        """B, the bands of the spectra it takes."""
        return (self.normalization.shift if self.pca is None else self.pca.mean).shape[0]

    @property
    def channels(self) -> int:
        """C, the model input's channels it gives."""
        return self.normalization.shift.shape[0]

    def save(self, workdir: str, suffix: str = "") -> None:
        """`pca{suffix}.npz` (with a PCA) and `normalization{suffix}.npz` in `workdir`, and
        `bands.json` (the band names, the same for every seed) when there are names."""
        if self.pca is not None:
            self.pca.save(os.path.join(workdir, f"pca{suffix}.npz"))
        self.normalization.save(os.path.join(workdir, f"normalization{suffix}.npz"))
        if self.band_names is not None:
            write_json(os.path.join(workdir, BANDS_FILE), {"band_names": list(self.band_names)})

    @classmethod
    def load(cls, workdir: str, suffix: str = "") -> Preprocessing:
        """What `save` wrote (a run without `pca{suffix}.npz` had no PCA, one without
        `bands.json` no band names)."""
        pca = os.path.join(workdir, f"pca{suffix}.npz")
        fitted = cls(PCA.load(pca) if os.path.exists(pca) else None,
                     Normalization.load(os.path.join(workdir, f"normalization{suffix}.npz")))
        return fitted.replace(band_names=_read_band_names(os.path.join(workdir, BANDS_FILE),
                                                          fitted.bands))


def _read_band_names(path: str, bands: int) -> tuple[str, ...] | None:
    """The B names of a `bands.json` (None when there is no such file)."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            names = json.load(f)["band_names"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: not a bands file ({e!r}); expected "
                        "{\"band_names\": [...]}") from e
    if not isinstance(names, list) or len(names) != bands or not all(
            isinstance(n, str) for n in names):
        raise DataError(f"{path}: band_names is not a list of {bands} names (the preprocessing "
                        f"takes {bands} bands)")
    return tuple(names)


def prepare(cube, *, pca_components: int | None = 12, normalization: str = "bigearthnet",
            pca: PCA | None = None, fit_pixels=None) -> tuple[jax.Array, Preprocessing]:
    """PCA (fitted here, or the given `pca`) then normalisation of a (H, W, B) cube.

    Args:
      cube: (H, W, B) spectra.
      pca_components: k; None keeps the B bands (no PCA).
      normalization: a mode of `normalize`.
      pca: a fitted PCA to apply instead of fitting one (e.g. loaded from a run).
      fit_pixels: (N, 2) (row, col) pixels to fit the PCA and the normalisation statistics on;
        None fits them on every pixel of the scene.

    Returns:
      ((H, W, k) float32 on the device, the fitted `Preprocessing`).
    """
    if pca is None and pca_components is not None:
        pca = fit_pca(cube, pca_components, fit_pixels)
    reduced = jnp.asarray(cube, jnp.float32) if pca is None else pca.apply(cube)
    fitted = fit_normalization(reduced, normalization, fit_pixels)
    return fitted.apply(reduced), Preprocessing(pca, fitted)
