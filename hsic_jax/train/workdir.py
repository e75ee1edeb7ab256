"""A workdir belongs to one experiment, and to one run at a time.

`claim(workdir, config, restart=False)` is entered before a run writes anything:

* it takes an exclusive lock (`fcntl.flock` on `WORKDIR/.lock`, released by the kernel when
  the process ends, however it ends); a second run on the same workdir is refused with a line
  naming the holder (pid, host, start time, command);
* it compares the config with the workdir's saved `config.json`: the same experiment resumes
  (or, when `results.json` is there, is reported as finished and its results kept); another
  experiment is refused with a line naming the fields that differ and the two ways to start
  fresh: another `--workdir`, or `--restart`, which moves the old run aside to
  `WORKDIR.prev-N` (nothing is deleted);
* a folder that is not empty and holds no `config.json` is not a workdir and is refused;
* it appends the run's log to `WORKDIR/log.txt`.

Fields that do not change the experiment (where outputs go, how often to checkpoint, whether
to draw a map, where the data folder is) may differ between the runs of one workdir.
"""

import contextlib
import dataclasses
import datetime
import fcntl
import json
import logging
import os
import socket
import sys
from collections.abc import Iterator, Mapping

CONFIG, RESULTS, LOCK, LOG = "config.json", "results.json", ".lock", "log.txt"

# Config fields (dotted) that a rerun may change without changing the experiment.
NOT_THE_EXPERIMENT = ("workdir", "checkpoint_every_epochs", "checkpoint_every_seconds",
                      "save_map", "map_mask_unlabelled", "data.data_dir")


class WorkdirError(ValueError):
    """The workdir cannot be used for this run; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Claim:
    """A claimed workdir: `finished` holds the saved results of a finished identical run."""

    path: str
    finished: dict | None


@contextlib.contextmanager
def claim(workdir: str, config: Mapping, *, restart: bool = False) -> Iterator[Claim]:
    """Lock `workdir` for this run and check that it holds this experiment (module docstring)."""
    workdir = os.path.abspath(workdir)
    if restart and _has_run(workdir):
        _move_aside(workdir)
    _check_folder(workdir)
    os.makedirs(workdir, exist_ok=True)
    with _lock(workdir):
        finished = _check_config(workdir, dict(config))
        with _log_file(os.path.join(workdir, LOG)):
            yield Claim(workdir, finished)


def differences(saved: Mapping, new: Mapping) -> dict[str, tuple]:
    """`{dotted field: (saved, new)}` of the experiment fields in which two configs differ."""
    a, b = _flat(json.loads(json.dumps(saved))), _flat(json.loads(json.dumps(new)))
    return {k: (a.get(k, "(absent)"), b.get(k, "(absent)")) for k in sorted(set(a) | set(b))
            if a.get(k, "(absent)") != b.get(k, "(absent)") and k not in NOT_THE_EXPERIMENT}


def _flat(tree: Mapping, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value and prefix + key != "data.train_per_class":
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _has_run(workdir: str) -> bool:
    return os.path.isfile(os.path.join(workdir, CONFIG))


def _check_folder(workdir: str) -> None:
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise WorkdirError(f"workdir {workdir} is a file, not a folder: use another --workdir")
    if os.path.isdir(workdir) and os.listdir(workdir) and not _has_run(workdir):
        others = set(os.listdir(workdir)) - {LOCK, LOG}
        if others:
            raise WorkdirError(
                f"workdir {workdir} is not empty and holds no {CONFIG} of a run "
                f"({', '.join(sorted(others)[:3])}{', …' if len(others) > 3 else ''}): "
                "nothing there is touched; use another --workdir")


def _move_aside(workdir: str) -> str:
    """Rename the run in `workdir` to the first free `WORKDIR.prev-N`; return that name."""
    n = 1
    while os.path.exists(f"{workdir}.prev-{n}"):
        n += 1
    aside = f"{workdir}.prev-{n}"
    with _lock(workdir):  # not while another run writes it
        os.rename(workdir, aside)
    logging.getLogger(__name__).warning("--restart: moved the previous run of %s to %s",
                                        workdir, aside)
    return aside


def _check_config(workdir: str, config: dict) -> dict | None:
    """Refuse another experiment; return the results of a finished identical run, else None."""
    path = os.path.join(workdir, CONFIG)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError) as e:
        raise WorkdirError(f"{path} is not readable ({e}); use another --workdir, or --restart "
                           f"to move this run aside") from None
    diff = differences(saved, config)
    if diff:
        shown = "; ".join(f"{k}: {a!r} → {b!r}" for k, (a, b) in list(diff.items())[:6])
        more = f" and {len(diff) - 6} more" if len(diff) > 6 else ""
        raise WorkdirError(
            f"workdir {workdir} holds another experiment ({shown}{more}): use another --workdir, "
            f"or --restart to move the old run aside to {workdir}.prev-N and start fresh")
    results = os.path.join(workdir, RESULTS)
    if not os.path.isfile(results):
        return None
    with open(results) as f:
        return json.load(f)


@contextlib.contextmanager
def _lock(workdir: str) -> Iterator[None]:
    """Hold the exclusive lock of `workdir`; refuse when another process holds it."""
    path = os.path.join(workdir, LOCK)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown process"
            raise WorkdirError(f"workdir {workdir} is in use by another run ({holder}); wait for "
                               "it to end, or use another --workdir") from None
        os.ftruncate(fd, 0)
        started = datetime.datetime.now().isoformat(timespec="seconds")
        os.pwrite(fd, (f"pid {os.getpid()} on {socket.gethostname()} since {started}: "
                       f"{' '.join(sys.argv)}").encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def _log_file(path: str) -> Iterator[None]:
    """Append what the project logs (and warnings) to `path` while the run lasts."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger("hsic_jax"), logging.getLogger("py.warnings")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        handler.close()
