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
read live when numeric parity runs (it runs the symbol), and never cached for a model file or
a Gluon block (they carry their own parameters).

Only registered models and ``path/to/file.py:function`` builders are cached: a Python
callable may close over state no key can see.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect
import io
import json
import os
import pickle
import sys
import sysconfig
import types
from dataclasses import dataclass, field
from pathlib import Path

from porting import util

#: Bumped whenever what an entry holds, or how it is read, changes: older entries then miss.
FORMAT_VERSION = 1
_MAGIC = b"porting-reference-cache\n"
#: Distributions whose versions can change the TF graph or how it is read.
_DISTRIBUTIONS = ("tensorflow", "tf-slim", "tf-keras", "numpy")
#: The same for the MX side's symbol and how it is read.
_MX_DISTRIBUTIONS = ("mxnet", "numpy")
#: The porting package: its content is part of every key (the readers decide what a record holds).
_PACKAGE_DIR = Path(__file__).resolve().parents[1]
_LIBRARY_DIRS = tuple({os.path.realpath(sysconfig.get_paths()[key]) + os.sep
                       for key in ("stdlib", "platstdlib", "purelib", "platlib")})
#: How deep the lint walks from the logits along first inputs (``lint.head.tf_record_of_tensor``), plus one.
_LOGITS_CHAIN = 21

MODES = ("off", "on", "refresh")


# ------------------------------------------------------------------ the cached TF side

@dataclass(frozen=True)
class FrozenFrame:
    """One frame of the stack that created an op (what ``op.traceback`` lists)."""

    filename: str
    lineno: int
    name: str


@dataclass(eq=False)
class FrozenShape:
    """A static shape as TF inferred it; ``dims`` None when the rank is unknown."""

    dims: tuple | None

    @property
    def rank(self) -> int | None:
        return None if self.dims is None else len(self.dims)

    def as_list(self) -> list:
        if self.dims is None:
            raise ValueError("as_list() is not defined on an unknown TensorShape.")
        return list(self.dims)


@dataclass(eq=False)
class FrozenTensor:
    """A tensor of the cached graph: its name, producer, static shape and the cached ops that read it."""

    name: str
    op: FrozenOp
    shape: FrozenShape
    readers: list = field(default_factory=list)

    def consumers(self) -> list:
        return list(self.readers)


@dataclass(eq=False)
class FrozenOp:
    """An op of the cached graph, compared by identity like a ``tf.Operation``."""

    name: str
    type: str
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    frames: tuple | None = None  # None: TF kept no traceback

    @property
    def traceback(self) -> tuple:
        if self.frames is None:
            raise ValueError(f"no traceback recorded for {self.name}")
        return self.frames


class FrozenGraph:
    """The ops of a TF graph that the passes read, by name (``get_operation_by_name``).

    Pickled flat (names instead of links): the links of a deep network would take pickle's
    recursion past Python's limit.
    """

    def __init__(self, ops: dict[str, FrozenOp], tensors: dict[str, FrozenTensor]):
        self.ops, self.tensors = ops, tensors

    def __getstate__(self) -> dict:
        return {"ops": [(op.name, op.type, op.frames, [t.name for t in op.inputs], [t.name for t in op.outputs])
                        for op in self.ops.values()],
                "tensors": [(t.name, t.op.name, t.op.type, t.shape.dims, [op.name for op in t.readers])
                            for t in self.tensors.values()]}

    def __setstate__(self, state: dict) -> None:
        self.ops = {name: FrozenOp(name, kind, frames=frames) for name, kind, frames, _, _ in state["ops"]}
        stubs: dict[str, FrozenOp] = {}
        self.tensors = {}
        for name, producer, kind, dims, _ in state["tensors"]:
            op = self.ops.get(producer) or stubs.setdefault(producer, FrozenOp(producer, kind))
            self.tensors[name] = FrozenTensor(name, op, FrozenShape(None if dims is None else tuple(dims)))
        for name, _, _, _, readers in state["tensors"]:
            self.tensors[name].readers = [self.ops[reader] for reader in readers]
        for name, _, _, inputs, outputs in state["ops"]:
            self.ops[name].inputs = [self.tensors[tensor] for tensor in inputs]
            self.ops[name].outputs = [self.tensors[tensor] for tensor in outputs]

    def get_operation_by_name(self, name: str) -> FrozenOp:
        try:
            return self.ops[name]
        except KeyError:
            raise KeyError(f"the cached TF graph holds no op {name!r}") from None

    def get_tensor_by_name(self, name: str) -> FrozenTensor:
        op_name, _, index = name.rpartition(":")
        return self.get_operation_by_name(op_name).outputs[int(index)]


@dataclass
class TransferFacts:
    """What the weight-transfer plan reads from the TF graph (``porting.verifier.weights.plan``), precomputed.

    ``part_roles``: op name -> the roles that op gives its record (``sources.tf_roles`` of that
    part alone; a record's roles are its parts' in order, so records the equivalences rewrite
    still find theirs); ``variables``: ``tf_variables.graph_variables``; ``owners``: variable ->
    ``sources.tf_owner``.
    """

    part_roles: dict
    variables: dict
    owners: dict

    def roles(self, record) -> dict:
        roles = {}
        for part in record.parts:
            roles.update(self.part_roles.get(part.name, {}))
        return roles


@dataclass
class CachedTfGraph:
    """A ``tf_reader.TfGraph`` as the cache holds it: the same fields, a ``FrozenGraph`` for ``graph``.

    Everything the shape comparison, the lint and the renderers read is here; nothing can
    run it (numeric parity needs the live graph).
    """

    graph: FrozenGraph
    images: FrozenTensor
    logits: FrozenTensor
    end_points: dict
    records: list
    tensors: dict = field(default_factory=dict)
    end_point_records: dict = field(default_factory=dict)
    is_training: bool | None = None
    #: Elements of the trainable variables (``tf_reader.trainable_parameter_count``).
    parameter_count: int = 0
    #: Source file -> the input size its module declares (``DEFAULT_IMAGE_SIZE``...), for the shape-comment lint.
    nominal_sizes: dict = field(default_factory=dict)
    #: The TF builder's ``__name__`` (the report's title names it).
    builder_name: str = "tf"
    #: What the weight transfer reads from the graph (numeric parity on a cached side).
    transfer_facts: TransferFacts | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)  # the tensors by name: the graph holds them
        state["images"], state["logits"] = self.images.name, self.logits.name
        state["end_points"] = {key: tensor.name for key, tensor in self.end_points.items()}
        return state

    def __setstate__(self, state: dict) -> None:
        tensors = state["graph"].tensors
        state["images"], state["logits"] = tensors[state["images"]], tensors[state["logits"]]
        state["end_points"] = {key: tensors[name] for key, name in state["end_points"].items()}
        self.__dict__.update(state)


def freeze(tf_graph, builder_name: str, parameter_count: int, nominal_size=None) -> CachedTfGraph:
    """The ``CachedTfGraph`` of a live ``TfGraph``.

    Args:
        tf_graph: a ``tf_reader.TfGraph``.
        builder_name: the builder's ``__name__``.
        parameter_count: ``tf_reader.trainable_parameter_count(tf_graph)``.
        nominal_size: ``fn(path) -> (H, W) | None``, the nominal input size a user source file declares.
    """
    wanted = [tf_graph.images.op, tf_graph.logits.op]
    for record in tf_graph.records:
        wanted += [part.name for part in record.parts] + list(record.attrs.get("members", []) or [])
    wanted += [tensor.op for tensor in tf_graph.end_points.values() if hasattr(tensor, "op")]
    op = tf_graph.logits.op
    for _ in range(_LOGITS_CHAIN):  # the lint finds the logits' record along first inputs
        if not op.inputs:
            break
        op = op.inputs[0].op
        wanted.append(op)
    live = {}
    for item in wanted:
        try:
            item = tf_graph.graph.get_operation_by_name(item) if isinstance(item, str) else item
        except (KeyError, ValueError):
            continue
        live.setdefault(item.name, item)
    frozen = {name: FrozenOp(name, op.type, frames=_frames(op)) for name, op in live.items()}
    tensors: dict[str, FrozenTensor] = {}

    def tensor_of(tensor) -> FrozenTensor:
        if tensor.name not in tensors:
            producer = frozen.get(tensor.op.name) or FrozenOp(tensor.op.name, tensor.op.type)
            tensors[tensor.name] = FrozenTensor(tensor.name, producer, _shape(tensor))
        return tensors[tensor.name]

    for name, op in live.items():
        frozen[name].outputs = [tensor_of(tensor) for tensor in op.outputs]
    for name, op in live.items():
        frozen[name].inputs = [tensor_of(tensor) for tensor in op.inputs]
        for tensor in op.outputs:
            tensor_of(tensor).readers = [frozen[reader.name] for reader in tensor.consumers() if reader.name in frozen]
    end_points = {key: tensor_of(tensor) for key, tensor in tf_graph.end_points.items() if hasattr(tensor, "op")}
    files = {frame.filename for op in frozen.values() for frame in (op.frames or ())}
    sizes = {path: nominal_size(path) for path in sorted(files)} if nominal_size is not None else {}
    return CachedTfGraph(FrozenGraph(frozen, tensors), tensor_of(tf_graph.images), tensor_of(tf_graph.logits),
                         end_points, list(tf_graph.records), dict(tf_graph.tensors), dict(tf_graph.end_point_records),
                         tf_graph.is_training, parameter_count, {k: v for k, v in sizes.items() if v is not None},
                         builder_name, transfer_facts(tf_graph))


def transfer_facts(tf_graph) -> TransferFacts:
    """The ``TransferFacts`` of a live ``TfGraph``."""
    from porting.core.records import LayerRecord
    from porting.frameworks import tf_variables
    from porting.verifier.weights import sources

    part_roles = {}
    for record in tf_graph.records:
        for part in record.parts:
            alone = LayerRecord(record.name, record.kind, record.op, (), (), parts=(part,))
            part_roles[part.name] = sources.tf_roles(tf_graph.graph, alone)
    variables = tf_variables.graph_variables(tf_graph.graph)
    part_owner: dict[str, str] = {}
    for record in tf_graph.records:
        for part in record.parts:
            part_owner.setdefault(part.name, record.name)
    owners = {}
    for name in variables:
        readers = tf_variables.variable_readers(tf_graph.graph.get_operation_by_name(name))
        owners[name] = next((part_owner[reader.name] for reader in readers if reader.name in part_owner), None)
    return TransferFacts(part_roles, variables, owners)


def _shape(tensor) -> FrozenShape:
    shape = tensor.shape
    return FrozenShape(None if shape.rank is None else tuple(shape.as_list()))


def _frames(op) -> tuple | None:
    """The op's creation stack from ``tf_reader.build_graph`` on (the caller's frames above it never matter),
    without the frames of TF, slim, the standard library and this package, which the lint never reads."""
    try:
        frames = list(op.traceback)
    except Exception:  # noqa: BLE001  (TF kept none)
        return None
    start = 0
    for index, frame in enumerate(frames):
        if os.path.basename(frame.filename) == "tf_reader.py" and frame.name == "build_graph":
            start = index
    return tuple(FrozenFrame(sys.intern(frame.filename), int(frame.lineno), sys.intern(frame.name))
                 for index, frame in enumerate(frames[start:]) if index == 0 or not _library_file(frame.filename))


@functools.lru_cache(maxsize=4096)
def _library_file(filename: str) -> bool:
    """A file of an installed package, the standard library or ``porting``: never the builder author's."""
    real = os.path.realpath(filename)
    return ("site-packages" in real or "dist-packages" in real or real.startswith(_LIBRARY_DIRS)
            or real.startswith(str(_PACKAGE_DIR) + os.sep))


# ------------------------------------------------------------------ the cached MX side

class FrozenSymbol:
    """An MXNet symbol as the cache holds it: its JSON graph, which is all the lint reads (``tojson``)."""

    def __init__(self, graph: dict):
        self.graph = graph

    def tojson(self) -> str:
        return json.dumps(self.graph)


@dataclass
class CachedMxGraph:
    """A ``mx_reader.MxGraph`` as the cache holds it: the same fields, a ``FrozenSymbol`` for ``symbol``.

    The shape comparison, the lint and the renderers read it as they read the live one;
    nothing can run it (numeric parity reads the MX side live).
    """

    symbol: FrozenSymbol
    records: list
    outputs: dict = field(default_factory=dict)
    nodes: list = field(default_factory=list)
    arg_shapes: dict = field(default_factory=dict)
    aux_shapes: dict = field(default_factory=dict)
    params: None = None  # a side with its own parameters is never cached
    source: str = ""
    notes: list = field(default_factory=list)
    #: Elements of the learnable arguments (``mx_reader.learnable_parameter_count``).
    parameter_count: int = 0
    #: The MX builder's ``__name__`` (the report's title names it).
    builder_name: str = "mx"


def freeze_mx(mx_graph, builder_name: str, parameter_count: int) -> CachedMxGraph:
    """The ``CachedMxGraph`` of a live ``mx_reader.MxGraph`` read from a builder's symbol."""
    from porting.frameworks.mx_attrs import symbol_graph

    graph = symbol_graph(mx_graph.symbol)
    graph["nodes"] = mx_graph.nodes  # the same entries (parsed from the same JSON): stored once
    return CachedMxGraph(FrozenSymbol(graph), list(mx_graph.records), dict(mx_graph.outputs), mx_graph.nodes,
                         dict(mx_graph.arg_shapes), dict(mx_graph.aux_shapes), None, mx_graph.source,
                         list(mx_graph.notes), parameter_count, builder_name)


# ------------------------------------------------------------------ keys and the files a builder loaded

def cache_root() -> Path:
    """``$PORTING_CACHE``, else ``$XDG_CACHE_HOME/porting``, else ``~/.cache/porting``."""
    if os.environ.get("PORTING_CACHE"):
        return Path(os.environ["PORTING_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "porting"


def entry_dir() -> Path:
    return cache_root() / "reference" / f"v{FORMAT_VERSION}"


def mx_entry_dir() -> Path:
    """The MX side's entries (``MxSide``)."""
    return cache_root() / "reference-mx" / f"v{FORMAT_VERSION}"


def _versions(distributions: tuple = _DISTRIBUTIONS) -> dict:
    versions = {"python": sys.version.split()[0]}
    for name in distributions:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@functools.lru_cache(maxsize=1)
def project_fingerprint() -> str:
    """A digest of every source file of the ``porting`` package (its readers decide what an entry holds)."""
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE_DIR.rglob("*.py")):
        digest.update(str(path.relative_to(_PACKAGE_DIR)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def side_identity(spec, builder, side: str = "tf") -> dict | None:
    """What names a side's builder before it is loaded; None when it cannot be cached (a Python callable)."""
    if isinstance(builder, str):
        path_text, _, function = builder.rpartition(":")
        return {"file": os.path.realpath(path_text), "function": function}
    if builder is None and spec is not None:
        return {"model": spec.name, "target": getattr(spec, side),
                "kwargs": repr(sorted(getattr(spec, f"{side}_kwargs").items()))}
    return None


def entry_key(identity: dict, size, classes: int, batch: int, is_training: bool) -> str:
    """The digest that names an entry: the builder, its arguments, the versions, this package."""
    text = json.dumps({"format": FORMAT_VERSION, "side": identity, "size": list(size), "classes": classes,
                       "batch": batch, "is_training": is_training, "versions": _versions(),
                       "project": project_fingerprint()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _user_source(path) -> str | None:
    """``path`` as a real .py file outside the standard library, site-packages and this package; else None."""
    if not path or not str(path).endswith(".py") or _library_file(str(path)):
        return None
    real = os.path.realpath(path)
    return real if os.path.isfile(real) else None


def _functions(builder) -> list:
    """The builder and the functions it wraps (closure cells, ``functools.partial``)."""
    found, stack, seen = [], [builder], set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, functools.partial):  # its arguments too: a registered MX builder is one
            stack.extend([item.func, *item.args, *item.keywords.values()])
            continue
        item = inspect.unwrap(item) if callable(item) else item
        if isinstance(item, types.FunctionType):
            found.append(item)
            stack.extend(cell.cell_contents for cell in (item.__closure__ or ()) if _filled(cell))
    return found


def _filled(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018  (an empty cell raises)
    except ValueError:
        return False
    return True


def loaded_sources(builder, imported: set[str], cached: CachedTfGraph | None = None) -> list[str]:
    """Every user source file the build depended on, sorted.

    The modules imported while building, the modules of the builder's functions, every
    module reachable from those through module globals (imported modules, and the modules
    of imported functions and classes), and the files in the ops' creation tracebacks;
    only files outside the standard library, site-packages and ``porting`` (which the
    versions and the package fingerprint cover).
    """
    modules = [sys.modules[name] for name in imported if name in sys.modules]
    modules += [sys.modules[function.__module__] for function in _functions(builder)
                if function.__module__ in sys.modules]
    files = {_user_source(getattr(function, "__code__", None) and function.__code__.co_filename)
             for function in _functions(builder)}
    seen: set[str] = set()
    while modules:
        module = modules.pop()
        if not isinstance(module, types.ModuleType) or module.__name__ in seen:
            continue
        seen.add(module.__name__)
        path = _user_source(getattr(module, "__file__", None))
        if path is None:
            continue
        files.add(path)
        parent = module.__name__.rpartition(".")[0]  # a package's __init__ runs before its modules
        if parent in sys.modules:
            modules.append(sys.modules[parent])
        for value in list(vars(module).values()):
            if isinstance(value, types.ModuleType):
                modules.append(value)
            elif isinstance(getattr(value, "__module__", None), str) and value.__module__ in sys.modules:
                modules.append(sys.modules[value.__module__])
    for op in cached.graph.ops.values() if cached is not None else ():
        files.update(_user_source(frame.filename) for frame in (op.frames or ()))
    files.discard(None)
    return sorted(files)


def _digest_file(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


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
        for path in entry_dir().glob(f"{self.key}.*.npz"):
            if not path.name.startswith(f"{self.key}.{self.digest[:24]}."):
                path.unlink(missing_ok=True)

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

    def forward(self, load_builder, names: list[str], images, values: dict) -> dict:
        """The TF outputs of ``names`` for ``images`` and the variable ``values``: stored beside the
        entry, or (the first time for these values) computed on the live graph, built again, and stored."""
        path = entry_dir() / f"{self.key}.{self.digest[:24]}.{values_digest(images, values)[:32]}.npz"
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
    writes the entry. ``status`` says what happened, in words.
    """

    def __init__(self, mode: str, key: str | None, status: str):
        self.mode, self.key, self.status = mode, key, status
        self.graph: CachedMxGraph | None = None
        self._imported: set[str] = set()
        self._probe: Lookup | None = None

    @classmethod
    def open(cls, mode: str, spec, mx, size, classes: int, batch: int, live: bool = False) -> MxSide:
        """Look up the entry of this MX side; ``live``: the caller needs the live symbol (numeric parity),
        so the entry is only checked, to know whether to write it."""
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
        side = cls(mode, hashlib.sha256(text.encode()).hexdigest(), "refresh")
        if mode == "on":
            found = load(side.key, mx_entry_dir(), CachedMxGraph)
            if live:
                side._probe, side.status = found, "read live (numeric parity runs the symbol)"
            else:
                side.status, side.graph = found.status, found.graph
        return side

    def tracking(self):
        """Around loading the MX builder and reading its symbol: the modules imported meanwhile are sources."""
        return _Tracking(self._imported)

    def built(self, builder, mx_graph, parameter_count: int) -> None:
        """The live ``MxGraph`` this run read from ``builder``: stored unless it has its own parameters."""
        if self.key is None or self.graph is not None:
            return
        if mx_graph.params is not None:
            self.status = "bypassed (a Gluon block carries its own parameters)"
            return
        if self._probe is not None and self._probe.status == "hit":
            return  # read live for numeric parity; the entry is current
        cached = freeze_mx(mx_graph, getattr(builder, "__name__", "mx"), parameter_count)  # as the title names it
        written = store(mx_entry_dir() / f"{self.key}.entry", cached, loaded_sources(builder, self._imported))
        if self._probe is None:
            self.status = {"miss": "miss, stored", "refresh": "refreshed"}.get(self.status, self.status + ", rebuilt")
        if written is None:
            self.status += " (the entry could not be written)"
