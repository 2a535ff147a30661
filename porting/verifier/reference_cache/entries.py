"""Reading and writing entries: a checksummed header, a restricted unpickler, atomic writes; stored forwards."""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

from porting import util

from porting.verifier.reference_cache.frozen import CachedTfGraph
from porting.verifier.reference_cache.keys import FORMAT_VERSION, _digest_file, entry_dir

_MAGIC = b"porting-reference-cache\n"


# ------------------------------------------------------------------ reading and writing entries

class CorruptEntry(Exception):
    """An entry that cannot be trusted: truncated, a bad checksum, an unreadable payload."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Loads only the types an entry holds (this package's records and frozen graph, numpy, builtins)."""

    _BUILTINS = frozenset({"tuple", "list", "dict", "set", "frozenset", "bytes", "bytearray", "complex",
                           "slice", "range", "object", "getattr"})

    def find_class(self, module: str, name: str):
        allowed = ((module == "builtins" and name in self._BUILTINS) or module.startswith("porting.")
                   or module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
                                 "numpy._core.numeric", "numpy.dtypes", "collections", "copyreg", "enum"))
        if not allowed:
            raise pickle.UnpicklingError(f"{module}.{name} is not a type a reference cache entry holds")
        return super().find_class(module, name)


def encode(cached: CachedTfGraph, sources: dict[str, str], meta: dict) -> bytes:
    """An entry's bytes: magic, header length, a JSON header (sources, checksum), the pickled graph."""
    payload = pickle.dumps(cached, protocol=pickle.HIGHEST_PROTOCOL)
    header = json.dumps({"format": FORMAT_VERSION, "sha256": hashlib.sha256(payload).hexdigest(),
                         "sources": sources, **meta}, sort_keys=True).encode()
    return _MAGIC + len(header).to_bytes(8, "little") + header + payload


def _header(data: bytes) -> tuple[dict, bytes]:
    if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 8:
        raise CorruptEntry("not a reference cache entry (bad magic)")
    start = len(_MAGIC) + 8
    length = int.from_bytes(data[len(_MAGIC):start], "little")
    try:
        header = json.loads(data[start:start + length])
    except (ValueError, UnicodeDecodeError):
        raise CorruptEntry("unreadable header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION or not isinstance(
            header.get("sources"), dict):
        raise CorruptEntry("unreadable header")
    return header, data[start + length:]


def decode(data: bytes, kind: type | None = None) -> tuple[dict, CachedTfGraph]:
    """The header and graph of an entry's bytes (``kind``: the graph's type, default ``CachedTfGraph``).

    Raises:
        CorruptEntry: anything wrong with them.
    """
    header, payload = _header(data)
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise CorruptEntry("checksum mismatch")
    try:
        cached = _RestrictedUnpickler(io.BytesIO(payload)).load()
    except Exception as error:  # noqa: BLE001  (any failure to load means: do not trust it)
        raise CorruptEntry(f"unreadable payload ({type(error).__name__})") from None
    if not isinstance(cached, kind or CachedTfGraph):
        raise CorruptEntry("unreadable payload")
    return header, cached


@dataclass
class Lookup:
    """What the cache did for one comparison: ``status`` in words, and the graph when it was a hit."""

    status: str
    graph: CachedTfGraph | None = None
    path: Path | None = None
    digest: str | None = None  # the entry's payload checksum: the TF forward outputs are stored under it


def load(key: str, folder: Path | None = None, kind: type | None = None) -> Lookup:
    """The entry for ``key`` (in ``folder``, default ``entry_dir()``; its graph a ``kind``) if it exists, is
    whole and every source it lists is unchanged."""
    path = (folder or entry_dir()) / f"{key}.entry"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Lookup("miss", path=path)
    except OSError as error:
        return Lookup(f"miss (unreadable: {error.strerror})", path=path)
    try:
        header, _ = _header(data)
        changed = [source for source, digest in sorted(header["sources"].items()) if _digest_file(source) != digest]
        if changed:
            return Lookup(f"stale ({util.short_list([os.path.basename(s) for s in changed], 3)} changed)", path=path)
        _, cached = decode(data, kind)
    except CorruptEntry as error:
        return Lookup(f"corrupt ({error})", path=path)
    return Lookup("hit", cached, path, header["sha256"])


def store(path: Path, cached, sources: list[str]) -> str | None:
    """Write an entry atomically; its payload checksum, or None (nothing written) when it cannot be written."""
    digests = {source: _digest_file(source) for source in sources}
    try:
        data = encode(cached, {s: d for s, d in digests.items() if d is not None}, {})
        util.atomic_write_bytes(path, data, durable=False, parents=True)
    except Exception:  # noqa: BLE001  (a cache that cannot be written must not fail the comparison)
        return None
    return _header(data)[0]["sha256"]


def values_digest(images, values: dict) -> str:
    """A digest of a TF forward's inputs: the input batch and every variable's value."""
    import numpy as np

    digest = hashlib.sha256()
    for name, value in [("<images>", images)] + sorted(values.items()):
        value = np.ascontiguousarray(value)
        digest.update(f"{name}\0{value.dtype.str}\0{value.shape}\0".encode())
        digest.update(memoryview(value).cast("B"))
    return digest.hexdigest()


#: The stored forwards' file name ends with this (``FORWARD_SUFFIX``); the format is below.
FORWARD_SUFFIX = ".forward"
_FORWARD_MAGIC = b"porting-forward-outputs\n"
_ALIGN = 64  # each array starts on a multiple of this in the file (and in the buffer it is read into)


def load_forward(path: Path, names: list[str]) -> dict | None:
    """The stored outputs of ``names``, or None (missing, incomplete or damaged: the CRC-32 of the data fails).

    The file is mapped, not read: the arrays are read-only views of the page cache, so a full
    network's per-layer outputs (hundreds of MB) cost no copy and no fresh memory (numpy would ask
    for huge pages, which the kernel may first have to compact memory for). Files are only ever
    replaced whole (``util.atomic_write_via``), so a mapped one never changes under its reader.
    """
    import mmap
    import zlib

    import numpy as np

    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_FORWARD_MAGIC) + 8)
            if not head.startswith(_FORWARD_MAGIC) or len(head) < len(_FORWARD_MAGIC) + 8:
                return None
            length = int.from_bytes(head[len(_FORWARD_MAGIC):], "little")
            header = json.loads(handle.read(length))
            start, size = _aligned(len(head) + length), int(header["size"])
            if os.fstat(handle.fileno()).st_size != start + size:
                return None
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        data = np.frombuffer(mapped, np.uint8, count=size, offset=start) if size else np.empty(0, np.uint8)
        if zlib.crc32(data) != header["crc32"]:
            return None
        arrays = {name: (dtype, shape, offset) for name, dtype, shape, offset in header["arrays"]}
        if not set(names) <= set(arrays):
            return None
        outputs = {}
        for name in names:
            dtype, shape, offset = arrays[name]
            dtype = np.dtype(dtype)
            count = int(np.prod(shape, dtype=np.int64))
            outputs[name] = data[offset:offset + count * dtype.itemsize].view(dtype).reshape(shape)
        return outputs
    except (OSError, ValueError, TypeError, KeyError, UnicodeDecodeError):
        return None


def store_forward(path: Path, outputs: dict) -> None:
    """Write outputs (name -> array) atomically; a failure only costs the next run a forward."""
    try:
        util.atomic_write_via(path, lambda tmp: _write_forward(tmp, outputs), durable=False, parents=True)
    except Exception:  # noqa: BLE001  (a cache that cannot be written must not fail the comparison)
        pass


def _write_forward(tmp: str, outputs: dict) -> None:
    """The format: magic, header length, a JSON header (each array's name, dtype, shape and offset in the
    data; the data's size and CRC-32), then, from the next multiple of ``_ALIGN``, the arrays' bytes, each
    aligned."""
    import zlib

    import numpy as np

    arrays, layout, offset = [], [], 0
    for name, value in outputs.items():
        value = np.ascontiguousarray(value)
        if value.dtype.hasobject:
            raise ValueError(f"{name}: an object array is not stored")
        offset = _aligned(offset)
        arrays.append((offset, memoryview(value).cast("B")))
        layout.append([name, value.dtype.str, list(value.shape), offset])
        offset += value.nbytes
    crc, end = 0, 0
    for start, view in arrays:
        crc = zlib.crc32(bytes(start - end), crc)
        crc = zlib.crc32(view, crc)
        end = start + len(view)
    text = json.dumps({"arrays": layout, "size": end, "crc32": crc}).encode()
    with open(tmp, "wb") as handle:
        handle.write(_FORWARD_MAGIC + len(text).to_bytes(8, "little") + text)
        handle.write(bytes(_aligned(handle.tell()) - handle.tell()))
        end = 0
        for start, view in arrays:
            handle.write(bytes(start - end))
            handle.write(view)
            end = start + len(view)


def _aligned(offset: int) -> int:
    return offset + -offset % _ALIGN
