"""Download a file (https, http, file:// or a local path); check its md5 before it takes its name.

The file is streamed into a temporary file beside the destination and renamed only when the
md5 matches, so a failed, interrupted or corrupt download never leaves a file at `dest`; its
progress is a log line every 10% and, on a terminal, one updating line.
Transient network errors are retried with exponential backoff; errors that a retry cannot fix
(HTTP 404, connection refused, a missing local file, no free space) fail at once. A local file
that can be hard-linked is linked instead of copied, its md5 checked the same way.
"""

import hashlib
import http.client
import itertools
import logging
import os
import re
import socket
import ssl
import stat
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from cifarbench.atomic import atomic_path, check_free_space
from cifarbench.errors import UserError
from cifarbench.progress import terminal
from cifarbench.units import MB

log = logging.getLogger("cifarbench.download")

TIMEOUT_S = 60  # per blocking socket operation (connect, each read), not for the whole file
DEADLINE_S = 3600  # for the whole file: a stream that trickles a byte a minute never ends
WEB_SCHEMES = ("http", "https")  # the only schemes a redirect may lead to
# The official archive is 163 MB: a source several times larger is not it, whatever it says.
MAX_BYTES = 1 << 30
CHUNK_BYTES = 1 << 20
# HTTP codes worth retrying besides the server errors (5xx): request timeout, too many requests.
RETRY_HTTP_CODES = {408, 429}
# Reset, closed early, timed out: the network may do better next time.
TRANSIENT_ERRORS = (ConnectionError, TimeoutError, http.client.HTTPException, ssl.SSLEOFError)


def fetch(
    url: str,
    dest: str | Path,
    md5: str,
    *,
    retries: int = 3,
    backoff_s: float = 1.0,
    progress: bool | None = None,
) -> None:
    """Download `url` to `dest` if its md5 is `md5`; otherwise raise UserError, leaving no file.

    retries: how many more attempts after a transient network error, waiting backoff_s,
    2 * backoff_s, 4 * backoff_s... in between. progress: True draws one updating line on
    stderr, False logs a line every 10%, None (auto) draws the line when stderr is a terminal.
    """
    expected = _check_md5_text(md5, url)
    local = _local_path(url)
    if local is not None and _hard_link(local, Path(dest), url, expected):
        log.info("%s: a hard link to %s, md5 %s ok", dest, local, expected)
        return
    screen = terminal() if progress is None else (sys.stderr if progress else None)
    with atomic_path(dest) as tmp:
        got = _with_retries(lambda: _download_once(url, tmp, screen), url, retries, backoff_s)
        if got != expected:
            raise _md5_mismatch(url, expected, got)
    log.info("%s: md5 %s ok", dest, expected)


def _md5_mismatch(url: str, expected: str, got: str) -> UserError:
    return UserError(
        f"md5 mismatch for {url}: expected {expected}, got {got} "
        "(a corrupt or different file; check the url and md5 in the config)"
    )


def _hard_link(source: Path, dest: Path, url: str, expected: str) -> bool:
    """Give a local file a second name, `dest`, if its md5 is `expected` (else raise): the
    163 MB archive is not copied. False where it must be copied instead: on another
    filesystem, one without hard links, or a file someone else owns (Snakemake sets each
    output's time when its job ends, which only the owner may do).

    A hard link is the file itself: what was checked is what takes the name, and replacing
    the original later (a new download, renamed into place) leaves it as checked. A
    symbolic link would follow the replacement unchecked, so none is made."""
    _check_regular_file(url, source)
    if source.stat().st_uid != os.geteuid():
        return False
    _check_size(url, source.stat().st_size)
    tmp = dest.with_name(f".{dest.name}.link.tmp")  # removed by the next write if left behind
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        return False
    try:
        got = md5sum(tmp)  # the link, not the original: what is checked takes the name
        if got != expected:
            raise _md5_mismatch(url, expected, got)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def md5sum(path: str | Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _check_md5_text(md5: str, url: str) -> str:
    md5 = str(md5).strip().lower()
    if not re.fullmatch(r"[0-9a-f]{32}", md5):
        raise UserError(f"md5 for {url} should be 32 hexadecimal digits, got {md5!r}")
    return md5


# Where a first run offline or behind a firewall ends: say what to do about it.
OFFLINE_HINT = (
    "; without internet, point data.url at a local copy in config.local.yaml or with "
    "--configfile (README: Offline, or with your own copy of the archive)"
)


def _hint(url: str) -> str:
    return OFFLINE_HINT if url.startswith(("http://", "https://")) else ""


def _with_retries(attempt, url: str, retries: int, backoff_s: float):
    """Run `attempt()`; after a transient error, wait and try again, up to `retries` times."""
    for done in itertools.count():
        try:
            return attempt()
        # OSError covers urllib's errors, the network's, and the disk's (which are not retried).
        except (OSError, http.client.HTTPException) as exc:
            if not _is_transient(exc):
                raise UserError(f"cannot download {url}: {_describe(exc)}{_hint(url)}") from exc
            if done == retries:
                raise UserError(
                    f"cannot download {url}: {_describe(exc)} (gave up after {done + 1} "
                    f"attempts){_hint(url)}"
                ) from exc
            delay = backoff_s * 2**done
            log.warning(
                "download of %s failed (%s); retry %d/%d in %g s",
                url,
                _describe(exc),
                done + 1,
                retries,
                delay,
            )
            time.sleep(delay)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500 or exc.code in RETRY_HTTP_CODES
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason  # what went wrong below HTTP: refused, reset, timed out, DNS, TLS
    if isinstance(exc, ConnectionRefusedError):
        return False  # nothing listens there; waiting will not change that
    return isinstance(exc, TRANSIENT_ERRORS)


def _describe(exc: BaseException | str) -> str:
    if isinstance(exc, urllib.error.HTTPError) and 300 <= exc.code < 400:
        return f"HTTP {exc.code}: redirected too often (a redirect loop?)"
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return _describe(exc.reason)
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return f"timed out after {TIMEOUT_S} s without data"
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection closed early ({exc.expected} bytes missing)"
    return str(exc) or type(exc).__name__


def _download_once(url: str, tmp: Path, screen: TextIO | None) -> str:
    """Stream `url` into `tmp` (overwriting it); return the md5 of what was received."""
    started = time.monotonic()
    with _open_source(url, started) as (read, size):
        if size is not None:
            _check_size(url, size)
            check_free_space(tmp.parent, size, f"download {url}")
        digest = hashlib.md5()
        received = 0
        meter = TransferMeter(url, size, screen)
        try:
            with open(tmp, "wb") as out:
                while chunk := read(CHUNK_BYTES):
                    digest.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
                    meter.update(received)
                    _check_size(url, received)
                    _check_deadline(url, started)
        finally:
            meter.close(received)
    if size is not None and received < size:
        # urllib does not raise when a server closes early; a short file would fail the md5
        # check, but it is worth another attempt, so raise the transient error here.
        raise http.client.IncompleteRead(b"", size - received)
    return digest.hexdigest()


def _check_size(url: str, size: int) -> None:
    if size > MAX_BYTES:
        raise UserError(
            f"cannot download {url}: more than {MAX_BYTES / MB:.0f} MB, several times the "
            "CIFAR-10 archive: refusing the rest"
        )


def _check_deadline(url: str, started: float) -> None:
    if time.monotonic() - started > DEADLINE_S:
        raise _past_deadline(url)


def _past_deadline(url: str) -> UserError:
    return UserError(f"cannot download {url}: still not complete after {DEADLINE_S} s")


@contextmanager
def _open_source(url: str, started: float) -> Iterator[tuple[Callable[[int], bytes], int | None]]:
    """Yield (a function reading the next piece of at most n bytes, the size in bytes or None
    when the server does not say)."""
    local = _local_path(url)
    if local is None:
        with _open_web(url) as response:
            length = response.headers.get("Content-Length", "")
            yield _timed_reads(response, url, started), int(length) if length.isdigit() else None
        return
    _check_regular_file(url, local)  # a missing file raises here, and is not retried
    with open(local, "rb") as source:
        yield source.read, os.fstat(source.fileno()).st_size


def _local_path(url: str) -> Path | None:
    """The file a file:// URL or a plain path names; None for a web URL."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:  # an unclosed [ of an IPv6 address
        raise _not_a_url(url, exc) from exc
    scheme = parts.scheme.lower()
    if scheme in WEB_SCHEMES:
        return None
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UserError(
                f"cannot download {url}: a file:// URL names a file on this machine "
                f"(file:///path/to/file), not on {parts.netloc!r}"
            )
        path = urllib.request.url2pathname(parts.path)
    elif scheme == "":
        path = url
    else:
        raise UserError(f"cannot download {url}: use https://, http://, file:// or a local path")
    if "\0" in path:
        raise UserError(f"cannot download {url}: a file name cannot hold a NUL byte")
    return Path(path)


def _not_a_url(url: str, exc: Exception) -> UserError:
    return UserError(f"cannot download {url}: not a valid URL ({exc})")


@contextmanager
def _open_web(url: str) -> Iterator[http.client.HTTPResponse]:
    request = urllib.request.Request(url, headers={"User-Agent": "cifarbench"})
    opener = urllib.request.build_opener(_WebOnlyRedirects)
    try:
        response = opener.open(request, timeout=TIMEOUT_S)
    except (ValueError, http.client.InvalidURL) as exc:  # a space or control character, a port
        raise _not_a_url(url, exc) from exc
    with response:
        yield response


class _WebOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http and https only: urllib would also follow one to ftp://, which
    the config could not have named."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in WEB_SCHEMES:
            raise UserError(
                f"cannot download {req.full_url}: HTTP {code} redirects to a {scheme}:// URL; "
                "only https:// and http:// redirects are followed"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _timed_reads(response, url: str, started: float) -> Callable[[int], bytes]:
    """Reads of what has arrived (`read1`), each given the time left before the deadline (at
    most TIMEOUT_S): a server that sends a byte now and then is cut at the deadline, where
    whole-chunk reads would wait for each chunk to fill before the deadline is looked at."""
    connection = _socket_of(response)

    def read(size: int) -> bytes:
        left = DEADLINE_S - (time.monotonic() - started)
        if left <= 0:
            raise _past_deadline(url)
        if connection is not None and connection.fileno() != -1:
            connection.settimeout(min(TIMEOUT_S, left))
        try:
            return response.read1(size)
        except TimeoutError:
            if time.monotonic() - started >= DEADLINE_S:
                raise _past_deadline(url) from None
            raise

    return read


def _socket_of(response) -> socket.socket | None:
    """The connection's socket, which http.client keeps in its response's file object; None
    where it does not (then each read waits at most TIMEOUT_S, as the connection was opened)."""
    return getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)


def _check_regular_file(url: str, path: Path) -> None:
    """A device (/dev/zero) would fill the disk and a FIFO would block forever: a source
    must be a plain file. Checked before opening it, since opening a FIFO blocks."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise UserError(f"cannot download {url}: {_describe(exc)}") from exc
    if not stat.S_ISREG(mode):
        raise UserError(f"cannot download {url}: not a regular file (a device, FIFO or folder)")


class TransferMeter:
    """A download's progress: a log line every 10% (or 100 MB), and one updating line on
    `screen` when given."""

    def __init__(self, url: str, total: int | None, screen: TextIO | None):
        self.name = Path(urllib.parse.urlsplit(url).path).name or url
        self.total = total
        self.screen = screen
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.next_log = self._step()
        self.logged = 0

    def update(self, done: int) -> None:
        if self.screen and time.monotonic() - self.last_draw >= 0.1:  # redrawing costs time
            self.last_draw = time.monotonic()
            print(f"\r{self._text(done)}\033[K", end="", file=self.screen, flush=True)
        if done >= self.next_log:
            log.info("%s", self._text(done))
            self.logged = done
            while self.next_log <= done:
                self.next_log += self._step()

    def close(self, done: int) -> None:
        if self.screen:
            print(f"\r{self._text(done)}\033[K", file=self.screen, flush=True)
        if self.logged != done:
            log.info("%s", self._text(done))

    def _step(self) -> int:
        return max(1, self.total // 10) if self.total else 100 * MB

    def _text(self, done: int) -> str:
        rate = done / MB / max(time.monotonic() - self.started, 1e-3)
        if self.total:
            amount = f"{100 * done / self.total:3.0f}% {done / MB:.1f}/{self.total / MB:.1f} MB"
        else:
            amount = f"{done / MB:.1f} MB"
        return f"{self.name}: {amount} ({rate:.1f} MB/s)"
