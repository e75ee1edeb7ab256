"""Masked pre-training of the demo's encoder on every pixel of Indian Pines (labels unused).

The encoder of `configs/demo.py` (3 blocks, 96 wide, 4-pixel patches on 16 × 16 × 12
inputs: 4 spectral groups × 16 patches = 64 tokens) with separable position tables, and a
one-block, 32-wide decoder. 75 % of each input's tokens are hidden: the official 90 % is for
1,024 tokens, and of 64 it would leave 6 visible (a linear probe on the encoder learnt at
90 % reached 63.7 % OA on the demo's split, at 75 % 67.6 %, on a random encoder 56.4 %). The
loss is on the hidden tokens, against their normalised pixels. The PCA, normalisation and
neighbourhood are the demo's, so that `configs/demo_pretrained_krona_plus.py` fine-tunes on
the same inputs. Add unlabelled scenes with
`--config.pretrain.extra_cubes='("a.mat", "b.tif:KEY")'`. 10 epochs over the 21,025 pixels
take about 4 minutes on 2 CPU cores; the encoder goes to `workdirs/pretrain_demo/pretrained/`.
"""

import ml_collections

from configs import demo

# Fields of the demo's config that are the classifier's or the split's, not the encoder's or
# the inputs'.
_NOT_PRETRAINING = {"model": ("pos_embed", "pool_skip_first", "drop_path", "dropout"),
                    "data": ("train_per_class", "cap", "spatially_disjoint", "num_classes",
                             "val_per_class", "fit_on")}


def get_config():
    finetuning = demo.get_config()
    c = ml_collections.ConfigDict()
    c.workdir = "workdirs/pretrain_demo"
    c.seed = 0
    c.num_seeds = 1
    c.init = "random"  # 'pretrained': continue from pretrained_dir (e.g. SpectralGPT+)
    c.pretrained_dir = ""
    # The demo's encoder and inputs (scene, PCA, normalisation, neighbourhood, input size).
    c.model, c.data = ({k: v for k, v in finetuning[part].items() if k not in _NOT_PRETRAINING[part]}
                       for part in ("model", "data"))
    c.method = dict(name="fft")  # pre-training trains every parameter
    # mask_ratio: tokens hidden per input; norm_pix_loss: targets normalised per token (the
    # official norm_pix_loss); reconstructions: patches in reconstructions.png.
    c.pretrain = dict(mask_ratio=0.75, norm_pix_loss=True,
                      decoder=dict(width=32, depth=1, heads=2), extra_cubes=(),
                      reconstructions=4)
    c.augment = dict(flip=True, radiation_noise=0.0, mixture_noise=0.0, mixup=0.0, cutmix=0.0)
    # The official MAE recipe's AdamW (β2 0.95, weight decay 0.05), cosine after a warm-up.
    c.optim = dict(name="adamw", lr=1e-3, weight_decay=0.05, b1=0.9, b2=0.95, eps=1e-8,
                   schedule="cosine", warmup_epochs=1.0, min_lr=0.0, step_epochs=10,
                   step_offset=0, step_gamma=0.9, layer_decay=1.0)
    c.batch_size = 256
    c.epochs = 10
    c.checkpoint_every_epochs = 2
    c.checkpoint_every_seconds = 600.0
    return c
