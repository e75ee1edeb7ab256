"""Task shapes: what the loop, the checks and the counter need of the way a model family trains.

A family's module names its shape with `TASK` (`'patch'` when it names none), and `of(name)`
resolves it, once per run, into one of the objects below, which the stages are handed: no code
outside this module and the families' own branches on the kind.

  PATCH      one input per labelled pixel, its neighbourhood resized to the input size; the
             module returns one row of logits per input (`step.train_step` /
             `step.pixel_logits`)
  SCENE      the whole scene is one input `(1, H, W, B)` of any H, W; per-pixel logits, the
             loss masked to the training pixels, one step per epoch, evaluation one forward
             (`step.scene_train_step` / `step.scene_logits`)
  CLASSICAL  scikit-learn baselines on single pixels' spectra, fitted once
             (`hsic_jax.train.classical`): no gradient steps, no parameters before the fit
  MAE        masked pre-training of an encoder on unlabelled pixels (`hsic_jax.train.pretrain`,
             `step.mae_train_step`) of a family that offers a masked autoencoder (`build_mae`,
             `hsic_jax.models`): a train step, nothing to predict

A new shape is a `Task` subclass here, with its entry in `TASKS`, and the family that trains in
it.
"""

import dataclasses
import functools

from hsic_jax.data.scenes import SCENES
from hsic_jax.evaluation.predict import EVAL_BATCH
from hsic_jax.models import family
from hsic_jax.train import classical, step
from hsic_jax.train.state import config_bands, mae_model, tuned_model


@dataclasses.dataclass(frozen=True)
class Task:
    """A task shape of gradient-trained families; the defaults are PATCH's.

    `whole_scene`: the data stage pads the scene for a whole-scene input
    (`hsic_jax.data.pipeline.load_data`); `eval_batch`: pixels per prediction batch (None: the
    whole scene at once); `fitted`: trained by one fit, not by steps (`fit`), and without
    parameters before it."""

    name: str
    whole_scene: bool = False
    eval_batch: int | None = EVAL_BATCH
    fitted: bool = False

    def check(self, config) -> None:
        """Refuse (ValueError) what `config` asks that this task cannot do. Builds the model
        when the bands are known, so that its geometry and the method's targets are checked;
        a geometry that does not fit names the config fields that set it."""
        if not _bands_known(config):
            return
        bands = config_bands(config)
        try:
            tuned_model(config, num_classes=config.data.get("num_classes") or 2, bands=bands)
        except ValueError as e:
            if str(e).startswith("config."):  # it names its field already
                raise
            source = (f"config.data.pca={config.data.pca}" if config.data.pca is not None
                      else f"the {bands} raw bands of {config.data.name} (config.data.pca=None)")
            raise ValueError(f"model {config.model.name!r} on {source} at "
                             f"config.data.input_size={config.data.input_size}: {e}") from None

    def steps_per_epoch(self, config, train_valid) -> int:
        """Batches per epoch of the seed with the fewest training pixels (`train_valid`
        `(S, N)` bool): full ones, and with `config.drop_last=False` the last, partial one."""
        fewest = int(train_valid.sum(axis=1).min())
        if fewest < config.batch_size:
            raise ValueError(f"{fewest} training pixels are fewer than one batch of "
                             f"config.batch_size={config.batch_size}")
        return (fewest // config.batch_size if config.drop_last
                else -(-fewest // config.batch_size))

    def step_functions(self, config, setup, geo: step.Geometry):
        """`(train_step, predict)` for one seed, with the run's settings bound:
        `train(state, frozen, cube, coords, labels, valid, seed, hp)` and
        `predict(params, frozen, cube, coords)`."""
        return (functools.partial(step.train_step, tuned=setup.tuned, optimizer=setup.optimizer,
                                  geo=geo, batch_size=config.batch_size,
                                  steps_per_epoch=setup.steps_per_epoch,
                                  augment_cfg=dict(config.augment), drop_last=config.drop_last),
                self.predict_function(setup.tuned, geo))

    def logits_function(self, tuned, geo: step.Geometry):
        """`logits(params, frozen, cube, coords) -> (N, C)` of one seed."""
        return functools.partial(step.pixel_logits, tuned=tuned, geo=geo,
                                 micro_batch=step.micro_batch(tuned.module))

    def predict_function(self, tuned, geo: step.Geometry):
        """`predict(params, frozen, cube, coords) -> (classes (N,), confidence (N,))` of one
        seed (`step.classes` of `logits_function`): the run's evaluation and map, and a new
        cube's (`hsic_jax.predict`)."""
        logits = self.logits_function(tuned, geo)
        return lambda params, frozen, cube, coords: step.classes(
            logits(params, frozen, cube, coords))


class SceneTask(Task):
    """The whole scene in, a logit per pixel out."""

    def check(self, config) -> None:
        """No neighbourhood, no patch augmentation: the scene is taken as it is."""
        name = config.model.name
        if config.data.neighborhood != 1:
            raise ValueError(f"config.data.neighborhood={config.data.neighborhood!r}: model "
                             f"{name!r} takes the whole scene as its input, not a "
                             "neighbourhood; set it to 1")
        on = [f"augment.{k}={v!r}" for k, v in config.augment.items() if v]
        if on:
            raise ValueError(f"config.{', config.'.join(on)}: model {name!r} trains on the "
                             "whole scene, which the patch augmentations do not apply to; set "
                             "them off (False / 0)")
        super().check(config)

    def steps_per_epoch(self, config, train_valid) -> int:
        return 1  # the scene, once

    def step_functions(self, config, setup, geo: step.Geometry):
        return (functools.partial(step.scene_train_step, tuned=setup.tuned,
                                  optimizer=setup.optimizer),
                self.predict_function(setup.tuned, geo))

    def logits_function(self, tuned, geo: step.Geometry):
        return functools.partial(step.scene_logits, tuned=tuned)


class ClassicalTask(Task):
    """Fitted once on single pixels' spectra (`hsic_jax.train.classical`)."""

    def check(self, config) -> None:
        if config.method.name != "fft":
            raise ValueError(f"config.method.name={config.method.name!r}: model "
                             f"{config.model.name!r} is fitted whole on the spectra, it has no "
                             "layers for a fine-tuning method; leave it 'fft'")
        if config.select != "last":
            raise ValueError(f"config.select={config.select!r}: model {config.model.name!r} is "
                             "fitted once, there is no state to select; set it to 'last'")

    def fit(self, config, workdir: str, data, seeds: list[int], primary: bool) -> dict:
        """Fit every seed, evaluate, write the outputs; the results (`classical.run`)."""
        return classical.run(config, workdir, data, seeds, primary)


class MAETask(Task):
    """Masked pre-training: the train step of `step.mae_train_step`, no predict."""

    def check(self, config) -> None:
        """The masked autoencoder of `config` keeps at least one token visible."""
        if _bands_known(config):
            module = mae_model(config, config_bands(config)).module
            if module.num_visible < 1:
                raise ValueError(f"config.pretrain.mask_ratio={config.pretrain.mask_ratio} "
                                 f"hides every one of the {module.num_tokens} tokens; lower it")

    def step_functions(self, config, setup, geo: step.Geometry):
        return (functools.partial(step.mae_train_step, tuned=setup.tuned,
                                  optimizer=setup.optimizer, geo=geo,
                                  batch_size=config.batch_size,
                                  steps_per_epoch=setup.steps_per_epoch,
                                  augment_cfg=dict(config.augment),
                                  norm_pix_loss=config.pretrain.norm_pix_loss), None)


def _bands_known(config) -> bool:
    """Whether the model's input channels are known before the scene is loaded (`config_bands`:
    the PCA components, or a benchmark scene's bands)."""
    return config.data.pca is not None or config.data.name in SCENES


PATCH = Task("patch")
SCENE = SceneTask("scene", whole_scene=True, eval_batch=None)
CLASSICAL = ClassicalTask("classical", fitted=True)
MAE = MAETask("mae")
TASKS = {t.name: t for t in (PATCH, SCENE, CLASSICAL, MAE)}


def of(model_name: str) -> Task:
    """The task model family `model_name` (`config.model.name`) trains in."""
    return TASKS[getattr(family(model_name), "TASK", PATCH.name)]
