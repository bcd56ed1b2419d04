"""read_archive(): the official layout read safely and checked; the .npz cache round trip."""

import os
import pickle
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cifar_archive import CLASSES, batch_dicts, hostile_pickle, write_cifar_archive
from cifarbench.archive import read_archive
from cifarbench.cache import Cifar, load_cache, save_cache
from cifarbench.download import fetch
from cifarbench.errors import UserError

REPO = Path(__file__).resolve().parents[1]
MAKE_REAL_ARCHIVE = REPO.parent / "shared" / "data" / "make_cifar10_archive.py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


# batches.meta whose label_names is a list in a list ... 4,000 deep (printing it recurses).
NAMES_NESTED_DEEP = b"\x80\x02}U\x0blabel_names" + b"]" * 4000 + b"a" * 3999 + b"s."


def write_broken(tmp_path: Path, **corrupt) -> Path:
    """A 100-train / 20-test archive broken as `corrupt` says (see write_cifar_archive)."""
    return write_cifar_archive(tmp_path, corrupt=corrupt)[0]


def read_small(path: Path) -> Cifar:
    return read_archive(path, expect_train=100, expect_test=20)


def edit_field(key: bytes, value):
    return lambda batch: {**batch, key: value(batch[key]) if callable(value) else value}


def test_reads_tiny_archive(tiny_archive, tmp_path, monkeypatch):
    path, _ = tiny_archive
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    cifar = read_archive(path, expect_train=200, expect_test=50)

    assert cifar.train_images.shape == (200, 3, 32, 32)
    assert cifar.test_images.shape == (50, 3, 32, 32)
    for images in (cifar.train_images, cifar.test_images):
        assert images.dtype == np.uint8
        assert images.flags.c_contiguous
        assert images.flags.writeable  # torch.from_numpy warns on read-only arrays
    for labels in (cifar.train_labels, cifar.test_labels):
        assert labels.dtype == np.int64
        assert labels.min() >= 0
        assert labels.max() <= 9
    assert np.bincount(cifar.train_labels).tolist() == [20] * 10
    assert np.bincount(cifar.test_labels).tolist() == [5] * 10
    assert cifar.classes == CLASSES
    assert sorted(tmp_path.rglob("*")) == before  # nothing was extracted


def test_batches_are_concatenated_in_order(tiny_archive):
    cifar = read_archive(tiny_archive[0], expect_train=200, expect_test=50)
    written = batch_dicts(train_per_class=20, test_per_class=5, seed=0)
    rows = np.concatenate([written[name][b"data"] for name in TRAIN_BATCHES])
    labels = [label for name in TRAIN_BATCHES for label in written[name][b"labels"]]
    assert np.array_equal(cifar.train_images, rows.reshape(-1, 3, 32, 32))
    assert cifar.train_labels.tolist() == labels
    assert np.array_equal(cifar.test_images.reshape(50, -1), written["test_batch"][b"data"])


def test_tiny_archive_is_learnable_and_spread_over_batches():
    written = batch_dicts(train_per_class=20, test_per_class=5, seed=0)
    for name in TRAIN_BATCHES:
        assert len(set(written[name][b"labels"])) >= 5  # each batch mixes the classes
    # Nearest class mean: if this separates the classes, a tiny CNN learns them in an epoch.
    train = np.concatenate([written[name][b"data"] for name in TRAIN_BATCHES]).astype(float)
    train_labels = np.concatenate([written[name][b"labels"] for name in TRAIN_BATCHES])
    means = np.stack([train[train_labels == c].mean(axis=0) for c in range(10)])
    test = written["test_batch"][b"data"].astype(float)
    distances = ((test[:, None, :] - means[None]) ** 2).sum(axis=2)
    accuracy = (distances.argmin(axis=1) == written["test_batch"][b"labels"]).mean()
    assert accuracy >= 0.9


def test_reads_python3_protocol2_pickles(tmp_path):
    """Batches re-pickled by Python 3 name numpy._core and rebuild bytes with _codecs.encode."""
    batch = batch_dicts(10, 2, seed=0)["data_batch_1"]
    payload = pickle.dumps(batch, protocol=2)
    assert b"_codecs" in payload
    cifar = read_small(write_broken(tmp_path, payload={"data_batch_1": payload}))
    assert np.array_equal(cifar.train_images[:20].reshape(20, -1), batch[b"data"])


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        ({"drop": ["data_batch_3"]}, "missing cifar-10-batches-py/data_batch_3"),
        ({"drop": ["test_batch"]}, "missing cifar-10-batches-py/test_batch"),
        ({"drop": ["batches.meta"]}, "missing cifar-10-batches-py/batches.meta"),
        ({"edit": {"data_batch_2": lambda batch: list(batch)}}, "expected a dict, found list"),
        (
            {"edit": {"data_batch_2": lambda b: {b"data": b[b"data"]}}},
            "data_batch_2: missing key 'labels'",
        ),
        (
            {"edit": {"data_batch_1": lambda b: {b"labels": b[b"labels"]}}},
            "data_batch_1: missing key 'data'",
        ),
        (
            {"edit": {"data_batch_4": edit_field(b"data", lambda d: d.astype(np.float32))}},
            "data_batch_4: data should be a uint8 array, found float32",
        ),
        (
            {"edit": {"data_batch_4": edit_field(b"data", lambda d: d[:2].tolist())}},
            "data_batch_4: data should be a uint8 array, found list",
        ),
        (
            {"edit": {"test_batch": edit_field(b"data", lambda d: d.reshape(-1, 3, 1024))}},
            r"test_batch: data should have shape \(n, 3072\), found \(20, 3, 1024\)",
        ),
        (
            {"edit": {"data_batch_5": edit_field(b"data", lambda d: d[:, :1024].copy())}},
            r"data_batch_5: data should have shape \(n, 3072\), found \(20, 1024\)",
        ),
        (
            {"edit": {"data_batch_5": edit_field(b"labels", lambda labels: labels[:-1])}},
            "data_batch_5: 19 labels for 20 images",
        ),
        (
            {"edit": {"data_batch_3": edit_field(b"labels", lambda labels: [*labels[:-1], 10])}},
            "data_batch_3: label 10 outside 0..9",
        ),
        (
            {"edit": {"test_batch": edit_field(b"labels", lambda labels: [-1, *labels[1:]])}},
            "test_batch: label -1 outside 0..9",
        ),
        (
            {
                "edit": {
                    "data_batch_1": edit_field(b"labels", lambda labels: [str(v) for v in labels])
                }
            },
            "data_batch_1: labels should be a list of integers",
        ),
        (
            {"edit": {"batches.meta": edit_field(b"label_names", lambda names: names[:9])}},
            "batches.meta: label_names should be 10 names",
        ),
        (
            {"edit": {"batches.meta": lambda meta: {b"num_vis": 3072}}},
            "batches.meta: missing key 'label_names'",
        ),
        (
            {"payload": {"data_batch_2": b"this is not a pickle"}},
            "data_batch_2: not a valid pickle",
        ),
        (
            {"payload": {"test_batch": pickle.dumps(batch_dicts(10, 2, 0)["test_batch"])[:5000]}},
            "test_batch: not a valid pickle",
        ),
        (
            {"edit": {"data_batch_2": edit_field(b"labels", lambda labels: np.array(3))}},
            r"labels should be a list of integers, found an array of int64, shape \(\)",
        ),
        (
            {"edit": {"batches.meta": edit_field(b"label_names", lambda n: [2**20000, *n[1:]])}},
            r"label_names\[0\] should be a name, found an integer of 20001 bits",
        ),
        (
            {"payload": {"batches.meta": NAMES_NESTED_DEEP}},
            "batches.meta: label_names should be 10 names, found a list of length 1",
        ),
        ({"links": {"data_batch_1": tarfile.SYMTYPE}}, "data_batch_1: is a link"),
        ({"links": {"batches.meta": tarfile.LNKTYPE}}, "batches.meta: is a link"),
        ({"extra": {"cifar-10-batches-py/data_batch_2": b"a second copy"}}, "appears twice"),
        ({"extra": {"./cifar-10-batches-py/test_batch": b"a second copy"}}, "appears twice"),
    ],
)
def test_broken_archive_is_refused(tmp_path, corrupt, message):
    path = write_broken(tmp_path, **corrupt)
    with pytest.raises(UserError, match=message) as error:
        read_small(path)
    assert str(path) in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "climbing_name",
    [
        "../cifar-10-batches-py/data_batch_1",
        "cifar-10-batches-py/../cifar-10-batches-py/data_batch_1",
        "/cifar-10-batches-py/data_batch_1",
    ],
)
def test_members_outside_the_folder_are_never_read(tmp_path, climbing_name):
    good = batch_dicts(10, 2, seed=0)["data_batch_1"]
    corrupt = {"drop": ["data_batch_1"], "extra": {climbing_name: pickle.dumps(good, protocol=2)}}
    with pytest.raises(UserError, match="missing cifar-10-batches-py/data_batch_1"):
        read_small(write_broken(tmp_path, **corrupt))


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9])
def test_truncated_archive_is_refused(tmp_path, keep):
    with pytest.raises(UserError, match=r"truncated or corrupt \.tar\.gz"):
        read_small(write_broken(tmp_path, truncate=keep))


@pytest.mark.parametrize("content", [b"<html>404 Not Found</html>", b"\x1f\x8b\x08garbage"])
def test_not_a_gzip_is_refused(tmp_path, content):
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(content)
    with pytest.raises(UserError, match=r"truncated or corrupt \.tar\.gz"):
        read_small(path)


def test_missing_archive_is_refused(tmp_path):
    with pytest.raises(UserError, match="No such file"):
        read_small(tmp_path / "nothing.tar.gz")


def test_counts_must_match(tiny_archive):
    with pytest.raises(UserError, match="expected 50000 training images, found 200"):
        read_archive(tiny_archive[0])
    with pytest.raises(UserError, match="test_batch: expected 10000 test images, found 50"):
        read_archive(tiny_archive[0], expect_train=200)


@pytest.mark.parametrize("expect_test", [10000, 0])
def test_empty_test_set_is_an_error(tmp_path, expect_test):
    path, _ = write_cifar_archive(tmp_path, train_per_class=10, test_per_class=0)
    with pytest.raises(UserError, match="test_batch: test set is empty"):
        read_archive(path, expect_train=100, expect_test=expect_test)


def test_small_batches_are_all_required(tmp_path):
    """With one image per class each batch holds two images; all five are still read."""
    path, _ = write_cifar_archive(tmp_path, train_per_class=1, test_per_class=1)
    cifar = read_archive(path, expect_train=10, expect_test=10)
    assert sorted(cifar.train_labels.tolist()) == list(range(10))


@pytest.mark.parametrize("how", ["open", "system"])
@pytest.mark.parametrize("member", ["data_batch_1", "test_batch", "batches.meta"])
def test_hostile_pickle_never_runs(tmp_path, how, member):
    marker = tmp_path / "pwned"
    path = write_broken(tmp_path / "archive", payload={member: hostile_pickle(marker, how)})
    with pytest.raises(UserError, match=f"{member}: refusing to unpickle .*(open|system)"):
        read_small(path)
    assert not marker.exists()
    # The same payload is live: a plain pickle.loads would have run it.
    proof = tmp_path / "proof"
    created = pickle.loads(hostile_pickle(proof, how))[b"data"]
    assert proof.exists()
    if how == "open":
        created.close()


def test_hostile_pickle_refused_even_when_the_md5_matches(tmp_path):
    """The md5 only says the file is the one configured, not that it is harmless."""
    marker = tmp_path / "pwned"
    payload = {"data_batch_3": hostile_pickle(marker)}
    served, md5 = write_cifar_archive(tmp_path / "server", corrupt={"payload": payload})
    downloaded = tmp_path / "resources" / "cifar-10-python.tar.gz"
    fetch(served.as_uri(), downloaded, md5)
    with pytest.raises(UserError, match="refusing to unpickle"):
        read_small(downloaded)
    assert not marker.exists()


def test_hostile_member_outside_the_folder_is_never_read(tmp_path):
    marker = tmp_path / "pwned"
    hostile = hostile_pickle(marker)
    extra = {"../evil": hostile, "cifar-10-batches-py/data_batch_6": hostile, "/evil": hostile}
    cifar = read_small(write_broken(tmp_path / "archive", extra=extra))
    assert len(cifar.train_labels) == 100
    assert not marker.exists()


def test_codecs_encode_is_latin1_only(tmp_path):
    rot13 = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R."
    assert pickle.loads(rot13) == "nop"  # what the global would do if allowed freely
    with pytest.raises(UserError, match="data_batch_1: not a valid pickle"):
        read_small(write_broken(tmp_path, payload={"data_batch_1": rot13}))


def test_real_format_archive(tmp_path):
    """The archive script beside the project rebuilds the official files from real images."""
    if not MAKE_REAL_ARCHIVE.exists():
        pytest.skip(f"no {MAKE_REAL_ARCHIVE.name} in the shared data folder next to the repo")
    pytest.importorskip("PIL", reason="make_cifar10_archive.py needs Pillow")
    subprocess.run(
        [
            sys.executable,
            MAKE_REAL_ARCHIVE,
            tmp_path,
            "--train-per-class",
            "10",
            "--test-per-class",
            "2",
        ],
        check=True,
        capture_output=True,
    )
    cifar = read_archive(tmp_path / "cifar-10-python.tar.gz", expect_train=100, expect_test=20)
    assert np.bincount(cifar.train_labels).tolist() == [10] * 10
    assert np.bincount(cifar.test_labels).tolist() == [2] * 10
    assert cifar.classes == CLASSES
    assert cifar.train_images.std() > 20  # real photographs, not a constant
    assert cifar.train_images.dtype == np.uint8


def test_cache_round_trip(tiny_archive, tmp_path):
    cifar = read_archive(tiny_archive[0], expect_train=200, expect_test=50)
    cache = tmp_path / "cache" / "cifar10.npz"
    save_cache(cifar, cache)
    assert os.listdir(cache.parent) == [cache.name]  # no temporary file left, no ".npz.npz"
    with zipfile.ZipFile(cache) as npz:
        assert {info.compress_type for info in npz.infolist()} == {zipfile.ZIP_STORED}
    loaded = load_cache(cache)
    for field in ("train_images", "train_labels", "test_images", "test_labels"):
        original, restored = getattr(cifar, field), getattr(loaded, field)
        assert restored.dtype == original.dtype
        assert restored.flags.c_contiguous
        assert np.array_equal(restored, original)
    assert loaded.classes == CLASSES
    assert all(type(name) is str for name in loaded.classes)


def test_cache_loads_fast(tmp_path):
    """A 10,000-image cache (a fifth of CIFAR-10) loads in well under a second (~0.05 s)."""
    rng = np.random.default_rng(0)
    n = 10_000
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.int64)
    save_cache(Cifar(images, labels, images[:100], labels[:100], CLASSES), tmp_path / "c.npz")
    started = time.perf_counter()
    loaded = load_cache(tmp_path / "c.npz")
    assert time.perf_counter() - started < 1.0  # generous: other jobs may share the CPU
    assert np.array_equal(loaded.train_images, images)


def cache_with(tmp_path: Path, **changes) -> Path:
    arrays = {
        "train_images": np.zeros((4, 3, 32, 32), np.uint8),
        "train_labels": np.zeros(4, np.int64),
        "test_images": np.zeros((2, 3, 32, 32), np.uint8),
        "test_labels": np.zeros(2, np.int64),
        "classes": np.array(CLASSES),
    }
    arrays.update(changes)
    path = tmp_path / "cache.npz"
    np.savez(path, **{key: value for key, value in arrays.items() if value is not None})
    return path


def test_cache_helper_makes_a_valid_cache(tmp_path):
    assert load_cache(cache_with(tmp_path)).classes == CLASSES


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"classes": None}, "missing classes"),
        ({"train_images": np.zeros((4, 3, 32, 32), np.float32)}, "train images should be uint8"),
        ({"test_images": np.zeros((2, 32, 32, 3), np.uint8)}, "test images should be uint8"),
        ({"train_labels": np.zeros(4, np.int32)}, "train labels should be int64"),
        ({"test_labels": np.zeros(3, np.int64)}, r"test labels should be int64 \(2,\)"),
        ({"test_labels": np.array([0, 10])}, "test labels outside 0..9"),
        ({"classes": np.array(CLASSES[:9])}, "classes should be 10 names"),
        ({"classes": np.arange(10)}, "classes should be 10 names"),
        ({"classes": np.array(CLASSES, dtype=object)}, "not a cifarbench cache"),
    ],
)
def test_bad_cache_is_refused(tmp_path, changes, message):
    with pytest.raises(UserError, match=message):
        load_cache(cache_with(tmp_path, **changes))


@pytest.mark.parametrize("content", [b"", b"not a zip", b"PK\x03\x04truncated"])
def test_non_cache_file_is_refused(tmp_path, content):
    path = tmp_path / "cache.npz"
    path.write_bytes(content)
    with pytest.raises(UserError, match="not a cifarbench cache"):
        load_cache(path)


def test_single_npy_is_not_a_cache(tmp_path):
    path = tmp_path / "cache.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(UserError, match="not a cifarbench cache"):
        load_cache(path)


def test_prepare_refuses_to_write_a_cache_that_would_not_fit(tiny_archive, tmp_path, monkeypatch):
    from cifarbench import atomic

    monkeypatch.setattr(atomic, "free_bytes", lambda folder: 10 << 20)
    data = read_archive(tiny_archive[0], expect_train=200, expect_test=50)
    cache = tmp_path / "resources" / "cache.npz"
    with pytest.raises(
        UserError, match=r"free space to write .*cache.npz: need 6\d MB, 10 MB free"
    ):
        save_cache(data, cache)
    assert list(cache.parent.iterdir()) == []
