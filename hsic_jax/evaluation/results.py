"""The content of `results.json`: metrics over seeds, the protocol that produced them, leakage.

`results(config, data, seeds, per_seed, ...)` assembles what `hsic_jax.report` reads:
`dataset`, `model`, `method`, the means over seeds (`oa`, `aa`, `kappa`, with `_std` for
several seeds), `per_class`, `confusion` (first seed), `seeds` (per-seed metrics and
leakage), `protocol` (split, window, pixel counts, fitting, selection, a one-line summary)
and `leakage`, and `machine` (where it ran: `machine()`). NaN (an undefined kappa, a class
without test pixels) is written as null.
"""

import os
import platform
from collections.abc import Sequence

import jax
import numpy as np

from hsic_jax.data.pipeline import Data


def results(config, data: Data, seeds: Sequence[int], per_seed: list[dict], *,
            trainable_params: int, total_params: int, train_seconds: float,
            last: list[dict] | None = None, selection: dict | None = None) -> dict:
    """`results.json` of a run (module docstring). `last`: the last state's test metrics when
    another state was selected; `selection`: per seed `val_oa` and `selected_epoch` of it."""
    out = {
        "dataset": config.data.name, "model": config.model.name, "method": config.method.name,
        "config": config.to_dict(), "class_names": list(data.scene.class_names),
        "trainable_params": trainable_params, "total_params": total_params,
        "train_seconds": train_seconds,
        "protocol": protocol(config, data),
        "leakage": {"window": data.window,
                    **{part: _mean_or_none([lk[part] for lk in data.leakage])
                       for part in ("test", "val")}},
        "split": {"rows": data.splits[0].table()},
        "machine": machine(),
        **means(per_seed, len(seeds) > 1),
    }
    per_class = np.array([r["per_class"] for r in per_seed], dtype=float)
    out["per_class"] = _nan_to_none(_nanmean(per_class))
    out["confusion"] = per_seed[0]["confusion"]
    if len(seeds) > 1:
        out["per_class_std"] = _nan_to_none(np.sqrt(_nanmean((per_class - _nanmean(per_class)) ** 2)))
    out["seeds"] = [
        {"seed": s, **{k: _nan_to_none(np.array([r[k]], dtype=float))[0] for k in ("oa", "aa", "kappa")},
         "per_class": _nan_to_none(np.array(r["per_class"], dtype=float)), "leakage": lk}
        for s, r, lk in zip(seeds, per_seed, data.leakage)]
    if selection is not None:
        for entry, oa, epoch in zip(out["seeds"], selection["val_oa"], selection["epoch"]):
            entry.update(val_oa=float(oa), selected_epoch=int(epoch))
    if last is not None:
        out["last"] = means(last, len(seeds) > 1)
    return out


def machine() -> dict:
    """Where a run ran, for reading its timings: the CPU model and its cores, JAX's devices
    (`'cpu'`, or e.g. `'NVIDIA H200'`, with their count) and the versions."""
    cpu = platform.processor()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    kinds = [d.device_kind for d in jax.devices()]
    return {"cpu": cpu, "cores": os.cpu_count(),
            "devices": {kind: kinds.count(kind) for kind in dict.fromkeys(kinds)},
            "jax": jax.__version__, "platform": platform.platform()}


def protocol(config, data: Data) -> dict:
    """How the numbers were obtained: split, window, pixel counts, fitting and selection."""
    split = data.splits[0]
    kind = ("per_class" if split.config["per_class"] is not None else
            "fraction" if split.config["fraction"] is not None else "given")
    counts = {part: len(getattr(split, part)) for part in ("train", "val", "test")}
    disjoint = bool(config.data.spatially_disjoint)
    window = data.window
    inside = ("the whole-scene input that holds the training pixels" if window == "scene"
              else f"a {window}-pixel training window")
    select = "the last state" if config.select == "last" else "the state with the best validation OA"
    leak = np.mean([lk["test"] for lk in data.leakage]) if counts["test"] else float("nan")
    summary = (f"{'spatially disjoint ' if disjoint else ''}{kind.replace('_', ' ')} split, "
               f"{counts['train']} train / {counts['val']} val / {counts['test']} test pixels, "
               f"{100 * leak:.2f} % of test pixels inside {inside}; "
               f"{'PCA and ' if config.data.pca else ''}normalisation fitted on the "
               f"{config.data.fit_on} pixels; tested once, with {select}")
    return {"split": kind, "spatially_disjoint": disjoint, "window": window, **counts,
            "fit_on": config.data.fit_on, "select": config.select, "summary": summary}


def means(per_seed: list[dict], with_std: bool) -> dict:
    """`oa`, `aa`, `kappa` means over seeds (and their `_std`); None for NaN (kappa of one class)."""
    out = {}
    for key in ("oa", "aa", "kappa"):
        values = np.array([r[key] for r in per_seed], dtype=float)
        out[key] = _nan_to_none(np.mean(values, keepdims=True))[0]
        if with_std:
            out[f"{key}_std"] = _nan_to_none(np.std(values, keepdims=True))[0]
    return out


def _mean_or_none(values: list) -> float | None:
    return None if any(v is None for v in values) else float(np.mean(values))


def _nanmean(a: np.ndarray) -> np.ndarray:
    """Mean over the seed axis ignoring NaN, NaN (without a warning) where every seed is NaN."""
    count = np.sum(~np.isnan(a), axis=0)
    return np.where(count > 0, np.nansum(a, axis=0) / np.maximum(count, 1), np.nan)


def _nan_to_none(a: np.ndarray) -> list:
    return [None if np.isnan(v) else float(v) for v in a]
