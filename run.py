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

import os

import jax
from absl import app, flags

from hsic_jax import cli
from hsic_jax.cli import parse_flags, prepare, run_or_exit, summary
from hsic_jax.train.loop import train_and_evaluate
from hsic_jax.train.sweep import SWEEPABLE

cli.define_experiment_flags("Path to a config file (configs/*.py).")
flags.adopt_module_key_flags(cli)  # listed by --help with this script's own
flags.DEFINE_multi_string("sweep", [], "FIELD=V1,V2,…: train every value (the grid of all "
                          "--sweep flags × num_seeds) in one vmapped program; fields: "
                          f"{', '.join(SWEEPABLE)}.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize (multi-host runs).")
flags.DEFINE_string("coordinator", None, "HOST:PORT of process 0 (with --distributed).")
flags.DEFINE_integer("num_processes", None, "Number of processes (with --distributed).")
flags.DEFINE_integer("process_id", None, "This process's index (with --distributed).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    prepare()  # before JAX's first computation
    if FLAGS.distributed:
        jax.distributed.initialize(FLAGS.coordinator, FLAGS.num_processes, FLAGS.process_id)
    config = FLAGS.config
    workdir = FLAGS.workdir or config.workdir or os.path.join(
        "workdirs", f"{config.data.name}_{config.model.name}_{config.method.name}")
    results = run_or_exit(lambda: train_and_evaluate(config, workdir, restart=FLAGS.restart,
                                                     sweep=FLAGS.sweep), workdir)
    print(f"{summary(results)}  ({results['train_seconds']:.0f} s training; outputs in {workdir})")
    if "protocol" in results:  # results of runs older than the protocol record lack it
        print(f"protocol: {results['protocol']['summary']}")
    for point in results.get("sweep", []):
        values = "  ".join(f"{k}={v:g}" for k, v in point["values"].items())
        print(f"  {values}:  {summary(point)}")


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
