"""Train and evaluate one experiment: `python run.py --config=configs/botswana_krona_plus.py`.

Any config field can be overridden on the command line, e.g. `--config.num_seeds=5` or
`--config.data.data_dir=/data/hsi`; a field that does not exist is an error. Outputs go to
`config.workdir` (default: `workdirs/{dataset}_{method}`, or `--workdir`); rerunning the
same command resumes from its latest checkpoint.
"""

import logging
import os

from absl import app, flags
from ml_collections import config_flags

from hsic_jax.train.loop import train_and_evaluate

config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/*.py).",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Output folder (overrides config.workdir).")
flags.mark_flags_as_required(["config"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.getLogger("hsic_jax").setLevel(logging.INFO)
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every save at INFO
    config = FLAGS.config
    workdir = FLAGS.workdir or config.workdir or os.path.join(
        "workdirs", f"{config.data.name}_{config.method.name}")
    results = train_and_evaluate(config, workdir)
    summary = "  ".join(f"{k.upper()} {100 * results[k]:.2f}%" for k in ("oa", "aa", "kappa"))
    print(f"{summary}  ({results['train_seconds']:.0f} s training; outputs in {workdir})")


if __name__ == "__main__":
    app.run(main)
