"""Read the official reward protocol's lz4-compressed pickles without letting a message run code.

The official SOLE-R1 transport (agentlace `ReqRepServer`: `lz4.frame.compress(pickle.dumps(obj))`) is pickle,
and a plain `pickle.loads` of network bytes executes whatever the sender wants. Our reader accepts only what
the protocol needs -- dicts, lists, tuples, sets, str, bytes, numbers, bool, None and numpy arrays/scalars of
plain dtypes -- and bounds the decompressed size, so a hostile or broken client gets an error, nothing more.
"""
from __future__ import annotations

import _compat_pickle
import codecs
import io
import pickle
from typing import Any

import lz4.frame
import numpy as np

DEFAULT_MAX_BYTES = 1 << 30  # decompressed message limit: 1 GiB (an episode of 25 frames 768x768x3 x2 is 88 MB)


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


# (module, name) a pickle may reference -> the object it gets. Everything else is refused.
_ALLOWED = {
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("_codecs", "encode"): _latin1_encode,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    for _name in ("_reconstruct", "scalar"):
        _ALLOWED[(_module, _name)] = None  # resolved lazily by _numpy_global
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_module, "_frombuffer")] = None


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose `find_class` only hands out plain-data constructors (see module docstring)."""

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


def _check_plain(value: Any, budget: list[int], depth: int = 0) -> None:
    """Walk the loaded object: refuse object-dtype arrays and arrays larger than the byte budget."""
    if depth > 64:
        raise UnsafeMessage("message nests deeper than 64 levels")
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise UnsafeMessage("numpy arrays of dtype object are not accepted; send numeric arrays")
        budget[0] -= value.nbytes
        if budget[0] < 0:
            raise UnsafeMessage("message arrays exceed the size limit")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key, budget, depth + 1)
            _check_plain(item, budget, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _check_plain(item, budget, depth + 1)


def loads(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Decompress an lz4 frame and unpickle it with the restricted unpickler (UnsafeMessage on refusal)."""
    decompressor = lz4.frame.LZ4FrameDecompressor()
    try:
        raw = decompressor.decompress(data, max_length=max_bytes)
    except RuntimeError as exc:
        raise UnsafeMessage(f"message is not an lz4 frame: {exc}") from None
    if not decompressor.needs_input or not decompressor.eof:
        raise UnsafeMessage(f"message is truncated or decompresses to more than {max_bytes} bytes")
    try:
        value = RestrictedUnpickler(io.BytesIO(raw)).load()
    except UnsafeMessage:
        raise
    except Exception as exc:  # noqa: BLE001 -- any malformed pickle is the sender's problem
        raise UnsafeMessage(f"message is not a readable pickle: {type(exc).__name__}: {exc}") from None
    _check_plain(value, [2 * max_bytes])
    return value


def dumps(value: Any) -> bytes:
    """Pickle and lz4-compress a reply, as the official server does."""
    return lz4.frame.compress(pickle.dumps(value))
