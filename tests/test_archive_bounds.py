"""Hostile archives whose md5 matches (an attacker controls both): refused with one line, in
memory bounded by the expected image counts, not by numbers the archive writes."""

import pickletools
import struct
import tracemalloc

import numpy as np
import pytest

from cifar_archive import write_cifar_archive
from cifarbench.archive import read_archive
from cifarbench.cache import load_cache, save_cache
from cifarbench.errors import UserError

EXPECT = {"expect_train": 100, "expect_test": 20}  # the archive write_cifar_archive makes
BUDGET = 50 << 20  # bytes: far above what reading this small archive takes, far below a bomb

PROTO = b"\x80\x02"
RECONSTRUCT = b"cnumpy.core.multiarray\n_reconstruct\n"
NDARRAY = b"cnumpy\nndarray\n"
DTYPE_U1 = b"cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R"  # dtype('u1', 0, 1)


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)  # BININT


def _bytes_dict(data_pickle: bytes) -> bytes:
    """A batch {b'data': <data_pickle>, b'labels': []} as a protocol-2 pickle."""
    return PROTO + b"(U\x04data" + data_pickle + b"U\x06labels]d."


HOSTILE = {
    # _reconstruct asked for a 1.5 GB array before any state could be checked.
    "huge _reconstruct": _bytes_dict(
        RECONSTRUCT + _tuple(NDARRAY, _tuple(_int(500_000), _int(3072)), b"U\x01b") + b"R"
    ),
    # numpy.ndarray called directly: uninitialized memory of any shape.
    "ndarray called directly": _bytes_dict(
        NDARRAY + _tuple(_tuple(_int(500_000), _int(3072)), b"U\x02u1") + b"R"
    ),
    # A five-byte memo bomb: the C unpickler sizes its memo table by the largest index.
    "memo bomb": PROTO + b"}r" + struct.pack("<I", 100_000_000) + b".",
    # An object array would hold whatever else the pickle built.
    "object dtype": _bytes_dict(b"cnumpy\ndtype\nU\x02O8K\x00K\x01\x87R"),
}


def _peak_while(action) -> int:
    tracemalloc.start()
    try:
        action()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_pickle_is_refused_in_bounded_memory(tmp_path, name):
    archive, _ = write_cifar_archive(tmp_path, corrupt={"payload": {"data_batch_1": HOSTILE[name]}})
    assert list(pickletools.genops(HOSTILE[name]))  # well-formed pickles, hostile as data

    def read():
        with pytest.raises(UserError, match=r"data_batch_1: ") as error:
            read_archive(archive, **EXPECT)
        assert "\n" not in str(error.value)

    assert _peak_while(read) < BUDGET


def test_a_member_larger_than_its_images_could_be_is_not_read(tmp_path):
    """A gzip bomb: 64 MB of zeros as data_batch_1 compress to 64 KB."""
    archive, _ = write_cifar_archive(
        tmp_path, corrupt={"payload": {"data_batch_1": bytes(64 << 20)}}
    )
    with pytest.raises(
        UserError, match=r"data_batch_1: \d+ bytes, more than its images could take"
    ):
        read_archive(archive, **EXPECT)


def test_more_images_than_expected_are_refused_before_concatenation(tmp_path):
    archive, _ = write_cifar_archive(tmp_path, train_per_class=10)  # 100 training images
    with pytest.raises(UserError, match="more than the 50 training images"):
        read_archive(archive, expect_train=50, expect_test=20)


def test_label_names_must_be_printable(tmp_path):
    names = [b"airplane\x1b[2J", *[f"c{i}".encode() for i in range(9)]]
    edit = {"batches.meta": lambda meta: {**meta, b"label_names": names}}
    archive, _ = write_cifar_archive(tmp_path, corrupt={"edit": edit})
    with pytest.raises(
        UserError, match=r"label_names\[0\] should be a short printable name, found 'airplane"
    ):
        read_archive(archive, **EXPECT)


def test_a_cache_with_other_counts_than_the_config_is_refused(tmp_path):
    archive, _ = write_cifar_archive(tmp_path)
    cache = tmp_path / "cifar10.npz"
    save_cache(read_archive(archive, **EXPECT), cache)
    assert len(load_cache(cache, expect=(100, 20)).train_labels) == 100
    with pytest.raises(
        UserError, match="holds 100 training and 20 test images, the config says 1000"
    ):
        load_cache(cache, expect=(1000, 20))


def test_the_official_arrays_still_load(tmp_path):
    """The bounds refuse nothing numpy itself writes: uint8 data, int64 labels as an array."""
    rows = np.arange(10 * 3072, dtype=np.uint8).reshape(10, 3072)
    batch = {b"data": rows, b"labels": np.arange(10, dtype=np.int64) % 10}
    edit = {"data_batch_1": lambda b: {**b, **batch}}
    archive, _ = write_cifar_archive(tmp_path, corrupt={"edit": edit})
    data = read_archive(archive, expect_train=90, expect_test=20)  # batch 1: 10 images, not 20
    assert data.train_images[0].reshape(-1).tolist() == rows[0].tolist()


def test_a_batch_of_many_tiny_opcodes_is_refused_as_it_is_built(tmp_path):
    """Half a million labels fit in a 1 MB member, but would cost several times that as a
    list: the opcodes are counted as they run, against what the batch's images need."""
    edit = {"data_batch_1": lambda batch: {**batch, b"labels": [1] * 500_000}}
    archive, _ = write_cifar_archive(tmp_path, corrupt={"edit": edit})
    with pytest.raises(UserError, match=r"data_batch_1: more than \d+ pickle opcodes"):
        read_archive(archive, **EXPECT)


def test_a_label_past_int64_is_refused_in_one_line(tmp_path):
    edit = {"data_batch_2": lambda batch: {**batch, b"labels": [2**70] * len(batch[b"labels"])}}
    archive, _ = write_cifar_archive(tmp_path, corrupt={"edit": edit})
    with pytest.raises(UserError, match=r"data_batch_2: a label outside 0\.\.9"):
        read_archive(archive, **EXPECT)


def test_expecting_more_images_than_the_archive_holds_reserves_nothing(tmp_path):
    """Each member is read as it is unpickled, not into a buffer of the size its images could
    take: expecting 5,000,000 images says what is wrong, not "ran out of memory"."""
    archive, _ = write_cifar_archive(tmp_path)

    def read():
        with pytest.raises(UserError, match="expected 5000000 training images, found 100"):
            read_archive(archive, expect_train=5_000_000, expect_test=20)

    assert _peak_while(read) < BUDGET
