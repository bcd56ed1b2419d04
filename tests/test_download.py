"""fetch() from file://, local paths and a local HTTP server: md5, retries, interruptions, space."""

import collections
import contextlib
import errno
import hashlib
import io
import logging
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cifarbench import atomic, download
from cifarbench.download import fetch
from cifarbench.errors import UserError

BODY = os.urandom(300_000)
BODY_MD5 = hashlib.md5(BODY).hexdigest()
WRONG_MD5 = "0" * 32


@dataclass
class Reply:
    status: int = 200
    body: bytes = BODY
    send_bytes: int | None = None  # send only this much of the body, then close
    delay_s: float = 0.0  # wait this long before answering
    drip_s: float = 0.0  # send the body a byte at a time, this long apart
    stall_s: float = 0.0  # after sending, wait this long before closing
    headers: dict = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.hits[self.path] += 1
        replies = self.server.routes.get(self.path, [Reply(404, b"not found")])
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        wait = self.server.stopping.wait  # not time.sleep: the tests patch that
        wait(reply.delay_s)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        body = reply.body[: reply.send_bytes]
        with contextlib.suppress(ConnectionError):  # a client that timed out has gone
            for piece in [body[i : i + 1] for i in range(len(body))] if reply.drip_s else [body]:
                self.wfile.write(piece)
                self.wfile.flush()
                if reply.drip_s and wait(reply.drip_s):
                    break
            wait(reply.stall_s)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A local HTTP server: set `server.routes[path] = [Reply, ...]`, count `server.hits[path]`.

    Each request takes the next reply of its path; the last one is repeated.
    """
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.routes, httpd.hits = {}, collections.Counter()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.stopping = threading.Event()  # ends a dripping or stalled reply at the test's end
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield httpd
    httpd.stopping.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The backoff delays fetch() asked for (without waiting them)."""
    delays: list[float] = []
    monkeypatch.setattr(download.time, "sleep", delays.append)
    return delays


@pytest.fixture
def source(tmp_path) -> Path:
    path = tmp_path / "source dir" / "cifar-10-python.tar.gz"  # a space, to test URL quoting
    path.parent.mkdir()
    path.write_bytes(BODY)
    return path


@pytest.fixture
def copied(monkeypatch):
    """Local sources cannot be hard-linked (as from another filesystem), so they are copied."""

    def cross_device(source, link):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(download.os, "link", cross_device)


@pytest.fixture
def dest(tmp_path) -> Path:
    return tmp_path / "resources" / "cifar-10-python.tar.gz"


def leftovers(dest: Path) -> list[str]:
    """Everything in dest's folder: the file itself, or a temporary file left behind."""
    return sorted(os.listdir(dest.parent)) if dest.parent.exists() else []


def test_fetch_file_url(source, dest):
    fetch(source.as_uri(), dest, BODY_MD5)
    assert dest.read_bytes() == BODY
    assert leftovers(dest) == [dest.name]


@pytest.mark.parametrize("relative", [False, True])
def test_fetch_plain_path(source, dest, monkeypatch, relative):
    monkeypatch.chdir(source.parent.parent)
    url = str(source.relative_to(source.parent.parent)) if relative else str(source)
    fetch(url, dest, BODY_MD5.upper())  # an md5 in capitals is the same md5
    assert dest.read_bytes() == BODY


def test_fetch_http(server, dest):
    server.routes["/data/archive.tar.gz"] = [Reply()]
    fetch(f"{server.url}/data/archive.tar.gz", dest, BODY_MD5)
    assert dest.read_bytes() == BODY
    assert server.hits["/data/archive.tar.gz"] == 1
    assert leftovers(dest) == [dest.name]


def test_md5_mismatch_leaves_nothing(server, dest):
    server.routes["/a"] = [Reply()]
    with pytest.raises(UserError, match=f"md5 mismatch .*expected {WRONG_MD5}, got {BODY_MD5}"):
        fetch(f"{server.url}/a", dest, WRONG_MD5)
    assert leftovers(dest) == []


def test_md5_mismatch_of_local_file_leaves_nothing(source, dest):
    with pytest.raises(UserError, match="md5 mismatch"):
        fetch(source.as_uri(), dest, WRONG_MD5)
    assert leftovers(dest) == []


def test_malformed_md5_is_refused_before_downloading(server, dest):
    server.routes["/a"] = [Reply()]
    with pytest.raises(UserError, match="32 hexadecimal digits"):
        fetch(f"{server.url}/a", dest, "c58f30108f718f92721af3b95e7434")
    assert server.hits["/a"] == 0


@pytest.mark.parametrize("status", [403, 404, 410])
def test_client_errors_fail_at_once(server, dest, sleeps, status):
    server.routes["/a"] = [Reply(status, b"no")]
    with pytest.raises(UserError, match=f"HTTP {status}"):
        fetch(f"{server.url}/a", dest, BODY_MD5, retries=3)
    assert server.hits["/a"] == 1
    assert sleeps == []
    assert leftovers(dest) == []


def test_connection_refused_fails_at_once(dest, sleeps):
    with socket.socket() as probe:  # a port that nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(UserError, match="connection refused"):
        fetch(f"http://127.0.0.1:{port}/a", dest, BODY_MD5, retries=3)
    assert sleeps == []


@pytest.mark.parametrize("as_uri", [False, True])
def test_missing_local_file_fails_at_once(tmp_path, dest, sleeps, as_uri):
    missing = tmp_path / "nowhere.tar.gz"
    with pytest.raises(UserError, match="No such file"):
        fetch(missing.as_uri() if as_uri else str(missing), dest, BODY_MD5, retries=3)
    assert sleeps == []
    assert leftovers(dest) == []


def test_unsupported_scheme(dest):
    with pytest.raises(UserError, match="use https://, http://, file:// or a local path"):
        fetch("ftp://example.org/cifar.tar.gz", dest, BODY_MD5)


def test_server_errors_are_retried_with_backoff(server, dest, sleeps):
    server.routes["/a"] = [Reply(500, b"oops"), Reply(503, b"busy"), Reply()]
    fetch(f"{server.url}/a", dest, BODY_MD5, retries=3, backoff_s=0.5)
    assert dest.read_bytes() == BODY
    assert server.hits["/a"] == 3
    assert sleeps == [0.5, 1.0]


def test_gives_up_after_retries(server, dest, sleeps):
    server.routes["/a"] = [Reply(502, b"bad gateway")]
    with pytest.raises(UserError, match=r"HTTP 502 .*gave up after 3 attempts.*README: Offline"):
        fetch(f"{server.url}/a", dest, BODY_MD5, retries=2, backoff_s=0.25)
    assert server.hits["/a"] == 3
    assert sleeps == [0.25, 0.5]
    assert leftovers(dest) == []


def test_body_cut_short_is_retried(server, dest, sleeps):
    server.routes["/a"] = [Reply(send_bytes=1000), Reply()]
    fetch(f"{server.url}/a", dest, BODY_MD5, retries=1)
    assert dest.read_bytes() == BODY
    assert server.hits["/a"] == 2


def test_interrupted_stream_leaves_nothing(server, dest, sleeps):
    server.routes["/a"] = [Reply(send_bytes=len(BODY) // 2)]
    with pytest.raises(UserError, match="closed early"):
        fetch(f"{server.url}/a", dest, BODY_MD5, retries=0)
    assert leftovers(dest) == []


def test_timeout_is_retried(server, dest, sleeps, monkeypatch):
    monkeypatch.setattr(download, "TIMEOUT_S", 0.2)
    server.routes["/a"] = [Reply(delay_s=0.6), Reply()]
    fetch(f"{server.url}/a", dest, BODY_MD5, retries=1)
    assert dest.read_bytes() == BODY
    assert server.hits["/a"] == 2


def test_keyboard_interrupt_leaves_nothing(source, dest, monkeypatch, copied):
    monkeypatch.setattr(download, "CHUNK_BYTES", 10_000)
    seen_while_writing = []

    def interrupt(meter, done):
        seen_while_writing.append(leftovers(dest))
        if done >= 50_000:
            raise KeyboardInterrupt

    monkeypatch.setattr(download.TransferMeter, "update", interrupt)
    with pytest.raises(KeyboardInterrupt):
        fetch(source.as_uri(), dest, BODY_MD5)
    assert len(seen_while_writing[-1]) == 1  # a temporary file existed while writing...
    assert seen_while_writing[-1] != [dest.name]
    assert leftovers(dest) == []  # ...and is gone


def test_full_disk_is_refused_before_writing(source, dest, monkeypatch, copied):
    asked = []

    def nearly_full(folder):
        asked.append(folder)
        return 10 << 20

    monkeypatch.setattr(atomic, "free_bytes", nearly_full)
    with pytest.raises(UserError, match=r"not enough free space .*need 64 MB, 10 MB free"):
        fetch(source.as_uri(), dest, BODY_MD5)
    assert asked == [dest.parent]
    assert leftovers(dest) == []


def test_enough_disk_space_passes(source, dest, monkeypatch, copied):
    monkeypatch.setattr(atomic, "free_bytes", lambda folder: len(BODY) + (64 << 20))
    fetch(source.as_uri(), dest, BODY_MD5)
    assert dest.exists()


def test_progress_logs_a_few_lines_when_not_a_terminal(
    source, dest, monkeypatch, caplog, capsys, copied
):
    monkeypatch.setattr(download, "CHUNK_BYTES", 10_000)  # 30 chunks
    with caplog.at_level(logging.INFO, logger="cifarbench.download"):
        fetch(source.as_uri(), dest, BODY_MD5)  # progress=None: pytest's stderr is no terminal
    lines = [r.message for r in caplog.records if "%" in r.message]
    assert 5 <= len(lines) <= 11
    assert "100%" in lines[-1]
    assert "\r" not in capsys.readouterr().err


def test_progress_draws_one_updating_line(source, dest, monkeypatch, capsys, copied):
    monkeypatch.setattr(download, "CHUNK_BYTES", 10_000)
    fetch(source.as_uri(), dest, BODY_MD5, progress=True)
    err = capsys.readouterr().err
    assert err.startswith("\r")
    assert err.count("\n") == 1
    assert err.endswith("\n")
    assert "100%" in err.rsplit("\r", 1)[-1]


def test_progress_auto_draws_the_line_on_a_terminal(source, dest, monkeypatch, copied):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    # The job's stderr is its log; the terminal is the stderr Snakemake started it with.
    monkeypatch.setattr(sys, "__stderr__", Terminal())
    fetch(source.as_uri(), dest, BODY_MD5)
    assert sys.__stderr__.getvalue().startswith("\r")


@pytest.mark.parametrize("source_kind", ["device", "fifo", "folder"])
def test_a_source_that_is_not_a_regular_file_is_refused_at_once(tmp_path, dest, source_kind):
    """/dev/zero would fill the disk (its size reads 0), a FIFO would block forever."""
    if source_kind == "device":
        source = Path("/dev/zero")
    elif source_kind == "fifo":
        source = tmp_path / "fifo"
        os.mkfifo(source)
    else:
        source = tmp_path
    with pytest.raises(UserError, match="not a regular file"):
        fetch(str(source), dest, BODY_MD5)
    assert not dest.exists()


def test_a_source_larger_than_the_limit_is_cut_off(source, dest, monkeypatch):
    monkeypatch.setattr(download, "MAX_BYTES", len(BODY) - 1)
    with pytest.raises(UserError, match=r"more than .* MB, several times the CIFAR-10 archive"):
        fetch(source.as_uri(), dest, BODY_MD5)
    assert leftovers(dest) == []


def test_a_server_that_sends_more_than_it_announced_is_cut_off(server, dest, monkeypatch):
    server.routes["/a"] = [Reply()]
    monkeypatch.setattr(download, "MAX_BYTES", 10)  # the body is larger
    with pytest.raises(UserError, match="more than"):
        fetch(f"{server.url}/a", dest, BODY_MD5, retries=0)
    assert not dest.exists()


def test_a_stream_that_never_ends_hits_the_deadline(source, dest, monkeypatch, copied):
    monkeypatch.setattr(download, "DEADLINE_S", -1)
    with pytest.raises(UserError, match="still not complete after -1 s"):
        fetch(source.as_uri(), dest, BODY_MD5)
    assert list(dest.parent.iterdir()) == []


def test_a_server_that_drips_a_byte_now_and_then_is_cut_at_the_deadline(server, dest, monkeypatch):
    """Each read returns what has arrived: the deadline is looked at after every byte, not
    after a whole chunk that would take the server hours to fill."""
    monkeypatch.setattr(download, "DEADLINE_S", 0.5)
    server.routes["/a"] = [Reply(drip_s=0.05)]
    started = time.monotonic()
    with pytest.raises(UserError, match=r"still not complete after 0\.5 s"):
        fetch(f"{server.url}/a", dest, BODY_MD5, retries=0)
    assert time.monotonic() - started < 5
    assert leftovers(dest) == []


def test_a_stalled_server_is_cut_at_the_deadline_not_at_the_read_timeout(server, dest, monkeypatch):
    """A read is given the time left before the deadline, not the full TIMEOUT_S."""
    monkeypatch.setattr(download, "DEADLINE_S", 0.5)
    server.routes["/a"] = [Reply(send_bytes=1000, stall_s=30)]
    started = time.monotonic()
    with pytest.raises(UserError, match=r"still not complete after 0\.5 s"):
        fetch(f"{server.url}/a", dest, BODY_MD5, retries=3)
    assert time.monotonic() - started < 10  # TIMEOUT_S is 60
    assert server.hits["/a"] == 1  # the deadline is not retried


def test_a_redirect_to_another_scheme_is_refused(server, dest):
    server.routes["/a"] = [Reply(302, b"", headers={"Location": "ftp://127.0.0.1/archive"})]
    with pytest.raises(UserError, match=r"HTTP 302 redirects to a ftp:// URL; only https://"):
        fetch(f"{server.url}/a", dest, BODY_MD5)
    assert leftovers(dest) == []


def test_a_redirect_loop_is_one_line(server, dest, sleeps):
    server.routes["/a"] = [Reply(302, b"", headers={"Location": "/b"})]
    server.routes["/b"] = [Reply(302, b"", headers={"Location": "/a"})]
    with pytest.raises(UserError, match="HTTP 302: redirected too often") as error:
        fetch(f"{server.url}/a", dest, BODY_MD5)
    assert "\n" not in str(error.value)
    assert sleeps == []


def test_a_redirect_to_another_http_url_is_followed(server, dest):
    server.routes["/a"] = [Reply(301, b"", headers={"Location": "/moved/archive"})]
    server.routes["/moved/archive"] = [Reply()]
    fetch(f"{server.url}/a", dest, BODY_MD5)
    assert dest.read_bytes() == BODY


def test_a_file_url_naming_another_host_is_refused(source, dest):
    """file://otherhost/path is a file on otherhost, not the local one of the same path."""
    url = source.as_uri().replace("file://", "file://otherhost", 1)
    with pytest.raises(UserError, match=r"names a file on this machine .*not on 'otherhost'"):
        fetch(url, dest, BODY_MD5)
    assert leftovers(dest) == []
    fetch(source.as_uri().replace("file://", "file://localhost", 1), dest, BODY_MD5)
    assert dest.read_bytes() == BODY


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///tmp/cifar%00.tar.gz", "a file name cannot hold a NUL byte"),
        ("http://127.0.0.1:9/a b", "not a valid URL"),
        ("http://127.0.0.1:9/a\r\nX-Injected: 1", "not a valid URL"),
        ("http://[::1/archive", "not a valid URL"),
    ],
)
def test_a_malformed_url_is_one_line(dest, url, message):
    with pytest.raises(UserError, match=message) as error:
        fetch(url, dest, BODY_MD5)
    assert "\n" not in str(error.value) and "\r" not in str(error.value)


def test_a_local_archive_is_hard_linked_not_copied(source, dest):
    source.chmod(0o444)
    fetch(source.as_uri(), dest, BODY_MD5)
    assert dest.stat().st_ino == source.stat().st_ino  # one file, two names
    assert source.stat().st_mode & 0o777 == 0o444  # the original is as it was
    assert leftovers(dest) == [dest.name]


def test_a_linked_archive_with_the_wrong_md5_leaves_nothing(source, dest):
    with pytest.raises(UserError, match="md5 mismatch"):
        fetch(source.as_uri(), dest, WRONG_MD5)
    assert leftovers(dest) == []
    assert source.read_bytes() == BODY and source.stat().st_nlink == 1


def test_an_archive_someone_else_owns_is_copied(source, dest, monkeypatch):
    """Snakemake sets each output's time when its job ends: only a file's owner may."""
    monkeypatch.setattr(download.os, "geteuid", lambda: source.stat().st_uid + 1)
    fetch(source.as_uri(), dest, BODY_MD5)
    assert dest.read_bytes() == BODY
    assert dest.stat().st_ino != source.stat().st_ino


def test_an_archive_on_another_filesystem_is_copied(source, dest, copied):
    fetch(str(source), dest, BODY_MD5)
    assert dest.read_bytes() == BODY
    assert dest.stat().st_ino != source.stat().st_ino
