"""A disk cache of the TF side of ``compare``: the reference is built once, later runs read it.

Building the slim graph and importing TensorFlow is most of a comparison's cost, and the
TF reference rarely changes while an MXNet port is being worked on. An entry holds a
``CachedTfGraph``: the layer records and everything the later passes read from the TF
graph (end points, the trainable parameter count, the ops the lint looks at with their
shapes, consumers and creation tracebacks, the builder modules' nominal input sizes),
with no ``tf.Graph`` in it, so a warm run imports no TensorFlow.

An entry is found by a key over everything known before building (the builder's identity,
size, classes, batch, is_training, the TF / tf-slim / tf-keras / numpy versions, the
content of the ``porting`` package and this format's version), and is trusted only when
every source file the builder loaded still has the content it had when the entry was
written (the entry lists them: modules imported while building, the modules the builder's
functions and their modules' globals lead to, the files in the ops' tracebacks). A
corrupt entry (bad header, checksum, or payload) or a stale one is rebuilt, never used.
Writes are atomic (``porting.util.atomic_write_bytes``), so concurrent runs each see a
whole entry or none.

The MX side is cached the same way (``MxSide``, a ``CachedMxGraph``: the records, the
symbol's JSON graph, its shapes and parameter count; keyed by the MX builder, size, classes,
batch, the MXNet / numpy versions and this package, trusted while every source the MX builder
loaded is unchanged), so a run where neither side changed imports no framework at all. It is
never cached for a model file or a Gluon block (they carry their own parameters).

Numeric parity reads both forwards from beside the entries when they are stored: the TF outputs
under the TF entry's checksum and a digest of the input and the variables' values; the MXNet
outputs under the MX entry's checksum, the TF entry's checksum (with the MX side, it decides the
weight transfer) and the same digest. The layers are compared on them each time (tolerances are
never part of a key), so a warm ``--numeric`` where neither side changed imports no framework.

Only registered models and ``path/to/file.py:function`` builders are cached: a Python
callable may close over state no key can see.
"""
from __future__ import annotations

import functools
import hashlib
import json
import sys

from porting.verifier.reference_cache.entries import (  # noqa: F401  (the package's API)
    FORWARD_SUFFIX, CorruptEntry, Lookup, decode, encode, load, load_forward, store, store_forward, values_digest)
from porting.verifier.reference_cache.frozen import (  # noqa: F401
    CachedMxGraph, CachedTfGraph, FrozenGraph, FrozenSymbol, TransferFacts, freeze, freeze_mx, transfer_facts)
from porting.verifier.reference_cache.keys import (  # noqa: F401
    FORMAT_VERSION, _MX_DISTRIBUTIONS, _versions, cache_root, entry_dir, entry_key, loaded_sources, mx_entry_dir,
    project_fingerprint, side_identity)

MODES = ("off", "on", "refresh")


# ------------------------------------------------------------------ one comparison's use of the cache

class Reference:
    """The TF side of one ``verify()`` call, through the cache.

    ``open`` looks the entry up (``graph`` is the ``CachedTfGraph`` of a hit); on a miss
    the caller loads its builder inside ``tracking()`` and builds through ``build``, which
    writes the entry. ``status`` says what happened, in words.
    """

    def __init__(self, mode: str, identity: dict | None, key: str | None, arguments: tuple = ()):
        self.mode, self.identity, self.key = mode, identity, key
        self.arguments = arguments  # (size, classes, batch, is_training) as tf_reader.read_graph takes them
        self.graph: CachedTfGraph | None = None
        self.digest: str | None = None
        self.live = None  # the TfGraph this run built, if it built one
        self.status = "off" if mode == "off" else "bypassed (a Python callable as the TF side)"
        self._imported: set[str] = set()
        self._inputs: tuple | None = None  # (images, values, their digest): computed once per numeric run

    @classmethod
    def open(cls, mode: str, spec, tf, size, classes: int, batch: int, is_training: bool) -> Reference:
        """Look up the entry of this TF side (nothing is read when ``mode`` is 'off' or 'refresh')."""
        identity = side_identity(spec, tf) if mode != "off" else None
        key = entry_key(identity, size, classes, batch, is_training) if identity is not None else None
        reference = cls(mode, identity, key, (size, classes, batch, is_training))
        if key is not None:
            reference.status = "refresh"
            if mode == "on":
                found = load(key)
                reference.status, reference.graph, reference.digest = found.status, found.graph, found.digest
        return reference

    @property
    def writes(self) -> bool:
        return self.key is not None and self.graph is None

    def tracking(self):
        """Around the builder's loading: the modules imported meanwhile are sources of the entry."""
        return _Tracking(self._imported)

    def build(self, builder, write: bool = True):
        """The live ``TfGraph`` of ``builder`` (built inside ``tracking()``); then the entry is written."""
        from porting.frameworks import tf_reader

        with self.tracking():
            live = tf_reader.read_graph(builder, *self.arguments)
        self.live = live
        if self.writes and write:
            from porting.frameworks import tf_reader
            from porting.verifier.lint import source_comments

            cached = freeze(live, getattr(builder, "__name__", "tf"), tf_reader.trainable_parameter_count(live),
                            source_comments.module_nominal_size)
            path = entry_dir() / f"{self.key}.entry"
            self.digest = store(path, cached, loaded_sources(builder, self._imported, cached))
            self.status = {"miss": "miss, stored", "refresh": "refreshed"}.get(self.status, self.status + ", rebuilt")
            if self.digest is None:
                self.status += " (the entry could not be written)"
            else:
                self._drop_other_forwards()
        return live

    def _drop_other_forwards(self) -> None:
        """TF outputs stored for another version of this entry can never be read again: removed."""
        _drop_forwards(entry_dir(), self.key, keep=f"{self.key}.{self.digest[:24]}.")

    def numeric_options(self, load_builder) -> dict:
        """Keyword arguments of ``parity.numeric_parity``: a TF forward through the cache, when there is an entry."""
        if self.key is None or self.digest is None:
            return {}
        return {"tf_forward": functools.partial(self.forward, load_builder)}

    def live_graph(self, load_builder):
        """The TF side as a live ``TfGraph`` (built now on a hit: the entry's sources are unchanged, so this
        builds the same graph), for passes that must run the TF graph itself."""
        if self.live is None:
            with self.tracking():
                builder = load_builder()
            self.live = self.build(builder, write=False)
        return self.live

    def inputs_digest(self, images, values) -> str:
        """``values_digest(images, values)``, computed once for the same objects (both forwards are keyed by it)."""
        if self._inputs is None or self._inputs[0] is not images or self._inputs[1] is not values:
            self._inputs = (images, values, values_digest(images, values))
        return self._inputs[2]

    def forward(self, load_builder, names: list[str], images, values: dict) -> dict:
        """The TF outputs of ``names`` for ``images`` and the variable ``values``: stored beside the
        entry, or (the first time for these values) computed on the live graph, built again, and stored."""
        inputs = self.inputs_digest(images, values)
        path = entry_dir() / f"{self.key}.{self.digest[:24]}.{inputs[:32]}{FORWARD_SUFFIX}"
        outputs = load_forward(path, names)
        if outputs is not None:
            self.status += "; TF forward read"
            return outputs
        from porting import compat
        from porting.verifier.parity.numeric import ParityError, run_tf
        from porting.verifier.weights import assign_values

        tf = compat.import_tf()
        live = self.live_graph(load_builder)
        with tf.compat.v1.Session(graph=live.graph) as session:
            try:
                assign_values(session, live.graph, values)
            except (ValueError, tf.errors.InvalidArgumentError) as error:
                raise ParityError(f"cannot load the weights into the TF graph: {str(error).splitlines()[0]}") from None
            outputs = run_tf(live, session, names, images)
        store_forward(path, outputs)
        self.status += "; TF forward stored"
        return outputs


class _Tracking:
    def __init__(self, imported: set):
        self.imported = imported

    def __enter__(self):
        self.before = set(sys.modules)

    def __exit__(self, *exc):
        self.imported.update(set(sys.modules) - self.before)


class MxSide:
    """The MX side of one ``verify()`` call, through the cache.

    ``open`` looks the entry up (``graph`` is the ``CachedMxGraph`` of a hit: nothing of the MX
    builder is loaded and MXNet is not imported); otherwise the caller loads the builder and
    reads its symbol inside ``tracking()`` and hands the live ``MxGraph`` to ``built``, which
    writes the entry. Numeric parity runs the MXNet forward through ``forward`` (stored outputs,
    or the live symbol). ``status`` says what happened, in words.
    """

    def __init__(self, mode: str, key: str | None, status: str, arguments: tuple = ()):
        self.mode, self.key, self.status = mode, key, status
        self.arguments = arguments  # (size, classes, batch) as mx_reader.read_symbol takes them
        self.graph: CachedMxGraph | None = None
        self.digest: str | None = None  # the entry's payload checksum: the MX forward outputs are stored under it
        self.live = None  # the MxGraph this run read, if it read one
        self._imported: set[str] = set()

    @classmethod
    def open(cls, mode: str, spec, mx, size, classes: int, batch: int) -> MxSide:
        """Look up the entry of this MX side (nothing is read when ``mode`` is 'off' or 'refresh')."""
        from porting.frameworks.mx_attrs import is_model_file

        if mode == "off":
            return cls(mode, None, "off")
        if is_model_file(mx):
            return cls(mode, None, "bypassed (a model file: read live)")
        identity = side_identity(spec, mx, "mx")
        if identity is None:
            return cls(mode, None, "bypassed (a Python callable as the MX side)")
        text = json.dumps({"format": FORMAT_VERSION, "side": "mx", "identity": identity, "size": list(size),
                           "classes": classes, "batch": batch, "versions": _versions(_MX_DISTRIBUTIONS),
                           "project": project_fingerprint()}, sort_keys=True)
        side = cls(mode, hashlib.sha256(text.encode()).hexdigest(), "refresh", (size, classes, batch))
        if mode == "on":
            found = load(side.key, mx_entry_dir(), CachedMxGraph)
            side.status, side.graph, side.digest = found.status, found.graph, found.digest
        return side

    def tracking(self):
        """Around loading the MX builder and reading its symbol: the modules imported meanwhile are sources."""
        return _Tracking(self._imported)

    def built(self, builder, mx_graph, parameter_count: int) -> None:
        """The live ``MxGraph`` this run read from ``builder``: stored unless it has its own parameters."""
        self.live = mx_graph
        if self.key is None or self.graph is not None:
            return
        if mx_graph.params is not None:
            self.status, self.key = "bypassed (a Gluon block carries its own parameters)", None
            return
        cached = freeze_mx(mx_graph, getattr(builder, "__name__", "mx"), parameter_count)  # as the title names it
        self.digest = store(mx_entry_dir() / f"{self.key}.entry", cached, loaded_sources(builder, self._imported))
        self.status = {"miss": "miss, stored", "refresh": "refreshed"}.get(self.status, self.status + ", rebuilt")
        if self.digest is None:
            self.status += " (the entry could not be written)"
        else:  # MX outputs stored for another version of this entry can never be read again
            _drop_forwards(mx_entry_dir(), self.key, keep=f"{self.key}.{self.digest[:24]}.")

    def numeric_options(self, load_builder, reference: Reference) -> dict:
        """Keyword arguments of ``parity.numeric_parity``: an MXNet forward through the cache (a cached side
        cannot run; its outputs are read, or the symbol is read live to compute them)."""
        if self.key is None:
            return {}
        return {"mx_forward": functools.partial(self.forward, load_builder, reference)}

    def live_graph(self, load_builder):
        """The MX side as a live ``MxGraph`` (read now on a hit: the entry's sources are unchanged, so this
        reads the same symbol)."""
        if self.live is None:
            from porting.frameworks import mx_reader

            with self.tracking():
                self.live = mx_reader.read_symbol(load_builder(), *self.arguments)
        return self.live

    def forward(self, load_builder, reference: Reference, names: list[str], data, arg_params: dict,
                aux_params: dict, images, values) -> dict:
        """The MXNet outputs of ``names`` for ``data`` and the parameters transferred from the TF ``values``
        (for ``images``): stored beside the entry, or computed on the live symbol and stored.

        The parameters are keyed by what decides them: the TF values, and the transfer plan, which the
        two entries decide (both keys cover this package). Without a TF entry or TF values (a TF side
        that is not cached, weights read from a session) nothing is read or stored.
        """
        import numpy as np

        from porting.verifier.parity.numeric import run_mx

        path = None
        if self.digest is not None and reference.digest is not None and values is not None:
            data_digest = hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()
            inputs = hashlib.sha256(f"{reference.inputs_digest(images, values)}\0{data_digest}".encode()).hexdigest()
            prefix = f"{self.key}.{self.digest[:24]}.{reference.digest[:24]}."
            path = mx_entry_dir() / f"{prefix}{inputs[:32]}{FORWARD_SUFFIX}"
            outputs = load_forward(path, names)
            if outputs is not None:
                self.status += "; MX forward read"
                return outputs
        outputs = run_mx(self.live_graph(load_builder), arg_params, aux_params, names, data)
        if path is not None:
            store_forward(path, outputs)
            self.status += "; MX forward stored"
            # those of another TF entry (the TF side changed) can never be read again
            _drop_forwards(mx_entry_dir(), f"{self.key}.{self.digest[:24]}", keep=prefix)
        return outputs


def _drop_forwards(folder, prefix: str, keep: str) -> None:
    """Remove the stored forwards named ``prefix.*`` + ``FORWARD_SUFFIX`` except those starting with ``keep``."""
    for path in folder.glob(f"{prefix}.*{FORWARD_SUFFIX}"):
        if not path.name.startswith(keep):
            path.unlink(missing_ok=True)
