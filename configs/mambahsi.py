"""MambaHSI (Li et al., TGRS 2024) trained from scratch on the whole scene with the official recipe.

A dataset's config is one line over `get_config(dataset)`: the scene and the report rows of
`configs/base.py`, with the official MambaHSI model, data and training (li-yapeng/MambaHSI,
`train_MambaHSI.py`, `model/MambaHSI.py`, `utils/`):

  model   `MambaHSI(in_channels=bands, num_classes=C, hidden_dim=128)`: token_num 4, group_num
          4, both branches fused by the learnt softmax pair, residuals; mamba_ssm's d_state
          16, d_conv 4, expand 2. A whole-image model (`hsic_jax.models.mambahsi.TASK =
          'scene'`): one forward of the scene, per-pixel logits, the loss the mean
          cross-entropy over the training pixels (the official `CrossEntropyLoss(ignore_index=-1)`
          on the logits resized to the scene, no label smoothing). `scan_chunk` 256: the
          selective scans run 256 steps at a time (the same result up to float rounding;
          `hsic_jax.models.mambahsi`), which bounds their memory and keeps each piece's
          states in cache: a whole-scene training step on Indian Pines holds 2.7 GB and takes
          12.5 s on 2 CPU cores (4096 at a time: 4.7 GB, 21.8 s; whole: 12 GB), and the
          larger scenes (10 to 32 times its pixels) fit a GPU; 0 scans each sequence whole.
  data    the scene's raw bands (`pca=None`), no neighbourhood (`neighborhood = input_size =
          1`: the scene is the input), no augmentation (the official has none), the official
          normalisation (`normalize='stretch'`: `utils/HSICommonUtils.ImageStretching` +
          `ToTensor`, each band stretched between its 2nd and 98th percentile over the scene,
          clipped to [0, 1] and quantised to 8 bits, / 255).
  optim   Adam (torch's, `torch.optim.Adam(net.parameters(), lr=3e-4)`: no weight decay,
          betas (0.9, 0.999), eps 1e-8) at a constant 3e-4 (`schedule='step'` with
          `step_gamma=1`: no scheduler), 200 epochs of one step each (the official trains
          on the whole image once per epoch; on Houston and HanChuan it takes two steps per
          epoch, on the top and bottom halves, for memory), batch 1 (the scene).
  split   the official `sampling(..., Flag=1)`: per class 30 training pixels (15 for a class
          of at most 30 labelled pixels), then 10 validation pixels, the rest test; every
          epoch the validation OA is computed and the weights with the best one (ties: the
          later epoch) are tested. Here (`split='official'`, the default) `train_per_class`
          draws training + validation pixels (40, or 25 for a class of ≤ 30 pixels, at most
          all but one) and `val_per_class = 10` takes the validation pixels out of them, with
          `select='best_val'` evaluated every epoch. The only difference: Indian Pines' Oats
          (20 pixels; official 15 train, 5 validation, 0 test) gets 9, 10 and 1 here, since
          the validation count is the same for every class and a class needs a test pixel.
          `split='paper'` keeps the split of `configs/base.py` (Ligan et al.'s training
          pixels, Houston's given maps) with no validation and the last state tested.

The parameter counts (`python -m hsic_jax.count configs/*_mambahsi.py`) are those of the
MambaHSI column of Ligan et al.: 425,558 (Indian Pines), 412,239 (Pavia University), 418,261
(Houston 2013), 418,260 (Botswana), 433,615 (WHU-Hi-LongKou).
"""

import ml_collections

from configs import base
from hsic_jax.data.scenes import SCENES

SPLITS = ("official", "paper")
TRAIN, SMALL_TRAIN, SMALL, VAL = 30, 15, 30, 10  # the official sampling()'s numbers

# The targets of a fine-tuning method (fft trains everything; LoRA etc. adapt these).
TARGETS = ("spa_in_proj", "spa_out_proj", "spe_in_proj", "spe_out_proj")


def official_split(dataset: str) -> dict[str, int]:
    """Training + validation pixels per class of the official `sampling`: 30 + 10, or 15 + 10
    for a class of at most 30 labelled pixels, leaving at least one test pixel."""
    spec = SCENES[dataset]
    return {name: min((TRAIN if n > SMALL else SMALL_TRAIN) + VAL, n - 1)
            for name, n in zip(spec.class_names, spec.class_counts)}


def get_config(dataset: str, method: str = "fft",
               split: str = "official") -> ml_collections.ConfigDict:
    """MambaHSI on `dataset`, all of it trained (`method` 'fft') from a random init, on the
    official split or the paper's (`split`)."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")
    config = base.get_config(dataset, method)
    config.init = "random"
    config.pretrained_dir = f"checkpoints/mambahsi_{dataset}"  # for init='pretrained'
    config.model = ml_collections.ConfigDict(dict(
        name="mambahsi", hidden_dim=128, token_num=4, group_num=4, mamba_type="both",
        use_residual=True, use_att=True, d_state=16, d_conv=4, expand=2, scan_chunk=256,
        dtype="float32"))
    config.method.targets = TARGETS
    config.data.update(dict(neighborhood=1, input_size=1, pca=None, normalize="stretch"))
    if split == "official":
        config.data.train_per_class = official_split(dataset)
        config.data.val_per_class = VAL
        config.select = "best_val"
        config.eval_every_epochs = 1
    config.augment.update(dict(flip=False, radiation_noise=0.0, mixture_noise=0.0, mixup=0.0,
                               cutmix=0.0))
    config.optim.update(dict(name="adam", lr=3e-4, weight_decay=0.0, b1=0.9, b2=0.999, eps=1e-8,
                             schedule="step", step_epochs=200, step_gamma=1.0,
                             warmup_epochs=0.0, min_lr=0.0))
    config.label_smoothing = 0.0
    config.batch_size = 1
    config.epochs = 200
    return config
