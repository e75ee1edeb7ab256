"""The paper's configs run through the training loop (in-process, tiny encoder, real Indian Pines)."""

import json

import jax
import numpy as np
import pytest

import torch_reference as ref
from configs import indian_pines_krona_plus, indian_pines_linear_probe
from convert.spectralgpt import main as convert_main
from hsic_jax.adapters.export import read_adapter_manifest
from hsic_jax.train import checkpoint
from hsic_jax.train.loop import train_and_evaluate

TINY_MODEL = dict(name="spectralgpt", patch_size=4, tubelet=3, width=24, depth=1, heads=2,
                  pos_embed="joint", pool_skip_first=True, drop_path=0.0, dropout=0.0,
                  dtype="float32")


def tiny(config, pretrained_dir):
    """A paper config shrunk to seconds: tiny encoder, small neighbourhoods, two epochs."""
    with config.unlocked():
        config.model = TINY_MODEL
        config.pretrained_dir = str(pretrained_dir)
        config.data.neighborhood, config.data.input_size = 5, 8
        config.epochs, config.optim.warmup_epochs = 2, 1
        config.eval_every_epochs = config.checkpoint_every_epochs = 2
        config.batch_size, config.save_map = 32, False
        if config.method.name.startswith("krona"):
            config.method.a_shape, config.method.b_shape = (12, 2), (2, 12)
    return config


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory):
    """A converted tiny SpectralGPT (random weights saved as the official scripts save them)."""
    tmp = tmp_path_factory.mktemp("pretrained")
    cfg = {k: TINY_MODEL[k] for k in ("patch_size", "tubelet", "width", "depth", "heads")}
    model = ref.randomized(ref.VisionTransformer(img_size=8, num_classes=3, sep_pos_embed=True,
                                                 bands=12, **cfg), 0)
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}
    ref.checkpoint_file(tmp / "tiny.pth", sd)
    assert convert_main(["--checkpoint", str(tmp / "tiny.pth"), "--out", str(tmp / "flax"),
                         "--img-size", "8", "--num-classes", "16", "--heads", "2"]) == 0
    return tmp / "flax"


def test_krona_plus_trains_only_its_adapters_and_head(tmp_path, pretrained_dir):
    config = tiny(indian_pines_krona_plus.get_config(), pretrained_dir)
    results = train_and_evaluate(config, str(tmp_path))

    assert len(results["per_class"]) == 16
    # 2 adapted layers (q, v) of one block, A (12, 2) and B (2, 12), plus the head 24·16 + 16.
    assert results["trainable_params"] == 2 * (24 + 24) + 24 * 16 + 16
    manifest = read_adapter_manifest(str(tmp_path / "adapters"))
    assert manifest["method"]["name"] == "krona_plus"
    assert not any(name.startswith("backbone/") for name in manifest["arrays"])
    assert results["adapter_bytes"] < 20_000

    # The checkpoint holds the trainable parameters only (the pretrained backbone stays on
    # disk, shared by every seed); the adapters moved.
    trained = final_params(tmp_path)
    assert set(trained) == {"adapters", "head"}
    assert sum(a.size for a in jax.tree.leaves(trained)) == results["trainable_params"]
    assert np.abs(trained["adapters"]["block_0"]["q"]["b"]).max() > 0  # b starts at zero
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["method"] == "krona_plus" and saved["config"]["method"]["lam"] == 1.02


def final_params(workdir) -> dict:
    """Parameters of seed 0 in the last checkpoint of a run."""
    mngr = checkpoint.manager(str(workdir))
    state = mngr.restore(mngr.latest_step())["state"]
    return jax.tree.map(lambda a: np.asarray(a)[0], state["params"])


def test_linear_probe_keeps_the_backbone_and_trains_the_head(tmp_path, pretrained_dir):
    config = tiny(indian_pines_linear_probe.get_config(), pretrained_dir)
    results = train_and_evaluate(config, str(tmp_path))
    assert results["trainable_params"] == 24 * 16 + 16
    trained = final_params(tmp_path)
    assert set(trained) == {"head"}  # the backbone is not in the checkpoint: it is on disk
    # The head left its official initialisation (kernel std 2e-5): it was trained.
    assert np.abs(trained["head"]["kernel"]).max() > 1e-3


def test_missing_pretrained_weights_name_the_file_and_the_command(tmp_path):
    config = tiny(indian_pines_krona_plus.get_config(), tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"nowhere.*python -m convert spectralgpt"):
        train_and_evaluate(config, str(tmp_path / "run"))


def test_pretrained_of_another_shape_is_refused(tmp_path, pretrained_dir):
    config = tiny(indian_pines_krona_plus.get_config(), pretrained_dir)
    with config.unlocked():
        config.data.input_size = 16
    with pytest.raises(ValueError, match=r"converted for another model .*'img_size': \(8, 16\)\}; "
                                         r"set --config.data.input_size=8; or convert again with "
                                         r"--img-size 16 to fit the config"):
        train_and_evaluate(config, str(tmp_path))
    with config.unlocked():
        config.data.input_size = 8
        config.model.depth = 2  # fixed by the weights: converting again cannot help
    with pytest.raises(ValueError, match=r"'depth': \(1, 2\)\}; set --config.model.depth=1$"):
        train_and_evaluate(config, str(tmp_path / "depth"))
