"""Download a file (https, http, file:// or a local path); check its md5 before it takes its name.

The file is streamed into a temporary file beside the destination and renamed only when the
md5 matches, so a failed, interrupted or corrupt download never leaves a file at `dest`.
Transient network errors are retried with exponential backoff; errors that a retry cannot fix
(HTTP 404, connection refused, a missing local file, no free space) fail at once.
"""

import hashlib
import http.client
import itertools
import logging
import os
import re
import ssl
import stat
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TextIO

from cifarbench.atomic import atomic_path, check_free_space
from cifarbench.errors import UserError
from cifarbench.progress import TransferMeter, terminal
from cifarbench.units import MB

log = logging.getLogger("cifarbench.download")

TIMEOUT_S = 60  # per blocking socket operation (connect, each read), not for the whole file
DEADLINE_S = 3600  # for the whole file: a stream that trickles a byte a minute never ends
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
    screen = terminal() if progress is None else (sys.stderr if progress else None)
    with atomic_path(dest) as tmp:
        got = _with_retries(lambda: _download_once(url, tmp, screen), url, retries, backoff_s)
        if got != expected:
            raise UserError(
                f"md5 mismatch for {url}: expected {expected}, got {got} "
                "(a corrupt or different file; check the url and md5 in the config)"
            )
    log.info("%s: md5 %s ok", dest, expected)


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
    with _open_source(url) as (source, size):
        if size is not None:
            _check_size(url, size)
            check_free_space(tmp.parent, size, f"download {url}")
        digest = hashlib.md5()
        received, started = 0, time.monotonic()
        meter = TransferMeter(url, size, screen)
        try:
            with open(tmp, "wb") as out:
                while chunk := source.read(CHUNK_BYTES):
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
        raise UserError(f"cannot download {url}: still not complete after {DEADLINE_S} s")


@contextmanager
def _open_source(url: str) -> Iterator[tuple[BinaryIO, int | None]]:
    """Yield (a binary stream, its size in bytes or None when the server does not say)."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        request = urllib.request.Request(url, headers={"User-Agent": "cifarbench"})
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            yield response, int(length) if length and length.isdigit() else None
        return
    if scheme == "file":
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
    elif scheme == "":
        path = Path(url)
    else:
        raise UserError(f"cannot download {url}: use https://, http://, file:// or a local path")
    _check_regular_file(url, path)  # a missing file raises here, and is not retried
    with open(path, "rb") as source:
        yield source, os.fstat(source.fileno()).st_size


def _check_regular_file(url: str, path: Path) -> None:
    """A device (/dev/zero) would fill the disk and a FIFO would block forever: a source
    must be a plain file. Checked before opening it, since opening a FIFO blocks."""
    if not stat.S_ISREG(path.stat().st_mode):
        raise UserError(f"cannot download {url}: not a regular file (a device, FIFO or folder)")
