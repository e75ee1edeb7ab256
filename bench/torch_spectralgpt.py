"""The PyTorch side of `bench/compare.py`: SpectralGPT tuned by each method, its step, its map.

The model is the independent PyTorch SpectralGPT of `tests/torch_reference.py` (the official
`models_vit_tensor.VisionTransformer` layout and forward: Conv3d tubelets, separate q/k/v,
no cls token, mean pooling without token 0). The methods, as a PyTorch user writes them:

  fft           every parameter trains
  lora          HF peft `LoraConfig(r=4, lora_alpha=4)` on q and v, the head trained
                (`modules_to_save`), as `tests/test_adapters_lora.py` builds it
  lokr          HF peft `LoKrConfig(r=8, alpha=8, decompose_factor=8)` on q and v, the head
                trained (peft adds kron(w1, w2) to the weight in every forward)
  krona_plus    `KronaLinear` on q and v (the vec trick, A ⊗ B never built), B at λ·lr
  linear_probe  the head only: autograd runs no backward pass through the frozen encoder

These are the settings of `configs/base.py` (the paper's), so the trainable sets are those of
the JAX side. The optimizer is AdamW grouped as `hsic_jax.train.optimizer` groups it (weight
decay on ≥ 2-D tensors but position tables). Inputs are channels-first `(N, B, S, S)`.
"""

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from torch_reference import VisionTransformer  # noqa: E402

METHODS = ("fft", "lora", "lokr", "krona_plus", "linear_probe")
NUM_CLASSES = 16
LR, LAM = 1e-3, 1.02  # speed does not depend on them; λ is Indian Pines' KronA+ (Table 14)


class KronaLinear(nn.Module):
    """`base(x) + scale · (A ⊗ B) x`, A `(r1, r2)`, B `(out / r1, in / r2)` (out × in layout).

    The vec trick: a token x `(in,)` read row-major as X `(r2, in / r2)` gives
    (A ⊗ B) x = vec(A X Bᵀ) `(r1, out / r1)`, in the cheaper of the two contraction orders.
    B starts at zero, A at N(0, std²) (the project's KronA init).
    """

    def __init__(self, base: nn.Linear, a_shape, b_shape, scale: float = 1.0, std: float = 0.02):
        super().__init__()
        (r1, r2), (b1, b2) = a_shape, b_shape
        if (r1 * b1, r2 * b2) != (base.out_features, base.in_features):
            raise ValueError(f"A {a_shape} ⊗ B {b_shape} is not the ({base.out_features}, "
                             f"{base.in_features}) weight of the layer")
        self.base, self.scale = base, scale
        self.a = nn.Parameter(std * torch.randn(r1, r2))
        self.b = nn.Parameter(torch.zeros(b1, b2))
        self.a_first = r1 * r2 * b2 + r1 * b2 * b1 <= r2 * b2 * b1 + r1 * r2 * b1

    def forward(self, x):  # (..., in) -> (..., out)
        r1, r2 = self.a.shape
        xm = x.reshape(*x.shape[:-1], r2, -1)  # (..., r2, in / r2)
        y = (self.a @ xm) @ self.b.T if self.a_first else self.a @ (xm @ self.b.T)
        return self.base(x) + self.scale * y.reshape(*x.shape[:-1], -1)


def encoder(shape: dict) -> VisionTransformer:
    """The reference encoder of `shape` (`input_size`, `width`, `depth`, `heads`; 12 bands,
    8-pixel patches, 3-band tubelets), default PyTorch initialisation."""
    return VisionTransformer(img_size=shape["input_size"], patch_size=8, bands=12, tubelet=3,
                             width=shape["width"], depth=shape["depth"], heads=shape["heads"],
                             num_classes=NUM_CLASSES)


def tuned(method: str, shape: dict) -> nn.Module:
    """The encoder of `shape` with `method` applied; only the method's parameters require grad."""
    model = encoder(shape)
    if method == "fft":
        return model
    if method in ("lora", "lokr"):
        from peft import LoKrConfig, LoraConfig, get_peft_model  # peft imports transformers: slow
        cfg = (LoraConfig(r=4, lora_alpha=4, target_modules=["q", "v"], modules_to_save=["head"])
               if method == "lora" else
               LoKrConfig(r=8, alpha=8, decompose_factor=8, target_modules=["q", "v"],
                          modules_to_save=["head"]))
        return get_peft_model(model, cfg)
    model.requires_grad_(False)
    model.head.requires_grad_(True)
    if method == "krona_plus":
        w = shape["width"]  # the paper's Indian Pines shapes (384, 2) ⊗ (2, 384), at this width
        for blk in model.blocks:
            blk.attn.q = KronaLinear(blk.attn.q, (w // 2, 2), (2, w // 2))
            blk.attn.v = KronaLinear(blk.attn.v, (w // 2, 2), (2, w // 2))
    elif method != "linear_probe":
        raise ValueError(f"method {method!r} is not one of {METHODS}")
    return model


def adamw(model: nn.Module, lr: float = LR, lam: float = LAM,
          weight_decay: float = 0.05) -> torch.optim.AdamW:
    """AdamW over the trainable parameters: weight decay on ≥ 2-D tensors but position tables,
    λ·lr on KronA's B factors."""
    groups = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            decay = p.ndim >= 2 and "pos_embed" not in name
            groups.setdefault((decay, lam if name.endswith(".b") else 1.0), []).append(p)
    return torch.optim.AdamW([{"params": ps, "lr": lr * s, "weight_decay": weight_decay * d}
                              for (d, s), ps in groups.items()], lr=lr)


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor, autocast: torch.dtype | None = None) -> torch.Tensor:
    """One step: forward, cross-entropy, backward, AdamW update, gradients cleared.
    `x` `(N, 12, S, S)`, `y` `(N,)` int64; `autocast` a dtype runs the forward under AMP."""
    with torch.autocast(x.device.type, dtype=autocast, enabled=autocast is not None):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    opt.zero_grad()
    return loss


def trainable_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def state_bytes(model: nn.Module, opt: torch.optim.Optimizer) -> int:
    """Bytes of the parameters, their gradients (allocated during a step) and AdamW's moments."""
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    moments = sum(t.numel() * t.element_size() for s in opt.state.values()
                  for t in s.values() if torch.is_tensor(t) and t.ndim > 0)
    return params + trainable + moments


@torch.no_grad()
def classify_scene(model: nn.Module, padded: torch.Tensor, shape: tuple[int, int],
                   neighborhood: int, input_size: int, batch: int = 256):
    """Class map `(H, W)` in 1..C and confidence map `(H, W)` of the pixels of `shape`, in
    batches of `batch` pixels: each pixel's `neighborhood`² window of `padded`
    `(H' + 2r, W' + 2r, B)` (H ≤ H', W ≤ W'), bilinear to `input_size`², forward, softmax."""
    h, w = shape
    classes = torch.zeros(h * w, dtype=torch.int64)
    confidence = torch.zeros(h * w)
    offsets = torch.arange(neighborhood, device=padded.device)
    for start in range(0, h * w, batch):
        idx = torch.arange(start, min(start + batch, h * w), device=padded.device)
        rows = (idx // w)[:, None, None] + offsets[:, None]  # (N, p, 1)
        cols = (idx % w)[:, None, None] + offsets[None, :]   # (N, 1, p)
        x = padded[rows, cols].permute(0, 3, 1, 2)  # (N, B, p, p)
        x = F.interpolate(x, size=input_size, mode="bilinear", align_corners=False)
        prob, pred = model(x).softmax(-1).max(-1)
        confidence[idx.cpu()], classes[idx.cpu()] = prob.float().cpu(), pred.cpu() + 1
    return classes.reshape(h, w), confidence.reshape(h, w)
