"""Sweeps in one program: the grid, the refusals, and a grid point that equals its own run."""

import json

import numpy as np
import pytest

from hsic_jax import report
from hsic_jax.report import png_text
from hsic_jax.train import loop
from hsic_jax.train import sweep

from tests.test_train_protocol import tiny_demo


def test_grid_is_every_combination_last_axis_fastest():
    axes = sweep.parse(["method.lam=1,2", "optim.lr=3e-4,1e-3,0.01"])
    assert axes == [("method.lam", [1, 2]), ("optim.lr", [3e-4, 1e-3, 0.01])]
    points = sweep.grid(axes)
    assert len(points) == 6
    assert points[0] == {"method.lam": 1, "optim.lr": 3e-4}
    assert points[1] == {"method.lam": 1, "optim.lr": 1e-3}
    assert points[5] == {"method.lam": 2, "optim.lr": 0.01}
    assert sweep.grid([]) == [{}]


@pytest.mark.parametrize("spec, message", [
    ("method.rank=2,4", r"method.rank cannot be swept in one program \(it changes the shapes"),
    ("model.width=64", "run one config per value of model.width"),
    ("optim.lr", r"expected FIELD=V1,V2"),
    ("optim.lr=1e-3,fast", r"'fast' is not a number"),
])
def test_bad_specs_are_refused_in_one_line(spec, message):
    with pytest.raises(ValueError, match=message) as info:
        sweep.parse([spec])
    assert "\n" not in str(info.value)


def test_a_field_swept_twice_and_lambda_without_b_side_are_refused(tmp_path):
    with pytest.raises(ValueError, match="optim.lr is swept twice"):
        sweep.parse(["optim.lr=1e-3", "optim.lr=1e-2"])
    with pytest.raises(ValueError, match=r"no field 'lam' \(method 'fft' has no B side\)"):
        loop.train_and_evaluate(tiny_demo(), str(tmp_path / "run"), sweep=["method.lam=1,2"])
    with pytest.raises(ValueError, match=r"optim.lr=-0.001"):  # each point's config is checked
        loop.train_and_evaluate(tiny_demo(), str(tmp_path / "run"), sweep=["optim.lr=1e-3,-1e-3"])
    assert not (tmp_path / "run").exists()  # refused before any work


def test_hyperparams_are_laid_out_point_by_point_seeds_inside():
    config = tiny_demo()
    hp = sweep.hyperparams(config, sweep.grid(sweep.parse(["optim.lr=0.1,0.2,0.3"])), 2)
    np.testing.assert_allclose(hp["lr"], [0.1, 0.1, 0.2, 0.2, 0.3, 0.3])
    np.testing.assert_allclose(hp["weight_decay"], config.optim.weight_decay)
    assert set(hp) == set(sweep.SWEEPABLE.values())


def test_each_grid_point_equals_its_own_run(tmp_path, capsys):
    """A radiation-noise sweep (label smoothing 0.1) trains, in one program, what separate
    runs train: the same test metrics; a noise in the program at probability 0 changes
    nothing."""
    config = tiny_demo()
    config.label_smoothing = 0.1  # a traced hyper-parameter of every run
    results = loop.train_and_evaluate(config, str(tmp_path / "sweep"),
                                      sweep=["augment.radiation_noise=0,0.5"])
    assert [p["values"] for p in results["sweep"]] == [
        {"augment.radiation_noise": 0}, {"augment.radiation_noise": 0.5}]
    saved = json.loads((tmp_path / "sweep" / "config.json").read_text())
    assert saved["sweep"] == [["augment.radiation_noise", [0, 0.5]]]
    assert config.augment.radiation_noise == 0  # alone, the noise is not in the program
    alone = loop.train_and_evaluate(config, str(tmp_path / "alone"))
    point = results["sweep"][0]
    assert point["oa"] == pytest.approx(alone["oa"], abs=2e-3)
    assert point["kappa"] == pytest.approx(alone["kappa"], abs=2e-3)
    # The points differ: the swept values reach the step.
    assert len({round(p["oa"], 6) for p in results["sweep"]}) > 1
    assert results["oa"] == results["sweep"][0]["oa"]  # the top level is the first point
    assert (tmp_path / "sweep" / "sweep.png").stat().st_size > 0

    # The report lists the points and plots OA against the swept value.
    out = tmp_path / "report"
    assert report.main([str(tmp_path / "sweep"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Indian Pines, FFT: sweep" in text and "augment.radiation_noise" in text
    for p in results["sweep"]:
        assert "oa_std" not in p and f"{100 * p['oa']:.2f}" in text  # one seed: no std
    assert png_text((out / "sweep_indian_pines_spectralgpt_fft.png").read_bytes())["Software"] \
        == "hsic-jax report"
