"""`hsic_jax.cli.keep_freed_memory`: the opt-in malloc setting run.py and pretrain.py apply."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Minor page faults per call of a jitted program with 8 MiB temporaries, after a first call.
_FAULTS_PER_CALL = """
import resource, sys
sys.path.insert(0, {root!r})
if sys.argv[1] == "keep":
    from hsic_jax.cli import keep_freed_memory
    print(keep_freed_memory())
import jax, jax.numpy as jnp

@jax.jit
def f(x):  # (16, 512, 512): two batched matmuls and their temporaries
    return (jnp.tanh(x @ x) @ x).sum()

x = jnp.full((16, 512, 512), 0.01)
f(x).block_until_ready()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    f(x).block_until_ready()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 3)
"""


def _faults_per_call(mode: str, **env) -> float:
    proc = subprocess.run([sys.executable, "-c", _FAULTS_PER_CALL.format(root=str(ROOT)), mode],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-2000:]
    if mode == "keep":  # what keep_freed_memory returned: whether it changed the settings
        assert proc.stdout.split()[0] == str(env["HSIC_JAX_KEEP_FREED_MEMORY"] == "1")
    return float(proc.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc malloc setting")
def test_later_calls_reuse_the_pages_of_earlier_ones():
    plain = _faults_per_call("plain", HSIC_JAX_KEEP_FREED_MEMORY="1")  # never called
    if plain < 1000:
        pytest.skip(f"XLA reuses its temporaries by itself here ({plain:.0f} faults per call)")
    assert _faults_per_call("keep", HSIC_JAX_KEEP_FREED_MEMORY="1") < 0.05 * plain
    # Without the variable (the default) it leaves malloc as it was.
    assert _faults_per_call("keep", HSIC_JAX_KEEP_FREED_MEMORY="0") > 0.5 * plain


def test_a_bad_value_is_refused_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "run.py", "--config=configs/demo.py",
                           f"--workdir={tmp_path / 'w'}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "HSIC_JAX_KEEP_FREED_MEMORY": "yes"})
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: HSIC_JAX_KEEP_FREED_MEMORY='yes': expected 1 (keep freed memory) or 0 / unset "
        "(leave malloc as it is)")
    assert not (tmp_path / "w").exists()  # refused before anything was written
