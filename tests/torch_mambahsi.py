"""An independent PyTorch implementation of MambaHSI (the test oracle).

Written from the paper (Li et al., TGRS 2024) and the semantics of the official
`model/MambaHSI.py` and of `mamba_ssm`'s `Mamba` layer, with the official module layout so
that `state_dict()` has the official keys and shapes: `patch_embedding.{0,1}.*`,
`mamba.{0,2,4}.weights`, `mamba.{i}.{spa,spe}_mamba.mamba.{in_proj.weight, conv1d.weight,
conv1d.bias, x_proj.weight, dt_proj.weight, dt_proj.bias, A_log, D, out_proj.weight}`,
`mamba.{i}.{spa,spe}_mamba.proj.0.*`, `cls_head.{0,1,3}.*` (for `mamba_type='both'`; 'spa' and
'spe' have `mamba.{i}.mamba.*` and `mamba.{i}.proj.0.*`). `mamba_ssm` needs CUDA, so the
selective scan here is a plain Python loop over the sequence, step by step, in float32.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Mamba(nn.Module):
    """mamba_ssm's Mamba layer (no fused kernels): `(N, L, d_model) -> (N, L, d_model)`."""

    def __init__(self, d_model, d_state=16, d_conv=4, expand=2):
        super().__init__()
        d_inner = expand * d_model
        self.d_state, self.dt_rank = d_state, math.ceil(d_model / 16)
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        self.conv1d = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, d_inner)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1.0)).repeat(d_inner, 1))
        self.D = nn.Parameter(torch.ones(d_inner))
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def forward(self, hidden):
        n, length, _ = hidden.shape
        u, z = self.in_proj(hidden).chunk(2, dim=-1)  # (N, L, Di) each
        u = F.silu(self.conv1d(u.transpose(1, 2))[..., :length].transpose(1, 2))
        dt, B, C = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))  # (N, L, Di)
        A = -torch.exp(self.A_log)  # (Di, S)
        state = hidden.new_zeros(n, A.shape[0], A.shape[1])
        ys = []
        for t in range(length):  # the recurrence, one step at a time
            state = torch.exp(delta[:, t, :, None] * A) * state \
                + (delta[:, t] * u[:, t])[:, :, None] * B[:, t, None, :]
            ys.append((state * C[:, t, None, :]).sum(-1))
        y = torch.stack(ys, dim=1) + self.D * u
        return self.out_proj(y * F.silu(z))


class SpeMamba(nn.Module):
    def __init__(self, channels, token_num=4, use_residual=True, group_num=4):
        super().__init__()
        self.token_num, self.use_residual = token_num, use_residual
        self.group_channels = math.ceil(channels / token_num)
        self.mamba = Mamba(self.group_channels)
        self.proj = nn.Sequential(nn.GroupNorm(group_num, token_num * self.group_channels),
                                  nn.SiLU())

    def forward(self, x):
        n, c, h, w = x.shape
        tokens = x.permute(0, 2, 3, 1).reshape(n * h * w, self.token_num, self.group_channels)
        y = self.mamba(tokens).reshape(n, h, w, c).permute(0, 3, 1, 2)
        y = self.proj(y)
        return x + y if self.use_residual else y


class SpaMamba(nn.Module):
    def __init__(self, channels, use_residual=True, group_num=4):
        super().__init__()
        self.use_residual = use_residual
        self.mamba = Mamba(channels)
        self.proj = nn.Sequential(nn.GroupNorm(group_num, channels), nn.SiLU())

    def forward(self, x):
        n, c, h, w = x.shape
        seq = x.permute(0, 2, 3, 1).reshape(1, n * h * w, c)  # the batch's pixels, one sequence
        y = self.proj(self.mamba(seq).reshape(n, h, w, c).permute(0, 3, 1, 2))
        return y + x if self.use_residual else y


class BothMamba(nn.Module):
    def __init__(self, channels, token_num, use_residual, group_num=4, use_att=True):
        super().__init__()
        self.use_att, self.use_residual = use_att, use_residual
        if use_att:
            self.weights = nn.Parameter(torch.full((2,), 0.5))
        self.spa_mamba = SpaMamba(channels, use_residual, group_num)
        self.spe_mamba = SpeMamba(channels, token_num, use_residual, group_num)

    def forward(self, x):
        spa, spe = self.spa_mamba(x), self.spe_mamba(x)
        if self.use_att:
            w = torch.softmax(self.weights, dim=0)
            fused = w[0] * spa + w[1] * spe
        else:
            fused = spa + spe
        return fused + x if self.use_residual else fused


class MambaHSI(nn.Module):
    """The official classifier: `(N, B, H, W)` → logits `(N, C, H // 4, W // 4)`."""

    def __init__(self, in_channels=128, hidden_dim=64, num_classes=10, use_residual=True,
                 mamba_type="both", token_num=4, group_num=4, use_att=True):
        super().__init__()
        self.patch_embedding = nn.Sequential(nn.Conv2d(in_channels, hidden_dim, 1),
                                             nn.GroupNorm(group_num, hidden_dim), nn.SiLU())

        def block():
            if mamba_type == "spa":
                return SpaMamba(hidden_dim, use_residual, group_num)
            if mamba_type == "spe":
                return SpeMamba(hidden_dim, token_num, use_residual, group_num)
            return BothMamba(hidden_dim, token_num, use_residual, group_num, use_att)

        self.mamba = nn.Sequential(block(), nn.AvgPool2d(2, 2), block(), nn.AvgPool2d(2, 2),
                                   block())
        self.cls_head = nn.Sequential(nn.Conv2d(hidden_dim, 128, 1), nn.GroupNorm(group_num, 128),
                                      nn.SiLU(), nn.Conv2d(128, num_classes, 1))

    def forward(self, x):
        return self.cls_head(self.mamba(self.patch_embedding(x)))


def randomized(model: nn.Module, seed: int) -> nn.Module:
    """Every parameter random (GroupNorm scales and D around 1, A_log around the S4D values, dt
    around mamba_ssm's range, the fusion pair far from (1/2, 1/2)), so that no part is a no-op;
    eval mode."""
    g = torch.Generator().manual_seed(seed)
    norms = {f"{name}.weight" for name, m in model.named_modules() if isinstance(m, nn.GroupNorm)}
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if name.endswith("A_log"):
                p.copy_(torch.log(torch.arange(1, p.shape[1] + 1.0)) + 0.3 * noise)
            elif name.endswith("dt_proj.bias"):
                p.copy_(-3.0 + 0.5 * noise)  # softplus ≈ 0.05
            elif name in norms or name.endswith(".D"):
                p.copy_(1.0 + 0.2 * noise)
            elif name.endswith("weights"):
                p.copy_(noise)
            elif p.ndim == 1:
                p.copy_(0.1 * noise)
            else:
                p.copy_(noise / math.sqrt(int(np.prod(p.shape[1:]))))
    return model.eval()


def logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The oracle's per-pixel logits for scenes `x` `(N, H, W, B)`: the official forward, then
    the official bilinear resize with aligned corners to (H, W); `(N, H, W, C)`."""
    with torch.no_grad():
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        out = F.interpolate(model(t), size=x.shape[1:3], mode="bilinear", align_corners=True)
        return out.permute(0, 2, 3, 1).numpy()
