"""PNG figures: the classification map beside the ground truth, the confidence map, training curves,
OA vs parameters, a pre-training's reconstructions; `map_title` names a run's maps. (GeoTIFF maps: `hsic_jax.data.io.save_geotiff`.)

Figures are built with matplotlib's object-oriented API (`matplotlib.figure.Figure`, rendered
by Agg), so importing this module changes no global matplotlib state and needs no display.
Every PNG is written atomically (temporary file in the same folder, then `os.replace`).
"""

import colorsys
import json
import math

import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from hsic_jax.data.io import atomic_write

# 20 colours that stay distinct side by side (Trubetskoy's "20 distinct colours"), in an order
# where the first few classes get the most contrasting ones. Class k gets colour k - 1.
_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#ffe119", "#f58231", "#911eb4", "#42d4f4",
            "#f032e6", "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#fffac8",
            "#800000", "#aaffc3", "#808000", "#ffd8b1", "#000075", "#a9a9a9")
_MAP_DPI = 150
_PANELS = {"loss": ("Loss", 1.0), "acc": ("Accuracy (%)", 100.0), "lr": ("Learning rate", 1.0)}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_CONFIDENCE_CMAP = "viridis"


def palette(num_classes: int) -> np.ndarray:
    """`(num_classes + 1, 3)` RGB in [0, 1]: row 0 black (background), row k the colour of class k.

    Beyond 20 classes the extra colours are evenly spaced hues.
    """
    extra = max(num_classes - len(_COLOURS), 0)
    colours = [to_rgb(c) for c in _COLOURS[:num_classes]]
    colours += [colorsys.hsv_to_rgb(i / extra, 0.75, 0.9) for i in range(extra)]
    return np.array([(0.0, 0.0, 0.0), *colours])


def map_title(dataset: str, method: str, seed: int, oa: float) -> str:
    """The title of a run's maps, e.g. "indian_pines · fft · seed 0 · OA 89.67 %"; `oa` is a fraction."""
    if not 0 <= oa <= 1:
        raise ValueError(f"map_title: oa must be a fraction in [0, 1]; got {oa}")
    return f"{dataset} · {method} · seed {seed} · OA {100 * oa:.2f} %"


def save_classification_map(path: str, pred_map, gt, class_names, title: str | None = None, *,
                            mask_unlabelled: bool = False) -> None:
    """Writes a PNG of the predicted map beside the ground truth, with a class legend.

    Args:
      path: the PNG to write.
      pred_map: `(H, W)` int, 0 = not predicted, 1..C = predicted class.
      gt: `(H, W)` int, 0 = unlabelled, 1..C = class.
      class_names: C names; class k is `class_names[k - 1]`.
      title: optional figure title.
      mask_unlabelled: paint the prediction as "0 unlabelled" where `gt` is 0, so that the map shows
        the labelled regions only.
    """
    pred_map, gt = np.asarray(pred_map), np.asarray(gt)
    num_classes = len(class_names)
    if pred_map.ndim != 2 or pred_map.shape != gt.shape:
        raise ValueError(f"{path}: pred_map and gt must be (H, W) of the same shape; got "
                         f"pred_map {pred_map.shape}, gt {gt.shape}")
    for name, a in (("pred_map", pred_map), ("gt", gt)):
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{path}: {name} must hold integer class ids; got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() > num_classes):
            raise ValueError(f"{path}: {name} values must be in 0..{num_classes} "
                             f"(len(class_names)); got {a.min()}..{a.max()}")
    if mask_unlabelled:
        pred_map = np.where(gt == 0, 0, pred_map)
    colours = palette(num_classes)
    cmap = ListedColormap(colours)
    norm = BoundaryNorm(np.arange(num_classes + 2) - 0.5, num_classes + 1)

    wide = _is_wide(gt.shape)
    panel_w, panel_h = _panel_size(gt.shape)
    labels = ["0 unlabelled"] + [f"{k} {n}" for k, n in enumerate(class_names, start=1)]
    text_w = 0.6 + 0.075 * max(map(len, labels))          # inches of one legend column
    if wide:
        ncols = max(1, min(len(labels), int(panel_w // text_w)))
        size = (panel_w + 0.3, 2 * panel_h + 1.2 + 0.22 * math.ceil(len(labels) / ncols))
    else:
        ncols = 1
        size = (2 * panel_w + text_w + 0.5, max(panel_h + 0.8, 0.22 * len(labels) + 0.8))
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(2, 1) if wide else fig.subplots(1, 2)
    for ax, image, label in zip(axes, (pred_map, gt), ("Prediction", "Ground truth")):
        ax.imshow(image, cmap=cmap, norm=norm, interpolation="nearest")
        ax.set_title(label)
        ax.set_axis_off()
    handles = [Patch(facecolor=c, edgecolor="0.5", label=t) for c, t in zip(colours, labels)]
    fig.legend(handles=handles, loc="outside lower center" if wide else "outside right center",
               ncols=ncols, fontsize="small", frameon=False)
    if title:
        fig.suptitle(title)
    _save(fig, path, dpi=_MAP_DPI)


def save_confidence_map(path: str, confidence, title: str | None = None) -> None:
    """Writes a PNG of the per-pixel confidence (the highest softmax probability) with a colour bar.

    Args:
      path: the PNG to write.
      confidence: `(H, W)` float in [0, 1].
      title: optional figure title.
    """
    confidence = np.asarray(confidence)
    if confidence.ndim != 2:
        raise ValueError(f"{path}: confidence must be (H, W); got shape {confidence.shape}")
    if not (np.issubdtype(confidence.dtype, np.floating) or np.issubdtype(confidence.dtype, np.integer)):
        raise ValueError(f"{path}: confidence must hold real numbers; got dtype {confidence.dtype}")
    outside = ~((confidence >= 0) & (confidence <= 1))
    if outside.any():
        row, col = np.argwhere(outside)[0]
        raise ValueError(f"{path}: confidence must be in [0, 1]; {int(outside.sum())} values are not, the first "
                         f"{confidence[row, col]} at (row {row}, col {col})")
    wide = _is_wide(confidence.shape)
    panel_w, panel_h = _panel_size(confidence.shape)
    size = (panel_w + 0.3, panel_h + 1.4) if wide else (panel_w + 1.4, panel_h + 0.8)
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(confidence, cmap=_CONFIDENCE_CMAP, norm=Normalize(0.0, 1.0), interpolation="nearest")
    ax.set_axis_off()
    fig.colorbar(image, ax=ax, orientation="horizontal" if wide else "vertical",
                 label="confidence (max softmax probability)")
    if title:
        fig.suptitle(title)
    _save(fig, path, dpi=_MAP_DPI)


def read_metrics(path: str) -> list[dict]:
    """The rows of a `metrics.jsonl` (one JSON object per line; blank lines skipped)."""
    rows = []
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}, line {number}: not JSON ({e.msg}): "
                                 f"{line.strip()[:80]!r}") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}, line {number}: expected a JSON object, "
                                 f"got {type(row).__name__}")
            rows.append(row)
    return rows


def metric_series(rows: list[dict]) -> tuple[str, dict[str, dict[str, tuple[list, list]]]]:
    """Groups metric rows into plottable series: `(x_key, {panel: {key: (xs, ys)}})`.

    `x_key` is "epoch" when every row has one, else "step". Any other key holding a number is a
    series; keys with "loss" go to panel "loss", keys with "acc" or ending in "_oa"/"_aa" to panel
    "acc" (converted to %), "lr" to panel "lr". A row missing a key is skipped for that series.
    """
    x_key = "epoch" if rows and all("epoch" in r for r in rows) else "step"
    series: dict[str, dict[str, tuple[list, list]]] = {p: {} for p in _PANELS}
    for row in rows:
        if not _is_number(row.get(x_key)):
            continue
        for key, value in row.items():
            panel = _panel_of(key)
            if panel and _is_number(value):
                xs, ys = series[panel].setdefault(key, ([], []))
                xs.append(row[x_key])
                ys.append(value * _PANELS[panel][1])
    return x_key, series


def save_training_curves(path: str, metrics_jsonl_path: str) -> None:
    """Writes a PNG of losses, accuracies (%) and the learning rate against epoch (or step).

    Reads the loop's `metrics.jsonl`: rows such as `{"step": 10, "epoch": 1, "train_loss": 0.9,
    "train_accuracy": 0.7, "lr": 1e-3}`, some with `"val_oa"`; see `metric_series`.
    """
    x_key, series = metric_series(read_metrics(metrics_jsonl_path))
    shown = [p for p in _PANELS if series[p]]
    fig = Figure(figsize=(4.2 * max(len(shown), 1), 3.4), layout="constrained")
    if not shown:                          # a run that has not finished an epoch yet
        fig.text(0.5, 0.5, f"no metrics yet in {metrics_jsonl_path}", ha="center", va="center")
    for ax, panel in zip(np.atleast_1d(fig.subplots(1, len(shown))) if shown else (), shown):
        for key, (xs, ys) in sorted(series[panel].items()):
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3,
                    label=key.replace("_", " "))
        ax.set_xlabel(x_key)
        ax.set_ylabel(_PANELS[panel][0])
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    _save(fig, path)


def save_plot_oa_vs_params(path: str, rows: list[dict]) -> None:
    """Writes a PNG of OA (%) against trainable parameters (log scale), one point per run.

    Args:
      rows: dicts with `method` and `dataset` (display names), `trainable_params` (int),
        `oa` (fraction) and optionally `oa_std` (fraction, drawn as an error bar). Colour
        follows the method, the marker the dataset.
    """
    methods = list(dict.fromkeys(r["method"] for r in rows))
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    colours = palette(len(methods))[1:]
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.subplots()
    for r in rows:
        colour = colours[methods.index(r["method"])]
        marker = _MARKERS[datasets.index(r["dataset"]) % len(_MARKERS)]
        ax.errorbar(r["trainable_params"], 100 * r["oa"], yerr=100 * r.get("oa_std", 0.0),
                    fmt=marker, color=colour, markeredgecolor="0.2", markersize=8, capsize=3)
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters")
    ax.set_ylabel("OA (%)")
    ax.grid(alpha=0.3, which="both")
    handles = [Patch(facecolor=c, edgecolor="0.2", label=m) for m, c in zip(methods, colours)]
    handles += [Line2D([], [], linestyle="", marker=_MARKERS[i % len(_MARKERS)], color="0.5",
                       markeredgecolor="0.2", label=d) for i, d in enumerate(datasets)]
    fig.legend(handles=handles, loc="outside right center", fontsize="small", frameon=False)
    _save(fig, path)


def save_sweep_plot(path: str, points: list[dict], title: str = "") -> None:
    """Writes a PNG of OA (%) ± std against the first swept field's value, one line per
    combination of the other fields' values.

    Args:
      points: `results.json['sweep']`: dicts with `values` ({field: value}, the same fields in
        every point), `oa` and optionally `oa_std` (fractions).
    """
    fields = list(points[0]["values"])
    x_field, others = fields[0], fields[1:]
    lines = {}
    for p in points:
        lines.setdefault(tuple(p["values"][f] for f in others), []).append(p)
    fig = Figure(figsize=(6.5, 4.0), layout="constrained")
    ax = fig.subplots()
    for (key, line), colour in zip(lines.items(), palette(len(lines) + 1)[1:]):
        line = sorted(line, key=lambda p: p["values"][x_field])
        label = ", ".join(f"{f}={v:g}" for f, v in zip(others, key)) or None
        ax.errorbar([p["values"][x_field] for p in line], [100 * p["oa"] for p in line],
                    yerr=[100 * (p.get("oa_std") or 0.0) for p in line], marker="o",
                    color=colour, capsize=3, label=label)
    xs = [p["values"][x_field] for p in points]
    if min(xs) > 0 and max(xs) / min(xs) >= 10:
        ax.set_xscale("log")
    ax.set_xlabel(x_field)
    ax.set_ylabel("OA (%)")
    ax.set_title(title, fontsize="medium")
    ax.grid(alpha=0.3, which="both")
    if others:
        ax.legend(fontsize="small", frameon=False)
    _save(fig, path)


def _is_wide(shape: tuple[int, int]) -> bool:
    """Whether an `(H, W)` map is laid out with panels stacked (Houston) rather than side by side."""
    h, w = shape
    return w > 1.5 * h


def _panel_size(shape: tuple[int, int]) -> tuple[float, float]:
    """(width, height) in inches of the panel of an `(H, W)` map: ≥ 1 dot per pixel up to 16 in."""
    h, w = shape
    longer = min(max(max(h, w) / _MAP_DPI, 6.0), 16.0)
    return max(w * longer / max(h, w), 1.5), max(h * longer / max(h, w), 0.8)


def _panel_of(key: str) -> str | None:
    if key == "lr":
        return "lr"
    if "loss" in key:
        return "loss"
    if "acc" in key or key.endswith(("_oa", "_aa")):
        return "acc"
    return None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def save_reconstructions(path: str, original, hidden, reconstructed, title: str = "") -> None:
    """Writes a PNG of masked pre-training's reconstructions, one row per input patch: the
    input, what the encoder saw (hidden pixels grey) and the reconstruction (visible pixels
    as they were, hidden ones predicted), each as false colour of the first three channels
    (min-max over the row's input).

    Args:
      original, reconstructed: `(N, H, W, C)` with C >= 3.
      hidden: `(N, H, W, C)` bool, True where the channel's value was masked.
      title: optional figure title.
    """
    original, reconstructed = np.asarray(original)[..., :3], np.asarray(reconstructed)[..., :3]
    hidden = np.asarray(hidden)[..., :3].any(axis=-1)
    n = original.shape[0]
    fig = Figure(figsize=(6.0, 2.0 * n + (0.4 if title else 0.0)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(n, 3))
    for i in range(n):
        low, high = original[i].min(axis=(0, 1)), original[i].max(axis=(0, 1))
        rgb = lambda x: np.clip((x - low) / np.maximum(high - low, 1e-12), 0.0, 1.0)
        seen = np.where(hidden[i][..., None], 0.5, rgb(original[i]))
        filled = np.where(hidden[i][..., None], rgb(reconstructed[i]), rgb(original[i]))
        for ax, image, label in zip(axes[i], (rgb(original[i]), seen, filled),
                                    ("input", "visible to the encoder", "reconstruction")):
            ax.imshow(image, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(label, fontsize="small")
    if title:
        fig.suptitle(title, fontsize="small")
    _save(fig, path)


def _save(fig: Figure, path: str, dpi: int = 120) -> None:
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
