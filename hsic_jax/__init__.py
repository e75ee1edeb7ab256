"""hsic-jax: fine-tune SpectralGPT (and other model families) for hyperspectral image
classification in JAX/Flax, fully or with parameter-efficient fine-tuning.

Where things live:
  hsic_jax/models/       one module per model family, and loading of converted checkpoints
  hsic_jax/adapters/     PEFT methods (one module each) behind one interface, applied to any
                         family by parameter path; export
  hsic_jax/data/         scenes, splits, PCA and normalisation, on-device patches, augmentation
  hsic_jax/train/        config checks, workdirs, train state, optimizer, step, loop, checkpoints
  hsic_jax/evaluation/   metrics, predictions and maps, results.json
  convert/               PyTorch checkpoint -> Flax converter CLI
"""

__version__ = "0.1.0"

from hsic_jax.models import load_converted

__all__ = ["load_converted"]
