"""Hostile archives at a realistic scale, against a valid one of the same counts: each is
refused in one line, in at most twice the valid archive's peak memory and in seconds.

The big inputs (a 100 MB pax header, 100,000 members) are written while the test runs, as a
stream into gzip: they compress to a few hundred KB, as an attacker's would. Each archive is
read in its own process (a crash there is a failure here, not the end of the test run), whose
peak memory while reading is measured with tracemalloc (numpy's arrays included).
"""

import gzip
import json
import re
import struct
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cifar_archive import FOLDER, write_cifar_archive
from cifarbench.archive import BYTES_PER_IMAGE, MAX_ENTRIES, MEMBER_OVERHEAD

EXPECT = {"expect_train": 5000, "expect_test": 1000}  # 15 MB of training images
TRAIN_LIMIT = EXPECT["expect_train"] * BYTES_PER_IMAGE + MEMBER_OVERHEAD  # one batch's most
HUGE = 100 << 20  # bytes: several times what reading the valid archive takes

# Reads an archive, prints its peak memory (bytes), the seconds it took and the refusal.
READ = """
import json, sys, time, tracemalloc
from cifarbench.archive import read_archive
from cifarbench.errors import UserError
tracemalloc.start()
started, error = time.monotonic(), None
try:
    read_archive(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
except UserError as refusal:
    error = str(refusal)
seconds = time.monotonic() - started
print(json.dumps({"peak": tracemalloc.get_traced_memory()[1], "error": error, "s": seconds}))
"""


def read_in_a_process(archive: Path, expect: tuple[int, int] = tuple(EXPECT.values())) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", READ, str(archive), *map(str, expect)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> tuple[dict[str, bytes], int]:
    """The valid archive's members (tar name -> bytes) and its reading's peak memory."""
    archive, _ = write_cifar_archive(tmp_path_factory.mktemp("valid"), 500, 100)
    read = read_in_a_process(archive)
    assert read["error"] is None
    with tarfile.open(archive) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    return members, read["peak"]


def header(name: str, size: int, kind: bytes = tarfile.REGTYPE, form=tarfile.GNU_FORMAT) -> bytes:
    """A member's header; a name too long for the header gets an extended header first (a
    GNU long name, or a pax header's `path`, by `form`)."""
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    return info.tobuf(form)


def entry(name: str, data: bytes, form=tarfile.GNU_FORMAT) -> Iterator[bytes]:
    yield header(name, len(data), form=form)
    yield data
    yield bytes(-len(data) % tarfile.BLOCKSIZE)


def repeated(
    name: str, kind: bytes, size: int, start: bytes = b"", end: bytes = b""
) -> Iterator[bytes]:
    """An entry of `size` bytes: `start`, then 'a's a megabyte at a time, then `end`."""
    yield header(name, size, kind)
    yield start
    left = size - len(start) - len(end)
    while left > 0:
        yield b"a" * min(left, 1 << 20)
        left -= 1 << 20
    yield end
    yield bytes(-size % tarfile.BLOCKSIZE)


def pax_record(key: str, value_size: int) -> tuple[int, bytes]:
    """(the record's length, its start) for `<length> <key>=<value>` and a newline."""
    body = len(f" {key}=") + value_size + 1
    digits = len(str(body))
    digits += len(str(body + digits)) > digits
    return body + digits, f"{body + digits} {key}=".encode()


def archive_of(path: Path, *entries: Iterator[bytes]) -> Path:
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as gz:
        for chunks in entries:
            for chunk in chunks:
                gz.write(chunk)
        gz.write(bytes(2 * tarfile.BLOCKSIZE))
    return path


def the_members(members: dict[str, bytes], **replaced: bytes) -> Iterator[bytes]:
    """Every valid member, some replaced (by member name without the folder)."""
    for name, data in members.items():
        yield from entry(name, replaced.get(name.removeprefix(f"{FOLDER}/"), data))


def pax_comment_first(members: dict) -> Iterator[Iterator[bytes]]:
    length, start = pax_record("comment", HUGE)
    yield repeated("././@PaxHeader", tarfile.XHDTYPE, length, start, b"\n")
    yield the_members(members)


def gnu_long_name_first(members: dict) -> Iterator[Iterator[bytes]]:
    yield repeated("././@LongLink", tarfile.GNUTYPE_LONGNAME, HUGE)
    yield the_members(members)


def many_empty_members(members: dict) -> Iterator[Iterator[bytes]]:
    yield iter([header("empty", 0) * 100_000])
    yield the_members(members)


def a_huge_member_that_is_no_batch(members: dict) -> Iterator[Iterator[bytes]]:
    yield repeated(f"{FOLDER}/readme.html", tarfile.REGTYPE, HUGE)
    yield the_members(members)


def encode_copies_of_one_string(members: dict) -> Iterator[Iterator[bytes]]:
    """data_batch_1, a valid batch, ends with `junk`: 300 calls `encode(<memo: a 6 MB str>)`,
    which would build 1.8 GB."""
    batch = members[f"{FOLDER}/data_batch_1"]
    text = b"a" * (6 << 20)
    junk = (
        b"U\x04junk"
        + b"X"
        + struct.pack("<I", len(text))
        + text
        + b"r\x00\x00\x10\x00"  # LONG_BINPUT 1048576: the string
        + b"c_codecs\nencode\nr\x01\x00\x10\x00"  # the global, as memo 1048577
        + b"]("
        + b"j\x01\x00\x10\x00j\x00\x00\x10\x00X\x06\x00\x00\x00latin1\x86R" * 300
        + b"es."
    )
    yield the_members(members, data_batch_1=batch[:-1] + junk)  # the batch's STOP replaced


def the_largest_string_a_batch_may_hold(members: dict) -> Iterator[Iterator[bytes]]:
    size = TRAIN_LIMIT - 100
    string = b"\x80\x02X" + struct.pack("<I", size) + b"a" * size + b"."
    yield the_members(members, data_batch_1=string)


def a_dict_key_nested(members: dict, depth: int = 80_000) -> Iterator[Iterator[bytes]]:
    """A tuple in a tuple ... as a dict key: hashing it recurses once per level."""
    nested = b"\x80\x02}(" + b")" + b"\x85" * depth + b"K\x01u."
    yield the_members(members, data_batch_2=nested)


def a_frame_of_a_terabyte(members: dict) -> Iterator[Iterator[bytes]]:
    frame = b"\x80\x04\x95" + struct.pack("<Q", 1 << 40) + b"}."
    yield the_members(members, test_batch=frame)


def a_bytearray_of_a_terabyte(members: dict) -> Iterator[Iterator[bytes]]:
    claim = b"\x80\x05\x96" + struct.pack("<Q", 1 << 40) + b"."
    yield the_members(members, data_batch_3=claim)


HOSTILE: dict[str, tuple[Callable, str]] = {
    "pax comment of 100 MB": (pax_comment_first, "extended .*headers of more than 1 MB"),
    "GNU long name of 100 MB": (gnu_long_name_first, "extended .*headers of more than 1 MB"),
    "100,000 empty members": (many_empty_members, f"more than {MAX_ENTRIES} entries"),
    "100 MB member that is no batch": (a_huge_member_that_is_no_batch, "readme.html: more than"),
    "encode copies of one string": (encode_copies_of_one_string, "builds more bytes than"),
    "the largest string a batch may hold": (the_largest_string_a_batch_may_hold, "found str"),
    "dict key nested 80,000 deep": (a_dict_key_nested, "unexpected dict key"),
    "frame of a terabyte": (a_frame_of_a_terabyte, "a frame of 1099511627776 bytes"),
    "bytearray of a terabyte": (a_bytearray_of_a_terabyte, "unexpected bytearray"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_archive_costs_less_than_twice_the_valid_one(tmp_path, valid, name):
    members, valid_peak = valid
    build, message = HOSTILE[name]
    read = read_in_a_process(archive_of(tmp_path / "hostile.tar.gz", *build(members)))
    assert read["error"] is not None, "accepted"
    assert "\n" not in read["error"]
    assert re.search(message, read["error"]), read["error"]
    assert read["peak"] < 2 * valid_peak, (read["peak"], valid_peak)
    assert read["s"] < 10


def test_a_dict_key_too_deep_to_hash_is_refused_not_a_crash(tmp_path, valid):
    """300,000 levels overflow the C stack when hashed (a segfault); the full data set's
    opcode budget (810,000) allows them, so the key is refused before it is hashed."""
    members, _ = valid
    archive = archive_of(tmp_path / "deep.tar.gz", *a_dict_key_nested(members, 300_000))
    read = read_in_a_process(archive, expect=(50000, 10000))
    assert re.search("data_batch_2: .*unexpected dict key a tuple of length 1", read["error"])


def test_long_names_in_pax_and_gnu_headers_are_read(tmp_path, valid):
    """Re-packed archives (GNU tar, bsdtar) carry such headers: the walk reads them."""
    members, _ = valid
    longer = {name: name.replace(f"{FOLDER}/", f"{FOLDER}/" + "./" * 60) for name in members}
    entries = [
        entry(longer[name], data, tarfile.PAX_FORMAT if i % 2 else tarfile.GNU_FORMAT)
        for i, (name, data) in enumerate(members.items())
    ]
    read = read_in_a_process(archive_of(tmp_path / "repacked.tar.gz", *entries))
    assert read["error"] is None
    # and the names were long enough to need the extended headers
    assert all(len(name) > 100 for name in longer.values())
