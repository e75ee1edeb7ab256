"""The SpectralGPT encoder and converted checkpoints."""

from hsic_jax.models.converted import Classifier, load_converted, load_params, save_converted
from hsic_jax.models.spectralgpt import VARIANTS, SpectralGPT, model_from_config

__all__ = ["VARIANTS", "Classifier", "SpectralGPT", "load_converted", "load_params",
           "model_from_config", "save_converted"]
