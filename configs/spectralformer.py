"""SpectralFormer (Hong et al., TGRS 2021) trained from scratch with the official recipe.

A dataset's config is one line over `get_config(dataset)`: the scene, its split (the paper's
training pixels, `SCENES[...].paper_per_class()`, as for SpectralGPT; Houston's official
maps) and the report rows of `configs/base.py`, with the official SpectralFormer model and
training (danfenghong/IEEE_TGRS_SpectralFormer, `demo.py` and README):

  model   patch-wise SpectralFormer in CAF mode: dim 64, depth 5, heads 4 (dim_head 16),
          mlp_dim 8, dropout and emb_dropout 0.1, `band_patches` bands per token;
  data    the scene's raw bands (`pca=None`) min-max normalised per band over the scene, the
          border mirror-padded with the edge pixel repeated (`symmetric`, the official
          `mirror_hsi`), the `patches` × `patches` neighbourhood given to the model as it is
          (`input_size = neighborhood = patches`); no augmentation (the official has none);
  optim   Adam (torch's: weight decay added to the gradient of every parameter) at 5e-4,
          StepLR γ 0.9 every epochs // 10 epochs, batch 64, the README's epochs and weight decay.

Per scene (`SETTINGS`): patches 7 and band_patches 3 everywhere, the official patch-wise
setting. They reproduce the SpectralFormer column of #Params of Ligan et al. (0.356, 0.171,
0.236, 0.237, 0.558 M; `python -m hsic_jax.count configs/*_spectralformer.py`). The README
suggests band_patches 7 for Pavia University, which would give 0.184 M. Epochs and weight
decay are the README's patch-wise commands for Indian Pines (300, 5e-3), Pavia (480, 5e-3)
and Houston (600, 5e-3); Botswana and WHU-Hi-LongKou are not in the official repository and
take Indian Pines'. The official scheduler steps once before the first epoch, so its rate
drops one epoch earlier than `optim.schedule='step'`'s (from the 30th, 60th, … of 300 epochs
instead of the 31st, 61st, …).
"""

import ml_collections

from configs import base

# patches (= data.neighborhood = data.input_size), band_patches, epochs, weight decay.
SETTINGS = {
    "indian_pines": dict(patches=7, band_patches=3, epochs=300, weight_decay=5e-3),
    "pavia_university": dict(patches=7, band_patches=3, epochs=480, weight_decay=5e-3),
    "houston2013": dict(patches=7, band_patches=3, epochs=600, weight_decay=5e-3),
    "botswana": dict(patches=7, band_patches=3, epochs=300, weight_decay=5e-3),
    "whu_hi_longkou": dict(patches=7, band_patches=3, epochs=300, weight_decay=5e-3),
}


def get_config(dataset: str, method: str = "fft") -> ml_collections.ConfigDict:
    """SpectralFormer on `dataset`, all of it trained (`method` 'fft') from a random init."""
    s = SETTINGS[dataset]
    config = base.get_config(dataset, method)
    config.init = "random"
    config.pretrained_dir = f"checkpoints/spectralformer_{dataset}"  # for init='pretrained'
    config.model = ml_collections.ConfigDict(dict(
        name="spectralformer", band_patches=s["band_patches"], dim=64, depth=5, heads=4,
        dim_head=16, mlp_dim=8, mode="CAF", dropout=0.1, emb_dropout=0.1, dtype="float32"))
    config.data.update(dict(neighborhood=s["patches"], input_size=s["patches"], pca=None,
                            normalize="minmax", padding="symmetric"))
    config.augment.update(dict(flip=False, radiation_noise=0.0, mixture_noise=0.0))
    config.optim.update(dict(name="adam", lr=5e-4, weight_decay=s["weight_decay"],
                             schedule="step", step_epochs=s["epochs"] // 10, step_gamma=0.9,
                             warmup_epochs=0.0))
    config.batch_size = 64
    config.epochs = s["epochs"]
    return config
