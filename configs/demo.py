"""The README's main job: Indian Pines (bundled in tensorly) on a small SpectralGPT-shaped encoder.

A 3-block, 96-wide encoder trained from scratch (`init='random'`: there are no pretrained
weights at this width) on 15-pixel neighbourhoods resized to 16×16, with the paper's PCA-12
and the 50/15 split of Table 1. It finishes in a few minutes on 2 CPU cores. Everything not
set here is `configs/base.py`'s for Indian Pines with full fine-tuning.
"""

import ml_collections
from ml_collections.config_dict import placeholder

from configs import base


def get_config():
    c = base.get_config("indian_pines", "fft")
    c.workdir = "workdirs/demo"
    c.init = "random"
    c.pretrained_dir = ""
    # A 3-block, 96-wide SpectralGPT with 4-pixel patches on 16 × 16 × 12 inputs
    # (data.input_size, data.pca): 4 spectral groups × 4 × 4 = 64 tokens.
    c.model = ml_collections.ConfigDict(dict(
        name="spectralgpt", patch_size=4, tubelet=3, width=96, depth=3, heads=3, mlp_ratio=4.0,
        pos_embed="joint", pool_skip_first=True, drop_path=0.0, dropout=0.0, dtype="float32"))
    c.method = ml_collections.ConfigDict(dict(name="fft"))
    c.data.update(dict(data_dir="", input_size=16, normalize="zscore"))
    c.data.num_classes = placeholder(int)  # from the scene
    c.augment.update(dict(radiation_noise=0.0, mixture_noise=0.0))
    c.optim.lr = 1e-3
    c.epochs = 60
    c.eval_every_epochs = 20
    return c
