"""The training plumbing that bends results without crashing, against independent oracles.

Each test here stands against a one-line mistake that still trains and still reports
plausible numbers: a train step run in eval mode; the same augmentation or dropout key at
every step; the same batch order every epoch; an epoch that skips or repeats pixels; a sweep
run trained on another seed's pixels; every seed on seed 0's split; a best-validation run
that tests its last state; preprocessing fitted on the whole scene under `fit_on='train'`;
torch-style Adam without its L2 term on some leaves; the pre-training loss against the
wrong target; a PEFT run whose frozen backbone is not the checkpoint's.

The scenes are tiny synthetic ones; band 0 of every pixel holds its index `row * W + col`,
so that with a 1-pixel window and no preprocessing a batch's inputs name the pixels drawn.
"""

import functools
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
import torch
from sklearn.decomposition import PCA as SkPCA

from configs import demo
from hsic_jax.data.pipeline import load_data, load_unlabelled
from hsic_jax.data.scenes import load_scene
from hsic_jax.data.split import Split, make_split, training_pixels
from hsic_jax.models.converted import load_params, save_converted
from hsic_jax.models.spectralgpt import ARCHITECTURE, patchify
from hsic_jax.train import loop, selection, sweep, tasks
from hsic_jax.train.optimizer import make_optimizer, make_schedule
from hsic_jax.train.partition import combine
from hsic_jax.train.state import create_train_state, init_params, mae_model, tuned_model
from hsic_jax.train.step import Geometry, _batch

from tests.test_pretrain import scene as pretrain_scene
from tests.test_pretrain import tiny_config as pretrain_config

H, W, BANDS, CLASSES = 16, 15, 15, 3
NO_AUGMENT = dict(flip=False, radiation_noise=0.0, mixture_noise=0.0, mixup=0.0, cutmix=0.0)


def write_scene(folder, seed=0):
    """A `(H, W, BANDS)` scene, every pixel labelled 1..CLASSES; band 0 is the pixel's index,
    the others its class's one-hot (scaled) plus noise. Returns `(cube, gt)`."""
    rng = np.random.default_rng(seed)
    gt = rng.integers(1, CLASSES + 1, (H, W)).astype(np.int32)
    cube = 3.0 * np.eye(BANDS)[gt - 1] + rng.normal(size=(H, W, BANDS))
    cube[..., 0] = np.arange(H * W).reshape(H, W)
    np.save(folder / "cube.npy", cube.astype(np.float32))
    np.save(folder / "gt.npy", gt)
    return cube.astype(np.float32), gt


def tiny_config(folder, **data):
    """The demo config on the synthetic scene of `folder` and a tiny SpectralGPT (12 PCA
    components, 5-pixel windows resized to 8)."""
    config = demo.get_config()
    config.model.update(dict(width=24, depth=1, heads=2, patch_size=4))
    config.data = ml_collections.ConfigDict({
        **config.data.to_dict(), "name": "files", "cube_path": str(folder / "cube.npy"),
        "gt_path": str(folder / "gt.npy"), "train_per_class": 10, "num_classes": CLASSES,
        "pca": 12, "normalize": "zscore", "neighborhood": 5, "input_size": 8, **data})
    config.update(dict(epochs=2, batch_size=16, eval_every_epochs=1, checkpoint_every_epochs=2,
                       save_map=False))
    config.optim.warmup_epochs = 1
    return config


def draw(step, padded, coords, labels, valid, seed, hp, *, geo, batch_size, steps_per_epoch,
         augment_cfg, drop_last=True):
    """`(inputs, labels, weights, augmentation key, dropout key)` of step `step`'s batch, as
    the train step draws it (`hsic_jax.train.step._batch`, jitted)."""
    return _draw(step, padded, coords, labels, valid, seed, hp, geo=geo, batch_size=batch_size,
                 steps_per_epoch=steps_per_epoch, augment_cfg=tuple(augment_cfg.items()),
                 drop_last=drop_last)


@functools.partial(jax.jit, static_argnames=("geo", "batch_size", "steps_per_epoch",
                                             "augment_cfg", "drop_last"))
def _draw(step, padded, coords, labels, valid, seed, hp, *, geo, batch_size, steps_per_epoch,
          augment_cfg, drop_last):
    return _batch(step, padded, coords, labels, valid, seed, hp, geo=geo,
                  batch_size=batch_size, steps_per_epoch=steps_per_epoch,
                  augment_cfg=dict(augment_cfg), drop_last=drop_last)


def own_hp(config) -> dict:
    """The config's own hyper-parameters, as one run's traced scalars."""
    return {k: np.float32(v) for k, v in sweep.own(config).items()}


def first_run(tree):
    return jax.tree.map(lambda a: a[0], tree)


def pixel_ids(coords) -> np.ndarray:
    return coords[:, 0] * W + coords[:, 1]


def cross_entropy(logits, labels) -> np.ndarray:
    """Per-example cross-entropy, in float64."""
    logits = np.asarray(logits, np.float64)
    log_p = logits - logits.max(-1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(-1, keepdims=True))
    return -log_p[np.arange(len(labels)), np.asarray(labels)]


# --- 1. the train step runs the model in training mode, with its own keys ------------------


def test_the_train_step_loss_is_the_training_mode_loss_of_its_batch_over_its_real_entries(
        tmp_path):
    """With dropout and drop path on, the step's loss is the mean cross-entropy of the model in
    training mode (dropout key of the step) on the batch `_batch` draws, over the batch's real
    entries only (drop_last=False: the epoch's last batch is partial); in eval mode it would
    be another number."""
    write_scene(tmp_path)
    config = tiny_config(tmp_path)
    config.model.update(dict(depth=2, dropout=0.5, drop_path=0.5))  # block 1 drops its branches
    config.drop_last = False
    data = load_data(config.data, [0])
    n, batch = int(data.train["valid"][0].sum()), config.batch_size
    assert n == 30
    steps = math.ceil(n / batch)  # 2: 16 pixels, then 14 and 2 entries of padding
    tuned = tuned_model(config, num_classes=CLASSES, bands=data.bands)
    setup, state, frozen = create_train_state(config, tuned, [0], steps)
    geo = Geometry(5, 8)
    step = jax.jit(tasks.PATCH.step_functions(config, setup, geo)[0])
    trainable = first_run(state["params"])  # a head that makes the features matter
    kernel = trainable["head"]["kernel"]
    trainable["head"]["kernel"] = np.random.default_rng(0).normal(size=kernel.shape).astype(
        np.float32)
    params = combine(trainable, frozen)
    hp = own_hp(config)
    args = (data.padded[0], data.train["coords"][0], data.train["labels"][0],
            data.train["valid"][0], np.int32(0), hp)
    forward = jax.jit(lambda p, x, key, train: tuned.apply(p, x, train=train,
                                                           rngs={"dropout": key}),
                      static_argnums=3)
    for i in range(2 * steps):  # two epochs, from the same parameters
        one = {**first_run(state), "params": trainable, "step": jnp.int32(i)}
        _, metrics = step(one, frozen, *args)
        x, y, _, _, dropout_key = draw(jnp.int32(i), *args, geo=geo, batch_size=batch,
                                       steps_per_epoch=steps, augment_cfg=dict(config.augment),
                                       drop_last=False)
        real = min(batch, n - (i % steps) * batch)
        trained = cross_entropy(forward(params, x, dropout_key, True), y)[:real].mean()
        evaluated = cross_entropy(forward(params, x, dropout_key, False), y)[:real].mean()
        assert abs(trained - evaluated) > 1e-3  # dropout matters here
        np.testing.assert_allclose(float(metrics["loss"]), trained, rtol=2e-5)


def test_every_step_draws_its_own_augmentation_and_dropout_keys(tmp_path):
    """One training pixel, a batch of one, one step per epoch: every step's batch is that
    pixel, so only fresh keys tell the steps apart. Its flipped and noised input differs from
    step to step, and no two steps (or seeds) share an augmentation or a dropout key."""
    write_scene(tmp_path)
    config = tiny_config(tmp_path, pca=None, normalize="none")
    data = load_data(config.data, [0])
    hp = {**own_hp(config), "radiation_noise": np.float32(1.0)}
    augment_cfg = dict(flip=True, radiation_noise=1.0, mixture_noise=0.0)
    one = lambda a: a[0, :1]
    batch = jax.jit(lambda step, seed: draw(
        step, data.padded[0], one(data.train["coords"]), one(data.train["labels"]),
        one(data.train["valid"]), seed, hp, geo=Geometry(5, 8), batch_size=1,
        steps_per_epoch=1, augment_cfg=augment_cfg))
    inputs, keys = [], []
    for seed in (0, 1):
        for step in range(8):
            x, _, _, aug_key, dropout_key = batch(jnp.int32(step), jnp.int32(seed))
            inputs.append(np.asarray(x))
            keys += [tuple(np.asarray(jax.random.key_data(k)).ravel())
                     for k in (aug_key, dropout_key)]
    for a in range(len(inputs)):
        for b in range(a):
            assert not np.allclose(inputs[a], inputs[b]), (a, b)
    assert len(set(keys)) == len(keys)


# --- 2. an epoch: every training pixel, once, in a fresh order ----------------------------


@pytest.mark.parametrize("drop_last", [True, False])
def test_an_epoch_covers_every_training_pixel_once_in_a_fresh_order(tmp_path, drop_last):
    """The loop's epoch program (its vmap over seeds, its scan over steps) with a step that
    records the pixels `_batch` draws (1-pixel windows of a scene whose band 0 is the pixel's
    index): per seed and epoch, drop_last=True draws ⌊n / batch⌋·batch distinct training
    pixels; drop_last=False every training pixel exactly once, and the ⌈n / batch⌉·batch − n
    entries of padding have weight 0. Labels stay with their pixels; the order changes every
    epoch and between seeds."""
    _, gt = write_scene(tmp_path)
    config = tiny_config(tmp_path, pca=None, normalize="none", neighborhood=1, input_size=1,
                         train_per_class=7)
    config.batch_size, config.drop_last = 4, drop_last
    seeds = [0, 1]
    data = load_data(config.data, seeds)
    n, batch = 21, config.batch_size
    assert data.train["valid"].sum(axis=1).tolist() == [n, n]
    steps = tasks.PATCH.steps_per_epoch(config, data.train["valid"])
    assert steps == (n // batch if drop_last else -(-n // batch))  # 5, or 6 with a partial one
    geo, hp = Geometry(1, 1), {k: np.full(2, v, np.float32) for k, v in own_hp(config).items()}

    def record(state, frozen, padded, coords, labels, valid, seed, hp):
        x, y, weights, _, _ = draw(
            state["step"], padded, coords, labels, valid, seed, hp, geo=geo, batch_size=batch,
            steps_per_epoch=steps, augment_cfg=NO_AUGMENT, drop_last=drop_last)
        return {"step": state["step"] + 1}, {"ids": x[:, 0, 0, 0], "labels": y,
                                             "weights": weights}

    epoch = loop.epoch_program(record, steps)
    state = {"step": np.zeros(2, np.int32)}
    epochs = []
    for _ in range(3):
        state, drawn = epoch(state, {}, data.padded, data.train["coords"], data.train["labels"],
                             data.train["valid"], np.asarray(seeds, np.int32), hp)
        epochs.append({k: np.asarray(v).reshape(2, -1) for k, v in drawn.items()})
    assert np.asarray(state["step"]).tolist() == [3 * steps] * 2

    for s, seed in enumerate(seeds):
        split = make_split(load_scene("files", None, cube_path=config.data.cube_path,
                                      gt_path=config.data.gt_path), seed=seed, per_class=7)
        train_ids = np.sort(pixel_ids(split.train))
        label_of = dict(zip(pixel_ids(np.argwhere(gt > 0)).tolist(),
                            (gt[gt > 0] - 1).tolist()))
        for drawn in epochs:
            ids = np.rint(drawn["ids"][s]).astype(int)
            assert len(ids) == steps * batch
            real = drawn["weights"][s] == 1
            assert set(np.unique(drawn["weights"][s])) <= {0.0, 1.0}
            if drop_last:
                assert real.all() and len(ids) == (n // batch) * batch
                assert len(set(ids.tolist())) == len(ids)  # none twice
                assert set(ids.tolist()) <= set(train_ids.tolist())
            else:
                np.testing.assert_array_equal(np.sort(ids[real]), train_ids)  # each once
                assert (~real).sum() == steps * batch - n
                assert real[:n].all() and not real[n:].any()  # padding: the last entries
            assert drawn["labels"][s][real].tolist() == [label_of[i] for i in ids[real]]
        orders = [tuple(np.rint(d["ids"][s][d["weights"][s] == 1]).astype(int)) for d in epochs]
        assert len(set(orders)) == 3  # a fresh order every epoch
    for drawn in epochs:
        assert not np.array_equal(drawn["ids"][0], drawn["ids"][1])


# --- 3, 4. seeds and sweep runs each get their own split -----------------------------------


def test_each_seed_gets_its_own_split_and_its_own_arrays(tmp_path):
    """Loading seeds 0, 1, 2 together gives each the split `make_split` draws for it alone
    (not seed 0's), and each seed's pixel arrays are its own split's."""
    write_scene(tmp_path)
    config = tiny_config(tmp_path, val_per_class=2)
    seeds = [0, 1, 2]
    data = load_data(config.data, seeds)
    scene = load_scene("files", None, cube_path=config.data.cube_path,
                       gt_path=config.data.gt_path)
    for s, seed in enumerate(seeds):
        alone = make_split(scene, seed=seed, **training_pixels(10), val=2)
        for part in ("train", "val", "test"):
            np.testing.assert_array_equal(getattr(data.splits[s], part), getattr(alone, part))
            pixels = getattr(data, part)
            np.testing.assert_array_equal(pixels["coords"][s][pixels["valid"][s]],
                                          getattr(alone, part))
            labels = pixels["labels"][s][pixels["valid"][s]]
            np.testing.assert_array_equal(labels, scene.gt[tuple(getattr(alone, part).T)] - 1)
    trains = {tuple(sorted(pixel_ids(s.train).tolist())) for s in data.splits}
    assert len(trains) == 3  # three different splits


FAKE_VAL_OA = [[0.5, 0.9, 0.3],  # best: epoch 2
               [0.7, 0.2, 0.7],  # epoch 1 (a tie keeps the earlier state)
               [0.0, 0.0, 0.0],  # epoch 1 (any evaluated state beats none)
               [0.1, 0.2, 0.3]]  # epoch 3, the last
BEST_EPOCH = [2, 1, 1, 3]


def write_checkpoint(folder, config, bands):
    """A converted tiny backbone (every leaf away from any fresh init) for `config`'s model;
    returns its folder."""
    tuned = tuned_model(config, num_classes=CLASSES, bands=bands)
    rng = np.random.default_rng(7)
    backbone = jax.tree.map(lambda a: (np.asarray(a) + rng.normal(0.1, 0.05, a.shape)).astype(
        np.float32), init_params(tuned, jax.random.key(99))["backbone"])
    save_converted(str(folder), {"backbone": backbone}, {
        "family": "spectralgpt", "source": "a test", "source_sha256": "0" * 64,
        "model": {k: getattr(tuned.module, k) for k in ARCHITECTURE}})
    return str(folder)


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    """LoRA from a converted backbone, 2 seeds × 2 learning rates (4 runs of one program),
    statistics fitted per seed, the best validation state selected over 3 epochs. The loop's
    `train` and `evaluate` are watched: what each run is handed, and the parameters of every
    evaluation; the validation OA of run r at epoch e is set to FAKE_VAL_OA[r][e - 1]."""
    tmp = tmp_path_factory.mktemp("sweep")
    write_scene(tmp)
    config = tiny_config(tmp, train_per_class=12, val_per_class=4, fit_on="train")
    config.method = ml_collections.ConfigDict(dict(
        name="lora", targets=("q", "v"), rank=2, alpha=2.0, init="gaussian", init_std=0.02))
    config.update(dict(num_seeds=2, epochs=3, batch_size=12, select="best_val",
                       checkpoint_every_epochs=3, init="pretrained",
                       pretrained_dir=write_checkpoint(tmp / "ckpt", config, 12)))
    seen = {"evaluations": []}
    real_train, real_evaluate = loop.train, loop.evaluate

    def train(run, data, placed, state):
        seen.update(data=data, run_seeds=list(run.run_seeds),
                    lr=np.asarray(placed.hp["lr"]).tolist(),
                    frozen=jax.tree.map(np.array, placed.frozen))
        return real_train(run, data, placed, state)

    def evaluate(predict_fn, params, padded, pixels, **kwargs):
        per_run, maps = real_evaluate(predict_fn, params, padded, pixels, **kwargs)
        epoch = len(seen["evaluations"]) + 1
        if epoch <= config.epochs:  # in-loop validation
            for r, metrics in enumerate(per_run):
                metrics["oa"] = FAKE_VAL_OA[r][epoch - 1]
        seen["evaluations"].append({"params": jax.tree.map(np.array, params),
                                    "coords": np.array(pixels["coords"]),
                                    "valid": np.array(pixels["valid"])})
        return per_run, maps

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(loop, "train", train)
        monkeypatch.setattr(loop, "evaluate", evaluate)
        results = loop.train_and_evaluate(config, str(tmp / "run"),
                                          sweep=["optim.lr=1e-3,3e-3"])
    splits = {seed: Split.load(tmp / "run" / f"split_seed{seed}.json") for seed in (0, 1)}
    return config, results, seen, splits


def test_every_sweep_run_trains_and_is_evaluated_on_its_own_seeds_data(sweep_run):
    """Run g·S + s is grid point g with seed s: its training, validation and test pixels and
    its preprocessed scene are seed s's (fitted on seed s's own training pixels)."""
    config, results, seen, splits = sweep_run
    assert seen["run_seeds"] == [0, 1, 0, 1]
    assert seen["lr"] == pytest.approx([1e-3, 1e-3, 3e-3, 3e-3])
    alone = {seed: load_data(config.data, [seed]) for seed in (0, 1)}
    data = seen["data"]
    for r, seed in enumerate(seen["run_seeds"]):
        for part in ("train", "val", "test"):
            pixels = getattr(data, part)
            np.testing.assert_array_equal(pixels["coords"][r][pixels["valid"][r]],
                                          getattr(splits[seed], part), err_msg=f"{r} {part}")
            np.testing.assert_array_equal(pixels["labels"][r][pixels["valid"][r]],
                                          getattr(alone[seed], part)["labels"][0][
                                              getattr(alone[seed], part)["valid"][0]])
        np.testing.assert_allclose(data.padded[r], alone[seed].padded[0], rtol=1e-6, atol=1e-6)
    assert not np.allclose(alone[0].padded[0], alone[1].padded[0])  # the seeds' inputs differ
    evaluations = seen["evaluations"]
    assert len(evaluations) == config.epochs + 2  # validation per epoch; selected and last
    for i, evaluation in enumerate(evaluations):
        part = "val" if i < config.epochs else "test"
        for r, seed in enumerate(seen["run_seeds"]):
            np.testing.assert_array_equal(evaluation["coords"][r][evaluation["valid"][r]],
                                          getattr(splits[seed], part), err_msg=f"{i} {r}")
    assert [p["values"] for p in results["sweep"]] == [{"optim.lr": 1e-3}, {"optim.lr": 3e-3}]
    assert [[e["seed"] for e in p["seeds"]] for p in results["sweep"]] == [[0, 1], [0, 1]]


def test_best_val_tests_the_state_of_the_best_validation_epoch(sweep_run):
    """The test pixels are predicted with each run's parameters of its best validation epoch
    (the first of equal ones; an epoch with validation OA 0 beats no state at all), and the
    final state's only for the record; `selected_epoch` and `val_oa` name that epoch."""
    config, results, seen, _ = sweep_run
    evaluations = seen["evaluations"]
    epochs = [e["params"] for e in evaluations[:config.epochs]]
    selected, last = evaluations[config.epochs]["params"], evaluations[config.epochs + 1]["params"]
    for r, best in enumerate(BEST_EPOCH):
        for leaf_path, leaf in jax.tree_util.tree_leaves_with_path(selected):
            chosen = _at(epochs[best - 1], leaf_path)
            np.testing.assert_array_equal(leaf[r], chosen[r], err_msg=f"run {r} {leaf_path}")
            np.testing.assert_array_equal(_at(last, leaf_path)[r], _at(epochs[-1], leaf_path)[r])
        if best != config.epochs:  # the selected state is not the last one
            assert any(not np.array_equal(a[r], b[r]) for a, b in zip(
                jax.tree.leaves(selected), jax.tree.leaves(last))), r
    for g, point in enumerate(results["sweep"]):
        for s, entry in enumerate(point["seeds"]):
            r = g * 2 + s
            assert entry["selected_epoch"] == BEST_EPOCH[r], (g, s)
            assert entry["val_oa"] == pytest.approx(FAKE_VAL_OA[r][BEST_EPOCH[r] - 1])


def _at(tree, path):
    for key in path:
        tree = tree[key.key]
    return tree


def test_update_best_keeps_the_first_best_epoch_like_argmax():
    """`init_best` / `update_best` over random validation OAs (ties and zeros included) keep,
    per seed, the parameters and epoch of numpy's first argmax."""
    rng = np.random.default_rng(0)
    val = rng.choice([0.0, 0.25, 0.5, 0.75], size=(6, 5)).astype(np.float32)  # (epochs, seeds)
    val[:, 0] = 0.0  # never better than 0
    params = {"w": np.zeros((5, 2), np.float32)}
    best = selection.init_best(params)
    for epoch, oa in enumerate(val, start=1):
        params = {"w": np.full((5, 2), epoch, np.float32)}
        best = selection.update_best(best, params, jnp.asarray(oa),
                                     jnp.full(5, epoch, jnp.int32))
    expected = val.argmax(axis=0) + 1
    np.testing.assert_array_equal(best["epoch"], expected)
    np.testing.assert_array_equal(best["params"]["w"][:, 0], expected)
    np.testing.assert_array_equal(best["val_oa"], val.max(axis=0))
    assert selection.selected_params(params, best) is best["params"]


# --- 9. a PEFT run trains against the checkpoint's backbone --------------------------------


def test_a_peft_run_trains_against_the_checkpoints_backbone(sweep_run):
    """The frozen parameters the train step gets are the converted checkpoint's backbone,
    every leaf, not a fresh initialisation."""
    config, _, seen, _ = sweep_run
    checkpoint = load_params(config.pretrained_dir)["backbone"]
    frozen = seen["frozen"]
    assert set(frozen) == {"backbone"}
    assert jax.tree.structure(frozen["backbone"]) == jax.tree.structure(checkpoint)
    jax.tree.map(np.testing.assert_array_equal, frozen["backbone"], checkpoint)
    tuned = tuned_model(config, num_classes=CLASSES, bands=12)
    fresh = init_params(tuned, jax.random.key(config.seed))["backbone"]
    assert all(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(fresh),
                                                     jax.tree.leaves(checkpoint)))


# --- 6. fit_on='train': statistics of the seed's training pixels only -----------------------


@pytest.mark.parametrize("normalize", ["zscore", "minmax"])
def test_fit_on_train_fits_pca_and_normalisation_on_each_seeds_training_pixels(tmp_path,
                                                                               normalize):
    """Per seed, the PCA is scikit-learn's PCA of that seed's training spectra (mean,
    components up to sign, explained variance ratio), and the preprocessed scene is the
    projection normalised with that seed's training pixels' statistics, in numpy."""
    cube, _ = write_scene(tmp_path)
    k = 6
    config = tiny_config(tmp_path, pca=k, normalize=normalize, fit_on="train")
    seeds = [0, 1]
    data = load_data(config.data, seeds)
    r = config.data.neighborhood // 2
    scene_mean = cube.reshape(-1, BANDS).astype(np.float64).mean(axis=0)
    for s in seeds:
        train = data.splits[s].train
        x = cube[train[:, 0], train[:, 1]].astype(np.float64)
        oracle = SkPCA(n_components=k).fit(x)
        pca = data.pcas[s]
        np.testing.assert_allclose(pca.mean, oracle.mean_, rtol=1e-5, atol=1e-4)
        assert not np.allclose(oracle.mean_, scene_mean, rtol=1e-3, atol=1e-3)  # teeth
        signs = np.sign(np.sum(np.asarray(pca.components) * oracle.components_.T, axis=0))
        np.testing.assert_allclose(np.asarray(pca.components) * signs, oracle.components_.T,
                                   atol=1e-4)
        np.testing.assert_allclose(pca.explained_variance_ratio,
                                   oracle.explained_variance_ratio_, rtol=1e-4)
        z = (cube.reshape(-1, BANDS).astype(np.float64) - oracle.mean_) @ (
            oracle.components_.T * signs)
        z_train = z.reshape(H, W, k)[train[:, 0], train[:, 1]]
        if normalize == "zscore":
            expected = (z - z_train.mean(axis=0)) / z_train.std(axis=0)
        else:
            low, high = z_train.min(axis=0), z_train.max(axis=0)
            expected = (z - low) / (high - low)
        got = data.padded[s][r:r + H, r:r + W]
        np.testing.assert_allclose(got, expected.reshape(H, W, k), atol=2e-3)
    assert not np.allclose(data.pcas[0].mean, data.pcas[1].mean)


# --- 7. torch-style Adam: L2 on every leaf ---------------------------------------------------


def test_adam_is_torch_adam_with_l2_on_every_leaf():
    """`optim.name='adam'` against `torch.optim.Adam(weight_decay=...)` (with StepLR) on a tree
    with a bias, a norm scale, a position table, a matrix, a B-side factor (λ·lr) and a
    frozen leaf, over 6 steps of random gradients."""
    rng = np.random.default_rng(0)
    shapes = {"backbone": {"pos_embed": (1, 4, 3), "norm": {"scale": (3,), "bias": (3,)},
                           "block_0": {"kernel": (3, 3), "bias": (3,)}, "frozen": (3, 3)},
              "adapters": {"b": (2, 3)}, "head": {"kernel": (3, 2), "bias": (2,)}}
    params = jax.tree.map(lambda s: rng.normal(size=s).astype(np.float32), shapes,
                          is_leaf=lambda s: isinstance(s, tuple))
    labels = jax.tree_util.tree_map_with_path(
        lambda path, _: {"frozen": "frozen", "b": "b_side"}.get(path[-1].key, "base"), params)
    lam, lr, wd = 4.0, 1e-2, 0.3
    optim = dict(name="adam", lr=lr, min_lr=0.0, weight_decay=wd, b1=0.9, b2=0.999, eps=1e-8,
                 schedule="step", step_epochs=2, step_offset=0, step_gamma=0.5,
                 warmup_epochs=0.0)
    tx = make_optimizer(optim, labels, make_schedule(optim, 6, 1), lam)
    state = tx.init(params)

    name = lambda path: "/".join(k.key for k in path)
    leaves = {name(p): torch.tensor(np.array(v), requires_grad=True)
              for p, v in jax.tree_util.tree_leaves_with_path(params)}
    b_side = [leaves["adapters/b"]]
    base = [t for k, t in leaves.items() if k not in ("adapters/b", "backbone/frozen")]
    groups = [{"params": base, "lr": lr}, {"params": b_side, "lr": lam * lr}]
    reference = torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)
    scheduler = torch.optim.lr_scheduler.StepLR(reference, step_size=2, gamma=0.5)
    for _ in range(6):
        grads = jax.tree.map(lambda p: rng.normal(size=p.shape).astype(np.float32), params)
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        for path, g in jax.tree_util.tree_leaves_with_path(grads):
            leaves[name(path)].grad = torch.tensor(np.array(g))
        reference.step()
        scheduler.step()
        for path, p in jax.tree_util.tree_leaves_with_path(params):
            np.testing.assert_allclose(p, leaves[name(path)].detach().numpy(), rtol=1e-5,
                                       atol=1e-6, err_msg=name(path))


# --- 8. the pre-training loss ------------------------------------------------------------------


def test_the_pretraining_loss_is_against_the_normalised_pixels_only_with_norm_pix_loss(
        tmp_path):
    """The MAE step's loss is, for the batch and keys it drew (recomputed with `_batch`), the
    mean over the hidden tokens of the squared error against the tokens' pixels, each token
    normalised (mean 0, unbiased std 1) exactly when `pretrain.norm_pix_loss`; in numpy."""
    path = pretrain_scene(tmp_path / "scene.npz")
    with np.load(path) as z:  # pixels far from 0: normalising the tokens changes the target
        np.savez(path, cube=z["cube"] + 3.0, gt=z["gt"])
    config = pretrain_config(path, **{"data.normalize": "none"})
    config.batch_size = 16
    data = load_unlabelled(config.data, [0])
    steps = int(data.train["valid"][0].sum()) // config.batch_size
    tuned = mae_model(config, data.bands)
    setup, state, frozen = create_train_state(config, tuned, [0], steps)
    geo = Geometry(config.data.neighborhood, config.data.input_size, config.data.resize)
    hp = own_hp(config)
    args = (data.padded[0], data.train["coords"][0], data.train["labels"][0],
            data.train["valid"][0], np.int32(0), hp)
    params = combine(first_run(state["params"]), frozen)
    module = tuned.module
    forward = jax.jit(lambda p, x, d, m: tuned.apply(p, x, train=True,
                                                     rngs={"dropout": d, "mask": m}))
    losses = {}
    for norm_pix_loss in (True, False):
        config.pretrain.norm_pix_loss = norm_pix_loss
        step = jax.jit(tasks.MAE.step_functions(config, setup, geo)[0])
        for i in (0, steps + 1):
            _, metrics = step({**first_run(state), "step": jnp.int32(i)}, frozen, *args)
            x, _, _, _, key = draw(jnp.int32(i), *args, geo=geo, batch_size=config.batch_size,
                                   steps_per_epoch=steps, augment_cfg=dict(config.augment))
            pred, mask = (np.asarray(a, np.float64) for a in forward(params, x,
                                                                     *jax.random.split(key)))
            target = np.asarray(patchify(x, module.patch_size, module.tubelet), np.float64)
            normed = (target - target.mean(-1, keepdims=True)) / np.sqrt(
                target.var(-1, keepdims=True, ddof=1) + 1e-6)
            oracle = {flag: float(np.sum(((pred - t) ** 2).mean(-1) * mask) / mask.sum())
                      for flag, t in ((True, normed), (False, target))}
            assert abs(oracle[True] - oracle[False]) > 0.1 * oracle[True]  # teeth
            np.testing.assert_allclose(float(metrics["loss"]), oracle[norm_pix_loss], rtol=1e-4)
            losses[norm_pix_loss, i] = float(metrics["loss"])
    assert losses[True, 0] != losses[True, steps + 1]
