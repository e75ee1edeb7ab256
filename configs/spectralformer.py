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
          StepLR γ 0.9 every epochs // 10 epochs, stepped before each epoch as the official
          loop calls `scheduler.step()` first (`step_offset=1`: the rate drops in the 30th
          epoch of 300, the 60th, …), batch 64 with the epoch's last, partial batch kept
          (`drop_last=False`, the official `DataLoader(shuffle=True)`: 695 pixels are 11
          steps, the last of 55), weight decay 5e-3 (the README's patch-wise commands).

On every scene `PATCHES` 7, `BAND_PATCHES` 3 and weight decay 5e-3, the official patch-wise
setting. They reproduce the SpectralFormer column of #Params of Ligan et al. (0.356, 0.171,
0.236, 0.237, 0.558 M; `python -m hsic_jax.count configs/*_spectralformer.py`). The README
suggests band_patches 7 for Pavia University, which would give 0.184 M.

Epochs (`EPOCHS`): by default the paper's (Ligan et al. §5: 300 on Indian Pines and
Botswana, 600 on Houston 2013 and Pavia University, 100 on WHU-Hi-LongKou);
`get_config(dataset, epochs='official')` (`configs/{dataset}_spectralformer.py:official`)
takes the official README's patch-wise commands where it has the scene (Indian Pines 300,
Pavia 480, Houston 600) and the paper's elsewhere. A scene of neither (one added to
`hsic_jax.data.scenes.SCENES`) trains `OTHER_EPOCHS`, the README's Indian Pines command.
"""

import ml_collections

from configs import base

PATCHES = 7  # = data.neighborhood = data.input_size
BAND_PATCHES = 3
WEIGHT_DECAY = 5e-3
EPOCHS = {
    "paper": dict(indian_pines=300, pavia_university=600, houston2013=600, botswana=300,
                  whu_hi_longkou=100),
    "official": dict(indian_pines=300, pavia_university=480, houston2013=600, botswana=300,
                     whu_hi_longkou=100),
}
OTHER_EPOCHS = 300


def get_config(dataset: str, method: str = "fft", epochs: str = "paper") -> ml_collections.ConfigDict:
    """SpectralFormer on `dataset`, all of it trained (`method` 'fft') from a random init, for
    the paper's number of epochs or (`epochs='official'`) the official README's."""
    if epochs not in EPOCHS:
        raise ValueError(f"epochs {epochs!r} is not one of {tuple(EPOCHS)}")
    num_epochs = EPOCHS[epochs].get(dataset, OTHER_EPOCHS)
    config = base.get_config(dataset, method)
    config.init = "random"
    config.pretrained_dir = f"checkpoints/spectralformer_{dataset}"  # for init='pretrained'
    config.model = ml_collections.ConfigDict(dict(
        name="spectralformer", band_patches=BAND_PATCHES, dim=64, depth=5, heads=4,
        dim_head=16, mlp_dim=8, mode="CAF", dropout=0.1, emb_dropout=0.1, dtype="float32"))
    config.data.update(dict(neighborhood=PATCHES, input_size=PATCHES, pca=None,
                            normalize="minmax", padding="symmetric"))
    config.augment.update(dict(flip=False, radiation_noise=0.0, mixture_noise=0.0))
    config.optim.update(dict(name="adam", lr=5e-4, weight_decay=WEIGHT_DECAY,
                             schedule="step", step_epochs=num_epochs // 10, step_offset=1,
                             step_gamma=0.9, warmup_epochs=0.0))
    config.batch_size = 64
    config.drop_last = False
    config.epochs = num_epochs
    return config
