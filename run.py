"""Train and evaluate one experiment: `python run.py --config=configs/botswana_krona_plus.py`.

Any config field can be overridden on the command line, e.g. `--config.num_seeds=5` or
`--config.data.data_dir=/data/hsi`; a field that does not exist is an error. Outputs go to
`config.workdir` (default: `workdirs/{dataset}_{model}_{method}`, or `--workdir`); rerunning the
same command resumes from its latest checkpoint (or, when the run has finished, keeps and
prints its results). A workdir belongs to one experiment and one run at a time: another
config is refused (`--restart` moves the old run aside), and so is a second run while the
first one is going. The log also goes to `WORKDIR/log.txt`.

`--sweep=method.lam=1,2,4,8 --sweep=optim.lr=3e-4,1e-3` trains the whole grid × num_seeds
in one vmapped program (`hsic_jax.train.sweep`: fields that change numbers, not shapes) and
prints OA per grid point; `results.json["sweep"]` lists them.

Multi-host: start the same command on every host with `--distributed` (and, where the
cluster is not detected automatically, `--coordinator=HOST:PORT --num_processes=N
--process_id=I`); it calls `jax.distributed.initialize`, the seeds are sharded over the
devices of all hosts, and the first process writes the outputs to the (shared) workdir.
"""

import errno
import logging
import os
import sys

import jax
from absl import app, flags
from ml_collections import config_flags

from hsic_jax.train.loop import train_and_evaluate
from hsic_jax.train.sweep import SWEEPABLE

config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/*.py).",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Output folder (overrides config.workdir).")
flags.DEFINE_bool("restart", False, "Move a previous run of another experiment in the workdir "
                  "aside (to WORKDIR.prev-N) and start fresh.")
flags.DEFINE_multi_string("sweep", [], "FIELD=V1,V2,…: train every value (the grid of all "
                          "--sweep flags × num_seeds) in one vmapped program; fields: "
                          f"{', '.join(SWEEPABLE)}.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize (multi-host runs).")
flags.DEFINE_string("coordinator", None, "HOST:PORT of process 0 (with --distributed).")
flags.DEFINE_integer("num_processes", None, "Number of processes (with --distributed).")
flags.DEFINE_integer("process_id", None, "This process's index (with --distributed).")
flags.mark_flags_as_required(["config"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if FLAGS.distributed:
        jax.distributed.initialize(FLAGS.coordinator, FLAGS.num_processes, FLAGS.process_id)
    logging.getLogger("hsic_jax").setLevel(logging.INFO)
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every save at INFO
    config = FLAGS.config
    workdir = FLAGS.workdir or config.workdir or os.path.join(
        "workdirs", f"{config.data.name}_{config.model.name}_{config.method.name}")
    try:
        results = train_and_evaluate(config, workdir, restart=FLAGS.restart, sweep=FLAGS.sweep)
    except (ValueError, OSError) as e:  # bad input or a failed write: one line that says what
        sys.exit(f"error: {one_line(e, workdir)}")
    print(f"{summary(results)}  ({results['train_seconds']:.0f} s training; outputs in {workdir})")
    if "protocol" in results:  # results of runs older than the protocol record lack it
        print(f"protocol: {results['protocol']['summary']}")
    for point in results.get("sweep", []):
        values = "  ".join(f"{k}={v:g}" for k, v in point["values"].items())
        print(f"  {values}:  {summary(point)}")


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
    """absl's flag parsing, with one-line errors for a config file that cannot be loaded, a
    `--config.FIELD` that does not exist, and a value that does not parse."""
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
        sys.exit(f"error: {str(e).splitlines()[0]}")


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
