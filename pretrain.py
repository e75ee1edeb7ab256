"""Masked pre-training of a model family's encoder on unlabelled scenes (a family that offers a
masked autoencoder, SpectralGPT's in the demo): `python pretrain.py --config=configs/pretrain_demo.py`.

Any config field can be overridden on the command line (`--config.epochs=100`,
`--config.pretrain.extra_cubes='("more.mat",)'`); outputs go to `config.workdir` (or
`--workdir`), and rerunning the same command resumes from the latest checkpoint
(`hsic_jax.train.pretrain`). The encoder it learns is written to `WORKDIR/pretrained/`, a
converted checkpoint: fine-tune it with any method through `run.py` with
`--config.init=pretrained --config.pretrained_dir=WORKDIR/pretrained` (e.g.
`configs/demo_pretrained_krona_plus.py`).
"""

from absl import app, flags

from hsic_jax import cli
from hsic_jax.cli import parse_flags, prepare, run_or_exit
from hsic_jax.train.pretrain import pretrain

cli.define_experiment_flags("Path to a pre-training config file (configs/pretrain_*.py).")
flags.adopt_module_key_flags(cli)  # listed by --help with this script's own
FLAGS = flags.FLAGS


def main(argv):
    del argv
    prepare()  # before JAX's first computation
    config = FLAGS.config
    workdir = FLAGS.workdir or config.workdir
    results = run_or_exit(lambda: pretrain(config, workdir, restart=FLAGS.restart), workdir)
    print(f"reconstruction loss {results['first_loss']:.4f} → {results['final_loss']:.4f} over "
          f"{results['epochs']} epochs ({results['train_seconds']:.0f} s training); encoder in "
          f"{results['output']}")


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
