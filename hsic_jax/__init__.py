"""hsic-jax: fine-tune SpectralGPT for hyperspectral image classification in JAX/Flax.

Where things live:
  hsic_jax/models/        the SpectralGPT encoder (Flax linen) and loading of converted checkpoints
  hsic_jax/adapters/     PEFT methods (one module each) behind one interface, merge and export
  hsic_jax/data/         scenes, splits, PCA and normalisation, on-device patches, augmentation
  hsic_jax/train/        optimizer labels, train step, loop, checkpoints
  hsic_jax/evaluation/   metrics, classification maps, reports
  convert/               PyTorch checkpoint -> Flax converter CLI
"""

__version__ = "0.1.0"

from hsic_jax.models import load_converted

__all__ = ["load_converted"]
