"""An independent PyTorch implementation of HyperSIGMA's classifier (the test oracle).

Written from the semantics of the official `SSFusionFramework` (WHU-Sigma/HyperSIGMA,
`ImageClassification/model/ss_fusion_cls.py`, `SpatViT_fusion_patch.py`, `SpecViT_fusion.py`),
with the official module layout so that `state_dict()` has the official keys and shapes:
`spat_encoder.{patch_embed.proj, pos_embed, blocks.{i}.{norm1, attn.{qkv, sampling_offsets,
proj}, norm2, mlp.{fc1, fc2}}, norm, fpn1.0, classifier.{0,1,2}, cls, classifier1.{0,1,2}}`,
`spec_encoder.{spat_map, pos_embed, blocks.{i}..., norm, conv_q.{j}, conv_k.{j}, conv_v.{j},
l1}`, `conv_features`, `DR{1..4}`, `conv`, `classifier.{0,2,4}`, `fc_spec{1..4}.{0,2}`. The
sampling attention reads k and v with `F.grid_sample(mode='bilinear', padding_mode='zeros',
align_corners=False)`, as the official code does. Input `(N, B, H, W)` as the official model
takes it; `logits` takes `(N, H, W, B)`.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from torch_reference import Mlp  # timm's Mlp, which both official codes use


def centre_points(height, width):
    """(1, H·W, 2) normalised (x, y) cell centres of a row-major grid."""
    ys, xs = torch.meshgrid(torch.linspace(0.5, height - 0.5, height),
                            torch.linspace(0.5, width - 0.5, width), indexing="ij")
    return torch.stack([xs.reshape(-1) / width, ys.reshape(-1) / height], dim=-1)[None]


class FullAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x, grid):
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        w = ((q * (d // self.heads) ** -0.5) @ k.transpose(-1, -2)).softmax(-1)
        return self.proj((w @ v).transpose(1, 2).reshape(b, n, d))


class SamplingAttention(nn.Module):
    """Each token attends to `points` bilinear samples per head of the k / v grids."""

    def __init__(self, dim, heads, points):
        super().__init__()
        self.heads, self.points = heads, points
        self.qkv = nn.Linear(dim, 3 * dim)
        self.sampling_offsets = nn.Linear(dim, heads * points * 2)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, grid):
        b, n, d = x.shape
        hh, ww = grid
        heads, pts, c = self.heads, self.points, d // self.heads
        q, k, v = self.qkv(x).reshape(b, n, 3, d).unbind(2)
        off = self.sampling_offsets(q).reshape(b, n, heads, pts, 2).transpose(1, 2)  # b,h,n,p,2
        scale = torch.tensor([ww, hh], dtype=x.dtype)
        where = 2 * (centre_points(hh, ww)[:, None, :, None, :] + off / scale) - 1
        where = where.reshape(b * heads, n, pts, 2)

        def grids(t):  # (b, n, d) -> (b·heads, c, H, W)
            return t.reshape(b, n, heads, c).permute(0, 2, 3, 1).reshape(b * heads, c, hh, ww)

        def sample(t):  # -> (b, heads, n, p, c)
            s = F.grid_sample(grids(t), where, mode="bilinear", padding_mode="zeros",
                              align_corners=False)  # (b·heads, c, n, p)
            return s.reshape(b, heads, c, n, pts).permute(0, 1, 3, 4, 2)

        qh = q.reshape(b, n, heads, c).transpose(1, 2)[:, :, :, None, :]
        w = ((qh * sample(k)).sum(-1) * c ** -0.5).softmax(-1)[..., None]
        return self.proj((w * sample(v)).sum(-2).transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, dim, heads, sample, points):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SamplingAttention(dim, heads, points) if sample else FullAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x, grid):
        x = x + self.attn(self.norm1(x), grid)
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, bands, dim, patch):
        super().__init__()
        self.proj = nn.Conv2d(bands, dim, patch, stride=patch)

    def forward(self, x):
        return self.proj(x)


class SpatViT(nn.Module):
    def __init__(self, *, img_size, bands, patch_size, classes, dim, depth, heads, interval,
                 out_indices, points, head_in=49152, head1_in=3072):
        super().__init__()
        self.patch_size, self.out_indices = patch_size, tuple(out_indices)
        self.classifier = nn.Sequential(nn.Linear(head_in, 128), nn.Linear(128, 64),
                                        nn.Linear(64, classes))
        self.cls = nn.Conv2d(4 * dim, classes, 1)
        self.classifier1 = nn.Sequential(nn.Linear(head1_in, 128), nn.Linear(128, 64),
                                         nn.Linear(64, classes))
        self.patch_embed = PatchEmbed(bands, dim, patch_size)
        grid = img_size // patch_size
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, (i + 1) % interval != 0, points)
                                    for i in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        pool = lambda k: nn.Sequential(nn.MaxPool2d(k, k))
        if patch_size in (1, 2):
            self.fpn1 = nn.Sequential(nn.ConvTranspose2d(dim, dim, 2, stride=2))
            self.fpn2, self.fpn3, self.fpn4 = nn.Identity(), pool(2), pool(4)
        elif patch_size in (4, 8):
            self.fpn1, self.fpn2, self.fpn3, self.fpn4 = nn.Identity(), pool(1), pool(2), pool(4)
        else:
            raise ValueError(patch_size)

    def forward(self, x):
        tokens = self.patch_embed(x)
        b, d, hh, ww = tokens.shape
        h = tokens.flatten(2).transpose(1, 2) + self.pos_embed
        maps = []
        for i, blk in enumerate(self.blocks):
            h = blk(h, (hh, ww))
            if i in self.out_indices:
                maps.append(h.transpose(1, 2).reshape(b, d, hh, ww))
        maps = [f(m) for f, m in zip((self.fpn1, self.fpn2, self.fpn3, self.fpn4), maps)]
        return maps[3], maps[2], maps[1], maps[0]


class SpectralViT(nn.Module):
    def __init__(self, *, img_size, tokens, dim, depth, heads, interval, out_indices, points):
        super().__init__()
        self.tokens, self.out_indices = tokens, tuple(out_indices)
        self.spec_embed = nn.AdaptiveAvgPool1d(tokens)
        self.spat_map = nn.Linear(img_size * img_size, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, (i + 1) % interval != 0, points)
                                    for i in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.conv_q = nn.ModuleList(nn.Conv2d(tokens, tokens, 1) for _ in self.out_indices)
        self.conv_k = nn.ModuleList(nn.Conv1d(tokens, tokens, 1) for _ in self.out_indices)
        self.conv_v = nn.ModuleList(nn.Conv1d(tokens, tokens, 1) for _ in self.out_indices)
        self.l1 = nn.Linear(dim, 128, bias=False)

    def forward(self, x):
        side = int(math.sqrt(self.tokens))
        h = self.spec_embed(x.flatten(2).transpose(1, 2)).transpose(1, 2)  # (b, T, H·W)
        h = self.spat_map(h) + self.pos_embed
        # The official forward runs every block and returns the outputs of all out_indices;
        # the classifier uses only the first (through l1), so the blocks after it are skipped.
        for blk in self.blocks[:self.out_indices[0] + 1]:
            h = blk(h, (side, side))
        return [self.l1(h)]


class SSFusionFramework(nn.Module):
    """The official classifier with `classes` outputs (the notebook's class_num + 1)."""

    def __init__(self, *, img_size, in_channels, patch_size, classes, dim=768, depth=12,
                 heads=12, interval=3, out_indices=(3, 5, 7, 11), points=8, tokens=100,
                 head_in=49152, head1_in=3072):
        super().__init__()
        kw = dict(dim=dim, depth=depth, heads=heads, interval=interval,
                  out_indices=out_indices, points=points)
        self.spat_encoder = SpatViT(img_size=img_size, bands=in_channels, patch_size=patch_size,
                                    classes=classes, head_in=head_in, head1_in=head1_in, **kw)
        self.spec_encoder = SpectralViT(img_size=img_size, tokens=tokens, **kw)
        self.conv_features = nn.Conv2d(dim, 64, 1, bias=False)
        for k in range(1, 5):
            setattr(self, f"DR{k}", nn.Conv2d(dim, 128, 1, bias=False))
        self.conv = nn.Conv2d(512, 128, 1)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.classifier = nn.Sequential(nn.Linear(512, 256), nn.Dropout(0.4), nn.Linear(256, 128),
                                        nn.Dropout(0.4), nn.Linear(128, classes))
        for k in range(1, 5):
            setattr(self, f"fc_spec{k}", nn.Sequential(
                nn.Linear(tokens, 128, bias=False), nn.ReLU(), nn.Linear(128, 128, bias=False),
                nn.Sigmoid()))

    def forward(self, x):
        b = x.shape[0]
        maps = self.spat_encoder(x)
        spec = self.pool(self.spec_encoder(x)[0]).view(b, -1)
        parts = []
        for k in range(1, 5):
            w = getattr(self, f"fc_spec{k}")(spec).view(b, -1, 1, 1)
            f = (1 + w) * getattr(self, f"DR{k}")(maps[k - 1])
            parts.append(F.avg_pool2d(f, f.shape[2:]).view(b, 128))
        return self.classifier(torch.cat(parts, dim=1))


def randomized(model: nn.Module, seed: int) -> nn.Module:
    """Every parameter random (norm scales around 1, sampling offsets of about a grid cell),
    so that no layer is a no-op and points land inside, between and outside cells; eval mode.
    Uniform values of unit variance, written by numpy's generator into the parameters
    (ViT-B's 184 M values in well under a second)."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            rng.random(dtype=np.float32, out=p.data.numpy())
            p.sub_(0.5).mul_(math.sqrt(12.0))
            if "norm" in name and name.endswith("weight"):
                p.mul_(0.1).add_(1.0)
            elif "sampling_offsets" in name:
                p.mul_(0.05 if name.endswith("weight") else 1.0)
            else:
                p.mul_(1.0 / math.sqrt(p[0].numel()) if p.ndim > 1 else 0.1)
    return model.eval()


def build(seed: int = 0, **kwargs) -> nn.Module:
    """A randomized `SSFusionFramework(**kwargs)`, built without torch's default init (on the
    meta device) since `randomized` overwrites every parameter."""
    with torch.device("meta"):
        model = SSFusionFramework(**kwargs)
    return randomized(model.to_empty(device="cpu"), seed)


def logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The oracle's logits (all `classes`) for inputs `x` `(N, H, W, B)`."""
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()
