"""The config of a run, checked before any work starts, in the user's terms.

`check_config(config)` raises a `ValueError` naming the first field whose value makes no
sense and the values it allows (`config.batch_size=0; expected an integer >= 1`), and
returns the warnings of the adjustments it made: a warm-up as long as the run is shortened to
a tenth of the run, so that `--config.epochs=2` works on its own.
"""

import logging
import math
import numbers

import ml_collections

from hsic_jax.adapters.methods import method_from_config
from hsic_jax.data.patches import PADDINGS, RESIZE_METHODS
from hsic_jax.data.preprocess import NORMALIZATIONS
from hsic_jax.data.split import training_pixels
from hsic_jax.models import FAMILIES, mae_family
from hsic_jax.train.optimizer import OPTIMIZERS, SCHEDULES
from hsic_jax.train import tasks

log = logging.getLogger(__name__)

FIT_ON = ("scene", "train")
SELECT = ("last", "best_val")
INIT = ("pretrained", "random")
WARMUP_SHARE = 0.1  # of the run, when the configured warm-up would fill it


def check_config(config: ml_collections.ConfigDict) -> list[str]:
    """Refuse a config that makes no sense (module docstring); return the warnings issued."""
    _check_run(config)
    _integer(config, "eval_every_epochs", 1)
    if config.get("eval_max_pixels") is not None:
        _integer(config, "eval_max_pixels", 1)
    _choice(config, "select", SELECT)
    _number(config, "label_smoothing", low=0, high=1, high_open=True)
    _check_data(config)
    for field in ("mixup", "cutmix"):
        _number(config, f"augment.{field}", low=0)
    _flag(config, "drop_last")
    mixing = [f"augment.{k}={config.augment[k]!r}" for k in ("mixup", "cutmix") if config.augment[k]]
    if mixing and not config.drop_last:
        raise ValueError(f"config.{', config.'.join(mixing)} with config.drop_last=False: batch "
                         "mixing pairs the entries of full batches; set drop_last=True or the "
                         "mixing off")
    _choice(config, "model.name", FAMILIES)
    method_from_config(config.method)
    tasks.of(config.model.name).check(config)  # the task's own; the model's geometry
    if config.select == "best_val" and not config.data.val_per_class:
        raise ValueError("config.select='best_val' selects on validation pixels: set "
                         "config.data.val_per_class (a count per class, or a fraction in (0, 1))")
    return _clip_warmup(config)


def _check_run(config) -> None:
    """The fields of every run, fine-tuning or pre-training: its length, seeds, checkpoints,
    initialisation, optimizer and noises."""
    for field in ("batch_size", "epochs", "num_seeds", "checkpoint_every_epochs"):
        _integer(config, field, 1)
    _integer(config, "seed", 0)
    _number(config, "checkpoint_every_seconds", low=0, low_open=True)
    _choice(config, "init", INIT)
    _check_optim(config)
    for field in ("radiation_noise", "mixture_noise"):
        _number(config, f"augment.{field}", low=0, high=1)


def _check_optim(config) -> None:
    _choice(config, "optim.name", OPTIMIZERS)
    _choice(config, "optim.schedule", SCHEDULES)
    _integer(config, "optim.step_epochs", 1)
    _integer(config, "optim.step_offset", 0)
    _number(config, "optim.step_gamma", low=0, high=1, low_open=True)
    _number(config, "optim.lr", low=0, low_open=True)
    _number(config, "optim.min_lr", low=0, high=config.optim.lr)
    _number(config, "optim.weight_decay", low=0)
    for field in ("b1", "b2"):
        _number(config, f"optim.{field}", low=0, high=1, high_open=True)
    _number(config, "optim.eps", low=0, low_open=True)
    _number(config, "optim.warmup_epochs", low=0)
    _number(config, "optim.layer_decay", low=0, high=1, low_open=True)


def check_pretrain_config(config: ml_collections.ConfigDict) -> list[str]:
    """Refuse a pre-training config (`hsic_jax.train.pretrain`) that makes no sense, as
    `check_config` does; return the warnings issued."""
    _check_run(config)
    _choice(config, "model.name", FAMILIES)
    mae_family(config.model.name)  # a family that offers a masked autoencoder
    _choice(config, "method.name", ("fft",))
    _check_inputs(config)
    mixing = [f"augment.{k}={config.augment[k]!r}" for k in ("mixup", "cutmix") if config.augment[k]]
    if mixing:
        raise ValueError(f"config.{', config.'.join(mixing)}: batch mixing mixes labels, which "
                         "pre-training has none of; set it to 0")
    _number(config, "pretrain.mask_ratio", low=0, high=1, low_open=True, high_open=True)
    for field in ("width", "depth", "heads"):
        _integer(config, f"pretrain.decoder.{field}", 1)
    _integer(config, "pretrain.reconstructions", 1)
    tasks.MAE.check(config)
    return _clip_warmup(config)


def _check_inputs(config) -> None:
    """The fields of `config.data` that make a model input of a pixel."""
    data = config.data
    if not (isinstance(data.neighborhood, int) and data.neighborhood >= 1 and data.neighborhood % 2):
        raise ValueError(f"config.data.neighborhood={data.neighborhood!r}; expected an odd "
                         "integer >= 1 (the pixel is the centre of its neighbourhood)")
    _choice(config, "data.padding", PADDINGS)
    _integer(config, "data.input_size", 1)
    if data.pca is not None:
        _integer(config, "data.pca", 1)
    _choice(config, "data.normalize", NORMALIZATIONS)
    _choice(config, "data.resize", RESIZE_METHODS)


def _check_data(config) -> None:
    _check_inputs(config)
    data = config.data
    _choice(config, "data.fit_on", FIT_ON)
    val = data.val_per_class
    if not (isinstance(val, numbers.Real) and not isinstance(val, bool)
            and (0 <= val < 1 or float(val).is_integer())):
        raise ValueError(f"config.data.val_per_class={val!r}; expected a count per class "
                         "(0 = none) or a fraction of each class's training pixels in (0, 1)")
    training_pixels(data.train_per_class)


def _clip_warmup(config) -> list[str]:
    warmup, epochs = config.optim.warmup_epochs, config.epochs
    if warmup < epochs:
        return []
    clipped = round(WARMUP_SHARE * epochs, 3)
    if isinstance(warmup, int):  # an int field of a user's config takes whole epochs only
        clipped = int(clipped)
    message = (f"config.optim.warmup_epochs={warmup} would fill the {epochs}-epoch run: warming "
               f"up over {clipped} epochs ({WARMUP_SHARE:.0%} of the run) instead")
    config.optim.warmup_epochs = clipped
    log.warning(message)
    return [message]


def _get(config, field: str):
    node = config
    for key in field.split("."):
        node = node[key]
    return node


def _integer(config, field: str, low: int) -> None:
    value = _get(config, field)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"config.{field}={value!r}; expected an integer >= {low}")


def _number(config, field: str, *, low=None, high=None, low_open=False, high_open=False) -> None:
    value = _get(config, field)
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        left = "" if low is None else f"{'(' if low_open else '['}{low}, "
        right = "∞)" if high is None else f"{high}{')' if high_open else ']'}"
        raise ValueError(f"config.{field}={value!r}; expected a number in {left or '(-∞, '}{right}")


def _flag(config, field: str) -> None:
    value = _get(config, field)
    if not isinstance(value, bool):
        raise ValueError(f"config.{field}={value!r}; expected True or False")


def _choice(config, field: str, allowed: tuple) -> None:
    value = _get(config, field)
    if value not in allowed:
        raise ValueError(f"config.{field}={value!r}; expected one of {allowed}")
