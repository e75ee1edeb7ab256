"""Where a run's time goes: wall-clock per phase and the XLA compilations.

    clock = Timings()
    with clock:                       # counts every XLA compilation inside
        with clock.phase("train_s"):
            ...
    clock.record()  # {'timings': {'compile_s', 'train_s', …, 'total_s'}, 'compiles': N}

`compile_s` is the time XLA spent compiling (JAX's `backend_compile_duration` events), which
the phases also contain: a phase's time is its wall-clock, compilation included.
"""

import contextlib
import time

import jax

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


class Timings:
    """Wall-clock seconds of named phases since its creation, and the count and seconds of XLA
    compilations while it is entered (a process-wide listener, registered only then)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.compiles = 0
        self.compile_seconds = 0.0
        self._start = time.perf_counter()

    def _on_event(self, event: str, duration: float, **_) -> None:
        if event == _COMPILE_EVENT:
            self.compiles += 1
            self.compile_seconds += duration

    def __enter__(self):
        jax.monitoring.register_event_duration_secs_listener(self._on_event)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self._on_event)

    @contextlib.contextmanager
    def phase(self, name: str):
        """Add the wall-clock seconds of the `with` body to phase `name`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        """Add `seconds` to phase `name`."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def record(self) -> dict:
        """`{'timings': {'compile_s', <phases>, 'total_s'}, 'compiles': N}` for results.json;
        `total_s` counts from its creation."""
        total = time.perf_counter() - self._start
        return {"timings": {"compile_s": round(self.compile_seconds, 3),
                            **{k: round(v, 3) for k, v in self.seconds.items()},
                            "total_s": round(total, 3)},
                "compiles": self.compiles}
