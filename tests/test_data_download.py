"""fetch(): a local HTTP server on 127.0.0.1 stands in for the internet.

Every failure must leave no file under the final name, no temporary file
behind, an existing file untouched, and a message that says what to do.
"""

import hashlib
import http.server
import threading
import time
import urllib.request

import pytest

from tinybnn.data import DownloadError, fetch, md5_of_file
from tinybnn.errors import DataFileError

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass

    def send_body(self, body: bytes, length: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/good.gz":
            self.send_body(PAYLOAD, len(PAYLOAD))
        elif self.path == "/wrong.gz":  # same length, different bytes
            self.send_body(PAYLOAD[::-1], len(PAYLOAD))
        elif self.path == "/short.gz":  # announces everything, sends half, hangs up
            self.send_body(PAYLOAD[: len(PAYLOAD) // 2], len(PAYLOAD))
            self.close_connection = True
        elif self.path == "/stall.gz":  # sends a little, then nothing for longer than the timeout
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[:1000])
            self.wfile.flush()
            time.sleep(3.0)
        else:
            self.send_error(404, "Not Found")


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def assert_nothing_left(folder, dest, before=None):
    """No file under the final name (or the old one intact), no temporary file."""
    if before is None:
        assert not dest.exists()
        assert list(folder.iterdir()) == []
    else:
        assert dest.read_bytes() == before
        assert list(folder.iterdir()) == [dest]


def test_good_download(server, tmp_path):
    dest = tmp_path / "sub" / "train-images-idx3-ubyte.gz"
    assert fetch(f"{server}/good.gz", dest, PAYLOAD_MD5) == dest
    assert dest.read_bytes() == PAYLOAD
    assert md5_of_file(dest) == PAYLOAD_MD5
    assert list(dest.parent.iterdir()) == [dest]
    assert dest.stat().st_mode & 0o777 == 0o644


def test_md5_is_optional_and_case_insensitive(server, tmp_path):
    fetch(f"{server}/good.gz", tmp_path / "a", None)
    fetch(f"{server}/good.gz", tmp_path / "b", PAYLOAD_MD5.upper())
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes() == PAYLOAD


def test_checksum_mismatch(server, tmp_path):
    dest = tmp_path / "x.gz"
    with pytest.raises(DataFileError) as info:
        fetch(f"{server}/wrong.gz", dest, PAYLOAD_MD5)
    message = str(info.value)
    assert "failed its checksum" in message and f"expected {PAYLOAD_MD5}" in message
    assert f"{server}/wrong.gz" in message and str(dest) in message
    assert "by hand" in message
    assert_nothing_left(tmp_path, dest)


def test_connection_closed_mid_transfer(server, tmp_path):
    dest = tmp_path / "x.gz"
    with pytest.raises(DataFileError) as info:
        fetch(f"{server}/short.gz", dest, PAYLOAD_MD5)
    message = str(info.value)
    assert "51,200" in message  # how much arrived
    assert "try again" in message and str(dest) in message
    assert_nothing_left(tmp_path, dest)


def test_http_404(server, tmp_path):
    dest = tmp_path / "x.gz"
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        fetch(f"{server}/nothing-here.gz", dest, PAYLOAD_MD5)
    assert "another mirror" in str(info.value) and "by hand" in str(info.value)
    assert info.value.reason == "HTTP 404 Not Found"  # the short cause, for combined messages
    assert info.value.url == f"{server}/nothing-here.gz" and info.value.dest == dest
    assert_nothing_left(tmp_path, dest)


def test_stalled_transfer_times_out(server, tmp_path):
    dest = tmp_path / "x.gz"
    with pytest.raises(DataFileError, match="timed out"):  # not the short read the server's hang-up would give
        fetch(f"{server}/stall.gz", dest, PAYLOAD_MD5, timeout=0.3)
    assert_nothing_left(tmp_path, dest)


def test_no_network(tmp_path):
    dest = tmp_path / "x.gz"
    with pytest.raises(DataFileError) as info:
        fetch("http://127.0.0.1:1/train-images-idx3-ubyte.gz", dest, PAYLOAD_MD5, timeout=2)
    message = str(info.value)
    assert "connection refused" in message
    assert "check the network connection" in message
    assert f"save it as {dest}" in message
    assert_nothing_left(tmp_path, dest)


def test_failure_keeps_an_existing_file(server, tmp_path):
    dest = tmp_path / "x.gz"
    dest.write_bytes(b"old, good contents")
    for path in ["/wrong.gz", "/short.gz", "/missing.gz"]:
        with pytest.raises(DataFileError):
            fetch(server + path, dest, PAYLOAD_MD5)
        assert_nothing_left(tmp_path, dest, before=b"old, good contents")
    fetch(f"{server}/good.gz", dest, PAYLOAD_MD5)
    assert dest.read_bytes() == PAYLOAD


def test_interrupted_by_the_user(tmp_path, monkeypatch):
    """Ctrl-C in the middle: KeyboardInterrupt goes on, the temporary file does not stay."""

    class Response:
        headers = {"Content-Length": str(len(PAYLOAD))}
        calls = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, size):
            Response.calls += 1
            if Response.calls > 1:
                raise KeyboardInterrupt
            return PAYLOAD[:size]

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Response())
    dest = tmp_path / "x.gz"
    with pytest.raises(KeyboardInterrupt):
        fetch("http://example.invalid/x.gz", dest, PAYLOAD_MD5)
    assert_nothing_left(tmp_path, dest)


def test_unwritable_destination(server, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(DataFileError, match="cannot write into"):
        fetch(f"{server}/good.gz", blocker / "x.gz", PAYLOAD_MD5)


def test_bad_url(tmp_path):
    with pytest.raises(DataFileError, match="cannot download"):
        fetch("nonsense://x", tmp_path / "x.gz", None)
    assert list(tmp_path.iterdir()) == []


def test_file_url(tmp_path):
    source = tmp_path / "source.gz"
    source.write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "x.gz"
    fetch(source.as_uri(), dest, PAYLOAD_MD5)
    assert dest.read_bytes() == PAYLOAD
