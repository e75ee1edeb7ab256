"""What every family's converter shares: its refusals, its output rules and its main flow.

A family's converter (`convert/<family>.py`) adds its own flags to `parser`'s, reads
and maps the official state_dict, and hands `run` a function of the parsed flags that returns the
Flax params and a report `{'model': fields, 'key_map', 'dropped', 'reinitialised'}`; `run` checks
`--out` first, writes the orbax params and `manifest.json` (family, source sha256, report)
through `save_converted`, logs what it wrote, and turns a refusal into one line and exit
status 2. A converter of several input files (HyperSIGMA's spatial and spectral checkpoints)
passes them to `run` as `sources` (`{role: path}`); its manifest then records each file and a
`source_sha256` over all of them (`combined_sha256`).
"""

import argparse
import hashlib
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from hsic_jax.data.io import file_sha256
from hsic_jax.models.converted import MANIFEST, check_out_dir, save_converted


class ConversionError(ValueError):
    """A checkpoint that cannot be converted; the message names the file or key at fault."""


def same(w) -> np.ndarray:
    """A tensor whose torch and Flax layouts agree (a bias, a norm's scale, a table)."""
    return np.asarray(w)


def linear(w) -> np.ndarray:
    """A torch Linear weight `(out, in)` as a Flax Dense kernel `(in, out)`."""
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError("expected a 2-D Linear weight (out, in)")
    return w.T


def parser(family: str, description: str, checkpoint_help: str, metavar: str = "FILE.pth",
           checkpoint_required: bool = True) -> argparse.ArgumentParser:
    """The command line of `python -m convert FAMILY`, with `--checkpoint`, `--out` and
    `--replace` as every converter takes them (`--checkpoint` optional for a converter that
    also takes other input files); the family adds its own flags."""
    p = argparse.ArgumentParser(prog=f"python -m convert {family}", description=description)
    p.add_argument("--checkpoint", required=checkpoint_required, metavar=metavar,
                   help=checkpoint_help)
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (orbax params/ + manifest.json): a new or empty folder, or "
                        "an earlier conversion with --replace; anything else is refused")
    p.add_argument("--replace", action="store_true",
                   help="replace the earlier conversion in --out, once the new one is complete")
    return p


def heads_argument(parser: argparse.ArgumentParser, default: str) -> None:
    """`--heads`, which no checkpoint stores (the weights give only the attention's width);
    `default` says what it defaults to."""
    parser.add_argument("--heads", type=int, default=None,
                        help=f"attention heads, not stored in the weights (default: {default})")


def heads_by_width(variants: Mapping[str, Mapping[str, int]]) -> str:
    """The official variants' heads by width, for `heads_argument`: '768 -> 12, 1024 -> 16'."""
    return ", ".join(f"{v['width']} -> {v['heads']}" for v in variants.values())


def head_arguments(parser: argparse.ArgumentParser, head: str) -> None:
    """`--num-classes` (default: the rows of the checkpoint's classifier `head`) and `--seed`,
    as the classifiers' converters take them."""
    parser.add_argument("--num-classes", type=int, default=None,
                        help="classes of the head; a head of another size is replaced by a "
                             f"fresh one (default: the checkpoint's {head})")
    parser.add_argument("--seed", type=int, default=0, help="seed of a head initialised fresh")


def head_classes(sd: Mapping[str, np.ndarray], head: str, path: str,
                 num_classes: int | None) -> tuple[int | None, int]:
    """`(the checkpoint's classes, the classes to build)`: the rows of the classifier's weight
    `head` (None: the checkpoint has none), and `num_classes` (`--num-classes`), by default
    the checkpoint's."""
    ckpt_classes = int(sd[head].shape[0]) if head in sd else None
    if num_classes is not None and num_classes < 1:
        raise ConversionError(f"--num-classes {num_classes}: expected an integer >= 1")
    if num_classes is None:
        if ckpt_classes is None:
            raise ConversionError(f"{path} has no classifier ({head}): pass --num-classes")
        num_classes = ckpt_classes
    return ckpt_classes, num_classes


def check_out(out: str, checkpoint: str | Sequence[str], replace: bool) -> None:
    """Refuse an `--out` that is or holds the current folder or the checkpoint (or any of the
    checkpoints), then one that `check_out_dir` refuses (not empty and no earlier conversion,
    or one without `--replace`)."""
    real = os.path.realpath(out)
    checkpoints = [checkpoint] if isinstance(checkpoint, str) else list(checkpoint)
    for what, folder in (("the current folder", os.getcwd()),
                         *((f"the checkpoint {c}", os.path.realpath(c)) for c in checkpoints)):
        if os.path.commonpath([real, folder]) == real:
            raise ConversionError(f"--out {out} is or holds {what}; give --out a new folder")
    check_out_dir(out, replace)


def run(args: argparse.Namespace, family: str,
        convert: Callable[[argparse.Namespace], tuple[dict, dict]], log: logging.Logger,
        io: str = "", sources: Mapping[str, str] | None = None) -> int:
    """Convert `args.checkpoint` (or the files `sources`, `{role: path}`) into `args.out` with
    `convert(args)`; 0, or 2 after one line on a refusal. `io` says what the converted model
    takes and gives, a format string over the report's `model` fields, logged after it (as is
    the MAE decoder a report's `decoder` entry describes)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for logger in (log, logging.getLogger(__name__)):  # the family's, and read_checkpoint's
        logger.setLevel(logging.INFO)  # basicConfig does nothing once orbax's import set up logging
    inputs = [args.checkpoint] if sources is None else list(sources.values())
    try:
        check_out(args.out, inputs, args.replace)
        params, report = convert(args)
        log.info("computing the sha256 of %s", ", ".join(inputs))
        if sources is None:
            origin = dict(source=os.path.abspath(args.checkpoint),
                          source_sha256=file_sha256(args.checkpoint))
        else:
            hashes = {role: file_sha256(path) for role, path in sources.items()}
            origin = dict(source={role: os.path.abspath(path) for role, path in sources.items()},
                          source_sha256=combined_sha256(hashes), source_sha256s=hashes)
        manifest = dict(family=family, **origin, **report)
        log.info("writing %s", args.out)
        save_converted(args.out, params, manifest, replace=args.replace)
    except (ConversionError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    log.info("wrote %s: %d tensors, %d of them converted from %s; model %s", args.out,
             len(report["key_map"]) + len(report["reinitialised"]), len(report["key_map"]),
             " and ".join(inputs), ", ".join(f"{k}={v}" for k, v in report["model"].items()))
    if io:
        log.info("input: %s", io.format(**report["model"]))
    if "decoder" in report:
        log.info("kept the MAE decoder (decoder/): %s",
                 ", ".join(f"{k} {v}" for k, v in report["decoder"].items()))
    if report["dropped"]:
        log.info("dropped %d tensors: %s", len(report["dropped"]), summary(report["dropped"]))
    if report["reinitialised"]:
        log.info("initialised fresh: %s", ", ".join(report["reinitialised"]))
    log.info("manifest: %s", os.path.join(args.out, MANIFEST))
    return 0


def import_torch():
    """PyTorch, the converter's own dependency, or a one-line refusal saying how to get it."""
    try:
        import torch
    except ImportError as e:
        raise ConversionError("the converter needs PyTorch, which this environment lacks: "
                              "pip install -e '.[convert]'") from e
    return torch


def read_checkpoint(path: str) -> Mapping:
    """The dict `torch.load` finds in the file at `path`, loaded with `weights_only=True`,
    allow-listing only `argparse.Namespace` (official scripts pickle their `args` beside the
    weights), never a blanket unsafe load."""
    torch = import_torch()
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: no such file")
    logging.getLogger(__name__).info("reading %s (%.1f MB)", path, os.path.getsize(path) / 1e6)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for non-checkpoints
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConversionError(f"{path} is not a loadable PyTorch checkpoint: {first}") from e
    if not isinstance(ckpt, Mapping):
        raise ConversionError(f"{path} holds a {type(ckpt).__name__}, not a state_dict")
    return ckpt


def load_state_dict(path: str, wrappers: Sequence[str] = ("state_dict", "model")) -> dict:
    """The state_dict of the file at `path` as float32 numpy arrays: bare (as official scripts
    save `net.state_dict()`), or under the first of `wrappers` the file has; a `module.` prefix
    (torch DataParallel) on every key is stripped."""
    torch = import_torch()
    ckpt = read_checkpoint(path)
    if not all(torch.is_tensor(v) for v in ckpt.values()):
        inner = next((k for k in wrappers if isinstance(ckpt.get(k), Mapping)), None)
        if inner is None:
            raise ConversionError(
                f"{path} is neither a state_dict of tensors nor a checkpoint with one under "
                f"{' or '.join(map(repr, wrappers))} (top-level keys: {sorted(map(str, ckpt))[:8]})")
        ckpt = ckpt[inner]
        bad = next((k for k, v in ckpt.items() if not torch.is_tensor(v)), None)
        if bad is not None:
            raise ConversionError(f"{path}: checkpoint[{inner!r}][{bad!r}] is not a tensor")
    sd = {str(k): v.detach().to(torch.float32).numpy() for k, v in ckpt.items()}
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k.removeprefix("module."): v for k, v in sd.items()}
    return sd


def param_shapes(model, seed: int = 0) -> tuple:
    """`(x, expected)`: an example input `(1, *model.input_shape)` and the model's parameter
    shapes by '/'-joined path, without computing any parameter."""
    import jax
    import jax.numpy as jnp

    x = jnp.zeros((1, *model.input_shape), jnp.float32)
    shapes = jax.eval_shape(model.init, jax.random.key(seed), x)["params"]
    return x, {"/".join(k.key for k in p): tuple(v.shape)
               for p, v in jax.tree_util.tree_leaves_with_path(shapes)}


def mapped(key: str, value: np.ndarray, target: str, transform: Callable, expected: Mapping,
           where: str) -> np.ndarray:
    """The torch tensor `value` of `key` transformed for the Flax parameter `target`, refused
    (naming the file `where`, the key and the shapes) when it does not fit the model; a
    `ConversionError` of the transform (which names them itself) passes as it is."""
    try:
        out = transform(value)
    except ConversionError:
        raise
    except ValueError as e:
        raise ConversionError(f"{where}: key {key} has shape {tuple(np.shape(value))}: {e}") from e
    if out.shape != tuple(expected[target]):
        raise ConversionError(f"{where}: key {key} has shape {tuple(np.shape(value))}, which maps "
                              f"to {out.shape}; the model expects {tuple(expected[target])} at "
                              f"{target}")
    return out


def fresh(model, x, seed: int, targets) -> dict:
    """The initial values of the parameters `targets` ('/'-joined paths) of a fresh `model`
    from `seed` (its own initialisers). Only those leaves are computed: XLA drops the rest."""
    import jax

    if not targets:
        return {}
    logging.getLogger(__name__).info("initialising %d tensors fresh", len(targets))
    targets = sorted(targets)

    def pick(key):
        init = model.init(key, x)["params"]
        out = []
        for t in targets:
            node = init
            for part in t.split("/"):
                node = node[part]
            out.append(node)
        return out

    # A one-off program: XLA's backend optimisations would cost more time than they save.
    values = jax.jit(pick, compiler_options={"xla_backend_optimization_level": 0})(
        jax.random.key(seed))
    return {t: np.asarray(v) for t, v in zip(targets, values)}


def params_and_report(params: Mapping[str, np.ndarray], expected: Mapping, model, x, seed: int,
                      config: dict, key_map: dict, dropped: list[str]) -> tuple[dict, dict]:
    """`(params, report)` of a conversion once the checkpoint's tensors are placed (`params`,
    by '/'-joined path): the parameters of `expected` still missing drawn fresh from `seed`
    (the report's `reinitialised`; a new head, tensors the checkpoint does not hold) and the
    params nested, the report `{'model': config, 'key_map', 'dropped', 'reinitialised'}`."""
    reinitialised = sorted(set(expected) - set(params))
    params = {**params, **fresh(model, x, seed, reinitialised)}
    return unflatten(params), dict(model=config, key_map=key_map, dropped=sorted(dropped),
                                   reinitialised=reinitialised)


def map_one_to_one(sd: Mapping[str, np.ndarray], mapping: Mapping, model, config: dict, *,
                   path: str, seed: int, new_head: bool, what: str,
                   drop: Callable[[str], bool] = lambda key: False) -> tuple[dict, dict]:
    """`(params, report)` of a state_dict `sd` whose keys map one to one onto `model`'s
    parameters (`mapping`: torch key → (Flax path, transform)).

    A key `drop` names is dropped (tensors the official model builds but never uses); with
    `new_head` the checkpoint's `head/` tensors are dropped and the head drawn fresh. An
    unknown key, a missing one or a shape that does not fit is refused in one line naming the
    file, the key and `what` the checkpoint should be (e.g. 'an official SpectralFormer of
    depth 5 in CAF mode').
    """
    x, expected = param_shapes(model, seed)
    assert {t for t, _ in mapping.values()} == set(expected), "key_map and the model disagree"
    params, km, dropped = {}, {}, []
    for key, value in sd.items():
        if drop(key):
            dropped.append(key)
            continue
        if key not in mapping:
            raise ConversionError(f"{path}: key {key} {tuple(value.shape)} is not part of {what} "
                                  "(no Flax parameter to map it to)")
        target, transform = mapping[key]
        if target.startswith("head/") and new_head:
            dropped.append(key)
            continue
        params[target], km[key] = mapped(key, value, target, transform, expected, path), target
    missing = [k for k, (t, _) in mapping.items() if t not in params and not t.startswith("head/")]
    if missing:
        raise ConversionError(f"{path}: missing key {missing[0]} ({len(missing)} tensors of "
                              f"{what} missing in all)")
    return params_and_report(params, expected, model, x, seed, config, km, dropped)


def combined_sha256(hashes: Mapping[str, str]) -> str:
    """One sha256 for several files: of the lines `role sha256` in the given order."""
    text = "".join(f"{role} {digest}\n" for role, digest in hashes.items())
    return hashlib.sha256(text.encode()).hexdigest()


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
