"""Read the official reward protocol's lz4-compressed pickles without letting a message run code.

The official SOLE-R1 transport (agentlace `ReqRepServer`: `lz4.frame.compress(pickle.dumps(obj))`) is pickle,
and a plain `pickle.loads` of network bytes executes whatever the sender wants. Our reader accepts only what
the protocol needs -- dicts, lists, tuples, sets, str, bytes, numbers, bool, None, numpy arrays/scalars of
plain dtypes, and numpy object arrays whose every element is bytes (the official client's compressed images) --
and bounds memory by what the message carries: the decompressed size is capped before decompressing, arrays are
only built the way numpy pickles them (their bytes come from the message), no array may hold more bytes than the
message or have zero strides, and a dtype must be pickled exactly as numpy pickles that type (numpy takes a
dtype's flags from the pickle: an object dtype whose flags say it holds no objects makes numpy read message
bytes as object pointers). A hostile or broken client gets an error, nothing more.
"""
from __future__ import annotations

import _compat_pickle
import codecs
import io
import pickle
import pickletools
from typing import Any

import lz4.frame
import numpy as np

DEFAULT_MAX_BYTES = 1 << 30  # decompressed message limit: 1 GiB (an episode of 25 frames 768x768x3 x2 is 88 MB)
_CHUNK = 16 << 20  # decompression step when the frame header gives no size


class UnsafeMessage(ValueError):
    """A message that is not a plain-data pickle (or is too large)."""


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` as protocol-2 pickles use it for bytes, restricted to latin-1 (no other codecs)."""
    if encoding.replace("-", "").lower() != "latin1" or not isinstance(text, str):
        raise UnsafeMessage(f"pickle asked for codec {encoding!r}; only latin1 byte strings are accepted")
    return codecs.encode(text, "latin1")


def _numpy_global(name: str):
    """numpy's pickle helpers under their numpy-1 location (numpy 2 pickles name numpy._core instead)."""
    from numpy.core import multiarray, numeric  # noqa: deprecation warning only under numpy 2

    return {"_reconstruct": multiarray._reconstruct, "scalar": multiarray.scalar,
            "_frombuffer": numeric._frombuffer}[name]


class _ArrayType:
    """What `numpy.ndarray` unpickles to: a name `_reconstruct` accepts, not a constructor a pickle can call."""

    __slots__ = ()  # nothing for a pickle's BUILD to set

    def __call__(self, *args, **kwargs):
        # ndarray(shape, dtype, buffer, offset, strides) can view 8 bytes as gigabytes (zero strides).
        raise UnsafeMessage("refused to call numpy.ndarray: send arrays as numpy pickles them")


_ARRAY_TYPE = _ArrayType()


def _reconstruct(subtype, shape, dtype):
    """numpy's `_reconstruct` as numpy's pickles call it: an empty array that the pickled state then fills."""
    if subtype is not _ARRAY_TYPE or shape != (0,):
        raise UnsafeMessage("refused numpy _reconstruct arguments: only numpy's own array pickles are accepted")
    return _numpy_global("_reconstruct")(np.ndarray, shape, dtype)


# (module, name) a pickle may reference -> the object it gets. Everything else is refused.
_ALLOWED = {
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("_codecs", "encode"): _latin1_encode,
    ("numpy", "ndarray"): _ARRAY_TYPE,
    ("numpy", "dtype"): np.dtype,
}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_module, "_reconstruct")] = _reconstruct
    _ALLOWED[(_module, "scalar")] = None  # resolved lazily by _numpy_global
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_module, "_frombuffer")] = None


def _same(value: Any, expected: Any) -> bool:
    """Equal and of the same type, for the plain values of a dtype's pickled state (never `==` on an array)."""
    if type(value) is not type(expected):
        return False
    if isinstance(expected, tuple):
        return len(value) == len(expected) and all(_same(v, e) for v, e in zip(value, expected))
    return expected is None or (isinstance(expected, (int, str, bytes)) and value == expected)


def _check_dtype_state(dtype: np.dtype, state: Any) -> None:
    """Refuse a dtype BUILD whose state is not the one numpy writes for that type code (byte order aside)."""
    expected = dtype.__reduce__()[2]
    if not (isinstance(state, tuple) and len(state) == len(expected) and _same(state[0], expected[0])
            and state[1] in ("<", ">", "|", "=") and all(_same(v, e) for v, e in zip(state[2:], expected[2:]))):
        raise UnsafeMessage(f"refused a numpy dtype pickled with a state numpy does not write for {dtype.str!r} "
                            "(structured, subarray and altered-flag dtypes are not accepted)")


class RestrictedUnpickler(pickle._Unpickler):
    """An Unpickler whose `find_class` only hands out plain-data constructors and whose BUILD checks numpy dtypes.

    The pure-Python unpickler, because only its BUILD can be checked before numpy applies a dtype's state; its
    per-opcode cost is that of the `pickletools` scan every message gets anyway.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def load_build(self) -> None:
        """BUILD, after checking the state of a numpy dtype (module docstring)."""
        if len(self.stack) >= 2 and isinstance(self.stack[-2], np.dtype):
            _check_dtype_state(self.stack[-2], self.stack[-1])
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build

    def find_class(self, module: str, name: str) -> Any:
        """Return an allowed global, or raise UnsafeMessage naming the refused one."""
        if (module, name) in _compat_pickle.NAME_MAPPING:  # Python-2 names in protocol 0-2 pickles
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) not in _ALLOWED:
            raise UnsafeMessage(f"refused to unpickle {module}.{name}: only plain containers, str, bytes, "
                                "numbers, bool, None and numpy arrays are accepted")
        value = _ALLOWED[(module, name)]
        return _numpy_global(name) if value is None else value


def _check_plain(value: Any, budget: list[int], seen: set, depth: int = 0) -> None:
    """Walk the loaded object once per object: refuse object dtypes, zero strides and arrays over the budget."""
    if depth > 64:
        raise UnsafeMessage("message nests deeper than 64 levels")
    if not isinstance(value, (np.ndarray, dict, list, tuple, set, frozenset)) or id(value) in seen:
        return
    seen.add(id(value))  # shared references are one object: walk and count them once
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            _check_bytes_array(value)
        if value.size > 1 and any(n > 1 and s == 0 for n, s in zip(value.shape, value.strides)):
            raise UnsafeMessage(f"numpy array of shape {value.shape} has zero strides; send contiguous arrays")
        budget[0] -= value.nbytes
        if budget[0] < 0:
            raise UnsafeMessage("message arrays hold more bytes than the message carries")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key, budget, seen, depth + 1)
            _check_plain(item, budget, seen, depth + 1)
    else:
        for item in value:
            _check_plain(item, budget, seen, depth + 1)


def _check_bytes_array(value: np.ndarray) -> None:
    """An object array is accepted only as a container of bytes (PNG/JPEG images, as the official client sends)."""
    if value.dtype != np.dtype(object):
        raise UnsafeMessage(f"numpy dtype {value.dtype} holds objects; only plain object arrays of bytes are accepted")
    for item in value.flat:
        if not isinstance(item, bytes):
            raise UnsafeMessage(f"numpy object arrays may only hold bytes (compressed images), found a "
                                f"{type(item).__name__}; send numeric arrays or PNG/JPEG bytes")


def _check_memo_indexes(raw: bytes) -> None:
    """Refuse memo indexes beyond the objects stored so far (a C unpickler sizes its memo table by the index)."""
    stored = 0
    try:
        for opcode, arg, _ in pickletools.genops(raw):
            if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and arg > stored:
                raise UnsafeMessage(f"pickle stores memo index {arg} after {stored} objects; picklers count up")
            stored += opcode.name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE")
    except UnsafeMessage:
        raise
    except Exception as exc:  # noqa: BLE001 -- genops: unknown opcode, argument longer than the data left, ...
        raise UnsafeMessage(f"message is not a readable pickle: {type(exc).__name__}: {exc}") from None


def _decompress(data: bytes, max_bytes: int) -> bytes:
    """One lz4 frame, decompressed to at most max_bytes (and no more than its header declares)."""
    try:
        declared = lz4.frame.get_frame_info(data)["content_size"]  # 0 when the sender did not store it
    except RuntimeError as exc:
        raise UnsafeMessage(f"message is not an lz4 frame: {exc}") from None
    if declared > max_bytes:
        raise UnsafeMessage(f"message would decompress to {declared} bytes, more than the limit of {max_bytes}")
    limit = declared or max_bytes
    decompressor = lz4.frame.LZ4FrameDecompressor()
    chunks, size = [], 0
    try:
        while not decompressor.eof:
            chunk = decompressor.decompress(b"" if chunks else data, max_length=min(_CHUNK, limit + 1 - size))
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise UnsafeMessage(f"message decompresses to more than {limit} bytes "
                                    f"({'its declared size' if declared else 'the limit'})")
            if decompressor.needs_input and not decompressor.eof:
                raise UnsafeMessage("message is a truncated lz4 frame")
    except RuntimeError as exc:
        raise UnsafeMessage(f"message is not a valid lz4 frame: {exc}") from None
    return b"".join(chunks)


def loads(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Decompress an lz4 frame and unpickle it with the restricted unpickler (UnsafeMessage on refusal)."""
    raw = _decompress(data, max_bytes)
    _check_memo_indexes(raw)
    try:
        value = RestrictedUnpickler(io.BytesIO(raw)).load()
    except UnsafeMessage:
        raise
    except Exception as exc:  # noqa: BLE001 -- any malformed pickle is the sender's problem
        raise UnsafeMessage(f"message is not a readable pickle: {type(exc).__name__}: {exc}") from None
    # Array bytes are copied out of the pickle, so together they cannot legitimately exceed it.
    _check_plain(value, [len(raw)], set())
    return value


def dumps(value: Any) -> bytes:
    """Pickle and lz4-compress a reply, as the official server does."""
    return lz4.frame.compress(pickle.dumps(value))
