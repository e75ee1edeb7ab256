"""The README's main job: Indian Pines (bundled in tensorly) on a small SpectralGPT-shaped encoder.

A 3-block, 96-wide encoder trained from scratch (`init='random'`: there are no pretrained
weights at this width) on 15-pixel neighbourhoods resized to 16×16, with the paper's PCA-12
and the 50/15 split of Table 1. It finishes in a few minutes on 2 CPU cores.
"""

import ml_collections
from ml_collections.config_dict import placeholder

# Table 1 of the paper: 50 training pixels per class, 15 for the three smallest classes.
INDIAN_PINES_50_15 = {
    "Alfalfa": 15, "Corn-notill": 50, "Corn-mintill": 50, "Corn": 50, "Grass-pasture": 50,
    "Grass-trees": 50, "Grass-pasture-mowed": 15, "Hay-windrowed": 50, "Oats": 15,
    "Soybean-notill": 50, "Soybean-mintill": 50, "Soybean-clean": 50, "Wheat": 50, "Woods": 50,
    "Buildings-Grass-Trees-Drives": 50, "Stone-Steel-Towers": 50,
}


def get_config():
    c = ml_collections.ConfigDict()
    c.workdir = "workdirs/demo"
    c.seed = 0
    c.num_seeds = 1
    c.init = "random"
    c.pretrained_dir = ""
    c.model = dict(img_size=16, patch_size=4, tubelet=3, bands=12, width=96, depth=3, heads=3,
                   mlp_ratio=4.0, pos_embed="joint", pool_skip_first=True, drop_path=0.0,
                   dropout=0.0, dtype="float32")
    c.method = dict(name="fft")
    # train_per_class: a count, a fraction or a {class: count} mapping (see configs/base.py).
    c.data = dict(name="indian_pines", data_dir="", cube_path="", gt_path="", cube_key="",
                  gt_key="", train_per_class=placeholder(object), cap=False, class_names="",
                  class_names_path="", patch_size=15, input_size=16, pca=12, normalize="zscore",
                  spatially_disjoint=False, num_classes=placeholder(int), val_per_class=0.0,
                  fit_on="scene", resize="bilinear")
    c.data.train_per_class = INDIAN_PINES_50_15
    c.augment = dict(flip=True, radiation_noise=0.0, mixture_noise=0.0, mixup=0.0, cutmix=0.0)
    c.optim = dict(lr=1e-3, weight_decay=0.05, b1=0.9, b2=0.999, eps=1e-8, warmup_epochs=5.0,
                   min_lr=0.0, layer_decay=1.0)
    c.batch_size = 64
    c.epochs = 60
    c.label_smoothing = 0.0
    c.eval_every_epochs = 20
    c.select = "last"
    c.checkpoint_every_epochs = 10
    c.checkpoint_every_seconds = 600.0
    c.save_map = True
    c.map_mask_unlabelled = False
    return c
