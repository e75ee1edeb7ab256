"""Model families, one module each, chosen by `config.model.name`, and converted checkpoints.

A family's module `hsic_jax/models/<name>.py` exports:

  build(model_cfg, *, input_size, bands, num_classes) -> nn.Module
      the classifier: `(N, *module.input_shape)` float32 → logits `(N, C)` (`train=` for
      dropout), its params a plain dict `{'backbone', 'head'}`, with attributes `input_shape`
      (the `(H, W, B)` of one input) and `num_classes`, and optionally `activation_size`
      (the floats of one input's largest activation: prediction on a CPU then runs in
      micro-batches that keep it in the caches, `hsic_jax.train.step.micro_batch`);
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
      its name in reports and tables ('SpectralFormer'): what makes the module a family;
  REPORT_ORDER   (optional)
      its place among the families in reports;
  COLUMN_PER_METHOD   (optional, False)
      the report gives each fine-tuning method of this family a column of its own (the
      paper's subject, SpectralGPT), instead of one column for the family.

Adding a family touches its module, its configs and its tests: `FAMILIES` finds it (a module
of this package that names a `DISPLAY_NAME`), ordered by its `REPORT_ORDER` (the paper's
columns; a family without one comes after them, by name).

A family that offers an encoder and a decoder can be pre-trained (`python pretrain.py`,
`hsic_jax.train.pretrain`, the task `MAE`) when its module exports

  build_mae(model_cfg, decoder_cfg, *, input_size, bands, mask_ratio) -> nn.Module
      its masked autoencoder: `(N, *module.input_shape)` float32, the `'mask'` rng stream →
      `(pred (N, T, P), mask (N, T))` (each token's predicted pixels; 1 = hidden), its params
      `{'backbone': the classifier's, 'decoder'}`, with attributes `num_tokens` (T) and
      `num_visible`, and methods `patchify(x) -> (N, T, P)` (the target), `unpatchify(tokens)
      -> (N, H, W, B)`, `checkpoint_fields()` (the manifest's `model` and `decoder` of its
      converted checkpoint) and `checkpoint_mismatch(model_fields) -> str | None` (why a
      converted encoder cannot start its pre-training);

`mae_family(name)` refuses any other family, naming those that can (`spectralgpt.py` is the
example).

A family's `TASK` names the shape of task it trains in (`hsic_jax.train.tasks`): 'patch' (the
default: one input per labelled pixel, its neighbourhood; one row of logits per input),
'scene' (the whole scene `(1, H, W, B)` in, per-pixel logits `(1, H, W, C)` out) or
'classical' (scikit-learn baselines on single pixels' spectra, `svm` and `rf`: the module
exports instead `estimator(model_cfg, seed, min_class_count)`, `fitted_size(fitted)` and
`describe(fitted)`, which `hsic_jax.train.classical` fits).
"""

import ast
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

from hsic_jax.models.converted import Classifier, load_converted, load_params, save_converted
from hsic_jax.models.spectralgpt import VARIANTS, SpectralGPT, model_from_config



def _discover() -> tuple[str, ...]:
    """The family modules of this package, read without importing them: those that assign
    `DISPLAY_NAME` at the top level, by `REPORT_ORDER` and then by name."""
    found = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        tree = ast.parse((Path(__file__).parent / f"{info.name}.py").read_text())
        names = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                 for t in node.targets if isinstance(t, ast.Name)}
        if "DISPLAY_NAME" in names:
            order = names.get("REPORT_ORDER")
            found.append((order.value if isinstance(order, ast.Constant) else 1000, info.name))
    return tuple(name for _, name in sorted(found))


FAMILIES = _discover()


def family(name: str) -> ModuleType:
    """The module of model family `name` (`config.model.name`)."""
    if name not in FAMILIES:
        raise ValueError(f"model.name {name!r} is not one of {FAMILIES}")
    return importlib.import_module(f"hsic_jax.models.{name}")


def mae_family(name: str) -> ModuleType:
    """The module of model family `name` (`config.model.name`) when it can be pre-trained (it
    exports `build_mae`, see above); a one-line refusal naming the families that can otherwise."""
    fam = family(name)
    if not hasattr(fam, "build_mae"):
        able = tuple(n for n in FAMILIES if hasattr(family(n), "build_mae"))
        raise ValueError(f"config.model.name={name!r}: {fam.DISPLAY_NAME} offers no masked "
                         f"autoencoder (no build_mae) to pre-train; the families that can: {able}")
    return fam


__all__ = ["FAMILIES", "VARIANTS", "Classifier", "SpectralGPT", "family", "load_converted",
           "load_params", "mae_family", "model_from_config", "save_converted"]
