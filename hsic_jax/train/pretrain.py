"""Masked pre-training of a family's encoder on unlabelled scenes (`python pretrain.py`).

`pretrain(config, workdir)` reads like `hsic_jax.train.loop.train_and_evaluate`, and its
stages are the same functions:

  check     `hsic_jax.train.checks.check_pretrain_config`: every field, before any work
  claim     `hsic_jax.train.workdir.claim`: one experiment and one run per workdir
  data      `hsic_jax.data.pipeline.load_unlabelled`: every pixel of the scene(s), no labels
  state     `mae_model` (the masked autoencoder of `config.model`'s family, its `build_mae`,
            see `hsic_jax.models`; every parameter trained: method 'fft') and
            `hsic_jax.train.state.create_train_state`, one run per seed
  train     the loop's own `hsic_jax.train.loop.train` with the 'mae' step
            (`hsic_jax.train.step.mae_train_step`): checkpoints, resume, seeds side by side,
            progress, `metrics.jsonl`
  write     `pretrained/` (a converted checkpoint), reconstructions, results

With `init='pretrained'` it continues from `pretrained_dir` (a conversion of the family's
official pre-training checkpoint that keeps its decoder, or an earlier pre-training's
`pretrained/`); a decoder the checkpoint lacks is drawn fresh.

Outputs in `workdir`: `config.json`, `log.txt`, `pca.npz`, `metrics.jsonl` (`train_loss` per
epoch), `checkpoints/`, `training_curves.png`, `reconstructions.png` (a few patches of the
first seed: input, visible tokens, reconstruction), `results.json` (the loss at the first
and last epoch, the reconstruction loss of the shown patches, timings), and `pretrained/`:
the first seed's encoder and decoder as a converted checkpoint (`pretrained_seed{N}/` for the
others; its manifest records the module's `checkpoint_fields()`), which `init='pretrained'`
with `pretrained_dir=WORKDIR/pretrained` fine-tunes with any method.
"""

import hashlib
import logging
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from hsic_jax.adapters.tuned import TunedModel
from hsic_jax.data.io import write_json
from hsic_jax.data.pipeline import Data, load_unlabelled
from hsic_jax.evaluation.maps import read_metrics, save_reconstructions, save_training_curves
from hsic_jax.models.converted import load_params, read_manifest, save_converted
from hsic_jax.models.mae import mae_loss, norm_pix
from hsic_jax import hosts
from hsic_jax.train import tasks
from hsic_jax.train.checks import check_pretrain_config
from hsic_jax.train.loop import Placed, Run, train
from hsic_jax.train.partition import combine
from hsic_jax.train.state import create_train_state, mae_model
from hsic_jax.train.step import Geometry, inputs
from hsic_jax.train.sweep import hyperparams
from hsic_jax.train.timings import Timings
from hsic_jax.train.workdir import claim

log = logging.getLogger(__name__)

OUTPUT = "pretrained"  # the converted checkpoint of the first seed, in the workdir


def pretrain(config: ml_collections.ConfigDict, workdir: str, *, restart: bool = False) -> dict:
    """Pre-train every seed of `config`; write outputs to `workdir`; return the results.

    A rerun of a finished pre-training returns its saved results; an interrupted one resumes
    from its latest checkpoint; another experiment in the workdir is refused unless `restart`.
    """
    clock = Timings()
    with clock:
        check_pretrain_config(config)
    with claim(workdir, config.to_dict(), restart=restart) as claimed:
        if claimed.finished is not None:
            log.info("%s holds this pre-training, finished: its results are kept", workdir)
            return claimed.finished
        with clock:
            return _run(config, workdir, clock)


def _run(config: ml_collections.ConfigDict, workdir: str, clock: Timings) -> dict:
    seeds = [config.seed + s for s in range(config.num_seeds)]
    with clock.phase("data_s"):
        data = load_unlabelled(config.data, seeds, config.pretrain.extra_cubes)
    pixels = int(data.train["valid"][0].sum())
    log.info("pre-training on %d pixels of %d scene(s)", pixels, 1 + len(config.pretrain.extra_cubes))
    with clock.phase("init_s"):
        tuned = mae_model(config, data.bands)
        steps_per_epoch = pixels // config.batch_size
        if steps_per_epoch < 1:
            raise ValueError(f"{pixels} pixels are fewer than one batch of "
                             f"config.batch_size={config.batch_size}")
        setup, state, frozen = create_train_state(config, tuned, seeds, steps_per_epoch,
                                                  continued_from(config, tuned.module))
    write_json(os.path.join(workdir, "config.json"), config.to_dict())
    if data.pcas[0] is not None:
        data.pcas[0].save(os.path.join(workdir, "pca.npz"))

    geo = Geometry(config.data.neighborhood, config.data.input_size, config.data.resize)
    step, _ = tasks.MAE.step_functions(config, setup, geo)
    per_seed, replicated = hosts.shardings(len(seeds))
    frozen = hosts.to_global(frozen, replicated)
    placed = Placed(setup, step, hyperparams(config, [{}], len(seeds)), frozen,
                    hosts.to_global(data.padded, per_seed), per_seed)
    state, _, seconds = train(Run(config, workdir, True, clock, tuple(seeds)), data, placed,
                              state)

    trained = jax.tree.map(lambda x: np.asarray(hosts.fetch(x)), state["params"])  # (S, ...)
    seed_params = [combine(jax.tree.map(lambda x, s=s: x[s], trained), frozen)
                   for s in range(len(seeds))]
    shown, loss = reconstructions(tuned, seed_params[0], data, geo, config)
    save_reconstructions(os.path.join(workdir, "reconstructions.png"), *shown,
                         title=f"{config.data.name} · seed {seeds[0]} · "
                               f"{config.pretrain.mask_ratio:.0%} of the tokens hidden")
    for s, (seed, params) in enumerate(zip(seeds, seed_params)):
        save_encoder(os.path.join(workdir, OUTPUT if s == 0 else f"{OUTPUT}_seed{seed}"),
                     config, tuned.module, params, workdir)
    rows = read_metrics(os.path.join(workdir, "metrics.jsonl"))
    results = {
        "task": "pretrain", "dataset": config.data.name, "seeds": seeds, "pixels": pixels,
        "extra_cubes": list(config.pretrain.extra_cubes), "epochs": config.epochs,
        "mask_ratio": config.pretrain.mask_ratio, "norm_pix_loss": config.pretrain.norm_pix_loss,
        "first_loss": rows[0]["train_loss"] if rows else None,
        "final_loss": rows[-1]["train_loss"] if rows else None,
        "reconstruction_loss": loss, "train_seconds": seconds,
        "params": int(sum(np.size(p) for p in jax.tree.leaves(seed_params[0]))),
        "output": os.path.join(workdir, OUTPUT), **clock.record()}
    write_json(os.path.join(workdir, "results.json"), results)
    save_training_curves(os.path.join(workdir, "training_curves.png"),
                         os.path.join(workdir, "metrics.jsonl"))
    return results


def continued_from(config: ml_collections.ConfigDict, module) -> dict | None:
    """With `init='pretrained'`: the encoder (and decoder, when the checkpoint keeps one) of
    `config.pretrained_dir`, refused when it cannot start `module` (the family's masked
    autoencoder: its `checkpoint_mismatch`)."""
    if config.init == "random":
        return None
    manifest = read_manifest(config.pretrained_dir, config.model.name)
    problem = module.checkpoint_mismatch(manifest["model"])
    if problem:
        raise ValueError(f"{config.pretrained_dir} holds {problem}")
    params = load_params(config.pretrained_dir)
    decoder = manifest.get("decoder")
    fits = decoder is not None and all(
        decoder[k] == v for k, v in module.checkpoint_fields()["decoder"].items())
    if not fits:
        log.warning("%s has %s; the decoder starts fresh", config.pretrained_dir,
                    "no decoder" if decoder is None else f"another decoder ({decoder})")
    return {"backbone": params["backbone"], **({"decoder": params["decoder"]} if fits else {})}


def reconstructions(tuned: TunedModel, params: dict, data: Data, geo: Geometry, config):
    """`(input, hidden, reconstruction)` `(n, S, S, B)` of `config.pretrain.reconstructions`
    pixels on the diagonal of the first cube, away from its border (a fixed mask), and their
    mean loss on the hidden tokens."""
    module = tuned.module
    (h, w), r = data.scene.gt.shape, geo.neighborhood // 2
    rows, cols = (np.linspace(min(r, n // 2), max(n - 1 - r, n // 2),
                              config.pretrain.reconstructions).round().astype(np.int32)
                  for n in (h, w))
    x = inputs(jnp.asarray(data.padded[0]), jnp.asarray(np.stack([rows, cols], 1)), geo)

    @jax.jit
    def run(params, x):
        pred, mask = tuned.apply(params, x, rngs={"mask": jax.random.key(config.seed)})
        target = module.patchify(x)
        if config.pretrain.norm_pix_loss:  # back to the patch's own scale
            mean = target.mean(-1, keepdims=True)
            std = jnp.sqrt(target.var(-1, keepdims=True, ddof=1) + 1e-6)
            loss, pred = mae_loss(pred, norm_pix(target), mask), pred * std + mean
        else:
            loss = mae_loss(pred, target, mask)
        hidden = module.unpatchify(jnp.broadcast_to(mask[..., None], pred.shape)) > 0
        return (x, hidden, module.unpatchify(pred)), loss

    shown, loss = run(params, x)
    return jax.tree.map(np.asarray, shown), float(loss)


def save_encoder(out_dir: str, config, module, params: dict, workdir: str) -> None:
    """The encoder and decoder `params` as a converted checkpoint in `out_dir` (replacing an
    earlier one only once complete): `init='pretrained'` fine-tunes it."""
    arrays = {k: jax.tree.map(np.asarray, params[k]) for k in ("backbone", "decoder")}
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(arrays):
        digest.update(np.ascontiguousarray(leaf).tobytes())
    fields = module.checkpoint_fields()
    save_converted(out_dir, arrays, {
        "family": config.model.name, "source": f"pre-trained by hsic-jax in {workdir}",
        "source_sha256": digest.hexdigest(), "model": fields["model"],
        "decoder": fields["decoder"],
        "pretraining": {"dataset": config.data.name, "extra_cubes": list(config.pretrain.extra_cubes),
                        "epochs": config.epochs, "mask_ratio": config.pretrain.mask_ratio,
                        "pca": config.data.pca, "normalize": config.data.normalize},
        "key_map": {}, "dropped": [], "reinitialised": []}, replace=True)

