"""Count trainable and total parameters and the adapter storage of config files.

    python -m hsic_jax.count configs/botswana_*.py [--json]

Shapes come from `jax.eval_shape`, so no weights are materialised (ViT-B counts in well
under a second). `adapter_bytes` is the exact size of the `adapters.npz` that
`hsic_jax.adapters.export.export_adapters` writes for the method; MB in the table are
MiB (2^20 bytes), the unit of the paper's Table 11.
"""

import argparse
import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Sequence

import jax
import ml_collections
import numpy as np

from hsic_jax.adapters.export import npz_bytes, stored_arrays
from hsic_jax.adapters.tuned import example_input
from hsic_jax.train.state import config_bands, config_classes, tuned_model
from hsic_jax.train import tasks

MIB = 2 ** 20


def load_config(path: str) -> ml_collections.ConfigDict:
    """`get_config()` of the Python config file at `path`; `FILE:ARG` is `get_config(ARG)`
    (as `run.py --config=FILE:ARG`)."""
    path, _, arg = path.partition(":")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path} does not exist")
    spec = importlib.util.spec_from_file_location(
        f"_config_{os.path.splitext(os.path.basename(path))[0]}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise NotAnExperiment(f"{path} defines no get_config()")
    if any(p.default is p.empty for p in inspect.signature(module.get_config).parameters.values()):
        raise NotAnExperiment(f"{path} is a base: its get_config() takes arguments")
    config = module.get_config(arg) if arg else module.get_config()
    if "pretrain" in config:
        raise NotAnExperiment(f"{path} is a pre-training config (pretrain.py): its encoder is "
                              "counted by the fine-tuning configs that load it")
    if tasks.of(config.model.name).fitted:
        raise NotAnExperiment(f"{path}: a {config.model.name} has no parameters before it is "
                              "fitted (its run records them)")
    return config


class NotAnExperiment(ValueError):
    """A Python file in configs/ that is not one experiment (a base, a package file)."""


def param_shapes(config: ml_collections.ConfigDict):
    """The params pytree of `config`'s model as `jax.ShapeDtypeStruct` leaves, and the tuned
    model (the family's module with the method)."""
    tuned = tuned_model(config, num_classes=config_classes(config), bands=config_bands(config))
    shapes = jax.eval_shape(tuned.init, jax.random.key(0), example_input(tuned.module))
    return shapes, tuned


def count(config: ml_collections.ConfigDict) -> dict:
    """`{'dataset', 'model', 'method', 'trainable', 'total', 'adapter_bytes'}` of one config."""
    shapes, tuned = param_shapes(config)
    stored = stored_arrays(shapes, tuned)
    size = lambda leaves: sum(int(np.prod(a.shape)) for a in leaves)
    return dict(dataset=config.data.name, model=config.model.name, method=tuned.method.name,
                trainable=size(stored.values()), total=size(jax.tree.leaves(shapes)),
                adapter_bytes=npz_bytes(stored))


def table(rows: Sequence[dict]) -> str:
    """A Markdown table of `count` rows (with their `config`)."""
    lines = ["| config | trainable | total | % trainable | #Params (M) | adapters (MB) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['config']} | {r['trainable']:,} | {r['total']:,} | "
                     f"{100 * r['trainable'] / r['total']:.3f} | {r['trainable'] / 1e6:.3f} | "
                     f"{r['adapter_bytes'] / MIB:.2f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hsic_jax.count", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+", metavar="CONFIG", help="config files (.py)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead")
    args = parser.parse_args(argv)
    rows = []
    for path in args.configs:
        try:
            config = load_config(path)
        except NotAnExperiment as e:  # so that `configs/*.py` works
            print(f"skipped {e}", file=sys.stderr)
            continue
        rows.append(dict(config=path, **count(config)))
    print(json.dumps(rows, indent=2) if args.json else table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
