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

from configs import demo

# Fields of the demo's config that are the classifier's or the split's, not the encoder's or
# the inputs'.
_NOT_PRETRAINING = {"model": ("pos_embed", "pool_skip_first", "drop_path", "dropout"),
                    "data": ("train_per_class", "cap", "spatially_disjoint", "num_classes",
                             "val_per_class", "fit_on")}


# Fields of the demo's run that are the classifier's, not pre-training's.
_NOT_PRETRAINING_RUN = ("drop_last", "label_smoothing", "eval_every_epochs", "eval_max_pixels",
                        "select", "save_map", "map_mask_unlabelled")


def get_config():
    c = demo.get_config()  # the demo's encoder and inputs (scene, PCA, normalisation, window)
    c.workdir = "workdirs/pretrain_demo"
    c.init = "random"  # 'pretrained': continue from pretrained_dir (e.g. SpectralGPT+)
    for part, fields in _NOT_PRETRAINING.items():
        for field in fields:
            del c[part][field]
    for field in _NOT_PRETRAINING_RUN:
        del c[field]
    # mask_ratio: tokens hidden per input; norm_pix_loss: targets normalised per token (the
    # official norm_pix_loss); reconstructions: patches in reconstructions.png.
    c.pretrain = dict(mask_ratio=0.75, norm_pix_loss=True,
                      decoder=dict(width=32, depth=1, heads=2), extra_cubes=(),
                      reconstructions=4)
    # The official MAE recipe's AdamW (β2 0.95, weight decay 0.05), cosine after a warm-up.
    c.optim.update(dict(b2=0.95, warmup_epochs=1.0))
    c.batch_size = 256
    c.epochs = 10
    c.checkpoint_every_epochs = 2
    return c
