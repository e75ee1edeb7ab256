"""Resumable training: orbax checkpoints of the train state and the metrics log.

Orbax writes each checkpoint into a temporary folder and renames it into place when
complete, and deletes an older one only after a newer one is complete, so a kill at any
moment leaves the last complete checkpoint intact. `metrics.jsonl` is cut back to the
restored step on resume so that it reads like the log of an uninterrupted run.
"""

import json
import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from hsic_jax.data.io import atomic_write


def manager(workdir: str, max_to_keep: int = 2, create: bool = True) -> ocp.CheckpointManager:
    """The checkpoint manager of `workdir/checkpoints` (made if missing, with `create`)."""
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create)
    return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), "checkpoints"),
                                 options=options)


def save(mngr: ocp.CheckpointManager, step: int, state: Any) -> None:
    """Save `state` (of every process, on multi-host runs) as `step` and wait until it is on disk."""
    mngr.save(step, args=ocp.args.StandardSave(state))
    mngr.wait_until_finished()


def restore_latest(mngr: ocp.CheckpointManager, like: Any) -> Any | None:
    """The latest complete state, restored with the shardings and dtypes of `like`, or None."""
    step = mngr.latest_step()
    if step is None:
        return None
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    return mngr.restore(step, args=ocp.args.StandardRestore(abstract))


def checkpointed(state: dict, best: dict | None) -> dict:
    """What a checkpoint holds: the train state, and the best validation state when selecting."""
    return {"state": state} if best is None else {"state": state, "best": best}


def append_metrics(path: str, rows: list[dict]) -> None:
    """Append JSON rows (one per line) to the metrics log."""
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def truncate_metrics(path: str, step: int) -> None:
    """Drop log rows written after `step` (by a run killed before its next checkpoint)."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        rows = [line for line in f if line.strip() and json.loads(line).get("step", 0) <= step]
    atomic_write(path, lambda f: f.write("".join(rows).encode()))
