"""What every family's converter shares: its refusals, its output rules and its main flow.

A family's converter (`convert/<family>.py`) parses its own flags over `io_arguments`, reads
and maps the official state_dict, and hands `run` a function that returns the Flax params
and a report `{'model': fields, 'key_map', 'dropped', 'reinitialised'}`; `run` checks
`--out` first, writes the orbax params and `manifest.json` (family, source sha256, report)
through `save_converted`, logs what it wrote, and turns a refusal into one line and exit
status 2.
"""

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping

import numpy as np

from hsic_jax.data.io import file_sha256
from hsic_jax.models.converted import MANIFEST, check_out_dir, save_converted


class ConversionError(ValueError):
    """A checkpoint that cannot be converted; the message names the file or key at fault."""


def io_arguments(parser: argparse.ArgumentParser, checkpoint_help: str,
                 metavar: str = "FILE.pth") -> None:
    """`--checkpoint`, `--out` and `--replace`, as every converter takes them."""
    parser.add_argument("--checkpoint", required=True, metavar=metavar, help=checkpoint_help)
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder (orbax params/ + manifest.json): a new or empty "
                             "folder, or an earlier conversion with --replace; anything else "
                             "is refused")
    parser.add_argument("--replace", action="store_true",
                        help="replace the earlier conversion in --out, once the new one is "
                             "complete")


def check_out(out: str, checkpoint: str, replace: bool) -> None:
    """Refuse an `--out` that is or holds the current folder or the checkpoint, then one that
    `check_out_dir` refuses (not empty and no earlier conversion, or one without `--replace`)."""
    real = os.path.realpath(out)
    for what, folder in (("the current folder", os.getcwd()),
                         (f"the checkpoint {checkpoint}", os.path.realpath(checkpoint))):
        if os.path.commonpath([real, folder]) == real:
            raise ConversionError(f"--out {out} is or holds {what}; give --out a new folder")
    check_out_dir(out, replace)


def run(args: argparse.Namespace, family: str, convert: Callable[[], tuple[dict, dict]],
        log: logging.Logger, notes: Callable[[dict], list[str]] = lambda report: []) -> int:
    """Convert `args.checkpoint` into `args.out` with `convert()`; 0, or 2 after one line on a
    refusal. `notes(report)` adds family-specific log lines."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.setLevel(logging.INFO)  # basicConfig does nothing once orbax's import has set up logging
    try:
        check_out(args.out, args.checkpoint, args.replace)
        params, report = convert()
        log.info("computing the sha256 of %s", args.checkpoint)
        manifest = dict(family=family, source=os.path.abspath(args.checkpoint),
                        source_sha256=file_sha256(args.checkpoint), **report)
        log.info("writing %s", args.out)
        save_converted(args.out, params, manifest, replace=args.replace)
    except (ConversionError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    log.info("wrote %s: %d tensors, %d of them converted from %s; model %s", args.out,
             len(report["key_map"]) + len(report["reinitialised"]), len(report["key_map"]),
             args.checkpoint, ", ".join(f"{k}={v}" for k, v in report["model"].items()))
    for line in notes(report):
        log.info("%s", line)
    if report["dropped"]:
        log.info("dropped %d tensors: %s", len(report["dropped"]), summary(report["dropped"]))
    if report["reinitialised"]:
        log.info("initialised fresh: %s", ", ".join(report["reinitialised"]))
    log.info("manifest: %s", os.path.join(args.out, MANIFEST))
    return 0


def unflatten(flat: Mapping[str, np.ndarray]) -> dict:
    """A nested dict from `{'a/b/c': array}`."""
    tree: dict = {}
    for path, value in flat.items():
        *parents, leaf = path.split("/")
        node = tree
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


def summary(keys: list[str], n: int = 6) -> str:
    """The first `n` keys and how many more."""
    return ", ".join(keys[:n]) + (f", ... ({len(keys) - n} more)" if len(keys) > n else "")
