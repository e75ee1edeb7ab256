"""An independent PyTorch implementation of SpectralGPT's classification encoder (the test oracle).

It follows `models_vit_tensor.VisionTransformer` of the official repository (eval mode):
the same module names, so its `state_dict()` has exactly the keys and shapes of
spectralgpt.md §2.2, and the same forward (Conv3d tubelets, no cls token, separate q/k/v,
pre-norm blocks, LayerNorm eps 1e-6, exact GELU, mean pooling that drops token 0, norm,
head). `checkpoint_file` writes what the official scripts write.
"""

import argparse

import torch
from torch import nn


class PatchEmbed(nn.Module):
    def __init__(self, img_size, patch, bands, tubelet, dim):
        super().__init__()
        self.grid, self.groups = img_size // patch, bands // tubelet
        self.proj = nn.Conv3d(1, dim, kernel_size=(tubelet, patch, patch), stride=(tubelet, patch, patch))

    def forward(self, x):  # (N, B, H, W) -> (N, T', L, D)
        x = self.proj(x.unsqueeze(1))  # (N, D, T', H', W')
        return torch.einsum("ncts->ntsc", x.flatten(3))


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.proj = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x):
        n, s, d = x.shape
        split = lambda t: t.reshape(n, s, self.heads, d // self.heads).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        a = ((q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5).softmax(dim=-1)
        return self.proj((a @ v).transpose(1, 2).reshape(n, s, d))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=1e-6), Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self, *, img_size, patch_size, bands, tubelet, width, depth, heads, num_classes,
                 mlp_ratio=4.0, sep_pos_embed=False):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, bands, tubelet, width)
        groups, tokens = self.patch_embed.groups, self.patch_embed.grid ** 2
        self.sep_pos_embed = sep_pos_embed
        if sep_pos_embed:
            self.pos_embed_spatial = nn.Parameter(torch.zeros(1, tokens, width))
            self.pos_embed_temporal = nn.Parameter(torch.zeros(1, groups, width))
        else:
            self.pos_embed = nn.Parameter(torch.zeros(1, groups * tokens, width))
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):  # x: (N, B, H, W), channels first as in the official code
        x = self.patch_embed(x)
        n, t, l, d = x.shape
        x = x.reshape(n, t * l, d)
        if self.sep_pos_embed:
            pos = self.pos_embed_spatial.repeat(1, t, 1) + torch.repeat_interleave(
                self.pos_embed_temporal, l, dim=1)
        else:
            pos = self.pos_embed
        x = x + pos
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x[:, 1:, :].mean(dim=1)))


def randomized(model: nn.Module, seed: int) -> nn.Module:
    """Fill every parameter (position tables and norms included) with random values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.02 if p.ndim > 1 else 0.1
            base = 1.0 if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight" else 0.0
            p.copy_(base + scale * torch.randn(p.shape, generator=g))
    return model.eval()


def decoder_state(width: int, grid_tokens: int, groups: int, seed: int, dec: int = 512,
                  depth: int = 4, patch_pixels: int = 192) -> dict[str, torch.Tensor]:
    """The 73 decoder tensors of the MAE pre-training checkpoint (random values).

    With the 198 encoder tensors of ViT-B this makes the 271 tensors of SpectralGPT+.pth.
    """
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(s, generator=g)
    sd = {"mask_token": r(1, 1, dec), "decoder_embed.weight": r(dec, width), "decoder_embed.bias": r(dec),
          "decoder_pos_embed_spatial": r(1, grid_tokens, dec), "decoder_pos_embed_temporal": r(1, groups, dec)}
    for i in range(depth):
        b = f"decoder_blocks.{i}."
        for n in ("norm1", "norm2"):
            sd[b + n + ".weight"], sd[b + n + ".bias"] = r(dec), r(dec)
        for n in ("q", "k", "v", "proj"):
            sd[b + f"attn.{n}.weight"], sd[b + f"attn.{n}.bias"] = r(dec, dec), r(dec)
        sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"] = r(4 * dec, dec), r(4 * dec)
        sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"] = r(dec, 4 * dec), r(dec)
    sd["decoder_norm.weight"], sd["decoder_norm.bias"] = r(dec), r(dec)
    sd["decoder_pred.weight"], sd["decoder_pred.bias"] = r(patch_pixels, dec), r(patch_pixels)
    return sd


def checkpoint_file(path, state_dict: dict, **args) -> None:
    """Save as `misc.save_model` does: {'model', 'optimizer', 'epoch', 'scaler', 'args'}."""
    torch.save({"model": state_dict, "optimizer": {}, "epoch": 199, "scaler": {},
                "args": argparse.Namespace(model="vit_base_patch8_128", **args)}, path)
