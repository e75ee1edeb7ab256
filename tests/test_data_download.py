"""The downloader against a local HTTP server on 127.0.0.1 serving small files."""

import hashlib
import http.server
import io
import subprocess
import sys
import threading

import numpy as np
import pytest
import scipy.io

from hsic_jax.data import download
from hsic_jax.data.download import DownloadError, download_file, main


def mat_bytes(seed, shape):
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"x": np.random.default_rng(seed).integers(0, 9000, shape).astype(np.uint16)})
    return buffer.getvalue()


class Server:
    """Serves `files` {path: bytes}; records each request's path and Range header.

    `truncate` {path: n}: the first n GETs of that path announce the full length but send half and
    close the connection. `fail` {path: n}: the first n GETs of that path are answered 503.
    `ranges=False` ignores Range headers (answers 200 with the whole file). `on_get(path)` is called
    on each GET before it is answered.
    """

    def __init__(self, files, truncate=None, ranges=True, fail=None, on_get=None):
        self.files, self.truncate, self.ranges, self.requests = files, dict(truncate or {}), ranges, []
        self.fail, self.on_get = dict(fail or {}), on_get
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                if server.on_get:
                    server.on_get(self.path)
                if server.fail.get(self.path, 0) > 0:
                    server.fail[self.path] -= 1
                    self.send_error(503)
                    return
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start, status = 0, 200
                header = self.headers.get("Range")
                if header and server.ranges:
                    start = int(header.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    status = 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                payload = body[start:]
                if server.truncate.get(self.path, 0) > 0:
                    server.truncate[self.path] -= 1
                    payload = payload[: len(payload) // 2]
                    self.close_connection = True
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


IP_FILES = {"/Indian_pines_corrected.mat": mat_bytes(0, (6, 5, 4)), "/Indian_pines_gt.mat": mat_bytes(1, (6, 5))}


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def sleeps(monkeypatch):
    """The back-off delays asked for, instead of waiting them."""
    delays = []
    monkeypatch.setattr(download.time, "sleep", delays.append)
    return delays


def test_cli_downloads_a_scene(tmp_path):
    with Server(IP_FILES) as server:
        assert main(["indian_pines", "--dir", str(tmp_path), "--mirror", server.url + "/"]) == 0
    for name, data in IP_FILES.items():
        assert (tmp_path / name[1:]).read_bytes() == data
    assert [path for path, _ in server.requests] == list(IP_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Indian_pines_corrected.mat", "Indian_pines_gt.mat"]


def test_cli_output_names_each_sha256(tmp_path, capsys):
    with Server(IP_FILES) as server:
        main(["indian_pines", "--dir", str(tmp_path), "--mirror", server.url])
        out = capsys.readouterr().out
        assert all(sha(data) in out for data in IP_FILES.values()) and "record this one" in out
        main(["indian_pines", "--dir", str(tmp_path), "--mirror", server.url])  # already there: no request
    assert len(server.requests) == 2
    gt = IP_FILES["/Indian_pines_gt.mat"]
    assert f"{tmp_path / 'Indian_pines_gt.mat'}: already present, sha256 {sha(gt)}; kept" in capsys.readouterr().out


def test_resumes_a_partial_file_with_a_range_request(tmp_path):
    data = IP_FILES["/Indian_pines_corrected.mat"]
    (tmp_path / "cube.mat.part").write_bytes(data[:100])
    with Server(IP_FILES) as server:
        digest = download_file(server.url + "/Indian_pines_corrected.mat", tmp_path / "cube.mat")
    assert (tmp_path / "cube.mat").read_bytes() == data and digest == sha(data)
    assert server.requests == [("/Indian_pines_corrected.mat", "bytes=100-")]
    assert not (tmp_path / "cube.mat.part").exists()


def test_dropped_connection_is_resumed(tmp_path):
    data = IP_FILES["/Indian_pines_corrected.mat"]
    with Server(IP_FILES, truncate={"/Indian_pines_corrected.mat": 1}) as server:
        download_file(server.url + "/Indian_pines_corrected.mat", tmp_path / "cube.mat", sha256=sha(data))
    assert (tmp_path / "cube.mat").read_bytes() == data
    path = "/Indian_pines_corrected.mat"
    assert server.requests == [(path, None), (path, f"bytes={len(data) // 2}-")]


def test_gives_up_after_bounded_attempts_and_keeps_the_part(tmp_path, sleeps):
    part = tmp_path / "cube.mat.part"
    with Server(IP_FILES, truncate={"/Indian_pines_corrected.mat": 99}) as server, pytest.raises(
        DownloadError, match=r"failed after 3 attempts"
    ) as error:
        download_file(server.url + "/Indian_pines_corrected.mat", tmp_path / "cube.mat", attempts=3)
    assert len(server.requests) == 3 and sleeps == [1, 2]
    assert part.exists() and not (tmp_path / "cube.mat").exists()
    assert str(error.value).endswith(f"; {part} keeps the first {part.stat().st_size} bytes; run the command "
                                     "again to continue")
    assert 0 < part.stat().st_size < len(IP_FILES["/Indian_pines_corrected.mat"])


def test_failed_requests_are_retried_with_exponential_backoff(tmp_path, sleeps, caplog):
    data = IP_FILES["/Indian_pines_gt.mat"]
    with Server(IP_FILES, fail={"/Indian_pines_gt.mat": 3}) as server:
        digest = download_file(server.url + "/Indian_pines_gt.mat", tmp_path / "gt.mat", backoff=0.5)
    assert (tmp_path / "gt.mat").read_bytes() == data and digest == sha(data)
    assert len(server.requests) == 4 and sleeps == [0.5, 1, 2]
    assert "attempt 3 of 5 failed (HTTP Error 503: Service Unavailable); retrying in 2 s" in caplog.text


def test_nothing_on_disk_is_said_when_no_byte_arrived(tmp_path, sleeps):
    with Server(IP_FILES, fail={"/Indian_pines_gt.mat": 9}) as server, pytest.raises(
        DownloadError, match=r"failed after 2 attempts \(HTTP Error 503: Service Unavailable\); nothing "
                             r"was kept on disk; run the command again to continue$"
    ):
        download_file(server.url + "/Indian_pines_gt.mat", tmp_path / "gt.mat", attempts=2)
    assert list(tmp_path.iterdir()) == [] and sleeps == [1]


def test_progress_is_logged_when_tqdm_is_silent(tmp_path, caplog):
    caplog.set_level("INFO")
    with Server(IP_FILES) as server:
        download_file(server.url + "/Indian_pines_gt.mat", tmp_path / "a.mat", progress_every=3600)
        assert "MB" not in caplog.text
        download_file(server.url + "/Indian_pines_gt.mat", tmp_path / "b.mat", progress_every=0)
    assert "Indian_pines_gt.mat: 0.0 of 0.0 MB (100%)" in caplog.text


def test_cli_logs_at_info_level(tmp_path):
    """In a process of its own, where orbax's import has set up logging before `main` runs."""
    (tmp_path / "Indian_pines_gt.mat.part").write_bytes(b"12345")
    with Server(IP_FILES, ranges=False) as server:
        err = subprocess.run([sys.executable, "-m", "hsic_jax.data.download", "indian_pines", "--dir",
                              str(tmp_path), "--mirror", server.url], check=True, capture_output=True,
                             text=True).stderr
    assert "Indian_pines_gt.mat: server ignored the request to resume at byte 5; starting over" in err


def test_a_complete_file_already_there_is_kept(tmp_path):
    data = IP_FILES["/Indian_pines_gt.mat"]
    (tmp_path / "gt.mat").write_bytes(data)
    with Server(IP_FILES) as server:
        assert download_file(server.url + "/Indian_pines_gt.mat", tmp_path / "gt.mat", sha256=sha(data)) == sha(data)
        with pytest.raises(DownloadError, match=(
            rf"gt.mat is already there but has sha256 {sha(data)}, not the expected 0000.*; it was left as it "
            "is: move it away and run the command again$"
        )):
            download_file(server.url + "/Indian_pines_gt.mat", tmp_path / "gt.mat", sha256="0" * 64)
    assert server.requests == [] and (tmp_path / "gt.mat").read_bytes() == data


def test_cli_refuses_a_different_file_already_there(tmp_path, capsys):
    gt = tmp_path / "Indian_pines_gt.mat"
    gt.write_bytes(b"my own notes")
    with Server(IP_FILES) as server:
        assert main(["indian_pines", "--dir", str(tmp_path), "--mirror", server.url]) == 1
    assert capsys.readouterr().err == (f"error: {gt} is already there but is not a MATLAB .mat file; it was left "
                                       "as it is: move it away and run the command again\n")
    assert gt.read_bytes() == b"my own notes"
    assert [path for path, _ in server.requests] == ["/Indian_pines_corrected.mat"]


def test_a_file_that_appears_during_the_download_is_not_replaced(tmp_path):
    dest = tmp_path / "gt.mat"
    with Server(IP_FILES, on_get=lambda path: dest.write_bytes(b"theirs")) as server, pytest.raises(
        DownloadError, match=r"gt.mat appeared during the download and was left as it is; the download is in "
    ):
        download_file(server.url + "/Indian_pines_gt.mat", dest)
    assert dest.read_bytes() == b"theirs"
    assert (tmp_path / "gt.mat.part").read_bytes() == IP_FILES["/Indian_pines_gt.mat"]


def test_server_without_range_support_restarts_cleanly(tmp_path):
    data = IP_FILES["/Indian_pines_gt.mat"]
    (tmp_path / "gt.mat.part").write_bytes(b"garbage that is not a prefix")
    with Server(IP_FILES, ranges=False) as server:
        download_file(server.url + "/Indian_pines_gt.mat", tmp_path / "gt.mat")
    assert (tmp_path / "gt.mat").read_bytes() == data and len(server.requests) == 1


def test_complete_part_answered_416_starts_over(tmp_path):
    data = IP_FILES["/Indian_pines_gt.mat"]
    (tmp_path / "gt.mat.part").write_bytes(data + b"extra")
    with Server(IP_FILES) as server:
        download_file(server.url + "/Indian_pines_gt.mat", tmp_path / "gt.mat")
    assert (tmp_path / "gt.mat").read_bytes() == data and len(server.requests) == 2


def test_checksum_mismatch_and_html_are_cleaned_up(tmp_path):
    files = {**IP_FILES, "/page.mat": b"<html>Please log in</html>" * 50}
    with Server(files) as server:
        with pytest.raises(DownloadError, match=r"the download has sha256 [0-9a-f]{64}, not the expected 0000"):
            download_file(server.url + "/Indian_pines_gt.mat", tmp_path / "gt.mat", sha256="0" * 64)
        with pytest.raises(DownloadError, match="the download is not a MATLAB .mat file; deleted it"):
            download_file(server.url + "/page.mat", tmp_path / "page.mat")
        with pytest.raises(DownloadError, match="HTTP 404"):
            download_file(server.url + "/missing.mat", tmp_path / "missing.mat")
    assert list(tmp_path.iterdir()) == [] and len(server.requests) == 3


def test_houston_and_longkou_print_instructions(tmp_path, capsys):
    assert main(["houston2013", "--dir", str(tmp_path)]) == 0
    assert "Register with the IEEE GRSS" in capsys.readouterr().out
    assert main(["whu_hi_longkou", "--dir", str(tmp_path)]) == 0
    assert "rsidea.whu.edu.cn" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_cli_failure_exit_status(tmp_path, capsys):
    with Server({}) as server:
        assert main(["botswana", "--dir", str(tmp_path), "--mirror", server.url]) == 1
    assert "HTTP 404" in capsys.readouterr().err and len(server.requests) == 1
