"""MambaHSI (Li et al., TGRS 2024; official `model/MambaHSI.py`) in Flax linen: a whole-image model.

Unlike the patch families, MambaHSI classifies every pixel of a scene in one forward:
`(N, H, W, B)` float32 → per-pixel logits `(N, H, W, C)`, for any H, W ≥ 4 (`TASK = 'scene'`).
The official network, in the channels-last layout:

  stem     `patch_embedding`: a 1 × 1 convolution B → `hidden_dim` (with bias), GroupNorm
           (`group_num` groups, eps 1e-5), SiLU;
  blocks   three `BothMamba` blocks with a 2 × 2 average pooling (stride 2, odd rows and
           columns dropped, torch's `AvgPool2d(2, 2)`) after the first and the second. A
           BothMamba block runs, on its input x,
             SpaMamba: every pixel of the image a token of `hidden_dim` channels, the pixels in
               row-major order one sequence through a Mamba layer, then GroupNorm, SiLU, + x;
             SpeMamba: every pixel on its own, its `hidden_dim` channels cut into `token_num`
               tokens of `hidden_dim / token_num` channels, one sequence through another Mamba
               layer, then GroupNorm, SiLU, + x;
           and returns `w0 · spa + w1 · spe + x`, `w = softmax(weights)` of a learnt pair
           (`use_att`; initialised to (1/2, 1/2); without it, spa + spe + x). The official
           `mamba_type` 'spa' and 'spe' (the paper's ablations) have SpaMamba or SpeMamba
           blocks alone; `use_residual=False` drops every `+ x`;
  head     `cls_head`: a 1 × 1 convolution `hidden_dim` → 128, GroupNorm, SiLU, and the
           classifier, a 1 × 1 convolution 128 → C, at a quarter of the input's resolution;
  upsample the logits resized to (H, W) bilinearly with aligned corners, as the official
           training and test code does (`utils/Loss.py`: `resize(..., mode='bilinear',
           align_corners=True)` before the loss and before the argmax). The official
           module returns the quarter-resolution logits; this one includes that resize, so
           its output is per pixel.

The Mamba layer is `mamba_ssm`'s `Mamba` (state-spaces/mamba, `modules/mamba_simple.py`;
d_state 16, d_conv 4, expand 2 as MambaHSI builds it, dt_rank ⌈d_model / 16⌉): `in_proj`
(no bias) to x and z of `expand · d_model` channels each; x through a depthwise causal
convolution (`conv1d`, kernel `d_conv`, with bias) and SiLU; `x_proj` (no bias) to dt
(`dt_rank`), B and C (`d_state` each); dt through `dt_proj` (with bias) and softplus; the
selective scan h_t = exp(dt_t · A) h_{t-1} + dt_t · B_t · x_t, y_t = C_t · h_t + D · x_t with
A = -exp(`A_log`); y · SiLU(z); `out_proj` (no bias). The scan is a `jax.lax.associative_scan`
over the sequence (`selective_scan`), which holds every step's `(d_inner, d_state)` state at
once, 16 KB a pixel per array at hidden_dim 128 in each branch of the first block (a training
step on Indian Pines' 21,025 pixels: 12 GB and 17 s on 2 CPU cores). `scan_chunk` > 0 bounds
the steps scanned at once: chunks of the spatial branch's one long sequence, the state carried
from chunk to chunk by a `jax.lax.scan`, and groups of the spectral branch's short sequences by
a `jax.lax.map`, each piece rematerialised in the backward pass. The same result up to float
rounding in bounded memory, for the larger scenes (Pavia University has 10 times Indian
Pines' pixels, Houston 2013 32 times), and faster: small pieces keep their states in cache
(Indian Pines' training step on 2 CPU cores: 256 at a time 2.7 GB and 12.5 s, 4096 at a time
4.7 GB and 21.8 s).

The batch. The official SpaMamba flattens with `view(1, -1, C)`: every image of a batch
joins ONE sequence (image 2's first pixel follows image 1's last), so the images of a batch
are not independent. This port does the same, so use batch 1 (the official script's, and the
training loop's) for a per-image result. SpeMamba and everything else is per pixel or per image.

Inputs, as the official `train_MambaHSI.py` builds them: the scene's raw bands (no PCA), each
band stretched between its 2nd and 98th percentiles, clipped to [0, 1] and quantised to 8 bits
(`ImageStretching`, then `ToTensor`'s / 255: `data.normalize='stretch'`, as the configs set),
the whole scene in one forward.

Parameters: `{'backbone': {embed, embed_norm, block_i/{spa/{mamba/{in_proj, conv1d, x_proj,
dt_proj, A_log, D, out_proj}, norm}, spe/{...}, weights}, cls_proj, cls_norm}, 'head'}`, `head`
the last 1 × 1 convolution (so that a linear probe trains the classifier alone). `ADAPTABLE`
names the Mamba layers of each branch (`spa_in_proj`, …, `spe_out_proj`: the two branches'
layers have different widths, so they are separate targets; KronA needs one shape per target)
and the two 1 × 1 convolutions before and after the blocks (`embed`, `cls_proj`).
"""

import math
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hsic_jax.adapters.tuned import Target
from hsic_jax.models.common import architecture_mismatch, config_fix, dense_dot_general, module_fields

DISPLAY_NAME = "MambaHSI"  # in reports and tables
REPORT_ORDER = 2  # its place among the families in reports (the paper's columns)
TASK = "scene"  # a whole image in, a logit per pixel out (the patch families: 'patch')

MAMBA_TYPES = ("both", "spa", "spe")
GN_EPS = 1e-5  # torch.nn.GroupNorm's default, as the official code uses
HEAD_DIM = 128  # the official cls_head's width, fixed whatever hidden_dim
NUM_BLOCKS = 3
MIN_SIZE = 4  # two 2 × 2 poolings leave at least one pixel

_BRANCH_LAYERS = ("in_proj", "x_proj", "dt_proj", "out_proj")
ADAPTABLE = {
    **{f"{branch}_{layer}": Target(rf"(block_\d+)/{branch}/mamba/{layer}")
       for branch in ("spa", "spe") for layer in _BRANCH_LAYERS},
    "embed": Target(r"(embed)"),
    "cls_proj": Target(r"(cls_proj)"),
}


def _random_uniform(key, shape, dtype=jnp.float32, low=0.0, high=1.0):
    """U(low, high) of `shape`: the first values of a draw whose length is a power of two, so
    that initialising eagerly (as the training state is built) compiles one random kernel per
    size class rather than one per parameter shape; i.i.d. uniform all the same."""
    size = int(np.prod(shape, dtype=np.int64))
    draw = jax.random.uniform(key, (1 << max(size - 1, 0).bit_length(),), dtype, low, high)
    return draw[:size].reshape(shape)


def _uniform(bound: float):
    """torch's Linear / Conv initialisation: U(±bound), bound = 1/√fan_in, weights and biases."""
    return lambda key, shape, dtype=jnp.float32: _random_uniform(key, shape, dtype, -bound, bound)


def _dense(features: int, fan_in: int, name: str, dtype, use_bias: bool = True) -> nn.Dense:
    """A torch-initialised Linear (or 1 × 1 convolution) as a Flax Dense."""
    bound = 1.0 / math.sqrt(fan_in)
    return nn.Dense(features, use_bias=use_bias, kernel_init=_uniform(bound),
                    bias_init=_uniform(bound), dtype=dtype, dot_general=dense_dot_general,
                    name=name)


def _group_norm(groups: int, name: str, dtype) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=groups, epsilon=GN_EPS, use_fast_variance=False, dtype=dtype,
                        name=name)


# ---------------------------------------------------------------- the selective scan

def _combine(left, right):
    """Compose two steps h ↦ a·h + b (left first): the associative operator of the scan."""
    a1, b1 = left
    a2, b2 = right
    return a1 * a2, a2 * b1 + b2


def _scan_states(delta, A, B, u, axis: int):
    """The states h `(…, L, Di, S)` of h_t = exp(δ_t A) h_{t-1} + δ_t u_t B_t, h_0 = 0, and the
    cumulative decays (a product over the steps), by an associative scan along `axis`."""
    a = jnp.exp(delta[..., None] * A)  # (N, L, Di, S)
    b = (delta * u)[..., None] * B[..., None, :]
    return jax.lax.associative_scan(_combine, (a, b), axis=axis)


def _outputs(u, delta, A, B, C):
    """C_t · h_t `(N, L, Di)` of the whole sequences, in one associative scan."""
    _, h = _scan_states(delta, A, B, u, axis=1)
    return jnp.sum(h * C[:, :, None, :], axis=-1)


def _pad_axis(t, axis: int, size: int):
    """`t` zero-padded at the end of `axis` to `size` (zero δ: decay 1, input 0, so padded
    steps and rows change nothing before them)."""
    pad = [(0, 0)] * t.ndim
    pad[axis] = (0, size - t.shape[axis])
    return jnp.pad(t, pad)


def selective_scan(u, delta, A, B, C, D, z, chunk: int = 0):
    """Mamba's selective scan (`mamba_ssm`'s `selective_scan_ref` with softplus already applied
    to `delta` and its bias added), over axis 1 with `jax.lax.associative_scan`.

    u, delta, z: `(N, L, Di)`; A: `(Di, S)`; B, C: `(N, L, S)`; D: `(Di,)`.
    Returns y `(N, L, Di)`: (C_t · h_t + D u_t) · SiLU(z_t).

    `chunk` > 0 bounds the steps scanned at once, and so the `(steps, Di, S)` states held in
    memory, where N · L exceeds it: sequences longer than `chunk` are scanned `chunk` steps at a
    time, the state carried from chunk to chunk by a `jax.lax.scan` (the spatial branch: one
    long sequence); shorter ones `chunk // L` sequences at a time by a `jax.lax.map` (the
    spectral branch: many short ones). Each piece is rematerialised in the backward pass.
    """
    f32 = jnp.float32
    u, delta, B, C, z = (t.astype(f32) for t in (u, delta, B, C, z))
    A, D = A.astype(f32), D.astype(f32)
    n, length, d_inner = u.shape
    if chunk <= 0 or n * length <= chunk:
        y = _outputs(u, delta, A, B, C)
    elif length > chunk:
        chunks = -(-length // chunk)

        def split(t):  # (N, L, …) → (chunks, N, chunk, …)
            t = _pad_axis(t, 1, chunks * chunk)
            return jnp.moveaxis(t.reshape(n, chunks, chunk, *t.shape[2:]), 1, 0)

        @jax.checkpoint
        def step(h0, xs):
            u_c, delta_c, B_c, C_c = xs
            decay, h = _scan_states(delta_c, A, B_c, u_c, axis=1)
            h = h + decay * h0[:, None]
            return h[:, -1], jnp.sum(h * C_c[:, :, None, :], axis=-1)

        h0 = jnp.zeros((n, d_inner, A.shape[1]), f32)
        _, y = jax.lax.scan(step, h0, tuple(split(t) for t in (u, delta, B, C)))
        y = jnp.moveaxis(y, 0, 1).reshape(n, chunks * chunk, d_inner)[:, :length]
    else:
        rows = chunk // length
        groups = -(-n // rows)

        def split(t):  # (N, L, …) → (groups, rows, L, …)
            return _pad_axis(t, 0, groups * rows).reshape(groups, rows, *t.shape[1:])

        whole = jax.checkpoint(lambda xs: _outputs(xs[0], xs[1], A, xs[2], xs[3]))
        y = jax.lax.map(whole, tuple(split(t) for t in (u, delta, B, C)))
        y = y.reshape(groups * rows, length, d_inner)[:n]
    return (y + D * u) * nn.silu(z)


# ---------------------------------------------------------------- the Mamba layer

class Mamba(nn.Module):
    """`mamba_ssm.Mamba(d_model, d_state, d_conv, expand)`: `(N, L, d_model) -> (N, L, d_model)`."""

    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    scan_chunk: int = 0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        d_model = x.shape[-1]
        d_inner = self.expand * d_model
        dt_rank = math.ceil(d_model / 16)
        xz = _dense(2 * d_inner, d_model, "in_proj", self.dtype, use_bias=False)(x)
        u, z = jnp.split(xz, 2, axis=-1)
        u = nn.silu(CausalConv(self.d_conv, self.dtype, name="conv1d")(u))
        dbc = _dense(dt_rank + 2 * self.d_state, d_inner, "x_proj", self.dtype, use_bias=False)(u)
        dt, B, C = jnp.split(dbc, [dt_rank, dt_rank + self.d_state], axis=-1)
        dt_proj = nn.Dense(d_inner, kernel_init=_uniform(dt_rank ** -0.5),
                           bias_init=_dt_bias_init, dtype=self.dtype, name="dt_proj")
        delta = nn.softplus(dt_proj(dt).astype(jnp.float32))
        A_log = self.param("A_log", _a_log_init, (d_inner, self.d_state))
        D = self.param("D", nn.initializers.ones, (d_inner,))
        y = selective_scan(u, delta, -jnp.exp(A_log), B, C, D, z, self.scan_chunk)
        out_proj = _dense(d_model, d_inner, "out_proj", self.dtype, use_bias=False)
        return out_proj(y.astype(self.dtype))


class CausalConv(nn.Module):
    """Depthwise causal 1-D convolution, torch's `Conv1d(d, d, k, groups=d, padding=k - 1)` with
    the output cut to the input's length: y_t = bias + Σ_j kernel[j] · x_{t - (k-1) + j}.
    `kernel` `(k, 1, d)` (the layout of a depthwise `flax.linen.Conv`)."""

    width: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        d = x.shape[-1]
        bound = 1.0 / math.sqrt(self.width)  # torch's default: fan-in = width (1 channel/group)
        kernel = self.param("kernel", _uniform(bound), (self.width, 1, d)).astype(self.dtype)
        bias = self.param("bias", _uniform(bound), (d,)).astype(self.dtype)
        length = x.shape[1]
        padded = jnp.pad(x, [(0, 0), (self.width - 1, 0), (0, 0)])
        y = sum(padded[:, j:j + length] * kernel[j, 0] for j in range(self.width))
        return y + bias


def _a_log_init(key, shape, dtype=jnp.float32):
    """S4D-real: A_log[d, n] = log(n + 1)."""
    del key
    return jnp.broadcast_to(jnp.log(jnp.arange(1, shape[1] + 1, dtype=dtype)), shape)


def _dt_bias_init(key, shape, dtype=jnp.float32, dt_min=1e-3, dt_max=0.1, floor=1e-4):
    """softplus⁻¹ of dt drawn log-uniformly in [dt_min, dt_max] (mamba_ssm's dt_proj bias)."""
    dt = jnp.exp(_random_uniform(key, shape, dtype) * (math.log(dt_max) - math.log(dt_min))
                 + math.log(dt_min))
    dt = jnp.maximum(dt, floor)
    return dt + jnp.log(-jnp.expm1(-dt))


# ---------------------------------------------------------------- the MambaHSI blocks

class _Branch(nn.Module):
    """A block's branch, `(N, H, W, C) -> (N, H, W, C)`: Mamba over the branch's `sequences`
    of the input, GroupNorm, SiLU, + x."""

    group_num: int
    use_residual: bool
    mamba: Mapping
    dtype: Any

    def sequences(self, x):
        """`(N, H, W, C)` → the Mamba input `(S, L, d)`."""
        raise NotImplementedError

    @nn.compact
    def __call__(self, x):
        seq = self.sequences(x)
        y = Mamba(**self.mamba, dtype=self.dtype, name="mamba")(seq).reshape(x.shape)
        y = nn.silu(_group_norm(self.group_num, "norm", self.dtype)(y))
        return y + x if self.use_residual else y


class SpaMamba(_Branch):
    """Spatial branch: all pixels of the batch ONE sequence (the official `view(1, -1, C)`)."""

    def sequences(self, x):
        return x.reshape(1, -1, x.shape[-1])


class SpeMamba(_Branch):
    """Spectral branch: each pixel's C channels as `token_num` tokens of C / token_num."""

    token_num: int

    def sequences(self, x):
        n, h, w, c = x.shape
        return x.reshape(n * h * w, self.token_num, c // self.token_num)


class _BlockSettings(nn.Module):
    """What every block is built with (`Block`), and so what the `Encoder` that builds them
    takes."""

    mamba_type: str
    token_num: int
    group_num: int
    use_residual: bool
    use_att: bool
    mamba: Mapping


class Block(_BlockSettings):
    """One official block: `BothMamba` (spatial and spectral branches fused by the softmax of a
    learnt pair), or a SpaMamba or SpeMamba alone (`mamba_type`)."""

    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        branch = dict(group_num=self.group_num, use_residual=self.use_residual,
                      mamba=self.mamba, dtype=self.dtype)
        spa = lambda: SpaMamba(**branch, name="spa")(x)
        spe = lambda: SpeMamba(**branch, token_num=self.token_num, name="spe")(x)
        if self.mamba_type == "spa":
            return spa()
        if self.mamba_type == "spe":
            return spe()
        spa_x, spe_x = spa(), spe()
        if self.use_att:
            weights = self.param("weights", nn.initializers.constant(0.5), (2,))
            w = jax.nn.softmax(weights).astype(x.dtype)
            fused = spa_x * w[0] + spe_x * w[1]
        else:
            fused = spa_x + spe_x
        return fused + x if self.use_residual else fused


def avg_pool_2x2(x):
    """torch's `AvgPool2d(2, 2)`: 2 × 2 block means (an odd last row or column dropped)."""
    n, h, w, c = x.shape
    x = x[:, :2 * (h // 2), :2 * (w // 2)]
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _linear_weights(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each output row: the two input rows and the weight of the second, of torch's bilinear
    resize with `align_corners=True` (source = i · (in - 1) / (out - 1))."""
    scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    src = np.arange(out_size, dtype=np.float64) * scale
    lo = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    return lo, hi, (src - lo).astype(np.float32)


def resize_bilinear_aligned(x, height: int, width: int):
    """`(N, h, w, C) -> (N, height, width, C)`, torch's `F.interpolate(mode='bilinear',
    align_corners=True)`."""
    lo, hi, frac = _linear_weights(height, x.shape[1])
    frac = jnp.asarray(frac, x.dtype)[None, :, None, None]
    x = x[:, lo] * (1 - frac) + x[:, hi] * frac
    lo, hi, frac = _linear_weights(width, x.shape[2])
    frac = jnp.asarray(frac, x.dtype)[None, None, :, None]
    return x[:, :, lo] * (1 - frac) + x[:, :, hi] * frac


class Encoder(_BlockSettings):
    """Stem, the three blocks with their poolings, and `cls_head` up to its classifier:
    `(N, H, W, B) -> (N, ⌊⌊H/2⌋/2⌋, ⌊⌊W/2⌋/2⌋, 128)`."""

    bands: int
    hidden_dim: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = _dense(self.hidden_dim, self.bands, "embed", self.dtype)(x.astype(self.dtype))
        x = nn.silu(_group_norm(self.group_num, "embed_norm", self.dtype)(x))
        for i in range(NUM_BLOCKS):
            if i and not self.is_initializing():  # (initialising: one pixel, see MambaHSI)
                x = avg_pool_2x2(x)
            x = Block(self.mamba_type, self.token_num, self.group_num, self.use_residual,
                      self.use_att, self.mamba, self.dtype, name=f"block_{i}")(x)
        x = _dense(HEAD_DIM, self.hidden_dim, "cls_proj", self.dtype)(x)
        return nn.silu(_group_norm(self.group_num, "cls_norm", self.dtype)(x))


class MambaHSI(nn.Module):
    """MambaHSI classifier: a scene `(N, H, W, bands)` float32 → per-pixel logits `(N, H, W, C)`.

    Defaults are the official model (`MambaHSI(in_channels, hidden_dim=64, ...)`, which the
    official script builds with `hidden_dim=128`): token_num 4, group_num 4, both branches with
    the learnt fusion, residuals, and mamba_ssm's d_state 16, d_conv 4, expand 2. Batch 1: the
    spatial branch joins a batch's images into one sequence (module docstring).
    """

    num_classes: int
    bands: int = 200
    hidden_dim: int = 128
    token_num: int = 4
    group_num: int = 4
    mamba_type: str = "both"
    use_residual: bool = True
    use_att: bool = True
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    scan_chunk: int = 0
    dtype: Any = jnp.float32

    def setup(self):
        check_geometry(self.bands, self.hidden_dim, self.token_num, self.group_num,
                       self.mamba_type, self.d_state, self.d_conv, self.expand, self.scan_chunk)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The smallest `(H, W, bands)` scene, to initialise with (the parameters do not depend
        on H and W; any H, W ≥ 4 works)."""
        return MIN_SIZE, MIN_SIZE, self.bands

    @nn.compact
    def __call__(self, x, train: bool = False):
        del train  # no dropout: the same forward in training and evaluation
        check_input(x, self.bands)
        height, width = x.shape[1:3]
        if self.is_initializing():
            # The parameters do not depend on H and W: create them from one pixel, without the
            # poolings, so that initialising (eagerly, as the training state is built) runs the
            # layers on few and identical shapes. init_with_output's output is not the forward's.
            x = x[:, :1, :1]
        mamba = dict(d_state=self.d_state, d_conv=self.d_conv, expand=self.expand,
                     scan_chunk=self.scan_chunk)
        feats = Encoder(mamba_type=self.mamba_type, token_num=self.token_num,
                        group_num=self.group_num, use_residual=self.use_residual,
                        use_att=self.use_att, mamba=mamba, bands=self.bands,
                        hidden_dim=self.hidden_dim, dtype=self.dtype, name="backbone")(x)
        logits = _dense(self.num_classes, HEAD_DIM, "head", self.dtype)(feats)
        return resize_bilinear_aligned(logits.astype(jnp.float32), height, width)


def check_input(x, bands: int) -> None:
    """Refuse an input that is not `(N, H, W, bands)` with H, W ≥ 4."""
    if x.ndim != 4 or x.shape[-1] != bands or min(x.shape[1:3]) < MIN_SIZE:
        raise ValueError(f"MambaHSI input has shape {tuple(x.shape)}; expected (N, H, W, {bands}) "
                         f"= (N, H, W, bands) with H, W >= {MIN_SIZE} (a whole scene; two 2 x 2 "
                         "poolings)")


def check_geometry(bands, hidden_dim, token_num, group_num, mamba_type, d_state=16, d_conv=4,
                   expand=2, scan_chunk=0) -> None:
    """Raise a ValueError naming the value that does not fit the architecture."""
    for name, value in (("bands", bands), ("hidden_dim", hidden_dim), ("token_num", token_num),
                        ("group_num", group_num), ("d_state", d_state), ("d_conv", d_conv),
                        ("expand", expand)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} {value!r} must be an integer >= 1")
    if isinstance(scan_chunk, bool) or not isinstance(scan_chunk, (int, np.integer)) \
            or scan_chunk < 0:
        raise ValueError(f"scan_chunk {scan_chunk!r} must be an integer >= 0 (0: no chunks)")
    if mamba_type not in MAMBA_TYPES:
        raise ValueError(f"mamba_type {mamba_type!r} is not one of {MAMBA_TYPES}")
    if hidden_dim % group_num or HEAD_DIM % group_num:
        raise ValueError(f"group_num {group_num} must divide hidden_dim {hidden_dim} and the "
                         f"head's {HEAD_DIM} channels (GroupNorm)")
    if mamba_type != "spa" and hidden_dim % token_num:
        raise ValueError(f"token_num {token_num} must divide hidden_dim {hidden_dim} (the "
                         "official SpeMamba zero-pads the channels otherwise, and its residual "
                         "then fails)")


def model_from_config(cfg: Mapping) -> MambaHSI:
    """A `MambaHSI` from a mapping of its fields (as a converted checkpoint's manifest holds)."""
    return MambaHSI(**module_fields(cfg))


def build(model_cfg: Mapping, *, input_size: int, bands: int, num_classes: int) -> MambaHSI:
    """The classifier of `config.model` on scenes of `bands` bands (`input_size`, the patch
    families' input size, does not apply to a whole-image model and is ignored)."""
    del input_size
    return model_from_config({**model_cfg, "bands": bands, "num_classes": num_classes})


# Model fields a converted checkpoint fixes (its manifest records them).
ARCHITECTURE = ("bands", "hidden_dim", "token_num", "group_num", "mamba_type", "use_residual",
                "use_att", "d_state", "d_conv", "expand")


def pretrained_mismatch(converted: Mapping, module: MambaHSI) -> str | None:
    """How a checkpoint converted with the model fields `converted` differs from `module`, and
    the config fields that would make them agree; None when it fits."""
    return architecture_mismatch(converted, module, ARCHITECTURE, config_fix)
