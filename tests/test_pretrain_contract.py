"""Masked pre-training over any family that offers a masked autoencoder (`build_mae`, the
contract in `hsic_jax.models`): every family that offers one meets the contract, a toy family
that offers one pre-trains end to end through `pretrain` (nothing there is SpectralGPT's), and
a family that offers none is refused in one line naming the families that can."""

import json
import sys
import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hsic_jax.models as models
from hsic_jax.adapters.tuned import Target
from hsic_jax.models import FAMILIES, family
from hsic_jax.models.converted import load_params
from hsic_jax.models.mae import random_masking
from hsic_jax.train import checks
from hsic_jax.train.checks import check_pretrain_config
from hsic_jax.train.pretrain import continued_from, pretrain
from hsic_jax.train.state import mae_model

from tests.test_pretrain import B, scene, tiny_config

def test_spectralgpt_offers_a_masked_autoencoder_and_no_other_family_does():
    assert [name for name in FAMILIES if hasattr(family(name), "build_mae")] == ["spectralgpt"]


def test_spectralgpts_masked_autoencoder_meets_the_contract():
    fam = family("spectralgpt")
    module = fam.build_mae({"name": "spectralgpt", "width": 24, "depth": 1, "heads": 2, "patch_size": 4,
                            "tubelet": 3},
                           {"width": 16, "depth": 1, "heads": 2}, input_size=8, bands=B,
                           mask_ratio=0.75)
    x = jax.random.normal(jax.random.key(0), (3, *module.input_shape))
    params = module.init(jax.random.key(1), x)["params"]
    assert set(params) == {"backbone", "decoder"}
    pred, mask = module.apply({"params": params}, x, rngs={"mask": jax.random.key(2)})
    target = module.patchify(x)
    assert target.shape == (3, module.num_tokens, target.shape[-1])
    assert pred.shape == target.shape and mask.shape == (3, module.num_tokens)
    np.testing.assert_array_equal(mask.sum(1), module.num_tokens - module.num_visible)
    np.testing.assert_array_equal(module.unpatchify(target), x)
    # the encoder it learns is the classifier's backbone of the fields its checkpoint records
    fields = module.checkpoint_fields()
    classifier = fam.model_from_config({**fields["model"], "num_classes": 3})
    backbone = jax.eval_shape(classifier.init, jax.random.key(0), x)["params"]["backbone"]
    assert (jax.tree.map(lambda a: a.shape, backbone)
            == jax.tree.map(lambda a: a.shape, params["backbone"]))
    assert module.checkpoint_mismatch(fields["model"]) is None
    assert "width=48" in module.checkpoint_mismatch({**fields["model"], "width": 48})


class _Encoder(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.width, name="v")(jnp.tanh(nn.Dense(self.width, name="q")(x)))


class _Decoder(nn.Module):
    tokens: int
    out: int

    @nn.compact
    def __call__(self, latent, restore):
        n, k, d = latent.shape
        token = self.param("mask_token", nn.initializers.normal(0.02), (1, 1, d))
        x = jnp.concatenate([latent, jnp.broadcast_to(token, (n, self.tokens - k, d))], 1)
        return nn.Dense(self.out, name="pred")(jnp.take_along_axis(x, restore[..., None], 1))


class PixelMAE(nn.Module):
    """A toy masked autoencoder whose tokens are the input's pixels: `(N, S, S, B)` →
    `(pred (N, S², B), mask (N, S²))`."""

    img_size: int
    bands: int
    width: int
    mask_ratio: float

    @property
    def input_shape(self):
        return self.img_size, self.img_size, self.bands

    @property
    def num_tokens(self):
        return self.img_size ** 2

    @property
    def num_visible(self):
        return int(self.num_tokens * (1 - self.mask_ratio))

    def patchify(self, x):
        return x.reshape(x.shape[0], -1, self.bands)

    def unpatchify(self, tokens):
        return tokens.reshape(tokens.shape[0], self.img_size, self.img_size, self.bands)

    def checkpoint_fields(self):
        return {"model": {"img_size": self.img_size, "bands": self.bands, "width": self.width},
                "decoder": {"tokens": self.num_tokens}}

    def checkpoint_mismatch(self, converted):
        return None if converted == self.checkpoint_fields()["model"] else "another toy"

    @nn.compact
    def __call__(self, x, train=False):
        n = x.shape[0]
        noise = (jnp.broadcast_to(jnp.arange(self.num_tokens, dtype=jnp.float32),
                                  (n, self.num_tokens)) if self.is_initializing()
                 else jax.random.uniform(self.make_rng("mask"), (n, self.num_tokens)))
        keep, restore, mask = random_masking(noise, self.num_visible)
        tokens = jnp.take_along_axis(self.patchify(x), keep[..., None], 1)
        latent = _Encoder(self.width, name="backbone")(tokens)
        return _Decoder(self.num_tokens, self.bands, name="decoder")(latent, restore), mask


@pytest.fixture
def toy_family(monkeypatch):
    """A family `toy` that offers only the pre-training contract, found as a family module."""
    toy = types.ModuleType("hsic_jax.models.toy")
    toy.DISPLAY_NAME = "Toy"
    toy.ADAPTABLE = {"q": Target("(q)"), "v": Target("(v)")}
    toy.build_mae = lambda model_cfg, decoder_cfg, *, input_size, bands, mask_ratio: PixelMAE(
        input_size, bands, model_cfg["width"], mask_ratio)
    monkeypatch.setitem(sys.modules, toy.__name__, toy)
    for module in (models, checks):
        monkeypatch.setattr(module, "FAMILIES", (*FAMILIES, "toy"))
    return toy


def test_pretraining_runs_over_any_family_that_offers_a_masked_autoencoder(toy_family, tmp_path):
    config = tiny_config(scene(tmp_path / "scene.npz"), **{"model.name": "toy", "epochs": 2})
    results = pretrain(config, str(tmp_path / "work"))
    assert np.isfinite(results["final_loss"]) and (tmp_path / "work/reconstructions.png").is_file()
    manifest = json.loads((tmp_path / "work/pretrained/manifest.json").read_text())
    module = mae_model(config, B).module
    assert manifest["family"] == "toy"
    assert {k: manifest[k] for k in ("model", "decoder")} == module.checkpoint_fields()
    saved = load_params(str(tmp_path / "work/pretrained"))
    assert set(saved) == {"backbone", "decoder"} and set(saved["backbone"]) == {"q", "v"}

    config.init, config.pretrained_dir = "pretrained", str(tmp_path / "work/pretrained")
    jax.tree.map(np.testing.assert_array_equal, continued_from(config, module), saved)
    other = tiny_config(config.data.cube_path, init="pretrained", **{"model.name": "toy"},
                        pretrained_dir=config.pretrained_dir, **{"model.width": 48})
    with pytest.raises(ValueError, match=r"/pretrained holds another toy$"):
        continued_from(other, mae_model(other, B).module)


def test_a_family_without_a_masked_autoencoder_is_refused_naming_those_that_can(tmp_path):
    config = tiny_config(scene(tmp_path / "scene.npz"), **{"model.name": "spectralformer"})
    with pytest.raises(ValueError) as refused:
        check_pretrain_config(config)
    assert str(refused.value) == (
        "config.model.name='spectralformer': SpectralFormer offers no masked autoencoder (no "
        "build_mae) to pre-train; the families that can: ('spectralgpt',)")


def test_the_refusal_names_every_family_that_can(toy_family, tmp_path):
    config = tiny_config(scene(tmp_path / "scene.npz"), **{"model.name": "mambahsi"})
    with pytest.raises(ValueError, match=r"MambaHSI offers no .* can: \('spectralgpt', 'toy'\)$"):
        check_pretrain_config(config)
