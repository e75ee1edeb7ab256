"""A workdir holds one experiment and one run at a time (`hsic_jax.train.workdir`)."""

import json
import logging
import os

import pytest

from hsic_jax.train.workdir import WorkdirError, claim, differences

CONFIG = {"workdir": "", "seed": 0, "epochs": 60, "method": {"name": "fft"},
          "data": {"data_dir": "data", "train_per_class": {"Oats": 15, "Corn": 50}},
          "checkpoint_every_epochs": 10, "save_map": True}


def finish(path, config=CONFIG, results=None):
    """A workdir as a run leaves it: config.json and, when finished, results.json."""
    path.mkdir(exist_ok=True)
    (path / "config.json").write_text(json.dumps(config))
    if results is not None:
        (path / "results.json").write_text(json.dumps(results))


def test_a_new_workdir_is_claimed_and_logged_to(tmp_path):
    with claim(str(tmp_path / "run"), CONFIG) as claimed:
        assert claimed.finished is None
        logging.getLogger("hsic_jax.test").warning("hello from the run")
    assert "hello from the run" in (tmp_path / "run" / "log.txt").read_text()
    logging.getLogger("hsic_jax.test").warning("after the run")
    assert "after the run" not in (tmp_path / "run" / "log.txt").read_text()


def test_the_same_experiment_resumes_and_a_finished_one_keeps_its_results(tmp_path):
    finish(tmp_path, {**CONFIG, "save_map": False, "data": {**CONFIG["data"], "data_dir": "/x"}})
    with claim(str(tmp_path), CONFIG) as claimed:  # where outputs go does not matter
        assert claimed.finished is None
    finish(tmp_path, results={"oa": 0.9, "train_seconds": 12.5})
    with claim(str(tmp_path), CONFIG) as claimed:
        assert claimed.finished == {"oa": 0.9, "train_seconds": 12.5}


def test_another_experiment_is_refused_naming_the_fields(tmp_path):
    finish(tmp_path, results={"oa": 0.9})
    other = {**CONFIG, "epochs": 30, "method": {"name": "lora"},
             "data": {**CONFIG["data"], "train_per_class": 30}}
    with pytest.raises(WorkdirError, match=r"holds another experiment \(data.train_per_class: "
                       r"\{'Oats': 15, 'Corn': 50\} → 30; epochs: 60 → 30; method.name: 'fft' → "
                       r"'lora'\): use another --workdir, or --restart"):
        with claim(str(tmp_path), other):
            pass
    assert json.loads((tmp_path / "results.json").read_text()) == {"oa": 0.9}  # untouched


def test_restart_moves_the_old_run_aside(tmp_path):
    run = tmp_path / "run"
    finish(run, results={"oa": 0.9})
    finish(tmp_path / "run.prev-1")  # an earlier restart's
    with claim(str(run), {**CONFIG, "epochs": 30}, restart=True) as claimed:
        assert claimed.finished is None
        assert not (run / "config.json").exists()
    assert json.loads((tmp_path / "run.prev-2" / "results.json").read_text()) == {"oa": 0.9}
    assert (tmp_path / "run.prev-1" / "config.json").exists()


def test_a_folder_that_is_not_a_workdir_is_never_touched(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    for restart in (False, True):
        with pytest.raises(WorkdirError, match=r"is not empty and holds no config.json of a run "
                                               r"\(thesis.tex\): nothing there is touched"):
            with claim(str(tmp_path), CONFIG, restart=restart):
                pass
    assert os.listdir(tmp_path) == ["thesis.tex"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(WorkdirError, match="is a file, not a folder"):
        with claim(str(tmp_path / "file"), CONFIG):
            pass


def test_a_second_run_is_refused_naming_the_holder(tmp_path):
    with claim(str(tmp_path), CONFIG):
        with pytest.raises(WorkdirError, match=rf"is in use by another run \(pid {os.getpid()} on "
                                               r".* since .*\); wait for it to end"):
            with claim(str(tmp_path), CONFIG):
                pass
    with claim(str(tmp_path), CONFIG):  # released when the first run ended
        pass


def test_differences_ignore_output_fields_only():
    assert differences(CONFIG, {**CONFIG, "workdir": "w", "checkpoint_every_epochs": 1,
                                "save_map": False}) == {}
    assert differences(CONFIG, {**CONFIG, "seed": 1}) == {"seed": (0, 1)}
    assert differences(CONFIG, {k: v for k, v in CONFIG.items() if k != "seed"}) == {
        "seed": (0, "(absent)")}
