"""The downloader against a local HTTP server on 127.0.0.1 serving small files."""

import hashlib
import http.server
import io
import threading

import numpy as np
import pytest
import scipy.io

from hsic_jax.data.download import DownloadError, download_file, main


def mat_bytes(seed, shape):
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"x": np.random.default_rng(seed).integers(0, 9000, shape).astype(np.uint16)})
    return buffer.getvalue()


class Server:
    """Serves `files` {path: bytes}; records each request's path and Range header.

    `truncate` {path: n}: the first n GETs of that path announce the full length but send half and
    close the connection. `ranges=False` ignores Range headers (answers 200 with the whole file).
    """

    def __init__(self, files, truncate=None, ranges=True):
        self.files, self.truncate, self.ranges, self.requests = files, dict(truncate or {}), ranges, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
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
    assert len(server.requests) == 2 and "already present" in capsys.readouterr().out


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


def test_gives_up_after_bounded_attempts_and_keeps_the_part(tmp_path):
    with Server(IP_FILES, truncate={"/Indian_pines_corrected.mat": 99}) as server, pytest.raises(
        DownloadError, match=r"failed after 3 attempts.*kept, run again to resume"
    ):
        download_file(server.url + "/Indian_pines_corrected.mat", tmp_path / "cube.mat", attempts=3)
    assert len(server.requests) == 3
    assert (tmp_path / "cube.mat.part").exists() and not (tmp_path / "cube.mat").exists()


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
        with pytest.raises(DownloadError, match=r"sha256 [0-9a-f]{64} differs from the expected 0000"):
            download_file(server.url + "/Indian_pines_gt.mat", tmp_path / "gt.mat", sha256="0" * 64)
        with pytest.raises(DownloadError, match="not a MATLAB .mat file; deleted the download"):
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
