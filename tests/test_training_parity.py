"""Training parity: the comparison families trained by this project and by an independent
PyTorch loop written from their official training scripts, from the same initial weights
(the PyTorch model's, through the converter) on the same batches.

Forward parity (tests/test_spectralformer.py, tests/test_mambahsi.py) cannot see what these
check: the optimizer (torch Adam's L2 term against AdamW, its eps and bias correction), the
learning-rate schedule's step boundaries, the batches of an epoch (the last, partial one
included), the loss and its masking, and the normalisation of the inputs. Each test trains a
small model of the family for 20+ steps with the project's own stages (`load_data`,
`create_train_state`, the task's steps, the loop's epoch program) on a synthetic scene of raw
sensor counts, and the official loop on inputs built from the same raw scene by the official
preprocessing, picking each step's pixels from the project's batch schedule (`batch_indices`;
torch's `DataLoader` shuffle cannot be replayed). Dropout is off on both sides (its random
masks cannot be shared); everything else is the official recipe. The first 20 losses and the
final weights agree to 1e-4 relative.
"""

import warnings

import jax
import numpy as np
import pytest
import torch
from torch import nn

import torch_hypersigma as hypersigma_ref
import torch_mambahsi as mambahsi_ref
import torch_spectralformer as spectralformer_ref
from configs import hypersigma as hypersigma_configs
from configs import mambahsi as mambahsi_configs
from configs import spectralformer as spectralformer_configs
from convert import __main__ as convert_cli
from hsic_jax import load_converted
from hsic_jax.data.pipeline import load_data
from hsic_jax.train import loop, sweep, tasks
from hsic_jax.train.checks import check_config
from hsic_jax.train.state import create_train_state, tuned_model
from hsic_jax.train.step import Geometry, batch_indices, inputs

STEPS, TOL, UPDATE_TOL = 20, 1e-4, 1e-3
CLASSES = 5


def write_scene(tmp_path, height, width, bands, seed=0):
    """A raw scene of 12-bit-like counts (band ranges differ, so per-band normalisation
    matters) with every class's pixels a little brighter in one band; some pixels unlabelled.
    Returns the cube `(H, W, B)` and the ground truth `(H, W)` (0 = unlabelled)."""
    rng = np.random.default_rng(seed)
    gt = rng.integers(1, CLASSES + 1, (height, width)).astype(np.int32)
    gt[0, :3] = 0
    scale = rng.integers(200, 4000, bands)
    cube = rng.integers(0, 1000, (height, width, bands)) * scale / 1000 + 100
    cube[..., :CLASSES] += 300 * np.eye(CLASSES)[np.maximum(gt, 1) - 1]
    cube = np.round(cube).astype(np.float32)
    np.save(tmp_path / "cube.npy", cube)
    np.save(tmp_path / "gt.npy", gt)
    return cube, gt


def on_scene(config, tmp_path, train_per_class):
    config.data.update(dict(name="files", cube_path=str(tmp_path / "cube.npy"),
                            gt_path=str(tmp_path / "gt.npy"), train_per_class=train_per_class,
                            num_classes=CLASSES))
    return config


def convert(tmp_path, name, family, state_dict, *flags) -> dict:
    """`state_dict` through `python -m convert FAMILY`: the project's params."""
    src, out = tmp_path / f"{name}.pth", tmp_path / name
    torch.save(state_dict, src)
    assert convert_cli.main([family, "--checkpoint", str(src), "--out", str(out), *flags]) == 0
    return load_converted(str(out)).params


def train_ours(config, params: dict, epochs: int, compiler_options=None):
    """Train `config` from `params` (every parameter: the method is FFT) for `epochs` epochs with
    the project's stages, as `hsic_jax.train.loop` runs them. Returns the data, the steps per
    epoch, the loss of every step and the final params."""
    check_config(config)
    seed, task = config.seed, tasks.of(config.model.name)
    data = load_data(config.data, [seed], whole_scene=task.whole_scene)
    tuned = tuned_model(config, num_classes=data.num_classes, bands=data.bands)
    steps = task.steps_per_epoch(config, data.train["valid"])
    setup, state, frozen = create_train_state(config, tuned, [seed], steps, params)
    geo = Geometry(config.data.neighborhood, config.data.input_size, config.data.resize)
    step, _ = task.step_functions(config, setup, geo)
    epoch_program = loop.epoch_program(step, steps)
    if compiler_options:  # (compile time is most of a small HyperSIGMA's time)
        epoch_program = jax.jit(epoch_program, donate_argnums=0, compiler_options=compiler_options)
    pixels = (data.train["coords"], data.train["labels"], data.train["valid"],
              np.array([seed], np.int32), sweep.hyperparams(config, [{}], 1))
    losses = []
    for _ in range(epochs):
        state, metrics = epoch_program(state, frozen, data.padded, *pixels)
        losses += np.asarray(metrics["loss"])[0].tolist()
    assert not jax.tree.leaves(frozen)  # FFT: every parameter trained
    return data, steps, losses, jax.tree.map(lambda a: np.asarray(a)[0], state["params"])


def batches(config, data, steps_per_epoch: int, total: int) -> list[np.ndarray]:
    """The scene pixels `(n, 2)` of each of the first `total` steps, in the project's order."""
    valid, coords = data.train["valid"][0], data.train["coords"][0]
    out = []
    for step in range(total):
        idx, weights = batch_indices(step, valid, config.seed, batch_size=config.batch_size,
                                     steps_per_epoch=steps_per_epoch,
                                     drop_last=config.drop_last)
        out.append(coords[np.asarray(idx)[np.asarray(weights) > 0]])
    return out


def assert_same_training(ours_losses, torch_losses, ours_final, torch_final, initial):
    """The first STEPS losses agree to TOL, and so does every final leaf (max |Δ| / max |value|
    per leaf); so does what training changed, the final leaf minus the initial one, to
    UPDATE_TOL in norm (‖Δ_ours − Δ_torch‖ / ‖Δ_torch‖ per leaf: a test of the updates
    themselves, whatever the learning rate's scale)."""
    np.testing.assert_allclose(ours_losses[:STEPS], torch_losses[:STEPS], rtol=TOL)
    flat_ours = dict(jax.tree_util.tree_leaves_with_path(ours_final))
    flat_torch = dict(jax.tree_util.tree_leaves_with_path(torch_final))
    flat_init = dict(jax.tree_util.tree_leaves_with_path(initial))
    assert flat_ours.keys() == flat_torch.keys() == flat_init.keys()
    weights = updates = 0.0
    for path, ours in flat_ours.items():
        want, start = flat_torch[path], flat_init[path]
        weights = max(weights, relative(ours, want))
        if np.abs(want - start).max() > 0:  # (a leaf without gradient moves on neither side)
            updates = max(updates, float(np.linalg.norm(ours - want)
                                         / np.linalg.norm(want - start)))
        else:
            np.testing.assert_array_equal(ours, start)
    print(f"losses {ours_losses[0]:.4f} → {ours_losses[STEPS - 1]:.4f}; final weights max rel "
          f"Δ {weights:.1e}, updates max rel Δ {updates:.1e}")  # pytest -s shows it
    assert weights <= TOL and updates <= UPDATE_TOL


def relative(ours: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(ours - want).max() / np.abs(want).max())


# ---------------------------------------------------------------- SpectralFormer

def official_minmax(cube: np.ndarray) -> np.ndarray:
    """demo.py's `input_normalize`: each band min-max scaled over the scene (float64)."""
    out = np.zeros(cube.shape)
    for i in range(cube.shape[2]):
        high, low = np.max(cube[:, :, i]), np.min(cube[:, :, i])
        out[:, :, i] = (cube[:, :, i] - low) / (high - low)
    return out


def official_mirror(image: np.ndarray, patch: int) -> np.ndarray:
    """demo.py's `mirror_hsi`: the border mirrored with the edge pixel repeated."""
    height, width, band = image.shape
    padding = patch // 2
    mirror = np.zeros((height + 2 * padding, width + 2 * padding, band))
    mirror[padding:padding + height, padding:padding + width] = image
    for i in range(padding):
        mirror[padding:height + padding, i] = image[:, padding - i - 1]
        mirror[padding:height + padding, width + padding + i] = image[:, width - 1 - i]
    for i in range(padding):
        mirror[i] = mirror[padding * 2 - i - 1]
        mirror[height + padding + i] = mirror[height + padding - 1 - i]
    return mirror


def official_spectralformer_loop(model, inputs_of, labels_of, epochs: int, steps_per_epoch: int,
                                 lr: float, weight_decay: float, step_size: int,
                                 gamma: float) -> list[float]:
    """demo.py's training: Adam with weight decay, StepLR stepped before each epoch, mean
    cross-entropy per batch. `inputs_of(step)` / `labels_of(step)` give the step's batch."""
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    losses = []
    for epoch in range(epochs):
        with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()"
            warnings.simplefilter("ignore", UserWarning)
            scheduler.step()
        model.train()
        for i in range(steps_per_epoch):
            step = epoch * steps_per_epoch + i
            optimizer.zero_grad()
            loss = criterion(model(inputs_of(step)), labels_of(step))
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


SPECTRALFORMER = dict(dim=16, depth=4, heads=2, dim_head=8, mlp_dim=6)  # 2 skipcat fusions


def spectralformer_config(tmp_path):
    """The official recipe (configs/spectralformer.py) on the synthetic scene, at a small width:
    8 training pixels per class (40: batches of 16, 16 and 8), 5 × 5 neighbourhoods, StepLR
    every 2 epochs, no dropout."""
    config = on_scene(spectralformer_configs.get_config("indian_pines"), tmp_path, 8)
    config.data.update(dict(neighborhood=5, input_size=5))
    config.model.update(dict(**SPECTRALFORMER, dropout=0.0, emb_dropout=0.0))
    config.update(dict(batch_size=16, epochs=7))
    config.optim.step_epochs = 2
    return config


def test_spectralformer_trains_as_the_official_demo(tmp_path):
    cube, gt = write_scene(tmp_path, 12, 11, 13)
    config = spectralformer_config(tmp_path)
    patches, band_patches = config.data.neighborhood, config.model.band_patches
    assert (config.optim.name, config.optim.step_offset, config.drop_last) == ("adam", 1, False)
    torch.manual_seed(0)
    model = spectralformer_ref.ViT(patches=patches, band_patches=band_patches, bands=13,
                                   num_classes=CLASSES, dropout=0.0, emb_dropout=0.0,
                                   mode="CAF", **SPECTRALFORMER)  # torch's default init
    initial = convert(tmp_path, "initial", "spectralformer", model.state_dict(), "--mode", "CAF",
                      "--patches", str(patches))
    data, steps, losses, final = train_ours(config, initial, config.epochs)
    assert steps == 3 and len(losses) == 21 >= STEPS

    pixels = batches(config, data, steps, len(losses))
    assert [len(p) for p in pixels[:3]] == [16, 16, 8]  # the last, partial batch of each epoch
    for epoch in range(config.epochs):  # every training pixel once per epoch
        seen = np.concatenate(pixels[epoch * steps:(epoch + 1) * steps])
        assert len({tuple(p) for p in seen}) == len(seen) == 40
    mirror = official_mirror(official_minmax(cube), patches)
    geo = Geometry(patches, patches)

    def neighbourhoods(step):  # (n, p, p, B), as demo.py's gain_neighborhood_pixel
        return np.stack([mirror[r:r + patches, c:c + patches] for r, c in pixels[step]])

    for step in (0, 2):  # the project's inputs are the official ones (normalisation, padding)
        np.testing.assert_allclose(np.asarray(inputs(data.padded[0], pixels[step], geo)),
                                   neighbourhoods(step), atol=1e-6)

    def inputs_of(step):
        x = neighbourhoods(step).astype(np.float32)
        return torch.from_numpy(spectralformer_ref.official_tokens(x, band_patches))

    def labels_of(step):
        return torch.from_numpy(gt[pixels[step][:, 0], pixels[step][:, 1]] - 1).long()

    o = config.optim
    torch_losses = official_spectralformer_loop(model, inputs_of, labels_of, config.epochs, steps,
                                                o.lr, o.weight_decay, o.step_epochs, o.step_gamma)
    final_torch = convert(tmp_path, "final", "spectralformer", model.state_dict(), "--mode", "CAF",
                          "--patches", str(patches))
    assert_same_training(losses, torch_losses, final, final_torch, initial)


# ---------------------------------------------------------------- MambaHSI

def official_stretch(cube: np.ndarray) -> np.ndarray:
    """`utils/HSICommonUtils.ImageStretching` then `transforms.ToTensor` (/ 255): each band
    stretched between its 2nd and 98th percentile, clipped, quantised to 8 bits."""
    bands = []
    for i in range(cube.shape[2]):
        band = cube[:, :, i]
        low, high = np.percentile(band, 2), np.percentile(band, 98)
        bands.append((band - low) / (high - low))
    image = (np.clip(np.stack(bands, axis=-1), 0, 1) * 255).astype(np.uint8)
    return image.astype(np.float32) / 255.0


def official_mambahsi_loop(net, x, train_label, epochs: int, lr: float) -> list[float]:
    """train_MambaHSI.py's training: Adam at a constant rate, one step per epoch on the whole
    scene, `CrossEntropyLoss(ignore_index=-1)` on the logits resized to the label map
    (`head_loss`: bilinear, aligned corners)."""
    loss_func = nn.CrossEntropyLoss(ignore_index=-1)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    y_train = train_label.unsqueeze(0)
    losses = []
    for _ in range(epochs):
        net.train()
        y_pred = net(x)
        logits = torch.nn.functional.interpolate(y_pred, size=y_train.shape[1:], mode="bilinear",
                                                 align_corners=True)
        loss = loss_func(logits, y_train.long())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_mambahsi_trains_as_the_official_script(tmp_path):
    cube, gt = write_scene(tmp_path, 10, 9, 13, seed=1)
    config = on_scene(mambahsi_configs.get_config("indian_pines", split="paper"), tmp_path, 4)
    config.model.hidden_dim = 16
    config.epochs = STEPS
    assert (config.optim.name, config.optim.weight_decay, config.optim.step_gamma) == (
        "adam", 0.0, 1.0)
    torch.manual_seed(0)
    net = mambahsi_ref.MambaHSI(in_channels=13, num_classes=CLASSES, hidden_dim=16)
    initial = convert(tmp_path, "initial", "mambahsi", net.state_dict())
    data, steps, losses, final = train_ours(config, initial, config.epochs)
    assert steps == 1 and len(losses) == STEPS

    x = official_stretch(cube)
    np.testing.assert_allclose(data.padded[0], x, atol=1e-6)  # the official normalisation
    train_label = np.full(gt.shape, -1)  # the official label map: -1 outside the training pixels
    coords = data.train["coords"][0][data.train["valid"][0]]
    train_label[coords[:, 0], coords[:, 1]] = gt[coords[:, 0], coords[:, 1]] - 1
    assert (train_label >= 0).sum() == 4 * CLASSES
    torch_losses = official_mambahsi_loop(
        net, torch.from_numpy(x.transpose(2, 0, 1)[None].copy()), torch.from_numpy(train_label),
        config.epochs, config.optim.lr)
    final_torch = convert(tmp_path, "final", "mambahsi", net.state_dict())
    assert_same_training(losses, torch_losses, final, final_torch, initial)


# ---------------------------------------------------------------- HyperSIGMA

# The small oracle of tests/test_hypersigma.py: 5 blocks (full attention in 1 and 3), 4 heads
# of 12, 4 sampling points, 16 spectral tokens; the converter's flags for it.
HYPERSIGMA_TORCH = dict(dim=48, depth=5, heads=4, interval=2, out_indices=(1, 2, 3, 4), points=4,
                        tokens=16, head_in=96, head1_in=80)
HYPERSIGMA_FLAGS = ("--heads", "4", "--interval", "2", "--out-indices", "1,2,3,4")
HYPERSIGMA = dict(patch_size=2, width=48, depth=5, heads=4, interval=2, out_indices=(1, 2, 3, 4),
                  n_points=4, num_tokens=16, spat_classifier_in=96, spat_classifier1_in=80)


def official_hypersigma_loop(model, inputs_of, labels_of, steps: int, lr: float,
                             weight_decay: float) -> list[float]:
    """The notebook's training: AdamW at a constant rate (its cosine schedule is never stepped),
    weight decay off 1-D tensors, biases and position tables (its parameter groups), mean
    cross-entropy per batch over the C + 1 outputs, the labels 1 … C (0 is the background)."""
    decay = [p for n, p in model.named_parameters()
             if p.ndim > 1 and not n.endswith(".bias") and "pos_embed" not in n]
    no_decay = [p for n, p in model.named_parameters()
                if not (p.ndim > 1 and not n.endswith(".bias") and "pos_embed" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=lr, betas=(0.9, 0.999))
    criterion = nn.CrossEntropyLoss()
    losses = []
    for step in range(steps):
        y_pred = model(inputs_of(step))
        loss = criterion(y_pred, labels_of(step) + 1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_hypersigma_trains_as_the_official_notebook(tmp_path):
    """HyperSIGMA at a small width, as the notebook trains it: AdamW and its decay groups, the
    constant rate, the batches with the last partial one, the loss's softmax over the
    background output too, the gradients through the sampling attention and the fusion. The
    inputs are the project's (the official `PCA(whiten=True)` differs from `zscore` by
    √(n/(n-1)), tests/test_data_preprocess.py). The parameters that never reach the logits
    (`backbone/unused`) are left out of the comparison: AdamW shrinks them here, and torch
    skips them (they get no gradient)."""
    write_scene(tmp_path, 12, 11, 13, seed=2)
    config = on_scene(hypersigma_configs.get_config("indian_pines"), tmp_path, 8)
    config.init = "random"  # the converted params are given below
    config.data.update(dict(pca=7, neighborhood=9, input_size=9))
    config.model.update(dict(**HYPERSIGMA, drop_path=0.0, dropout=0.0))
    config.update(dict(batch_size=16, epochs=7))
    o = config.optim
    assert (o.name, o.schedule, o.step_gamma, config.drop_last) == ("adamw", "step", 1.0, False)
    model = hypersigma_ref.build(0, img_size=9, in_channels=7, patch_size=2, classes=CLASSES + 1,
                                 **HYPERSIGMA_TORCH)  # eval mode: its dropout off
    initial = convert(tmp_path, "initial", "hypersigma", model.state_dict(), *HYPERSIGMA_FLAGS)
    data, steps, losses, final = train_ours(config, initial, config.epochs,
                                            {"xla_backend_optimization_level": 0})
    assert steps == 3 and len(losses) == 21

    pixels = batches(config, data, steps, len(losses))
    geo = Geometry(9, 9)

    def inputs_of(step):
        x = np.asarray(inputs(data.padded[0], pixels[step], geo)).transpose(0, 3, 1, 2)
        return torch.from_numpy(x.copy())

    def labels_of(step):
        return torch.from_numpy(gt_labels(data, pixels[step])).long()

    torch_losses = official_hypersigma_loop(model, inputs_of, labels_of, len(losses), o.lr,
                                            o.weight_decay)
    final_torch = convert(tmp_path, "final", "hypersigma", model.state_dict(), *HYPERSIGMA_FLAGS)
    compared = lambda tree: without_free_key_bias(
        {**tree, "backbone": {k: v for k, v in tree["backbone"].items() if k != "unused"}},
        config.model.interval, config.model.width)
    assert_same_training(losses, torch_losses, compared(final), compared(final_torch),
                         compared(initial))


def without_free_key_bias(params: dict, interval: int, width: int) -> dict:
    """`params` with the key third of `qkv/bias` zeroed in the full-attention blocks (every
    `interval`-th): adding a vector to every key adds a constant to each query's scores, which
    the softmax ignores, so its true gradient is 0, and Adam turns the rounding noise both
    frameworks compute instead into full-size steps of random sign."""
    backbone = dict(params["backbone"])
    for name, block in backbone.items():
        if "_block_" in name and (int(name.rsplit("_", 1)[1]) + 1) % interval == 0:
            bias = np.array(block["attn"]["qkv"]["bias"])
            bias[width:2 * width] = 0.0
            backbone[name] = {**block, "attn": {**block["attn"],
                                                "qkv": {**block["attn"]["qkv"], "bias": bias}}}
    return {**params, "backbone": backbone}


def gt_labels(data, pixels: np.ndarray) -> np.ndarray:
    """The labels 0 … C-1 of scene pixels `(n, 2)` from the ground truth."""
    return data.scene.gt[pixels[:, 0], pixels[:, 1]] - 1
