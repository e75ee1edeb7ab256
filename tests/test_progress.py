"""Long phases report progress: a log line every interval when the output is not a terminal."""

import io
import logging

from hsic_jax.progress import progress


def test_off_a_terminal_progress_is_logged_with_the_status(caplog, monkeypatch):
    clock = iter(range(0, 1000, 20))  # every item takes 20 s
    monkeypatch.setattr("hsic_jax.progress.time.monotonic", lambda: next(clock))
    status = {}
    with caplog.at_level(logging.INFO, logger="hsic_jax"):
        for i in progress(range(2, 6), "train", 6, initial=2, interval=30, status=status,
                          stream=io.StringIO()):
            status["loss"] = f"{1 / (i + 1):.2f}"
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["train: 4/6 (67 %), 0:40 elapsed, ETA 0:40, loss 0.25",
                     "train: 6/6 done in 1:40, loss 0.17"]


def test_short_phases_pass_silently(caplog):
    with caplog.at_level(logging.INFO, logger="hsic_jax"):
        assert list(progress(range(3), "map", 3, stream=io.StringIO())) == [0, 1, 2]
    assert not caplog.records
