"""Progress of long phases: a bar on a terminal, a log line every `interval` seconds elsewhere.

tqdm draws nothing when its output is not a terminal (a batch job, `nohup`, CI), so a run
would say nothing for an hour; `progress` logs `desc: i/total (p %), elapsed, ETA` instead,
and a last line when the phase took longer than the interval.
"""

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

log = logging.getLogger(__name__)

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, total: int, *, initial: int = 0,
             interval: float = 30.0, status: dict | None = None, stream=None) -> Iterator[T]:
    """Yield `items` (`total` of them, counting from `initial`), reporting progress as it goes.

    `status` is a dict the caller may update while iterating (e.g. the loss); it is shown
    beside the bar, or appended to the log lines.
    """
    stream = sys.stderr if stream is None else stream
    if stream.isatty():
        bar = tqdm(items, desc=desc, total=total, initial=initial, file=stream)
        for item in bar:
            yield item
            if status:
                bar.set_postfix(status, refresh=False)
        return
    start = last = time.monotonic()
    done = initial
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= interval and done < total:
            last = now
            log.info("%s: %d/%d (%.0f %%), %s elapsed, ETA %s%s", desc, done, total,
                     100 * done / total, _clock(now - start),
                     _clock((now - start) / (done - initial) * (total - done)), _status(status))
    elapsed = time.monotonic() - start
    if elapsed >= interval:  # short phases pass silently
        log.info("%s: %d/%d done in %s%s", desc, done, total, _clock(elapsed), _status(status))


def _status(status: dict | None) -> str:
    return "".join(f", {k} {v}" for k, v in (status or {}).items())


def _clock(seconds: float) -> str:
    """`1:02:03` or `2:03` from seconds."""
    minutes, s = divmod(int(seconds), 60)
    h, m = divmod(minutes, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
