"""Unpickle a CIFAR-10 batch, which is untrusted input: build numpy integer arrays the way
numpy pickles them, and nothing else, in memory bounded by the pickle's own size."""

import io
import pickle
import pickletools

import numpy as np

from cifarbench.errors import UserError

# Rebuilds an array from its pickle; taken from an array rather than imported by name because
# numpy 2 moved it (numpy.core -> numpy._core) and warns when numpy.core is imported.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
# Plain numbers only: an object array would hold whatever the pickle put in it.
_NUMERIC_KINDS = "biuf"


class _Ndarray:
    """What `numpy.ndarray` unpickles to: an argument for `_reconstruct`, never a callable.
    Calling ndarray directly would build an array of any shape from uninitialized memory,
    or a tiny buffer seen through zero strides as a huge array."""

    def __call__(self, *args, **kwargs):
        raise pickle.UnpicklingError("refusing to call numpy.ndarray directly")


_NDARRAY = _Ndarray()


def _reconstruct(cls, shape, dtype):
    """numpy's `_reconstruct` as numpy itself pickles an array: an empty (0,) array, which the
    pickle's state then fills, its size checked by numpy against the bytes given. Any other
    shape would be allocated here, before any check."""
    if cls is not _NDARRAY or tuple(shape) != (0,) or dtype not in (b"b", "b"):
        raise pickle.UnpicklingError(f"unexpected _reconstruct({shape!r}, {dtype!r})")
    return _RECONSTRUCT(np.ndarray, (0,), b"b")


def _dtype(name, align=False, copy=True):
    if not isinstance(name, str | bytes) or len(name) > 8:
        raise pickle.UnpicklingError(f"unexpected dtype {name!r}")
    dtype = np.dtype(text(name), bool(align), bool(copy))
    if dtype.kind not in _NUMERIC_KINDS:
        raise pickle.UnpicklingError(f"unexpected dtype {dtype} (not a plain number type)")
    return dtype


def _latin1_encode(text, encoding):
    """`_codecs.encode` as a Python 3 protocol-2 pickle uses it to rebuild bytes; latin-1 only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"unexpected _codecs.encode of {type(text).__name__}")
    return text.encode("latin-1")


# (module, name) as the pickle says -> what it may build
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class _BatchUnpickler(pickle._Unpickler):
    """An unpickler that can build numpy arrays and nothing else.

    A CIFAR-10 batch is a dict of bytes, ints, lists and one uint8 array; an array is
    rebuilt from `_reconstruct`, `ndarray` and `dtype`. The official files (Python 2 cPickle)
    name `_reconstruct` under numpy.core.multiarray; files re-pickled by Python 3 at protocol 2
    name it under numpy._core with numpy 2, and rebuild bytes with `_codecs.encode`. Any other
    global could run code (os.system, builtins.open, ...), so it is refused.

    It is the pure-Python unpickler: the C one sizes its memo table by the largest index a
    PUT opcode names, so a five-byte pickle can ask for gigabytes; here the memo is a dict.
    """

    def __init__(self, file, member: str):
        super().__init__(file, encoding="bytes")  # Python 2 str objects become bytes
        self.member = member

    def find_class(self, module, name):
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise UserError(
                f"{self.member}: refusing to unpickle {module}.{name} "
                "(not part of a CIFAR-10 batch)"
            )
        return allowed


def unpickle(data: bytes, where: str, max_opcodes: int) -> dict:
    """Unpickle with the whitelist; return the dict with str keys (py2 files have bytes keys).

    Each opcode builds at most a small object, but a long run of them (a list of a hundred
    million ints) costs several times the pickle's size: the opcodes are counted first, in a
    pass that builds nothing, against what `max_opcodes` images' batch can need."""
    try:
        _count_opcodes(data, where, max_opcodes)
        obj = _BatchUnpickler(io.BytesIO(data), where).load()
    except UserError:
        raise
    except Exception as exc:  # a corrupt pickle can fail in many ways; all mean the same here
        raise UserError(f"{where}: not a valid pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise UserError(f"{where}: expected a dict, found {type(obj).__name__}")
    return {text(key): value for key, value in obj.items()}


def _count_opcodes(data: bytes, where: str, most: int) -> None:
    for count, _ in enumerate(pickletools.genops(data)):
        if count >= most:
            raise UserError(f"{where}: more than {most} pickle opcodes, more than its images need")


def text(value):
    """Python 2 str arrive as bytes: decode them (the names are ASCII)."""
    return value.decode("latin-1") if isinstance(value, bytes) else value
