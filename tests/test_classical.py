"""The classical baselines (RBF-SVM, random forest) through the same loop, results and report."""

import json
import pickle

import numpy as np
import pytest

from configs import indian_pines_rf, indian_pines_svm
from hsic_jax import report
from hsic_jax.count import main as count_main
from hsic_jax.data.split import Split
from hsic_jax.train import loop


def small(config):
    """A faster fit: fewer trees, a smaller grid; two seeds."""
    config.num_seeds = 2
    if config.model.name == "rf":
        config.model.trees = 20
    else:
        config.model.update(dict(C=(10.0, 100.0), gamma=("scale",)))
    return config


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for module in (indian_pines_svm, indian_pines_rf):
        config = small(module.get_config())
        workdir = tmp_path_factory.mktemp(config.model.name)
        out[config.model.name] = (workdir, loop.train_and_evaluate(config, str(workdir)))
    return out


@pytest.mark.parametrize("name", ["svm", "rf"])
def test_a_baseline_is_fitted_tested_once_and_recorded_like_a_deep_run(runs, name):
    workdir, results = runs[name]
    assert results["model"] == name and len(results["seeds"]) == 2
    assert results["oa"] > 0.55  # far above chance (1/16); the SVM reaches about 0.70
    assert results["protocol"]["window"] == 1 and results["leakage"]["test"] == 0.0
    split = Split.load(workdir / "split_seed0.json")
    confusion = np.array(results["confusion"])
    assert confusion.sum(axis=1).tolist() == [row["test"] for row in split.table()[:-1]]
    assert results["trainable_params"] > 0 and results["adapter_bytes"] > 0
    for png in ("classification_map.png", "confidence_map.png"):
        assert (workdir / png).stat().st_size > 0
    fitted = pickle.loads((workdir / "model.pkl").read_bytes())
    assert len(fitted.classes_) == 16
    saved = json.loads((workdir / "results.json").read_text())
    assert saved["seeds"][0]["oa"] == results["seeds"][0]["oa"]


def test_the_svm_grid_is_searched_on_training_pixels(runs):
    _, results = runs["svm"]
    for fitted in results["fitted"]:
        assert fitted["best_params"]["C"] in (10.0, 100.0) and 0 < fitted["cv_accuracy"] <= 1


def test_the_report_sets_baselines_beside_the_deep_rows(runs, capsys):
    assert report.main([str(runs[n][0]) for n in ("rf", "svm")] + ["--out", str(runs["rf"][0])]) == 0
    text = capsys.readouterr().out
    header = next(line for line in text.splitlines() if line.startswith("Class"))
    assert header.split()[1:] == ["SVM", "RF"]
    assert "SVM − RF" in text  # two seeds each: a paired comparison


def test_count_skips_the_baselines(capsys):
    assert count_main(["configs/indian_pines_svm.py", "configs/indian_pines_lora.py"]) == 0
    captured = capsys.readouterr()
    assert "indian_pines_svm.py: a svm has no parameters before it is fitted" in captured.err
    assert "indian_pines_lora.py" in captured.out


def test_a_baseline_has_no_state_to_select(tmp_path):
    config = indian_pines_svm.get_config()
    config.select, config.data.val_per_class = "best_val", 5
    with pytest.raises(ValueError, match="'svm' is fitted once, there is no state to select"):
        loop.train_and_evaluate(config, str(tmp_path))
