"""The config checked before any work (`hsic_jax.train.checks`), in the user's terms."""

import logging

import ml_collections
import pytest

from configs import classical, demo, indian_pines_fft_official, indian_pines_spectralformer
from hsic_jax.train.checks import check_config, training_pixels


@pytest.mark.parametrize("value,expected", [
    (30, {"per_class": 30}), (30.0, {"per_class": 30}), (0.05, {"fraction": 0.05}),
    ({"Oats": 15}, {"per_class": {"Oats": 15}}),
    (ml_collections.ConfigDict({"Oats": 15}), {"per_class": {"Oats": 15}}), (None, {}),
])
def test_training_pixels_kinds(value, expected):
    assert training_pixels(value) == expected


@pytest.mark.parametrize("value", [0, -3, 1.5, True, "30", [30]])
def test_training_pixels_that_make_no_sense(value):
    with pytest.raises(ValueError, match=r"config.data.train_per_class=.*; expected a count per "
                                         r"class \(e.g. 30\), a fraction"):
        training_pixels(value)


@pytest.mark.parametrize("field,value,message", [
    ("num_seeds", 0, "config.num_seeds=0; expected an integer >= 1"),
    ("optim.b2", 1.0, r"config.optim.b2=1.0; expected a number in \[0, 1\)"),
    ("optim.min_lr", 0.5, r"config.optim.min_lr=0.5; expected a number in \[0, 0.001\]"),
    ("label_smoothing", 1.0, r"config.label_smoothing=1.0; expected a number in \[0, 1\)"),
    ("augment.mixture_noise", 2.0, r"config.augment.mixture_noise=2.0; expected a number in \[0, 1\]"),
    ("augment.cutmix", -1.0, r"config.augment.cutmix=-1.0; expected a number in \[0, ∞\)"),
    ("data.neighborhood", 8, "config.data.neighborhood=8; expected an odd integer >= 1"),
    ("data.input_size", 18, r"img_size 18 is not a multiple of patch_size 4"),
    ("data.padding", "wrap", r"config.data.padding='wrap'; expected one of"),
    ("optim.name", "sgd", r"config.optim.name='sgd'; expected one of \('adamw', 'adam'\)"),
    ("model.name", "resnet", r"config.model.name='resnet'; expected one of"),
    ("data.normalize", "l2", r"config.data.normalize='l2'; expected one of"),
    ("data.val_per_class", 1.5, r"config.data.val_per_class=1.5; expected a count per class"),
    ("init", "imagenet", r"config.init='imagenet'; expected one of \('pretrained', 'random'\)"),
    ("method.name", "lorax", r"method.name 'lorax' is not one of"),
    ("model.heads", 5, "width 96 is not divisible by 5 heads"),
])
def test_fields_that_make_no_sense_are_named(field, value, message):
    config = demo.get_config()
    node, _, key = field.rpartition(".")
    (config[node] if node else config)[key] = value
    with pytest.raises(ValueError, match=message):
        check_config(config)


def test_a_warm_up_as_long_as_the_run_is_shortened_with_a_warning(caplog):
    config = demo.get_config()
    config.epochs = 2
    with caplog.at_level(logging.WARNING, logger="hsic_jax"):
        warnings = check_config(config)
    assert config.optim.warmup_epochs == 0.2
    assert warnings == ["config.optim.warmup_epochs=5.0 would fill the 2-epoch run: warming up "
                        "over 0.2 epochs (10% of the run) instead"]
    assert warnings[0] in caplog.text
    official = indian_pines_fft_official.get_config()  # 20 warm-up epochs
    official.epochs = 15
    check_config(official)
    assert official.optim.warmup_epochs == 1.5
    own = demo.get_config()  # a user's config with an int field keeps whole epochs
    own.optim = ml_collections.ConfigDict({**own.optim.to_dict(), "warmup_epochs": 5})
    own.epochs = 5
    check_config(own)
    assert own.optim.warmup_epochs == 0 and isinstance(own.optim.warmup_epochs, int)
    assert check_config(demo.get_config()) == []  # the demo's 5 of 60 epochs stay


def test_a_fine_tuning_method_on_a_fitted_model_is_refused():
    config = classical.get_config("indian_pines", "svm")
    config.method.name = "lora"
    with pytest.raises(ValueError, match=r"^config.method.name='lora': model 'svm' is fitted whole "
                                         r"on the spectra, .*leave it 'fft'$"):
        check_config(config)


def test_bitfit_on_layers_without_biases_names_the_targets_that_have_them():
    config = indian_pines_spectralformer.get_config()
    config.method = ml_collections.ConfigDict({"name": "bitfit", "targets": ("q", "v")})
    with pytest.raises(ValueError, match=r"^config.method.targets: q, v have no bias in this model "
                                         r"\(layer layer_0/attn/to_qkv\).* the targets with "
                                         r"biases here are \['proj', 'fc1', 'fc2'\]"):
        check_config(config)
    config.method.targets = ("proj", "fc1", "fc2")  # the fix the message gives
    check_config(config)


def test_a_geometry_that_does_not_fit_names_the_config_field_that_set_it():
    config = demo.get_config()
    config.data.pca = 64
    with pytest.raises(ValueError, match=r"^model 'spectralgpt' on config.data.pca=64 at "
                                         r"config.data.input_size=16: 64 bands do not split into "
                                         r"tubelets of 3 bands$"):
        check_config(config)
