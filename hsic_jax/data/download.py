"""Download a benchmark scene's files: `python -m hsic_jax.data.download NAME --dir DIR [--mirror URL]`.

Each file is fetched into DIR/<file>.part, resumed with an HTTP Range request when a .part is left
from an interrupted run (or a dropped connection, retried up to --attempts times), checked, and
renamed onto DIR/<file>. Checks: the sha256 when the registry knows it (a mismatch deletes the
download), and that a .mat file really is a MATLAB file (an HTML error page is deleted). When no
sha256 is known the computed one is printed, to be recorded. Houston 2013 is not redistributable:
its instructions are printed instead. WHU-Hi-LongKou has no stable direct link: its instructions are
printed unless --mirror gives a folder URL that serves the files under their names.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import sys
import urllib.error
import urllib.request

from scipy.io.matlab import matfile_version
from tqdm import tqdm

from hsic_jax.data.io import file_sha256
from hsic_jax.data.scenes import SCENES

log = logging.getLogger(__name__)

_RETRYABLE = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)


class DownloadError(RuntimeError):
    """A download failed; the message names the URL and why."""


def download_file(
    url: str, dest: str | os.PathLike, *, sha256: str | None = None, attempts: int = 3, timeout: float = 60.0
) -> str:
    """Downloads `url` to `dest` via `dest`.part (resumed if present); returns the file's sha256 (hex).

    Raises DownloadError after `attempts` failed requests (the .part is kept to resume later), on an
    HTTP error status, or when the file fails its checks (the .part is deleted).
    """
    dest = os.fspath(dest)
    part = dest + ".part"
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    for attempt in range(1, attempts + 1):
        try:
            _fetch(url, part, timeout)
            break
        except urllib.error.HTTPError as e:
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from e
        except _RETRYABLE as e:
            if attempt == attempts:
                raise DownloadError(
                    f"{url}: failed after {attempts} attempts ({e}); {part} is kept, run again to resume"
                ) from e
            log.warning("%s: attempt %d failed (%s); resuming", url, attempt, e)
    digest = file_sha256(part)
    problem = None
    if sha256 is not None and digest != sha256.lower():
        problem = f"sha256 {digest} differs from the expected {sha256}"
    elif dest.lower().endswith(".mat") and not _is_mat(part):
        problem = "the server's answer is not a MATLAB .mat file"
    if problem:
        os.remove(part)
        raise DownloadError(f"{url}: {problem}; deleted the download")
    os.replace(part, dest)
    return digest


def _fetch(url: str, part: str, timeout: float) -> None:
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
        return _fetch(url, part, timeout)
    with response:
        resumed = response.status == 206
        if resumed and not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
            os.remove(part)
            raise http.client.HTTPException(f"unexpected Content-Range {response.headers.get('Content-Range')!r}")
        length = response.headers.get("Content-Length")
        expected = None if length is None else int(length)
        received = 0
        start = offset if resumed else 0
        total = None if expected is None else start + expected
        with open(part, "ab" if resumed else "wb") as f, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, desc=os.path.basename(url), disable=None
        ) as bar:
            while chunk := response.read(1 << 20):
                f.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if expected is not None and received < expected:
            raise http.client.IncompleteRead(b"", expected - received)


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
    parser.add_argument("--attempts", type=int, default=3, help="requests per file before giving up")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a request fails")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    spec = SCENES[args.name]
    if not spec.downloads or (args.mirror is None and any(d.url is None for d in spec.downloads)):
        print(f"{spec.title} is not fetched automatically.\n{spec.instructions}")
        return 0
    for item in spec.downloads:
        dest = os.path.join(args.dir, item.filename)
        if os.path.exists(dest):
            digest = file_sha256(dest)
            if item.sha256 is not None and digest != item.sha256.lower():
                print(f"{dest} exists but its sha256 {digest} differs from {item.sha256}; delete it and rerun",
                      file=sys.stderr)
                return 1
            print(f"{dest}: already present, sha256 {digest}")
            continue
        url = item.url if args.mirror is None else f"{args.mirror.rstrip('/')}/{item.filename}"
        try:
            digest = download_file(url, dest, sha256=item.sha256, attempts=args.attempts, timeout=args.timeout)
        except DownloadError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        note = "verified" if item.sha256 else "no published checksum is recorded; record this one"
        print(f"{dest}: sha256 {digest} ({note})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
