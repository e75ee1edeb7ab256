"""Resampling of position-embedding grids, bit-compatible with PyTorch.

The official SpectralGPT checkpoints carry a 16×16 spatial grid (128 px / 8 px patches);
the paper's 32×32 input needs a 4×4 grid. DeiT and MAE resample such grids with
`torch.nn.functional.interpolate(mode='bicubic', align_corners=False)`: the cubic kernel
with a = -0.75 and no antialiasing. `jax.image.resize`'s 'bicubic-pytorch' method is that
kernel; its default 'bicubic' (a = -0.5, antialiased when shrinking) is not.
"""

import jax
import jax.numpy as jnp


def resample_grid(posemb: jax.Array, grid: int) -> jax.Array:
    """Resample a square grid of embeddings `(1, G·G, D) -> (1, grid·grid, D)`."""
    _, tokens, d = posemb.shape
    g = round(tokens**0.5)
    if g * g != tokens:
        raise ValueError(f"position embedding of {tokens} tokens is not a square grid")
    if g == grid:
        return posemb
    image = posemb.reshape(g, g, d).astype(jnp.float32)
    out = jax.image.resize(image, (grid, grid, d), method="bicubic-pytorch", antialias=False)
    return out.reshape(1, grid * grid, d).astype(posemb.dtype)


def resample_joint(posemb: jax.Array, groups: int, grid: int) -> jax.Array:
    """Resample each spectral group of a joint table `(1, T'·G·G, D) -> (1, T'·grid·grid, D)`."""
    _, tokens, d = posemb.shape
    if tokens % groups:
        raise ValueError(f"joint position embedding of {tokens} tokens does not split into "
                         f"{groups} spectral groups")
    per_group = posemb.reshape(groups, 1, tokens // groups, d)
    out = jax.vmap(lambda p: resample_grid(p, grid))(per_group)
    return out.reshape(1, groups * grid * grid, d)
