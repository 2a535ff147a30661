"""Reading and writing entries: a checksummed header, a restricted unpickler, atomic writes; stored TF outputs."""
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


def load_forward(path: Path, names: list[str]) -> dict | None:
    """The stored TF outputs of ``names``, or None (missing, incomplete or damaged: a zip member's CRC fails)."""
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            if not set(names) <= set(data.files):
                return None
            return {name: data[name] for name in names}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None


def store_forward(path: Path, outputs: dict) -> None:
    """Write TF outputs (name -> array) atomically; a failure only costs the next run a forward."""
    import numpy as np

    try:
        util.atomic_write_via(path, lambda tmp: _save_npz(np, tmp, outputs), durable=False, parents=True)
    except Exception:  # noqa: BLE001  (a cache that cannot be written must not fail the comparison)
        pass


def _save_npz(np, tmp: str, outputs: dict) -> None:
    with open(tmp, "wb") as handle:  # a file object: np.savez would append '.npz' to a name
        np.savez(handle, **outputs)

