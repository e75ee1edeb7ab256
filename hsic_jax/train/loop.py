"""The whole experiment: check → claim the workdir → data → state → train → evaluate → write.

`train_and_evaluate(config, workdir)` reads top to bottom like big_vision's train.py; each
stage is a function of its own module:

  check     `hsic_jax.train.checks.check_config`: every field, before any work
  claim     `hsic_jax.train.workdir.claim`: one experiment and one run per workdir
  data      `hsic_jax.data.pipeline.load_data`: scene, splits, preprocessing, per seed
  state     `hsic_jax.train.state`: the model family, the method, the optimizer, the state
  train     `train` below: the jitted step over the epochs, validation, checkpoints
  evaluate  `hsic_jax.evaluation.predict`: the test pixels once, the scene map
  write     `hsic_jax.evaluation.results` and the outputs below

The family's task shape (`hsic_jax.train.tasks.of`, resolved once) gives the steps, the
batches per epoch and the evaluation batching: PATCH (a batch of neighbourhoods per step),
SCENE (the whole scene per step, one per epoch; evaluation and map one forward each) or
CLASSICAL (`hsic_jax.train.classical`, fitted once, after the data stage). It trains `config.num_seeds`
seeds side by side, and with a sweep (`hsic_jax.train.sweep`) every grid point × seed: every
per-run array carries a leading run axis, the step is `jax.vmap`ped over it, the frozen
parameters are shared (`in_axes=None`, `hsic_jax.train.partition`), and with several devices
(and hosts, `hsic_jax.hosts`) the run axis is sharded. Rerunning the same command
resumes from the latest checkpoint in `workdir/checkpoints`.

Honest evaluation. In-loop evaluation (every `eval_every_epochs`, `val_oa` in
`metrics.jsonl`) sees the validation pixels only, and only when there are some
(`data.val_per_class`); with `select='best_val'` the state with the best validation OA is
kept (`hsic_jax.train.selection`); `eval_max_pixels` caps the validation pixels per seed. The
test pixels are predicted once, after training, with the selected state (`select='last'`:
the final one); the map reuses those predictions and predicts only the other pixels. `results.json` records the protocol
and the leakage: the fraction of test (and validation) pixels inside some training pixel's
input window.

Outputs in `workdir`: `config.json`, `log.txt`, `split_seed{N}.json`, `pca.npz` and
`normalization.npz` (or `pca_seed{N}.npz`, `normalization_seed{N}.npz` with `fit_on='train'`:
the fitted preprocessing, which `hsic_jax.predict` applies to new cubes), `metrics.jsonl`,
`checkpoints/`, `results.json`, `classification_map.png` and `confidence_map.png` (and `.tif`
twins, with the input's georeference for a GeoTIFF scene), `training_curves.png`, `adapters/`
(only the trainable subtrees + head and the preprocessing, see `hsic_jax.adapters.export`),
and for a sweep `sweep.png` (OA against
the swept values). `results.json` has `timings` (seconds of compilation, data, init,
training, evaluation, map, in all) and `compiles` (XLA compilations of the run).
"""

import contextlib
import dataclasses
import functools
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import ml_collections
import numpy as np

from hsic_jax.adapters.export import WEIGHTS, export_adapters
from hsic_jax.data.io import write_json
from hsic_jax.data.pipeline import Data, load_data, subsample, write_records
from hsic_jax.evaluation.maps import save_sweep_plot, save_training_curves
from hsic_jax.evaluation.predict import classify_scene, evaluate, save_maps
from hsic_jax.evaluation.results import results as make_results
from hsic_jax.models.converted import read_manifest
from hsic_jax.progress import progress
from hsic_jax import hosts
from hsic_jax.train import checkpoint, selection, tasks
from hsic_jax.train import sweep as sweeps
from hsic_jax.train.checks import check_config
from hsic_jax.train.state import TrainSetup, create_train_state, pretrained_backbone, tuned_model
from hsic_jax.train.partition import combine
from hsic_jax.train.step import Geometry, compiler_options, seeds_predict_program
from hsic_jax.train.timings import Timings
from hsic_jax.train.workdir import WorkdirError, claim

log = logging.getLogger(__name__)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       restart: bool = False, sweep: Sequence[str] = ()) -> dict:
    """Train and evaluate every seed of `config`; write outputs to `workdir`; return the results.

    `sweep`: specs `FIELD=V1,V2,…` (`hsic_jax.train.sweep`); every grid point × seed is a run
    of the same program, and `results['sweep']` lists the points.

    The config is checked before any work and the workdir claimed for this experiment: a
    rerun of a finished experiment returns its saved results, another experiment in the same
    workdir is refused unless `restart` (which moves the old run aside).
    """
    clock = Timings()
    with clock:
        axes = sweeps.parse(sweep)
        points = sweeps.grid(axes)
        check_config(config)  # may shorten the warm-up of a short run, in place
        for point in filter(None, points):  # every grid point's config makes sense too
            check_config(sweeps.point_config(config, point))
    experiment = {**config.to_dict(), **({"sweep": [[f, v] for f, v in axes]} if axes else {})}
    primary = hosts.is_primary()
    with contextlib.ExitStack() as stack:
        finished = None
        if primary:
            try:
                finished = stack.enter_context(
                    claim(workdir, experiment, restart=restart)).finished
            except BaseException:
                hosts.agree(hosts.REFUSED)
                raise
        decision = hosts.agree(hosts.GO if finished is None else hosts.FINISHED)
        if decision == hosts.REFUSED:
            raise WorkdirError(f"process 0 refused workdir {workdir} (see its output)")
        if decision == hosts.FINISHED:
            log.info("%s holds this experiment, finished: its results are kept", workdir)
            return finished if primary else _read_json(os.path.join(workdir, "results.json"))
        with clock:
            seeds = tuple(config.seed + s for s in range(config.num_seeds))
            return _run(Run(config, workdir, primary, clock, seeds, tuple(points)), experiment)


@dataclasses.dataclass(frozen=True)
class Run:
    """What the stages of one experiment share: its config and workdir, whether this process
    writes the outputs (`primary`), the clock of its phases, its seeds and the sweep's grid
    points (`({},)` without a sweep; `hsic_jax.train.sweep`)."""

    config: ml_collections.ConfigDict
    workdir: str
    primary: bool
    clock: Timings
    seeds: tuple[int, ...]
    points: tuple[dict, ...] = ({},)

    @property
    def run_seeds(self) -> list[int]:
        """The seed of every run: the seeds, once per grid point."""
        return list(self.seeds) * len(self.points)


@dataclasses.dataclass(frozen=True)
class Placed:
    """A run's training, placed on the devices: the train setup, one run's train step
    `step_fn(state, frozen, cube, coords, labels, valid, seed, hp)` (`hsic_jax.train.tasks`),
    every run's hyper-parameters `hp` (`hsic_jax.train.sweep`), the frozen parameters (one copy,
    replicated), the per-run cubes `padded`, the sharding of per-run arrays, and
    `evaluate_fn(params, padded, pixels)`, the metrics of every run on a pixel set
    (`hsic_jax.evaluation.predict.evaluate`, `eval_batch` pixels a batch; None: no
    evaluation)."""

    setup: TrainSetup
    step_fn: Callable
    hp: dict
    frozen: Any
    padded: Any
    per_seed: jax.sharding.Sharding
    evaluate_fn: Callable | None = None
    eval_batch: int | None = None


def _run(run: Run, experiment: dict) -> dict:
    """The experiment, in a workdir claimed for it. Nothing is written before the data and the
    model are set up, so that a run refused for bad input leaves no trace that a corrected
    rerun would take for another experiment."""
    config, seeds = run.config, list(run.seeds)
    task = tasks.of(config.model.name)
    with run.clock.phase("data_s"):
        data = load_data(config.data, seeds, whole_scene=task.whole_scene)
    log.info("split of seed %d:\n%s", seeds[0], data.splits[0].to_markdown())
    if task.fitted:
        if run.primary:
            _write_inputs(run, experiment, data)
        return task.fit(config, run.workdir, data, seeds, run.primary)
    hp = sweeps.hyperparams(config, list(run.points), len(seeds))  # every run's
    with run.clock.phase("init_s"):
        tuned = tuned_model(config, num_classes=data.num_classes, bands=data.bands)
        setup, state, frozen = create_train_state(
            config, tuned, run.run_seeds, task.steps_per_epoch(config, data.train["valid"]),
            {"backbone": pretrained_backbone(config, tuned.module)}, init_std=hp["init_std"])
    if run.primary:
        _write_inputs(run, experiment, data)
    runs = _tile(data, len(run.points))  # per-run arrays: the seeds' arrays, once per point
    placed, predict_fn, replicated = _place(run, task, runs, setup, hp, frozen)
    state, best, train_seconds = train(run, runs, placed, state)
    return _test_and_write(run, data, runs, placed, predict_fn, replicated, state, best,
                           train_seconds)


def _place(run: Run, task: tasks.Task, runs: Data, setup: TrainSetup, hp: dict, frozen: dict):
    """`(placed, predict_fn, replicated)`: the run's training on the devices (`Placed`), the
    prediction of every run `predict_fn(params, cube, coords)`, and the replicated sharding."""
    config = run.config
    geo = Geometry(config.data.neighborhood, config.data.input_size, config.data.resize)
    step, predict = task.step_functions(sweeps.program_config(config, list(run.points)),
                                        setup, geo)
    per_seed, replicated = hosts.shardings(len(run.run_seeds))
    log.info("training %d seeds on %d devices%s", len(run.seeds), per_seed.mesh.size,
             f" × {len(run.points)} grid points: {len(run.run_seeds)} runs"
             if len(run.points) > 1 else "")
    padded, frozen = hosts.to_global(runs.padded, per_seed), hosts.to_global(frozen, replicated)
    predict_seeds = seeds_predict_program(predict)

    def predict_fn(params, cube, coords):
        return predict_seeds(params, frozen, cube, coords)

    evaluate_fn = functools.partial(evaluate, predict_fn, num_classes=runs.num_classes,
                                    batch=task.eval_batch)
    return (Placed(setup, step, hp, frozen, padded, per_seed, evaluate_fn, task.eval_batch),
            predict_fn, replicated)


def _test_and_write(run: Run, data: Data, runs: Data, placed: Placed, predict_fn,
                    replicated, state: dict, best: dict | None, train_seconds: float) -> dict:
    """Predict the test pixels once (the selected state, and the last one too when that is
    the best validation state, for the record), the map with the first run's model, and write
    the outputs. Every process takes part; the first one writes."""
    config, clock = run.config, run.clock
    with clock.phase("eval_s"):
        selected = selection.selected_params(state["params"], best)
        per_run, (test_classes, test_confidence) = placed.evaluate_fn(selected, placed.padded,
                                                                      runs.test)
        last = None if best is None else placed.evaluate_fn(state["params"], placed.padded,
                                                            runs.test)[0]
    first_params, first_cube = (selected, placed.padded) if len(run.run_seeds) == 1 else jax.jit(
        lambda tree: jax.tree.map(lambda x: x[:1], tree), out_shardings=replicated)(
            (selected, placed.padded))
    maps = None
    if config.save_map:
        with clock.phase("map_s"):
            valid = data.test["valid"][0]
            known = (data.test["coords"][0][valid], test_classes[0][valid],
                     test_confidence[0][valid])
            maps = classify_scene(predict_fn, first_params, first_cube, data.scene.gt.shape,
                                  known, batch=placed.eval_batch)
    first_trainable = jax.tree.map(lambda x: hosts.fetch(x)[0], first_params)
    chosen = None if best is None else {k: hosts.fetch(best[k]) for k in ("val_oa", "epoch")}
    results = _results(run, data, per_run, last, chosen, first_trainable, placed.frozen,
                       train_seconds)
    if run.primary:
        _write_outputs(run, data, placed, first_trainable, results, per_run[0]["oa"], maps)
    return results


def _results(run: Run, data: Data, per_run: list[dict], last, chosen, first_trainable,
             frozen, train_seconds: float) -> dict:
    """`results.json` of the first grid point's seeds, with every point's summary in
    `results['sweep']` when there is a sweep."""
    n = len(run.seeds)
    trainable_params = sum(int(np.size(p)) for p in jax.tree.leaves(first_trainable))

    def point_results(g: int) -> dict:  # the results of grid point g's seeds
        runs_of = slice(g * n, (g + 1) * n)
        return make_results(
            sweeps.point_config(run.config, run.points[g]), data, list(run.seeds),
            per_run[runs_of], last=None if last is None else last[runs_of],
            selection=None if chosen is None else {k: v[runs_of] for k, v in chosen.items()},
            trainable_params=trainable_params,
            total_params=trainable_params + sum(int(np.size(p)) for p in jax.tree.leaves(frozen)),
            train_seconds=train_seconds)

    results = point_results(0)
    if len(run.points) > 1 or run.points[0]:
        results["sweep"] = [sweeps.summary(run.points[g], point_results(g))
                            for g in range(len(run.points))]
    return results


def _write_outputs(run: Run, data: Data, placed: Placed, first_trainable, results: dict,
                   first_oa: float, maps) -> None:
    """The adapters of the first run, the maps, `results.json` and the plots."""
    config, workdir = run.config, run.workdir
    export_dir = os.path.join(workdir, "adapters")
    export_adapters(combine(first_trainable, placed.frozen), placed.setup.tuned, config.method,
                    export_dir, base_sha256=_base_sha256(config),
                    class_names=list(data.scene.class_names), run=config.to_dict(),
                    preprocessing=data.preprocessing[0])
    results["adapter_bytes"] = os.path.getsize(os.path.join(export_dir, WEIGHTS))
    if maps is not None:
        with run.clock.phase("map_s"):
            save_maps(workdir, config, data.scene, run.seeds[0], first_oa, *maps)
    results.update(run.clock.record())
    write_json(os.path.join(workdir, "results.json"), results)
    save_training_curves(os.path.join(workdir, "training_curves.png"),
                         os.path.join(workdir, "metrics.jsonl"))
    if "sweep" in results:
        save_sweep_plot(os.path.join(workdir, "sweep.png"), results["sweep"],
                        title=f"{config.data.name} · {config.method.name}")


def train(run: Run, data: Data, placed: Placed, state: dict):
    """Train every run from its latest checkpoint to the end; return `(state, best, seconds)`.

    `data` holds per-run arrays (`_tile`). Each epoch is one jitted program (`epoch_program`),
    so progress counts epochs. In-loop evaluation sees the validation pixels only (none without
    a validation split; at most `config.eval_max_pixels` per seed). Checkpoints every
    `checkpoint_every_epochs`, and at the end of any epoch that comes
    `checkpoint_every_seconds` after the last one (slow epochs: every epoch). The run's clock
    gets the loop's time as `train_s`, validation as `eval_s`.
    """
    config, clock, setup = run.config, run.clock, placed.setup
    pixels = hosts.to_global((data.train["coords"], data.train["labels"], data.train["valid"],
                              np.asarray(run.run_seeds, np.int32), placed.hp), placed.per_seed)
    val = (subsample(data.val, config.eval_max_pixels, run.run_seeds) if data.has_val
           else None)
    mngr, metrics_path = checkpoint.manager(run.workdir), os.path.join(run.workdir,
                                                                       "metrics.jsonl")
    state, best, start = _resume(run, placed, mngr, metrics_path, state)
    epoch_fn = epoch_program(placed.step_fn, setup.steps_per_epoch,
                             compiler_options(setup.labels))
    learning_rate = jax.jit(lambda step, hp: setup.optimizer(hp)[1](step))
    first_hp = {k: v[0] for k, v in placed.hp.items()}  # the first run's, for the log

    t0, status = time.perf_counter(), {}
    eval_before = clock.seconds.get("eval_s", 0.0)
    last_save = time.monotonic()
    done = start // setup.steps_per_epoch  # checkpoints are written at the ends of epochs
    for epoch in progress(range(done + 1, config.epochs + 1), "train epochs", config.epochs,
                          initial=done, status=status):
        state, totals = epoch_fn(state, placed.frozen, placed.padded, *pixels)
        step = epoch * setup.steps_per_epoch - 1  # the epoch's last step
        row = {"step": step + 1, "epoch": epoch, "lr": float(learning_rate(step, first_hp)),
               **{f"train_{k}": float(np.mean(hosts.fetch(v))) for k, v in totals.items()}}
        if val is not None and (epoch % config.eval_every_epochs == 0 or epoch == config.epochs):
            best = _validate(run, placed, state, best, val, epoch, row)
        status.update(epoch=epoch, loss=f"{row['train_loss']:.3f}",
                      **({"acc": f"{row['train_accuracy']:.3f}"} if "train_accuracy" in row else {}))
        if run.primary:
            checkpoint.append_metrics(metrics_path, [row])
        if (epoch % config.checkpoint_every_epochs == 0 or epoch == config.epochs
                or time.monotonic() - last_save >= config.checkpoint_every_seconds):
            checkpoint.save(mngr, step + 1, checkpoint.checkpointed(state, best))
            last_save = time.monotonic()
    seconds = time.perf_counter() - t0
    clock.add("train_s", seconds - (clock.seconds.get("eval_s", 0.0) - eval_before))
    return state, best, seconds


def _resume(run: Run, placed: Placed, mngr, metrics_path: str, state: dict):
    """`(state, best, step)` on the devices: from the latest checkpoint when there is one (the
    metrics of later steps dropped), else the fresh state (and, with `select='best_val'`, a
    best-state accumulator that any validation beats); `step` the state's step."""
    best = None  # the trainable leaves of the best validation state (select='best_val')
    if run.config.get("select") == "best_val":
        best = selection.init_best(state["params"])
    state, best = hosts.to_global((state, best), placed.per_seed)
    restored = checkpoint.restore_latest(mngr, checkpoint.checkpointed(state, best))
    if restored is not None:
        state, best = restored["state"], restored.get("best")
        log.info("resumed from step %d of %d", int(hosts.fetch(state["step"])[0]),
                 placed.setup.total_steps)
    start = int(hosts.fetch(state["step"])[0])  # every process: a collective across hosts
    if run.primary:
        checkpoint.truncate_metrics(metrics_path, start)
    return state, best, start


def _validate(run: Run, placed: Placed, state: dict, best, val: dict, epoch: int,
              row: dict):
    """Every run's OA on its validation pixels into `row['val_oa']` (their mean); the best
    state so far updated (`select='best_val'`); returns it."""
    with run.clock.phase("eval_s"):
        val_oa = np.array([r["oa"] for r in placed.evaluate_fn(state["params"], placed.padded,
                                                               val)[0]], np.float32)
    row["val_oa"] = float(val_oa.mean())
    if best is not None:
        best = selection.update_best(
            best, state["params"],
            *hosts.to_global((val_oa, np.full(len(run.run_seeds), epoch, np.int32)),
                             placed.per_seed))
    return best


def epoch_program(step_fn, steps: int, options: dict | None = None):
    """`epoch(state, frozen, cube, coords, labels, valid, seed, hp) -> (state, metrics)`: `steps`
    train steps of every run (`step_fn` vmapped over the runs, scanned over the steps) as one
    jitted program (XLA `options`: `hsic_jax.train.step.compiler_options`), the state donated;
    `metrics` are `(runs, steps)` per key. One program per epoch allocates its temporaries
    once per epoch, not once per step (on a CPU, each fresh allocation of the cpu-small FFT
    step's 541 MiB was 150,000 page faults)."""
    runs_step = jax.vmap(step_fn, in_axes=(0, None, 0, 0, 0, 0, 0, 0))

    def epoch(state, frozen, *args):
        state, metrics = jax.lax.scan(lambda s, _: runs_step(s, frozen, *args), state,
                                      length=steps)
        return state, jax.tree.map(lambda m: m.swapaxes(0, 1), metrics)  # runs first

    return jax.jit(epoch, donate_argnums=0, compiler_options=options)


def _write_inputs(run: Run, experiment: dict, data: Data) -> None:
    """`config.json` (the workdir's experiment: the config, and the sweep if any) and the
    splits and PCA of every seed."""
    write_json(os.path.join(run.workdir, "config.json"), experiment)
    write_records(run.workdir, data, list(run.seeds),
                  per_seed_pca=run.config.data.fit_on == "train")


def _tile(data: Data, times: int) -> Data:
    """`data` with its per-seed arrays repeated `times` times along the seed axis: the arrays
    of the runs of a sweep (grid point by grid point, the seeds inside)."""
    if times == 1:
        return data
    tile = lambda tree: jax.tree.map(lambda a: np.concatenate([a] * times), tree)
    return dataclasses.replace(data, padded=tile(data.padded), train=tile(data.train),
                               val=tile(data.val), test=tile(data.test))


def _base_sha256(config) -> str | None:
    if config.init != "pretrained":
        return None
    return read_manifest(config.pretrained_dir)["source_sha256"]


def _read_json(path: str):
    with open(path) as f:
        return json.load(f)


