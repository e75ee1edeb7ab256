"""The README's main job: Indian Pines (bundled in tensorly) on a small SpectralGPT-shaped encoder.

A 3-block, 96-wide encoder trained from scratch (`init='random'`: there are no pretrained
weights at this width) on 15-pixel neighbourhoods resized to 16×16, with the paper's PCA-12
and the 50/15 split of Table 1. It finishes in a few minutes on 2 CPU cores.
"""

import ml_collections
from ml_collections.config_dict import placeholder

from hsic_jax.data.scenes import SCENES

def get_config():
    c = ml_collections.ConfigDict()
    c.workdir = "workdirs/demo"
    c.seed = 0
    c.num_seeds = 1
    c.init = "random"
    c.pretrained_dir = ""
    # A 3-block, 96-wide SpectralGPT with 4-pixel patches on 16 × 16 × 12 inputs
    # (data.input_size, data.pca): 4 spectral groups × 4 × 4 = 64 tokens.
    c.model = dict(name="spectralgpt", patch_size=4, tubelet=3, width=96, depth=3, heads=3,
                   mlp_ratio=4.0, pos_embed="joint", pool_skip_first=True, drop_path=0.0,
                   dropout=0.0, dtype="float32")
    c.method = dict(name="fft")
    # train_per_class: a count, a fraction or a {class: count} mapping (see configs/base.py).
    c.data = dict(name="indian_pines", data_dir="", cube_path="", gt_path="", cube_key="",
                  gt_key="", train_per_class=placeholder(object), cap=False, class_names="",
                  class_names_path="", neighborhood=15, input_size=16, pca=12,
                  normalize="zscore", padding="reflect", spatially_disjoint=False,
                  num_classes=placeholder(int), val_per_class=0.0, fit_on="scene",
                  resize="bilinear")
    c.data.train_per_class = SCENES["indian_pines"].paper_per_class()  # Table 1: 50 / 15
    c.augment = dict(flip=True, radiation_noise=0.0, mixture_noise=0.0, mixup=0.0, cutmix=0.0)
    c.optim = dict(name="adamw", lr=1e-3, weight_decay=0.05, b1=0.9, b2=0.999, eps=1e-8,
                   schedule="cosine", warmup_epochs=5.0, min_lr=0.0, step_epochs=10,
                   step_offset=0, step_gamma=0.9, layer_decay=1.0)
    c.batch_size = 64
    c.drop_last = True
    c.epochs = 60
    c.label_smoothing = 0.0
    c.eval_every_epochs = 20
    c.eval_max_pixels = placeholder(int)
    c.select = "last"
    c.checkpoint_every_epochs = 10
    c.checkpoint_every_seconds = 600.0
    c.save_map = True
    c.map_mask_unlabelled = False
    return c
