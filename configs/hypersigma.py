"""HyperSIGMA (Wang et al., TPAMI 2025) fine-tuned with the official classification recipe.

A dataset's config is one line over `get_config(dataset)`: the scene, its split (the paper's
training pixels, `SCENES[...].paper_per_class()`, as for the other families; Houston's
official maps) and the report rows of `configs/base.py`, with the model and training of the
official notebook (WHU-Sigma/HyperSIGMA, `ImageClassification/demo cls hypersigma.ipynb`):

  model   `SSFusionFramework(img_size=33, in_channels=30, patch_size=2, classes=C + 1,
          model_size='base')`: ViT-B spatial and spectral encoders (sparse sampling attention
          with 8 points, full attention every 3rd block, 100 spectral tokens), stochastic depth
          0.1, dropout 0.4 in the classifier (`hsic_jax.models.hypersigma`);
  data    PCA to 30 components of the raw scene, fitted on every pixel, then standardised per
          component (`zscore`: the official `PCA(whiten=True)` up to the factor √(n/(n-1)) of
          sklearn's sample variance), 33 × 33 neighbourhoods given as they are
          (`input_size = neighborhood = 33`), the border padded with zeros as the official
          `create_patches` does (`padding='zeros'`); no augmentation (the notebook has none);
  optim   AdamW (β 0.9, 0.999), lr 6e-5, weight decay 0.05 on ≥ 2-D weights but position
          tables (the official parameter groups exempt 1-D tensors, biases and `pos_embed`),
          batch 64, a constant learning rate: the notebook builds
          `CosineAnnealingLR(T_max=300)` but never steps it (`schedule='step'` with
          `step_gamma=1`), no warm-up, no label smoothing, the epoch's last, partial batch
          kept (`drop_last=False`, the notebook's `DataLoader(shuffle=True)`). Its layer decay (mmengine's
          `LayerDecayOptimizerConstructor_ViT`, 12 layers, 0.9) matches parameter names
          starting with `backbone.`, which `SSFusionFramework` has none of, so every parameter
          trains at the full rate: `layer_decay = 1` is the official setting.
  epochs  200 (the notebook runs `range(max_epoch + 1)` = 101 epochs with `max_epoch = 100`).

Initialisation: `init = 'pretrained'` from `checkpoints/hypersigma_{dataset}`, a conversion of
the authors' pretrained encoders for this scene's classes:

    python -m convert hypersigma --spatial spat-vit-base-ultra-checkpoint-1599.pth \\
        --spectral spec-vit-base-ultra-checkpoint-1599.pth --num-classes C \\
        --out checkpoints/hypersigma_{dataset}

Without it the run stops before any work, naming the converter (as SpectralGPT's configs do);
`--config.init=random` trains from scratch. `python -m hsic_jax.count
configs/*_hypersigma.py` gives the official parameter counts (183,804,468 for Indian Pines).
Another `method` (`get_config(dataset, method)`; `configs/{dataset}_hypersigma_{lora,krona_plus}.py`)
keeps the base config's learning rate for it and the paper's per-dataset method settings.
"""

import importlib

import ml_collections


def get_config(dataset: str, method: str = "fft") -> ml_collections.ConfigDict:
    """HyperSIGMA on `dataset`, fine-tuned with `method` ('fft': all of it, as the official).

    A fine-tuning method takes the dataset's settings of the paper (`configs/{dataset}.py`:
    q and v adapted, its KronA shapes and λ), which fit HyperSIGMA's 768-wide ViT-B layers as
    they fit SpectralGPT's; q and v are those of both encoders' attention (the spatial ViT's
    and the used spectral blocks')."""
    config = importlib.import_module(f"configs.{dataset}").get_config(method)
    config.init = "pretrained"
    config.pretrained_dir = f"checkpoints/hypersigma_{dataset}"
    config.model = ml_collections.ConfigDict(dict(
        name="hypersigma", variant="base", patch_size=2, n_points=8, num_tokens=100,
        drop_path=0.1, dropout=0.4, dtype="float32"))
    config.data.update(dict(neighborhood=33, input_size=33, pca=30, normalize="zscore",
                            padding="zeros", fit_on="scene"))
    config.augment.update(dict(flip=False, radiation_noise=0.0, mixture_noise=0.0, mixup=0.0,
                               cutmix=0.0))
    config.optim.update(dict(name="adamw", weight_decay=0.05, b1=0.9, b2=0.999, eps=1e-8,
                             warmup_epochs=0.0, min_lr=0.0, layer_decay=1.0))
    if method == "fft":
        config.optim.lr = 6e-5
    config.optim.update(dict(schedule="step", step_gamma=1.0, step_epochs=200))
    config.label_smoothing = 0.0
    config.batch_size = 64
    config.drop_last = False
    config.epochs = 200
    return config
