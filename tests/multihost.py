"""Two processes of two CPU devices each on this machine, as `jax.distributed` hosts (gloo
collectives): what the multi-host tests start."""

import os
import socket
import subprocess


def launch(argv: list[str], cwd) -> list[subprocess.Popen]:
    """Start `argv` twice with `--distributed` flags for a 2-process run on a free local port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo"}
    return [subprocess.Popen([*map(str, argv), "--distributed", f"--coordinator=127.0.0.1:{port}",
                              "--num_processes=2", f"--process_id={i}"], cwd=cwd, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for i in range(2)]


def wait(procs: list[subprocess.Popen], timeout: float = 600) -> None:
    """Wait for every process; each must exit 0 (its stderr's end in the failure)."""
    for p in procs:
        _, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err[-3000:]
