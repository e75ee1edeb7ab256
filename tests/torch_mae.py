"""An independent PyTorch implementation of SpectralGPT's masked autoencoder (the test oracle).

It follows `models_mae_spectral.MaskedAutoencoderViT` of the official repository in the
layout of the pre-training checkpoints: `sep_pos_embed=True`, `cls_embed=False`,
`in_chans=1`, `pred_t_dim` = the number of bands (so `t_pred_patch_size` = `t_patch_size`),
LayerNorm eps 1e-6. The module names are the official ones, so `state_dict()` has exactly the
keys of spectralgpt.md §2.2 (encoder + `mask_token` + `decoder_*`); the encoder pieces
(tubelet embedding, pre-norm blocks) are those of `torch_reference`.

`forward(imgs (N, B, H, W), noise (N, T'·L))` → `(pred (N, T'·L, tubelet·p²), mask (N, T'·L))`
as the official `forward_encoder` + `forward_decoder`, the per-sample shuffle taken from the
given noise instead of `torch.rand`. `target(imgs)` is the official `forward_loss` target
with `norm_pix_loss` (band selection, `patchify`, per-token normalisation).
"""

import torch
from torch import nn

from torch_reference import Block, PatchEmbed


class MaskedAutoencoderViT(nn.Module):
    def __init__(self, *, img_size, patch_size, bands, tubelet, width, depth, heads,
                 decoder_width, decoder_depth, decoder_heads, mlp_ratio=4.0, mask_ratio=0.9):
        super().__init__()
        self.patch, self.tubelet, self.bands, self.mask_ratio = patch_size, tubelet, bands, mask_ratio
        self.patch_embed = PatchEmbed(img_size, patch_size, bands, tubelet, width)
        self.groups, self.tokens = self.patch_embed.groups, self.patch_embed.grid ** 2
        self.pos_embed_spatial = nn.Parameter(torch.zeros(1, self.tokens, width))
        self.pos_embed_temporal = nn.Parameter(torch.zeros(1, self.groups, width))
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width, eps=1e-6)

        self.decoder_embed = nn.Linear(width, decoder_width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_width))
        self.decoder_pos_embed_spatial = nn.Parameter(torch.zeros(1, self.tokens, decoder_width))
        self.decoder_pos_embed_temporal = nn.Parameter(torch.zeros(1, self.groups, decoder_width))
        self.decoder_blocks = nn.ModuleList(Block(decoder_width, decoder_heads, mlp_ratio)
                                            for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_width, eps=1e-6)
        # t_pred_patch_size · p² · in_chans, with t_pred_patch_size = tubelet · pred_t_dim / bands
        self.decoder_pred = nn.Linear(decoder_width, tubelet * patch_size ** 2)

    def _positions(self, spatial, temporal):
        """`(1, T'·L, D)`: token `t·L + l` gets `spatial[l] + temporal[t]`."""
        return spatial.repeat(1, self.groups, 1) + torch.repeat_interleave(temporal, self.tokens, dim=1)

    def random_masking(self, x, noise):
        n, s, d = x.shape
        keep_count = int(s * (1 - self.mask_ratio))
        shuffle = torch.argsort(noise, dim=1)  # ascending: the smallest noise is kept
        restore = torch.argsort(shuffle, dim=1)
        keep = shuffle[:, :keep_count]
        visible = torch.gather(x, 1, keep.unsqueeze(-1).expand(-1, -1, d))
        mask = torch.ones(n, s)
        mask[:, :keep_count] = 0
        return visible, torch.gather(mask, 1, restore), restore, keep

    def forward_encoder(self, imgs, noise):
        x = self.patch_embed(imgs)  # (N, T', L, D)
        n, t, l, d = x.shape
        x, mask, restore, keep = self.random_masking(x.reshape(n, t * l, d), noise)
        pos = self._positions(self.pos_embed_spatial, self.pos_embed_temporal).expand(n, -1, -1)
        x = x + torch.gather(pos, 1, keep.unsqueeze(-1).expand(-1, -1, d))
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x), mask, restore

    def forward_decoder(self, x, restore):
        n, total = x.shape[0], self.groups * self.tokens
        x = self.decoder_embed(x)
        c = x.shape[-1]
        x = torch.cat([x, self.mask_token.repeat(n, total - x.shape[1], 1)], dim=1)
        x = torch.gather(x, 1, restore.unsqueeze(-1).expand(-1, -1, c))  # unshuffle
        x = x + self._positions(self.decoder_pos_embed_spatial, self.decoder_pos_embed_temporal)
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))

    def forward(self, imgs, noise):
        latent, mask, restore = self.forward_encoder(imgs, noise)
        return self.forward_decoder(latent, restore), mask

    def patchify(self, imgs):
        """`(N, 1, T, H, W)` → `(N, t·h·w, u·p²)`, the official einsum."""
        n, c, bands, height, width = imgs.shape
        p, u = self.patch, self.tubelet
        t, h, w = bands // u, height // p, width // p
        x = imgs.reshape(n, c, t, u, h, p, w, p)
        x = torch.einsum("nctuhpwq->nthwupqc", x)
        return x.reshape(n, t * h * w, u * p * p * c)

    def target(self, imgs):
        """The official `norm_pix_loss` target of `imgs` `(N, B, H, W)`."""
        imgs = imgs.unsqueeze(1)
        picked = torch.linspace(0, imgs.shape[2] - 1, self.bands).long()  # pred_t_dim = bands
        target = self.patchify(torch.index_select(imgs, 2, picked))
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        return (target - mean) / (var + 1.0e-6) ** 0.5
