"""Settings shared by every dataset and method: the paper's training recipe (section 4.3).

A dataset module (`configs/botswana.py`, ...) calls `get_config(dataset, method)` and adds
the dataset's own settings (neighbourhood size, split, normalisation, classes, KronA
shapes, λ); each `configs/{dataset}_{method}.py` is one line over its dataset module.

Learning rates. The paper's values were lost from its text. We use 1e-3 for the PEFT
methods and BitFit, and 2.5e-4 for FFT and the linear probe: the official SpectralGPT
fine-tune's lr = blr · batch / 256 with blr 1e-3 and the paper's batch of 64.
"""

import ml_collections
from ml_collections.config_dict import placeholder

from hsic_jax.adapters.methods import SPECS, Required
from hsic_jax.data.scenes import SCENES

DATASETS = tuple(SCENES)  # the benchmark scenes (hsic_jax.data.scenes)

# Fields of `config.method` besides `name` and `targets` (the paper adapts q and v).
# KronA's a_shape / b_shape (the paper's A (r1, r2) and B (p/r1, q/r2) of ΔW = A ⊗ B in the
# out × in layout, see hsic_jax/adapters/krona.py) and the λ of the *_plus methods depend on
# the dataset and are set by the dataset modules.


def method_defaults(method: str) -> dict:
    """The config fields of `method` besides `name` and `targets`, with their defaults
    (`hsic_jax.adapters.methods.SPECS`); a field without a default is a placeholder that the
    experiment's config sets (KronA's factor shapes)."""
    return {k: placeholder(v.type) if isinstance(v, Required) else v
            for k, v in SPECS[method].defaults.items()}


def get_config(dataset: str, method: str) -> ml_collections.ConfigDict:
    """Shared defaults for `dataset` fine-tuned with `method`."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset {dataset!r} is not one of {DATASETS}")
    if method not in SPECS:
        raise ValueError(f"method {method!r} is not one of {tuple(SPECS)}")
    config = ml_collections.ConfigDict()
    config.workdir = ""  # '' = derived by run.py from the config name
    config.seed = 0
    config.num_seeds = 1
    config.init = "pretrained"  # or 'random' (only when asked for)
    config.pretrained_dir = "checkpoints/spectralgpt_plus_32"

    # ViT-B SpectralGPT (the variant sets width, depth, heads and the 3-band tubelet) with
    # 8-pixel patches on the data's 32 × 32 × 12 inputs (data.input_size, data.pca): 4 spectral
    # groups × 4 × 4 = 64 tokens, joint zero-init position embedding (the official
    # classification default, spectralgpt.md §7).
    config.model = ml_collections.ConfigDict(dict(
        name="spectralgpt", variant="base", patch_size=8, pos_embed="joint",
        pool_skip_first=True, drop_path=0.1, dropout=0.0, dtype="float32"))

    config.method = ml_collections.ConfigDict(
        dict(name=method, targets=("q", "v"), **method_defaults(method)))

    # The scene's facts from the paper (hsic_jax.data.scenes.SCENES): classes, the
    # neighbourhood (pixels around each labelled pixel) resized to input_size, normalisation,
    # training pixels per class (None: Houston's given train/test maps).
    # val_per_class: validation pixels per class taken out of the training pixels (a count,
    # or a fraction in (0, 1); 0 = none, the paper's protocol). fit_on: PCA and normalisation
    # statistics fitted on every pixel of the scene (the paper's and the field's practice) or
    # on the training pixels only ('train'). resize: interpolation of the neighbourhood to
    # input_size ('bicubic' = PyTorch's, as the official SpectralGPT transforms).
    # train_per_class: a count per class, a fraction of each class in (0, 1), a
    # {class name: count} mapping, or None for the scene's given train/test maps; cap: a class
    # with too few pixels for its count trains on half of them instead of being an error.
    # padding: of the scene's border, 'reflect' (edge pixel not repeated) or 'symmetric'.
    spec = SCENES[dataset]
    config.data = ml_collections.ConfigDict(dict(
        name=dataset, data_dir="data", cube_path="", gt_path="", cube_key="", gt_key="",
        num_classes=len(spec.class_names), neighborhood=spec.paper_patch_size, input_size=32,
        pca=12, normalize=spec.paper_normalization, padding="reflect", spatially_disjoint=False,
        val_per_class=0.0, fit_on="scene", resize="bilinear",
        train_per_class=placeholder(object), cap=False, class_names="", class_names_path=""))
    config.data.train_per_class = None if spec.train_files else spec.paper_per_class()

    # Flips, and the probabilities of radiation and mixture noise per sample
    # (DeepHyperX's 0.1 and 0.2; see hsic_jax.data.augment). mixup / cutmix: the alphas of
    # timm's batch mixing (off in the paper; the official SpectralGPT recipe: 0.8 / 1.0).
    config.augment = ml_collections.ConfigDict(
        dict(flip=True, radiation_noise=0.1, mixture_noise=0.2, mixup=0.0, cutmix=0.0))

    # AdamW ('adam': weight decay added to the gradient, as torch.optim.Adam). schedule
    # 'cosine': linear warm-up over warmup_epochs, then cosine to min_lr; 'step': lr ×
    # step_gamma every step_epochs (torch's StepLR, stepped after each epoch; step_offset 1:
    # before it, as the official SpectralFormer script). layer_decay scales block i's learning rate
    # by decay^(depth - i) (1 = off, the paper; the official recipe: 0.75 with 20 warm-up
    # epochs, min_lr 1e-14, label smoothing 0.1; see configs/indian_pines_fft_official.py).
    peft = method not in ("fft", "linear_probe")
    config.optim = ml_collections.ConfigDict(dict(
        name="adamw", lr=1e-3 if peft else 2.5e-4, weight_decay=0.05, b1=0.9, b2=0.999,
        eps=1e-8, schedule="cosine", warmup_epochs=5.0, min_lr=0.0, step_epochs=10,
        step_offset=0, step_gamma=0.9, layer_decay=1.0))
    config.batch_size = 64
    config.drop_last = True  # False: the epoch's last, partial batch too (torch's default)
    config.epochs = 50
    config.label_smoothing = 0.0
    # In-loop evaluation on the validation pixels (only with data.val_per_class; at most
    # eval_max_pixels of them per seed, a fixed random subset, when set); the test pixels are
    # predicted once, at the end, with the last state or ('best_val') the state with the best
    # validation OA.
    config.eval_every_epochs = 5
    config.eval_max_pixels = placeholder(int)
    config.select = "last"
    # Checkpoints every 10 epochs, and after any epoch ending 10 minutes after the last one.
    config.checkpoint_every_epochs = 10
    config.checkpoint_every_seconds = 600.0
    # Classification and confidence maps of the whole scene (seed 0) at the end; with
    # map_mask_unlabelled the PNG paints unlabelled pixels as background.
    config.save_map = True
    config.map_mask_unlabelled = False
    return config


def set_method_fields(config: ml_collections.ConfigDict, krona_shapes, lams) -> None:
    """Set the dataset's KronA factor shapes `(a_shape, b_shape)` and the λ of Table 14
    (`lams`: {'lora_plus': λ, 'krona_plus': λ}) on `config.method`, where they apply."""
    method = config.method
    if "a_shape" in SPECS[method.name].defaults:  # KronA's factor shapes
        method.a_shape, method.b_shape = krona_shapes
    if method.name in lams:
        method.lam = lams[method.name]
