"""The model and train state of a run, built in one place for the loop, the benchmark and `count`.

    tuned = tuned_model(config, num_classes=C, bands=B)       # family module + method
    setup, state, frozen = create_train_state(config, tuned, seeds, steps_per_epoch,
                                              {"backbone": pretrained_backbone(config, module)})

`setup` holds what the jitted step closes over (the tuned model, labels, and the optimizer
and schedule as functions of the run's hyper-parameters `hp`, see `hsic_jax.train.sweep`);
`state` is the plain pytree the step carries and orbax checkpoints:
`{'step': (S,) int32, 'params': ..., 'opt_state': ...}`, every leaf with a leading seed axis,
where `params` are the trainable parameters only (`hsic_jax.train.partition`). `frozen`,
the rest (a PEFT method's backbone), has no seed axis: every seed shares it, the step takes
it unbatched (`in_axes=None`), and checkpoints do not hold it — it is the converted backbone
on disk (`init='pretrained'`) or drawn again from `config.seed`'s key (`init='random'`).
Parameter initialisation is one jitted program for every seed.
"""

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from hsic_jax.adapters.methods import method_from_config
from hsic_jax.adapters.tuned import TunedModel, example_input
from hsic_jax.data.scenes import SCENES
from hsic_jax.models import family, mae_family
from hsic_jax.models.converted import load_params, manifest_family, read_manifest
from hsic_jax.train.optimizer import layer_decay_scales, make_optimizer, make_schedule
from hsic_jax.train import sweep
from hsic_jax.train.partition import split


def tuned_model(config: ml_collections.ConfigDict, *, num_classes: int, bands: int) -> TunedModel:
    """`config.model`'s family module on `(input_size, input_size, bands)` inputs, tuned by
    `config.method`."""
    fam = family(config.model.name)
    module = fam.build(config.model, input_size=config.data.input_size, bands=bands,
                       num_classes=num_classes)
    return TunedModel.create(module, method_from_config(config.method), fam.ADAPTABLE)


def mae_model(config: ml_collections.ConfigDict, bands: int) -> TunedModel:
    """The masked autoencoder of `config.model`'s family (its `build_mae`) with
    `config.pretrain`'s decoder and mask ratio, on `(input_size, input_size, bands)` inputs
    (masked pre-training, `hsic_jax.train.pretrain`), every parameter trained (method 'fft')."""
    fam = mae_family(config.model.name)
    module = fam.build_mae(config.model, config.pretrain.decoder,
                           input_size=config.data.input_size, bands=bands,
                           mask_ratio=config.pretrain.mask_ratio)
    return TunedModel.create(module, method_from_config(config.method), fam.ADAPTABLE)


def config_classes(config: ml_collections.ConfigDict) -> int:
    """The model's output classes without loading the scene: `config.data.num_classes`, or the
    classes the registry records for a benchmark scene."""
    if config.data.get("num_classes") is not None:
        return int(config.data.num_classes)
    if config.data.name not in SCENES:
        raise ValueError(f"the classes of scene {config.data.name!r} are known only once it is "
                         "loaded; set config.data.num_classes")
    return len(SCENES[config.data.name].class_names)


def config_bands(config: ml_collections.ConfigDict) -> int:
    """The model's input channels without loading the scene: the PCA components, or the bands
    the registry records for a benchmark scene."""
    if config.data.pca is not None:
        return int(config.data.pca)
    if config.data.name not in SCENES:
        raise ValueError(f"the bands of scene {config.data.name!r} are known only once it is "
                         "loaded; set config.data.pca")
    return SCENES[config.data.name].shape[-1]


@dataclasses.dataclass(frozen=True)
class TrainSetup:
    """What a run's jitted functions close over. `labels` covers every parameter (frozen
    ones included); `optimizer(hp)` is `(tx, schedule)` of the trainable ones at
    hyper-parameters `hp` (`hsic_jax.train.sweep`: Python floats or traced scalars); `hp`
    are the config's own."""

    tuned: TunedModel
    labels: Any
    optimizer: Callable[[Mapping], tuple[optax.GradientTransformation, optax.Schedule]]
    hp: dict
    steps_per_epoch: int
    total_steps: int

    @property
    def tx(self) -> optax.GradientTransformation:
        """The optimizer at the config's own hyper-parameters."""
        return self.optimizer(self.hp)[0]

    @property
    def schedule(self) -> optax.Schedule:
        """The learning rate per step at the config's own hyper-parameters."""
        return self.optimizer(self.hp)[1]


def create_train_state(config: ml_collections.ConfigDict, tuned: TunedModel,
                       seeds: Sequence[int], steps_per_epoch: int,
                       pretrained: Mapping | None = None,
                       init_std: Sequence[float] | None = None) -> tuple[TrainSetup, dict, dict]:
    """The setup, the initial state of the runs of `seeds` and the shared frozen parameters.

    Run r's parameters come from key `seeds[r]`, with the `pretrained` subtrees (e.g.
    `{'backbone': ...}`; None ones are drawn fresh) in place of the fresh ones, and its adapter
    factors drawn at `init_std[r]` (a sweep's; default the
    config's); the frozen part is the first run's (`config.seed`'s).
    """
    labels = tuned.labels(jax.eval_shape(lambda: init_params(tuned, jax.random.key(0))))
    trainable_labels, _ = split(labels, labels)
    total_steps = steps_per_epoch * config.epochs
    lr_scales = layer_decay(config, tuned, trainable_labels)

    def optimizer(hp):
        optim = {**config.optim.to_dict(), **{k: hp[k] for k in ("lr", "min_lr", "weight_decay")}}
        schedule = make_schedule(optim, total_steps, steps_per_epoch)
        return make_optimizer(optim, trainable_labels, schedule, hp["lam"],
                              lr_scales=lr_scales), schedule

    hp = sweep.own(config)
    tx = optimizer(hp)[0]

    @jax.jit
    def init(seeds, stds, pretrained):  # (R,) → (state, frozen), one program for every run
        def one(seed, std):
            params = init_params(tuned, jax.random.key(seed), pretrained)
            if "adapters" in params:  # factors are init_std · N(0, 1) or 0: this run's std
                params["adapters"] = jax.tree.map(lambda a: a * (std / hp["init_std"]),
                                                  params["adapters"])
            params, _ = split(params, labels)
            return {"step": jnp.zeros((), jnp.int32), "params": params,
                    "opt_state": tx.init(params)}

        _, frozen = split(init_params(tuned, jax.random.key(seeds[0]), pretrained), labels)
        return jax.vmap(one)(seeds, stds), frozen

    stds = np.full(len(seeds), hp["init_std"], np.float32) if init_std is None else init_std
    state, frozen = init(np.asarray(seeds, np.int32), np.asarray(stds, np.float32),
                         {k: v for k, v in (pretrained or {}).items() if v is not None})
    return TrainSetup(tuned, labels, optimizer, hp, steps_per_epoch, total_steps), state, frozen


def init_params(tuned: TunedModel, key: jax.Array, pretrained: Mapping | None = None) -> dict:
    """Fresh parameters of `tuned`, with the given `pretrained` subtrees in place of its own."""
    return {**tuned.init(key, example_input(tuned.module)), **(pretrained or {})}


def layer_decay(config: ml_collections.ConfigDict, tuned: TunedModel, labels: Any):
    """Per-leaf learning-rate scales of layer-wise decay (`optim.layer_decay`), None when 1."""
    decay = config.optim.layer_decay
    if decay == 1:
        return None
    fam = family(config.model.name)
    if not hasattr(fam, "layer_ids"):
        raise ValueError(f"config.optim.layer_decay={decay}: model {config.model.name!r} has no "
                         "layers to decay over; set it to 1")
    return layer_decay_scales(labels, *fam.layer_ids(tuned.module), decay)


def pretrained_backbone(config: ml_collections.ConfigDict, module) -> dict | None:
    """The converted backbone of `config.pretrained_dir` (None with `config.init == 'random'`).

    Refused when the checkpoint is of another family, or (the family's `pretrained_mismatch`)
    was converted for another architecture than `module`'s.
    """
    if config.init == "random":
        return None
    manifest = read_manifest(config.pretrained_dir, config.model.name)
    converted = manifest_family(manifest)
    if converted != config.model.name:
        raise ValueError(f"{config.pretrained_dir} holds a {converted} checkpoint, not a "
                         f"{config.model.name} one: set --config.model.name={converted} or "
                         "--config.pretrained_dir to a conversion of the other family")
    mismatch = getattr(family(converted), "pretrained_mismatch", lambda *_: None)
    problem = mismatch(manifest["model"], module)
    if problem:
        raise ValueError(f"{config.pretrained_dir} was converted for another model {problem}")
    return load_params(config.pretrained_dir)["backbone"]
