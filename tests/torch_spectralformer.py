"""An independent PyTorch implementation of SpectralFormer (the test oracle).

Written from the paper (Hong et al., TGRS 2021) and the semantics of the official
`vit_pytorch.ViT` and `demo.py`, with the official module layout so that `state_dict()` has
the official keys and shapes (`pos_embedding`, `patch_to_embedding.*`, `cls_token`,
`transformer.layers.{i}.{0,1}.fn.{norm,fn}.*`, `transformer.skipcat.{j}.*`, `mlp_head.{0,1}.*`;
the skipcat convolutions exist in both modes, as in the official module). The model takes
what the official demo feeds it, `(N, B, band_patches·p²)`; `official_tokens` builds that from
`(N, p, p, B)` neighbourhoods as the demo's `gain_neighborhood_band` does, by slice copies on
the host.
"""

import numpy as np
import torch
from torch import nn


class Residual(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return x + self.fn(x)


class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm, self.fn = nn.LayerNorm(dim), fn

    def forward(self, x):
        return self.fn(self.norm(x))


class Attention(nn.Module):
    def __init__(self, dim, heads, dim_head, dropout):
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim), nn.Dropout(dropout))

    def forward(self, x):
        n, s, _ = x.shape
        q, k, v = (t.reshape(n, s, self.heads, self.dim_head).permute(0, 2, 1, 3)
                   for t in self.to_qkv(x).chunk(3, dim=-1))
        weights = torch.softmax(q @ k.transpose(-1, -2) / self.dim_head ** 0.5, dim=-1)
        return self.to_out((weights @ v).permute(0, 2, 1, 3).reshape(n, s, -1))


class FeedForward(nn.Module):
    def __init__(self, dim, hidden, dropout):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x):
        return self.net(x)


class Transformer(nn.Module):
    def __init__(self, dim, depth, heads, dim_head, mlp_dim, dropout, tokens, mode):
        super().__init__()
        self.mode = mode
        self.layers = nn.ModuleList(nn.ModuleList([
            Residual(PreNorm(dim, Attention(dim, heads, dim_head, dropout))),
            Residual(PreNorm(dim, FeedForward(dim, mlp_dim, dropout)))]) for _ in range(depth))
        self.skipcat = nn.ModuleList(nn.Conv2d(tokens, tokens, (1, 2)) for _ in range(depth - 2))

    def forward(self, x):
        history = []
        for i, (attn, ff) in enumerate(self.layers):
            history.append(x)
            if self.mode == "CAF" and i >= 2:
                # tokens as channels, (dim, 2) as the image: this layer's input beside the input
                # of two layers back
                x = self.skipcat[i - 2](torch.stack([x, history[i - 2]], dim=3)).squeeze(3)
            x = ff(attn(x))
        return x


class ViT(nn.Module):
    """The official classifier: `(N, bands, band_patches·patches²)` → logits `(N, C)`."""

    def __init__(self, *, patches, band_patches, bands, num_classes, dim=64, depth=5, heads=4,
                 dim_head=16, mlp_dim=8, dropout=0.1, emb_dropout=0.1, mode="CAF"):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.randn(1, bands + 1, dim))
        self.patch_to_embedding = nn.Linear(patches * patches * band_patches, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.dropout = nn.Dropout(emb_dropout)
        self.transformer = Transformer(dim, depth, heads, dim_head, mlp_dim, dropout, bands + 1, mode)
        self.mlp_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))

    def forward(self, tokens):
        x = self.patch_to_embedding(tokens)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embedding
        x = self.transformer(self.dropout(x))
        return self.mlp_head(x[:, 0])


def official_tokens(x: np.ndarray, band_patches: int) -> np.ndarray:
    """`(N, p, p, B)` → `(N, B, band_patches·p²)` as the official demo builds its input.

    Slot g of a token (p² values each) holds band j's neighbour of offset o_g, wrapping around
    the spectrum; the demo fills the slots left of the centre outwards when patch-wise (p > 1),
    inwards when pixel-wise, the slots right of it outwards.
    """
    n, p, _, bands = x.shape
    pix = p * p
    flat = x.reshape(n, pix, bands)
    half = band_patches // 2
    out = np.zeros((n, band_patches * pix, bands), dtype=x.dtype)
    out[:, half * pix:(half + 1) * pix] = flat
    for i in range(half):
        shift = i + 1 if p > 1 else half - i  # how far below band j slot i looks
        rows = slice(i * pix, (i + 1) * pix)
        out[:, rows, shift:] = flat[:, :, :bands - shift]
        out[:, rows, :shift] = flat[:, :, bands - shift:]
        shift = i + 1  # slot half + 1 + i looks this far above band j
        rows = slice((half + 1 + i) * pix, (half + 2 + i) * pix)
        out[:, rows, :bands - shift] = flat[:, :, shift:]
        out[:, rows, bands - shift:] = flat[:, :, :shift]
    return out.transpose(0, 2, 1)


def randomized(model: nn.Module, seed: int) -> nn.Module:
    """Every parameter random (norm scales around 1), so that no layer is a no-op; eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            base = 1.0 if name.endswith("norm.weight") or name == "mlp_head.0.weight" else 0.0
            scale = 0.3 if p.ndim > 1 else 0.1
            p.copy_(base + scale * torch.randn(p.shape, generator=g))
    return model.eval()


def logits(model: nn.Module, x: np.ndarray, band_patches: int) -> np.ndarray:
    """The oracle's logits for neighbourhoods `x` `(N, p, p, B)`."""
    with torch.no_grad():
        return model(torch.from_numpy(official_tokens(x, band_patches))).numpy()
