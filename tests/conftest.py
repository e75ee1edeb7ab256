import getpass
import os
import sys
import tempfile
from pathlib import Path

# The PyTorch oracle (tests/torch_reference.py) is imported by several test modules.
sys.path.insert(0, str(Path(__file__).parent))

# Many tests compile the same programs (the tiny demo's step and predict, in-process and in the
# `run.py` processes they start): JAX's persistent compilation cache, shared by the test
# workers and their subprocesses (which inherit the environment), compiles each once.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(
    tempfile.gettempdir(), f"hsic-jax-tests-xla-cache-{getpass.getuser()}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
