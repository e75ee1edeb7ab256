"""What `run.py` and `pretrain.py` share: the process's memory setup, their common flags and
flag parsing with one-line errors, one-line errors for a failed run, logging, and the summary
line of results."""

import ctypes
import ctypes.util
import errno
import logging
import os
import platform
import sys
from collections.abc import Callable

from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8


def keep_freed_memory() -> bool:
    """With `HSIC_JAX_KEEP_FREED_MEMORY=1` in the environment, let glibc's malloc keep freed
    memory for reuse instead of handing it back to the kernel (one arena, no mmap, no trimming);
    otherwise leave malloc as it is. Returns whether it changed the settings.

    XLA:CPU allocates each execution's temporaries with malloc and frees them at its end. From
    any thread but the main one glibc serves a block that large with a fresh mmap, so every
    execution page-faults all of it again (the cpu-small FFT step of `bench/compare.py`: 541 MiB,
    150,000 minor faults, about 0.3 s of system time). The loop runs one program per epoch
    (`hsic_jax.train.loop`), which pays this once per epoch; with this setting not even that,
    and prediction's batches neither. The cost is resident memory, which is why it is not the
    default: a temporary that no longer fits where the last one was takes new pages beside it
    (the demo's peak 1.4 GB instead of 0.85 GB; a train step repeated alone 3.3 GB instead of
    1.1 GB), reached in the first steps and flat after.

    Call it before the first JAX computation: XLA's threads pick their arena at their first
    allocation. Not glibc: nothing to do. The settings are the process's, as
    `MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647` would make them."""
    value = os.environ.get("HSIC_JAX_KEEP_FREED_MEMORY", "0")
    if value not in ("0", "1"):
        raise ValueError(f"HSIC_JAX_KEEP_FREED_MEMORY={value!r}: expected 1 (keep freed memory) "
                         "or 0 / unset (leave malloc as it is)")
    if value == "0":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    return all(mallopt(param, value) == 1 for param, value in (
        (_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1)))


def define_experiment_flags(config_help: str) -> None:
    """`--config` (a config file, required; `--config.FIELD=VALUE` overrides its fields),
    `--workdir` and `--restart`, as `run.py` and `pretrain.py` take them (each adopts them as
    its key flags, which `--help` lists)."""
    config_flags.DEFINE_config_file("config", None, config_help, lock_config=True)
    flags.DEFINE_string("workdir", None, "Output folder (overrides config.workdir).")
    flags.DEFINE_bool("restart", False, "Move a previous run of another experiment in the "
                      "workdir aside (to WORKDIR.prev-N) and start fresh.")
    flags.mark_flags_as_required(["config"])


def prepare() -> None:
    """What a command (`run.py`, `pretrain.py`) does before any JAX work: malloc's setting
    (`keep_freed_memory`; a bad value exits with one line) and the library's logging."""
    try:
        keep_freed_memory()
    except ValueError as e:
        sys.exit(f"error: {e}")
    setup_logging()


def run_or_exit(job: Callable[[], dict], workdir: str) -> dict:
    """`job()`'s results; bad input or a failed write exits with one line that says what
    (`one_line`)."""
    try:
        return job()
    except (ValueError, OSError) as e:
        sys.exit(f"error: {one_line(e, workdir)}")


def setup_logging() -> None:
    """The library's progress at INFO; absl's (orbax logs every save at INFO) at WARNING."""
    logging.getLogger("hsic_jax").setLevel(logging.INFO)
    logging.getLogger("absl").setLevel(logging.WARNING)


def summary(results: dict) -> str:
    """`OA 89.67%  AA …`, with `± std` over seeds when there are several."""
    cells = []
    for key in ("oa", "aa", "kappa"):
        if results.get(key) is None:
            continue
        std = results.get(f"{key}_std")
        cells.append(f"{key.upper()} {100 * results[key]:.2f}%"
                     + ("" if std is None else f" ± {100 * std:.2f}"))
    seeds = len(results.get("seeds", [])) or 1
    return "  ".join(cells) + (f"  (mean ± std over {seeds} seeds)" if seeds > 1 else "")


# Causes of a failed write that the user can act on, by errno.
_WRITE_FAILURES = {errno.ENOSPC: "no space left on the device",
                   errno.EDQUOT: "disk quota exceeded",
                   errno.EFBIG: "file size limit reached",
                   errno.EACCES: "permission denied",
                   errno.EPERM: "operation not permitted",
                   errno.EROFS: "read-only file system"}


def one_line(error: BaseException, workdir: str) -> str:
    """The message of `error`; for a failed write (anywhere in its chain of causes: orbax wraps
    them), what failed, where, and that the last complete checkpoint is kept."""
    cause = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno in _WRITE_FAILURES:
            where = cause.filename or workdir
            return (f"cannot write {where}: {_WRITE_FAILURES[cause.errno]}; free space or use "
                    f"another --workdir (what {workdir} holds is kept, including its last "
                    f"complete checkpoint)")
        cause = cause.__cause__ or cause.__context__
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def parse_flags(argv):
    """absl's flag parsing, with one-line errors for a config file that cannot be loaded or
    refuses its argument (`--config=FILE:ARG`), a `--config.FIELD` that does not exist, and a
    value that does not parse."""
    try:
        remaining = FLAGS(argv)
        FLAGS.config.get("workdir")  # a config file that failed to load raises here
        return remaining
    except (AttributeError, KeyError) as e:
        # ml_collections raises AttributeError(KeyError(message)); the message is "'field'"
        # and, when it finds a near name, a "Did you mean" line.
        while e.args and isinstance(e.args[0], Exception):
            e = e.args[0]
        key, _, hint = str(e.args[0] if e.args else e).partition("\n")
        key = key.strip("\"'")
        bad = next((a for a in argv if a.startswith("--config.") and key in a.split("=")[0]), key)
        sys.exit(f"error: {bad}: the config has no field {key!r}. {hint}".rstrip())
    except OSError:  # the config file
        path = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), "")
        if not os.path.isfile(path.split(":")[0]):
            sys.exit(f"error: --config={path}: no such file (the configs are in configs/, e.g. "
                     "--config=configs/demo.py)")
        sys.exit(f"error: --config={path}: could not be loaded (run `python {path}` to see why)")
    except flags.Error as e:
        # A config file's get_config that raised: absl appends the traceback, whose last line
        # is the error itself (e.g. a config argument that is not one of those allowed).
        lines = [line for line in str(e).splitlines() if line.strip()]
        cause = lines[-1] if "Traceback (most recent call last)" in str(e) else ""
        sys.exit(f"error: {lines[0]} {cause}".rstrip())
