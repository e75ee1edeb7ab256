"""Indian Pines, full fine-tuning with the official SpectralGPT fine-tuning recipe.

    python run.py --config=configs/indian_pines_fft_official.py

The paper (section 4.3) gives AdamW, weight decay 0.05, batch 64 and 50 epochs; the official
script (`main_finetune.py` of danfenghong/IEEE_TPAMI_SpectralGPT, see
../shared/docs/spectralgpt.md §3) also uses what this config switches on over
`configs/indian_pines_fft.py`: layer-wise learning-rate decay 0.75, 20 of the 50 epochs of
linear warm-up, a cosine decay to 1e-14, timm mixup 0.8 / cutmix 1.0 with label smoothing 0.1,
bicubic (PyTorch) resizing of the inputs, and drop path 0.1 (already the base's). Its learning
rate is blr 1e-3 · batch / 256 = 2.5e-4, which the base config already uses for FFT.
"""

from configs import indian_pines


def get_config():
    config = indian_pines.get_config("fft")
    config.optim.update(dict(lr=1e-3 * config.batch_size / 256, layer_decay=0.75,
                             warmup_epochs=20, min_lr=1e-14))
    config.augment.update(dict(mixup=0.8, cutmix=1.0))
    config.label_smoothing = 0.1
    config.data.resize = "bicubic"
    config.model.drop_path = 0.1
    return config
