"""Train and evaluate one experiment: `python run.py --config=configs/botswana_krona_plus.py`.

Any config field can be overridden on the command line, e.g. `--config.num_seeds=5` or
`--config.data.data_dir=/data/hsi`; a field that does not exist is an error. Outputs go to
`config.workdir` (default: `workdirs/{dataset}_{method}`, or `--workdir`); rerunning the
same command resumes from its latest checkpoint.

Multi-host: start the same command on every host with `--distributed` (and, where the
cluster is not detected automatically, `--coordinator=HOST:PORT --num_processes=N
--process_id=I`); it calls `jax.distributed.initialize`, the seeds are sharded over the
devices of all hosts, and the first process writes the outputs to the (shared) workdir.
"""

import logging
import os
import sys

import jax
from absl import app, flags
from ml_collections import config_flags

from hsic_jax.train.loop import train_and_evaluate

config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/*.py).",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Output folder (overrides config.workdir).")
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
        "workdirs", f"{config.data.name}_{config.method.name}")
    try:
        results = train_and_evaluate(config, workdir)
    except (ValueError, FileNotFoundError) as e:  # bad input: the message names what and where
        sys.exit(f"error: {e}")
    summary = "  ".join(f"{k.upper()} {100 * results[k]:.2f}%" for k in ("oa", "aa", "kappa")
                        if results[k] is not None)
    print(f"{summary}  ({results['train_seconds']:.0f} s training; outputs in {workdir})")
    print(f"protocol: {results['protocol']['summary']}")


def parse_flags(argv):
    """absl's flag parsing, with a one-line error for a `--config.FIELD` that does not exist."""
    try:
        return FLAGS(argv)
    except (AttributeError, KeyError) as e:
        # ml_collections raises AttributeError(KeyError(message)); the message is "'field'"
        # and, when it finds a near name, a "Did you mean" line.
        while e.args and isinstance(e.args[0], Exception):
            e = e.args[0]
        key, _, hint = str(e.args[0] if e.args else e).partition("\n")
        key = key.strip("\"'")
        bad = next((a for a in argv if a.startswith("--config.") and key in a.split("=")[0]), key)
        sys.exit(f"error: {bad}: the config has no field {key!r}. {hint}".rstrip())


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
