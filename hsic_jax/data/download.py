"""Download a benchmark scene's files: `python -m hsic_jax.data.download NAME --dir DIR [--mirror URL]`.

Nothing already in DIR is overwritten or deleted: a file that is already there is kept and reported
when it passes the checks below, and refused, naming it, when it does not. A missing file is fetched
into DIR/<file>.part, checked, and renamed onto DIR/<file>. A failed request (dropped connection,
timeout, HTTP 408, 429, 500, 502, 503 or 504) is retried up to --attempts times, waiting 1, 2, 4, ... s
in between, and resumed from the .part with an HTTP Range request (a server that ignores Range sends the
whole file again); when the attempts run out, the message says what the .part holds, and running the
command again resumes it. Checks: the sha256 when the registry knows it (a mismatch deletes the download), and that a
.mat file really is a MATLAB file (an HTML error page is deleted). When no sha256 is known the computed
one is printed, to be recorded. Progress is a tqdm bar on a terminal, else a log line every 30 s.
Houston 2013 is not redistributable: its instructions are printed instead. WHU-Hi-LongKou has no stable
direct link: its instructions are printed unless --mirror gives a folder URL that serves the files under
their names.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import sys
import time
import urllib.error
import urllib.request

from scipy.io.matlab import matfile_version
from tqdm import tqdm

from hsic_jax.data.io import file_sha256
from hsic_jax.data.scenes import SCENES

log = logging.getLogger(__name__)

_RETRYABLE = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)
# Error statuses that a later request may not get: rate limiting and server-side failures.
_RETRY_STATUS = (408, 429, 500, 502, 503, 504)
PROGRESS_SECONDS = 30.0


class DownloadError(RuntimeError):
    """A download failed; the message names the URL and why."""


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    attempts: int = 5,
    timeout: float = 60.0,
    backoff: float = 1.0,
    progress_every: float = PROGRESS_SECONDS,
) -> str:
    """Downloads `url` to `dest` via `dest`.part (resumed if present); returns the file's sha256 (hex).

    A `dest` already there is never replaced: it is kept when it passes `check_existing`. A failed
    request (connection, timeout, HTTP 408, 429 or 5xx) is retried after `backoff` · 2^k seconds,
    resuming the .part. Raises DownloadError after `attempts` failed requests (the .part is kept to
    resume later, and the message says what it holds), on another HTTP error status, or when the file
    fails its checks (the .part is deleted). Logs progress every `progress_every` s when tqdm is silent.
    """
    dest = os.fspath(dest)
    if os.path.exists(dest):
        return check_existing(dest, sha256)
    part = dest + ".part"
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    for attempt in range(1, attempts + 1):
        try:
            _fetch(url, part, timeout, progress_every)
            break
        except _RETRYABLE as e:
            if isinstance(e, urllib.error.HTTPError) and e.code not in _RETRY_STATUS:
                raise DownloadError(f"{url}: HTTP {e.code} {e.reason}; {_left(part)}") from e
            if attempt == attempts:
                raise DownloadError(f"{url}: failed after {attempts} attempts ({e}); {_left(part)}; run the "
                                    "command again to continue") from e
            delay = backoff * 2 ** (attempt - 1)
            log.warning("%s: attempt %d of %d failed (%s); retrying in %g s", url, attempt, attempts, e, delay)
            time.sleep(delay)
    digest = file_sha256(part)
    problem = _problem(part, dest, sha256, digest)
    if problem:
        os.remove(part)
        raise DownloadError(f"{url}: the download {problem}; deleted it")
    if os.path.exists(dest):  # written by someone else meanwhile
        raise DownloadError(f"{dest} appeared during the download and was left as it is; the download "
                            f"is in {part}")
    os.replace(part, dest)
    return digest


def check_existing(dest: str, sha256: str | None) -> str:
    """The sha256 of `dest`, a file already there that passes the checks of a download.

    One that fails them is refused with a DownloadError naming it, and left as it is.
    """
    digest = file_sha256(dest)
    problem = _problem(dest, dest, sha256, digest)
    if problem:
        raise DownloadError(f"{dest} is already there but {problem}; it was left as it is: move it "
                            "away and run the command again")
    return digest


def _problem(path: str, dest: str, sha256: str | None, digest: str) -> str | None:
    """Why the file at `path` (with sha256 `digest`) is not a good `dest`; None when it is."""
    if sha256 is not None and digest != sha256.lower():
        return f"has sha256 {digest}, not the expected {sha256}"
    if dest.lower().endswith(".mat") and not _is_mat(path):
        return "is not a MATLAB .mat file"
    return None


def _left(part: str) -> str:
    """What a failed download left on disk."""
    if os.path.exists(part):
        return f"{part} keeps the first {os.path.getsize(part)} bytes"
    return "nothing was kept on disk"


def _fetch(url: str, part: str, timeout: float, progress_every: float) -> None:
    """Appends the rest of `url` to `part` (Range request from its current size)."""
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    headers = {"User-Agent": "hsic-jax-download"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code != 416 or not offset:
            raise
        log.info("%s: server refused to resume at byte %d; starting over", url, offset)
        os.remove(part)
        return _fetch(url, part, timeout, progress_every)
    with response:
        resumed = response.status == 206
        if resumed and not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
            os.remove(part)
            raise http.client.HTTPException(
                f"unexpected Content-Range {response.headers.get('Content-Range')!r}; discarded {part}")
        if offset and not resumed:
            log.info("%s: server ignored the request to resume at byte %d; starting over", url, offset)
        length = response.headers.get("Content-Length")
        expected = None if length is None else int(length)
        received = 0
        start = offset if resumed else 0
        total = None if expected is None else start + expected
        name = os.path.basename(url)
        last = time.monotonic()
        with open(part, "ab" if resumed else "wb") as f, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, desc=name, disable=None
        ) as bar:
            while chunk := response.read1(1 << 20):
                f.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
                if bar.disable and time.monotonic() - last >= progress_every:
                    log.info("%s: %s", name, _progress(start + received, total))
                    last = time.monotonic()
        if expected is not None and received < expected:
            raise http.client.IncompleteRead(b"", expected - received)


def _progress(done: int, total: int | None) -> str:
    """`12.3 of 84.0 MB (15%)`, or `12.3 MB` when the total is unknown."""
    if total is None:
        return f"{done / 1e6:.1f} MB"
    return f"{done / 1e6:.1f} of {total / 1e6:.1f} MB ({100 * done / total:.0f}%)"


def _is_mat(path: str) -> bool:
    try:
        matfile_version(path)
    except Exception:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status (0: done or instructions printed, 1: failed)."""
    parser = argparse.ArgumentParser(prog="python -m hsic_jax.data.download", description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=sorted(SCENES))
    parser.add_argument("--dir", required=True, help="data folder to download into")
    parser.add_argument("--mirror", help="folder URL serving the files under their usual names, used instead")
    parser.add_argument("--attempts", type=int, default=5,
                        help="requests per file before giving up, 1, 2, 4, ... s apart (default: 5)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a request fails")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)  # basicConfig does nothing once orbax's import has set up logging
    spec = SCENES[args.name]
    if not spec.downloads or (args.mirror is None and any(d.url is None for d in spec.downloads)):
        print(f"{spec.title} is not fetched automatically.\n{spec.instructions}")
        return 0
    for item in spec.downloads:
        dest = os.path.join(args.dir, item.filename)
        url = item.url if args.mirror is None else f"{args.mirror.rstrip('/')}/{item.filename}"
        try:
            if os.path.exists(dest):
                print(f"{dest}: already present, sha256 {check_existing(dest, item.sha256)}; kept")
                continue
            digest = download_file(url, dest, sha256=item.sha256, attempts=args.attempts, timeout=args.timeout)
        except DownloadError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        note = "verified" if item.sha256 else "no published checksum is recorded; record this one"
        print(f"{dest}: sha256 {digest} ({note})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
