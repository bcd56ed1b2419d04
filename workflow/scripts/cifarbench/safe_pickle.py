"""Unpickle a CIFAR-10 batch, which is untrusted input: build numpy integer arrays the way
numpy pickles them, and nothing else, in memory bounded by the pickle's own size."""

import pickle
import struct
import zlib
from typing import BinaryIO, ClassVar

import numpy as np

from cifarbench.errors import UserError, brief

# Rebuilds an array from its pickle; taken from an array rather than imported by name because
# numpy 2 moved it (numpy.core -> numpy._core) and warns when numpy.core is imported.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
# Plain numbers only: an object array would hold whatever the pickle put in it.
_NUMERIC_KINDS = "biuf"
# What a dict key may be: hashing a tuple nested a million deep overflows the C stack.
_KEY_TYPES = (str, bytes, int, float, bool, type(None))
# Python writes frames of about 64 KB (protocol 4 and later); each is held whole while read.
MAX_FRAME_BYTES = 1 << 20


class _Ndarray:
    """What `numpy.ndarray` unpickles to: an argument for `_reconstruct`, never a callable.
    Calling ndarray directly would build an array of any shape from uninitialized memory,
    or a tiny buffer seen through zero strides as a huge array."""

    __slots__ = ()  # no attributes for a pickle to set

    def __call__(self, *args, **kwargs):
        raise pickle.UnpicklingError("refusing to call numpy.ndarray directly")


_NDARRAY = _Ndarray()


def _reconstruct(cls, shape, dtype):
    """numpy's `_reconstruct` as numpy itself pickles an array: an empty (0,) array, which the
    pickle's state then fills, its size checked by numpy against the bytes given. Any other
    shape would be allocated here, before any check."""
    if cls is not _NDARRAY or shape != (0,) or dtype not in (b"b", "b"):
        raise pickle.UnpicklingError(f"unexpected _reconstruct({brief(shape)}, {brief(dtype)})")
    return _RECONSTRUCT(np.ndarray, (0,), b"b")


def _dtype(name, align=False, copy=True):
    if not isinstance(name, str | bytes) or len(name) > 8:
        raise pickle.UnpicklingError(f"unexpected dtype {brief(name)}")
    return _numeric(np.dtype(text(name), bool(align), bool(copy)))


def _numeric(dtype: np.dtype) -> np.dtype:
    if dtype.kind not in _NUMERIC_KINDS:
        raise pickle.UnpicklingError(f"unexpected dtype {dtype} (not a plain number type)")
    return dtype


# (module, name) as the pickle says -> what it may build; `_codecs.encode` is the unpickler's
# own, since it counts what it builds.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
}
_ENCODE = ("_codecs", "encode")


def _counted(load):
    def counted(unpickler):
        unpickler._opcode()
        load(unpickler)

    return counted


class _BatchUnpickler(pickle._Unpickler):
    """An unpickler that can build numpy arrays and nothing else.

    A CIFAR-10 batch is a dict of bytes, ints, lists and one uint8 array; an array is
    rebuilt from `_reconstruct`, `ndarray` and `dtype`, then filled by BUILD. The official
    files (Python 2 cPickle) name `_reconstruct` under numpy.core.multiarray; files re-pickled
    by Python 3 at protocol 2 name it under numpy._core with numpy 2, and rebuild bytes with
    `_codecs.encode`. Any other global could run code (os.system, builtins.open, ...), so it
    is refused; so is a BUILD of anything but an array or a dtype, and a set.

    Memory: the pickle is read from the archive as it is unpickled, never held whole, and
    no read goes past its end, so an object read from it is no larger than it is. A long run
    of small objects (a list of a hundred million ints) costs several times its size, so the
    opcodes are counted against what the batch's images can need. `encode` and BUILD copy:
    called on a memoized string again and again, they would copy it each time, so what they
    build is counted against the pickle's size (a real batch encodes each of its strings
    once, and numpy fills a large array from its bytes without a copy). Opcodes that would
    allocate a size the pickle states (a frame, a bytearray) are capped or refused.

    It is the pure-Python unpickler: the C one sizes its memo table by the largest index a
    PUT opcode names, so a five-byte pickle can ask for gigabytes; here the memo is a dict.
    """

    dispatch = pickle._Unpickler.dispatch.copy()

    def __init__(self, file: "Member", where: str, max_opcodes: int):
        super().__init__(file, encoding="bytes")  # Python 2 str objects become bytes
        self.member = where
        self.max_opcodes = self.opcodes_left = max_opcodes
        self.unbuilt = file.left  # bytes that encode and BUILD may still copy

    def find_class(self, module, name):
        if (module, name) == _ENCODE:
            return self._latin1_encode
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise UserError(
                f"{self.member}: refusing to unpickle {module}.{name} "
                "(not part of a CIFAR-10 batch)"
            )
        return allowed

    def _opcode(self) -> None:
        self.opcodes_left -= 1
        if self.opcodes_left < 0:
            raise UserError(
                f"{self.member}: more than {self.max_opcodes} pickle opcodes, "
                "more than its images need"
            )

    def _built(self, size: int) -> None:
        self.unbuilt -= size
        if self.unbuilt < 0:
            raise UserError(
                f"{self.member}: builds more bytes than the pickle holds "
                "(copies of one string: a hostile pickle?)"
            )

    def _latin1_encode(self, text, encoding):
        """`_codecs.encode` as a Python 3 protocol-2 pickle uses it to rebuild bytes."""
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise pickle.UnpicklingError(f"unexpected _codecs.encode of {brief(text)}")
        self._built(len(text))
        return text.encode("latin-1")

    def load_build(self):
        target = self.stack[-2]  # below its state
        if not isinstance(target, np.ndarray | np.dtype):
            raise pickle.UnpicklingError(f"unexpected BUILD of {brief(target)}")
        super().load_build()
        if isinstance(target, np.ndarray):
            _numeric(target.dtype)
            self._built(target.nbytes if target.flags.owndata else 0)
        else:
            _numeric(target)

    dispatch[pickle.BUILD[0]] = load_build

    def load_setitem(self):
        _check_key(self.stack[-2])
        super().load_setitem()

    dispatch[pickle.SETITEM[0]] = load_setitem

    def load_setitems(self):
        for key in self.stack[::2]:  # the items since the mark: key, value, key, value...
            _check_key(key)
        super().load_setitems()

    dispatch[pickle.SETITEMS[0]] = load_setitems

    def load_dict(self):
        for key in self.stack[::2]:
            _check_key(key)
        super().load_dict()

    dispatch[pickle.DICT[0]] = load_dict

    def load_set(self):
        raise pickle.UnpicklingError("unexpected set (not part of a CIFAR-10 batch)")

    dispatch[pickle.EMPTY_SET[0]] = load_set
    dispatch[pickle.ADDITEMS[0]] = load_set
    dispatch[pickle.FROZENSET[0]] = load_set

    def load_bytearray8(self):
        raise pickle.UnpicklingError("unexpected bytearray (not part of a CIFAR-10 batch)")

    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8

    def load_frame(self):
        (size,) = struct.unpack("<Q", self.read(8))
        if size > MAX_FRAME_BYTES:
            raise pickle.UnpicklingError(f"a frame of {size} bytes, larger than Python writes")
        self._unframer.load_frame(size)

    dispatch[pickle.FRAME[0]] = load_frame

    # Every opcode counts, then does its work.
    dispatch: ClassVar[dict] = {code: _counted(load) for code, load in dispatch.items()}


def _check_key(key) -> None:
    if not isinstance(key, _KEY_TYPES):
        raise pickle.UnpicklingError(f"unexpected dict key {brief(key)}")


def unpickle(member: "Member", where: str, max_opcodes: int) -> dict:
    """Unpickle a member with the whitelist, in at most `max_opcodes` opcodes (what its images
    can need); return the dict with str keys (py2 files have bytes keys)."""
    try:
        obj = _BatchUnpickler(member, where, max_opcodes).load()
    except (UserError, StreamError):
        raise
    except Exception as exc:  # a corrupt pickle can fail in many ways; all mean the same here
        raise UserError(f"{where}: not a valid pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise UserError(f"{where}: expected a dict, found {type(obj).__name__}")
    return {text(key): value for key, value in obj.items()}


class StreamError(Exception):
    """The stream under a pickle ended early or failed: a truncated or corrupt archive."""


class Member:
    """The next `size` bytes of a stream (a member of an archive), as a file to unpickle: no
    read goes further."""

    def __init__(self, stream: BinaryIO, size: int):
        self.stream, self.left = stream, size

    def read(self, size: int = -1) -> bytes:
        wanted = self.left if size < 0 else min(size, self.left)
        return self._took(self._from_stream(self.stream.read, wanted), wanted)

    def readline(self) -> bytes:
        line = self._from_stream(self.stream.readline, self.left)
        return self._took(line, 1 if self.left else 0)

    def _from_stream(self, read, size: int) -> bytes:
        try:
            return read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise StreamError(str(exc)) from exc

    def _took(self, data: bytes, at_least: int) -> bytes:
        if len(data) < at_least:
            raise StreamError(f"unexpected end of data ({self.left - len(data)} bytes missing)")
        self.left -= len(data)
        return data


def text(value):
    """Python 2 str arrive as bytes: decode them (the names are ASCII)."""
    return value.decode("latin-1") if isinstance(value, bytes) else value
