"""Hyper-parameter sweeps in one program: every grid point × every seed is one run of the vmap.

    python run.py --config=configs/indian_pines_krona_plus.py \
        --sweep=method.lam=1,2,4,8 --sweep=optim.lr=3e-4,1e-3

A sweep field is one that changes numbers, not shapes or the program: the learning rate,
its floor, the weight decay, λ (LoRA+/KronA+), the label smoothing, the probabilities of
radiation and mixture noise, and the adapters' Gaussian init std (`SWEEPABLE`). The train
step takes them as traced scalars `hp` (`hyperparams`), one per run, and builds the
optimizer from them; the initial state scales each run's adapter factors from the config's
init std to its own (the factors are `init_std · N(0, 1)` or zero); a noise that any run
uses is in the program of all (at probability 0 it changes nothing). A run without a sweep
is a sweep of one point. The runs of a sweep are
laid out grid point by grid point, the seeds inside: run `g * S + s` is point g with seed s.

Any other field (a rank, KronA's shapes, the model's width, the method) is refused: its
values are separate programs, one config each.
"""

import ast
import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from hsic_jax.adapters.methods import method_from_config

# Field of the config → name of the traced scalar in `hp`.
SWEEPABLE = {"optim.lr": "lr", "optim.min_lr": "min_lr", "optim.weight_decay": "weight_decay",
             "method.lam": "lam", "label_smoothing": "label_smoothing",
             "augment.radiation_noise": "radiation_noise",
             "augment.mixture_noise": "mixture_noise", "method.init_std": "init_std"}
# The noises that are part of the program when any run uses them.
NOISES = ("radiation_noise", "mixture_noise")


def parse(specs: Sequence[str]) -> list[tuple[str, list]]:
    """`['method.lam=1,2,4', …]` → `[('method.lam', [1, 2, 4]), …]`, refusing in one line a
    malformed spec, a field that is not sweepable and a repeated field."""
    axes = []
    for spec in specs:
        field, sep, values = spec.partition("=")
        field = field.strip()
        if not sep or not field or not values.strip():
            raise ValueError(f"--sweep={spec}: expected FIELD=V1,V2,… (e.g. --sweep=method.lam=1,2,4)")
        if field not in SWEEPABLE:
            raise ValueError(f"--sweep={spec}: {field} cannot be swept in one program (it changes "
                             f"the shapes or the program); sweepable fields: "
                             f"{', '.join(SWEEPABLE)}; run one config per value of {field}")
        if field in (f for f, _ in axes):
            raise ValueError(f"--sweep={spec}: {field} is swept twice; give all its values in one "
                             "--sweep")
        axes.append((field, [_number(spec, v) for v in values.split(",")]))
    return axes


def grid(axes: Sequence[tuple[str, list]]) -> list[dict]:
    """Every combination of the axes' values, the last axis fastest: `[{field: value}, …]`
    (one empty point without axes)."""
    fields = [f for f, _ in axes]
    return [dict(zip(fields, values)) for values in itertools.product(*(v for _, v in axes))]


def point_config(config, point: Mapping):
    """A copy of `config` with the values of grid `point` set (a field the config lacks,
    such as λ of a method without a B side, is refused)."""
    config = config.copy_and_resolve_references()
    with config.unlocked():
        for field, value in point.items():
            *parents, leaf = field.split(".")
            node = config
            for name in parents:
                node = node[name]
            if leaf not in node:
                why = {"method.lam": " has no B side", "method.init_std": " has no factors"}
                raise ValueError(f"--sweep={field}=…: config.{'.'.join(parents)} has no field "
                                 f"{leaf!r} (method {config.method.name!r}"
                                 f"{why.get(field, '')})")
            if field == "method.init_std" and config.method.get("init") != "gaussian":
                raise ValueError(f"--sweep={field}=…: the factors' init is "
                                 f"{config.method.get('init')!r}; init_std applies to "
                                 "method.init='gaussian'")
            node[leaf] = float(value) if isinstance(node[leaf], float) else value
    return config


def summary(point: Mapping, results: Mapping) -> dict:
    """One entry of `results['sweep']`: the point's values, its metrics over seeds and the
    per-seed results."""
    keys = ("oa", "oa_std", "aa", "aa_std", "kappa", "kappa_std")
    return {"values": dict(point), **{k: results[k] for k in keys if k in results},
            "seeds": results["seeds"]}


def hyperparams(config, points: Sequence[Mapping], num_seeds: int) -> dict:
    """The traced scalars of every run, grid point by grid point, seeds inside:
    `{name: (len(points) * num_seeds,) float32}` (points' values over `config`'s own)."""
    rows = []
    for point in points:
        values = own(config)
        values.update({SWEEPABLE[f]: v for f, v in point.items()})
        rows += [values] * num_seeds
    return {k: np.array([r[k] for r in rows], np.float32) for k in SWEEPABLE.values()}


def own(config) -> dict:
    """`config`'s values of the sweepable fields, by their `hp` names (the method's λ: 1
    without a B side; init std: 1 without factors)."""
    return {"lr": float(config.optim.lr), "min_lr": float(config.optim.min_lr),
            "weight_decay": float(config.optim.weight_decay),
            "lam": float(method_from_config(config.method).lam),
            "label_smoothing": float(config.get("label_smoothing", 0.0)),
            "radiation_noise": float(config.augment.radiation_noise),
            "mixture_noise": float(config.augment.mixture_noise),
            "init_std": float(config.method.get("init_std", 1.0))}


def program_config(config, points: Sequence[Mapping]):
    """`config` with each noise at the largest probability of any grid point: the noises the
    program must contain (the probabilities themselves are each run's `hp`)."""
    return point_config(config, {f"augment.{name}": max(
        [config.augment[name]] + [p[f"augment.{name}"] for p in points
                                  if f"augment.{name}" in p]) for name in NOISES})


def _number(spec: str, text: str) -> float:
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"--sweep={spec}: {text.strip()!r} is not a number")
    return value
