"""Model families, one module each, chosen by `config.model.name`, and converted checkpoints.

A family's module `hsic_jax/models/<name>.py` exports:

  build(model_cfg, *, input_size, bands, num_classes) -> nn.Module
      the classifier: `(N, *module.input_shape)` float32 → logits `(N, C)` (`train=` for
      dropout), its params a plain dict `{'backbone', 'head'}`, with attributes `input_shape`
      (the `(H, W, B)` of one input) and `num_classes`;
  model_from_config(fields) -> nn.Module
      the module from the `model` fields a converted checkpoint's manifest records;
  ADAPTABLE
      `{name: hsic_jax.adapters.tuned.Target}`: the linear layers a fine-tuning method may
      target (every method then applies to the family without code of its own);
  layer_ids(module) -> (layer_of, num_layers)   (optional)
      the layer id of each parameter path, for layer-wise learning-rate decay;
  pretrained_mismatch(converted_fields, module) -> str | None   (optional)
      why a converted checkpoint does not fit the configured module, and what to set;
  DISPLAY_NAME
      its name in reports and tables ('SpectralFormer');
  COLUMN_PER_METHOD   (optional, False)
      the report gives each fine-tuning method of this family a column of its own (the
      paper's subject, SpectralGPT), instead of one column for the family.

Adding a family touches its module, its configs and its tests: `FAMILIES` below lists it.

A family's `TASK` names the shape of task it trains in (`hsic_jax.train.tasks`): 'patch' (the
default: one input per labelled pixel, its neighbourhood; one row of logits per input),
'scene' (the whole scene `(1, H, W, B)` in, per-pixel logits `(1, H, W, C)` out) or
'classical' (scikit-learn baselines on single pixels' spectra, `svm` and `rf`: the module
exports instead `estimator(model_cfg, seed, min_class_count)`, `fitted_size(fitted)` and
`describe(fitted)`, which `hsic_jax.train.classical` fits).
"""

import importlib
from types import ModuleType

from hsic_jax.models.converted import Classifier, load_converted, load_params, save_converted
from hsic_jax.models.spectralgpt import VARIANTS, SpectralGPT, model_from_config

FAMILIES = ("spectralgpt", "spectralformer", "mambahsi", "hypersigma", "svm", "rf")

def family(name: str) -> ModuleType:
    """The module of model family `name` (`config.model.name`)."""
    if name not in FAMILIES:
        raise ValueError(f"model.name {name!r} is not one of {FAMILIES}")
    return importlib.import_module(f"hsic_jax.models.{name}")


__all__ = ["FAMILIES", "VARIANTS", "Classifier", "SpectralGPT", "family", "load_converted",
           "load_params", "model_from_config", "save_converted"]
