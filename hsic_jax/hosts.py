"""Seeds over devices and hosts: shardings of per-seed arrays, global arrays, gathering.

Every per-seed array carries a leading seed axis, sharded over the devices of all hosts
(mesh axis 'seed'); every process builds the same host arrays and contributes its shards.
Process 0 takes the workdir and writes the outputs; `agree` tells every process its
decision.
"""

import math
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

# What process 0 decided about the workdir.
GO, FINISHED, REFUSED = 0, 1, 2


def is_primary() -> bool:
    """Whether this is the process that takes the workdir and writes the outputs."""
    return jax.process_index() == 0


def agree(decision: int) -> int:
    """Process 0's `decision`, on every process."""
    if jax.process_count() == 1:
        return decision
    return int(multihost_utils.broadcast_one_to_all(np.int32(decision)))


def shardings(n_seeds: int):
    """Shardings of per-seed arrays (leading seed axis) and of replicated arrays.

    The seeds are spread over gcd(seeds, devices) devices; a multi-host run needs the
    seeds to fill its devices.
    """
    devices = jax.devices()
    if jax.process_count() > 1 and n_seeds % len(devices):
        raise ValueError(f"config.num_seeds={n_seeds} must be a multiple of the {len(devices)} "
                         f"devices of this {jax.process_count()}-process run")
    mesh = jax.sharding.Mesh(np.array(devices[:math.gcd(len(devices), n_seeds)]), ("seed",))
    return (jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seed")),
            jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))


def to_global(tree: Any, sharding: jax.sharding.Sharding) -> Any:
    """Host arrays (the same on every process) as global arrays with `sharding`."""
    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])
    return jax.tree.map(put, tree)


def fetch(x: jax.Array) -> np.ndarray:
    """A global array's value on the host of every process (gathered across hosts if needed)."""
    if jax.process_count() > 1:
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)
