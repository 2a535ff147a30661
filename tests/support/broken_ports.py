"""Deliberately broken MXNet ports of Inception-ResNet-v2, one defect each.

Each broken port starts from our own port (``mx_impl.inception_resnet_v2``) and
edits its symbol JSON: one node's attributes or inputs change, a node is added
or a branch is disconnected, then ``mx.sym.load_json`` gives a symbol that an
engineer could have written by hand. ``BROKEN_PORTS`` describes each defect and
where the verifier must find it; ``tests/test_verifier.py`` checks that it does.

``auto_named`` rebuilds a port with MXNet's automatic names (``convolution12``,
``batchnorm3``, parameter names to match), so no slim scope name survives and
the matcher has to align the two networks structurally.

This is a helper module for the tests, not a test file.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Callable

from porting import compat

mx = compat.import_mx()

from mx_impl import inception_resnet_v2 as port  # noqa: E402  (after the shims)
from porting.frameworks import models
from porting.frameworks import tf_reader  # noqa: E402

SCOPE = port.SCOPE
#: Input sizes: the default 299, and an even size where align_feature_maps' stride-2
#: SAME layers pad asymmetrically (150 -> 75 with pads (0, 1)).
SIZE = 299
ALIGN_SIZE = 150

_PARAM_SUFFIXES = ("_weight", "_bias", "_gamma", "_beta", "_moving_mean", "_moving_var")


class SymbolEditor:
    """A symbol's JSON graph, edited by node name, turned back into a Symbol.

    Inputs are held as node names while editing, so nodes can be inserted,
    renamed or disconnected without renumbering by hand; ``symbol()`` writes the
    indices back (the node list stays in topological order: new nodes are
    inserted right after the node they read).
    """

    def __init__(self, symbol):
        graph = json.loads(symbol.tojson())
        names = [node["name"] for node in graph["nodes"]]
        if len(set(names)) != len(names):
            raise ValueError("SymbolEditor needs unique node names")
        self.nodes: list[dict] = graph["nodes"]
        for node in self.nodes:
            node["inputs"] = [[names[src], out, version] for src, out, version in node["inputs"]]
        self.heads = [[names[src], out, version] for src, out, version in graph["heads"]]
        self.graph_attrs = graph.get("attrs", {})

    def _index(self, name: str) -> int:
        for index, node in enumerate(self.nodes):
            if node["name"] == name:
                return index
        close = [node["name"] for node in self.nodes if name.rsplit("/", 1)[-1] in node["name"]][:5]
        raise KeyError(f"no node {name!r} in the symbol; similar: {close}")

    def node(self, name: str) -> dict:
        return self.nodes[self._index(name)]

    def set_attrs(self, name: str, **attrs) -> "SymbolEditor":
        """Set operator attributes (written as MXNet writes them: strings)."""
        self.node(name).setdefault("attrs", {}).update({key: str(value) for key, value in attrs.items()})
        return self

    def data_inputs(self, name: str) -> list[str]:
        """Names of the op nodes (and ``data``) this node reads, in argument order."""
        return [src for src, _, _ in self.node(name)["inputs"] if not self._is_param(src)]

    def _is_param(self, name: str) -> bool:
        return name != "data" and self.node(name)["op"] == "null"

    def set_data_inputs(self, name: str, sources: list[str]) -> "SymbolEditor":
        """Replace the data inputs (parameters keep their places after them)."""
        node = self.node(name)
        params = [entry for entry in node["inputs"] if self._is_param(entry[0])]
        node["inputs"] = [[source, 0, 0] for source in sources] + params
        if "num_args" in node.get("attrs", {}):
            node["attrs"]["num_args"] = str(len(sources))
        return self

    def bypass(self, name: str) -> "SymbolEditor":
        """Make every reader of ``name`` read its first data input instead (drop the op)."""
        source = self.data_inputs(name)[0]
        for node in self.nodes:
            node["inputs"] = [[source, out, version] if src == name else [src, out, version]
                              for src, out, version in node["inputs"]]
        self.heads = [[source, out, version] if src == name else [src, out, version]
                      for src, out, version in self.heads]
        return self

    def insert_after(self, name: str, op: str, new_name: str, attrs: dict,
                     params: tuple[str, ...] = ()) -> "SymbolEditor":
        """Insert ``op`` reading ``name``; every former reader of ``name`` reads it instead."""
        for node in self.nodes:
            node["inputs"] = [[new_name, 0, 0] if src == name else [src, out, version]
                              for src, out, version in node["inputs"]]
        self.heads = [[new_name, 0, 0] if src == name else [src, out, version]
                      for src, out, version in self.heads]
        attrs = {key: str(value) for key, value in attrs.items()}
        new_nodes = [{"op": "null", "name": f"{new_name}_{param}", "inputs": []} for param in params]
        new_nodes.append({"op": op, "name": new_name, "attrs": attrs,
                          "inputs": [[name, 0, 0]] + [[f"{new_name}_{param}", 0, 0] for param in params]})
        where = self._index(name) + 1
        self.nodes[where:where] = new_nodes
        return self

    def rename(self, mapping: dict[str, str]) -> "SymbolEditor":
        """Rename nodes (and every reference to them)."""
        for node in self.nodes:
            node["name"] = mapping.get(node["name"], node["name"])
            node["inputs"] = [[mapping.get(src, src), out, version] for src, out, version in node["inputs"]]
        self.heads = [[mapping.get(src, src), out, version] for src, out, version in self.heads]
        return self

    def symbol(self):
        """The edited graph as an ``mx.sym.Symbol``."""
        index = {node["name"]: position for position, node in enumerate(self.nodes)}
        nodes = []
        for node in self.nodes:
            copy = dict(node)
            copy["inputs"] = [[index[src], out, version] for src, out, version in node["inputs"]]
            nodes.append(copy)
        graph = {"nodes": nodes,
                 "arg_nodes": [position for position, node in enumerate(nodes) if node["op"] == "null"],
                 "heads": [[index[src], out, version] for src, out, version in self.heads],
                 "attrs": self.graph_attrs}
        return mx.sym.load_json(json.dumps(graph))


def our_port(num_classes: int = 1001, align: bool = False, size: int = SIZE, full: bool = False):
    """Our registered port (AuxLogits on), reduced unless ``full``, pads derived for ``size``."""
    name = "inception_resnet_v2_align" if align else "inception_resnet_v2"
    spec = models.get_model(name) if full else reduced_spec(name)
    return models.mx_builder(spec, (size, size))(num_classes)


def reduced_spec(name: str) -> models.ModelSpec:
    """``name``'s registered pair with the port's REDUCED_REPEATS (one block of each kind) on both sides.

    Every broken port is cut from this network: the same layer kinds, fewer blocks.
    """
    spec = models.get_model(name)
    if spec.tf_kwargs.get("repeats") == port.REDUCED_REPEATS:
        return spec
    return replace(spec, name=f"{name}_reduced", tf_kwargs={**spec.tf_kwargs, "repeats": port.REDUCED_REPEATS},
                   mx_kwargs={**spec.mx_kwargs, "repeats": port.REDUCED_REPEATS})


#: TF builders (the project's contract) of the networks the broken ports are cut from;
#: the first is exactly what ``verify('inception_resnet_v2_reduced')`` builds.
tf_reduced = models.tf_builder(reduced_spec("inception_resnet_v2_reduced"))
tf_align_reduced = models.tf_builder(reduced_spec("inception_resnet_v2_align"))


class GraphCache:
    """``tf_reader.read_graph`` memoized per (builder name, size, classes, batch, mode).

    TF graphs of the same builder are identical, and building one costs seconds
    on a shared machine; tests that go through the CLI (which has no way to take
    a prebuilt graph) patch ``tf_reader.read_graph`` with this object.
    """

    def __init__(self, read_graph=tf_reader.read_graph):
        self.read_graph = read_graph
        self.graphs: dict = {}
        self.built: list = []  # keys actually built (not served from the cache)

    @staticmethod
    def _key(name, size, num_classes, batch, is_training):
        return (name, tuple(size), num_classes, batch, is_training)

    def seed(self, builder_name: str, tf_graph, num_classes: int = 1001, is_training: bool = True) -> None:
        batch, height, width, _ = tf_graph.images.shape.as_list()
        self.graphs[self._key(builder_name, (height, width), num_classes, batch, is_training)] = tf_graph

    def __call__(self, builder, size, num_classes, batch=1, is_training=False):
        key = self._key(getattr(builder, "__name__", None), size, num_classes, batch, is_training)
        if key[0] is None or key[0] == "<lambda>":
            return self.read_graph(builder, size, num_classes, batch, is_training)
        if key not in self.graphs:
            self.graphs[key] = self.read_graph(builder, size, num_classes, batch, is_training)
            self.built.append(key)
        return self.graphs[key]


#: One cache for the whole test session.
GRAPH_CACHE = GraphCache()


def scoped(name: str) -> str:
    return f"{SCOPE}/{name}"


# ------------------------------------------------------------------ the defects

B17 = scoped("Repeat_1/block17_1")
B35 = scoped("Repeat/block35_1")


def wrong_pad_undone(editor: SymbolEditor) -> None:
    """1x7 conv padded (3, 0) instead of (0, 3): 17x17 -> 23x11; the 7x1 padded (0, 3)
    instead of (3, 0) turns 23x11 back into 17x17, so every later shape is right."""
    editor.set_attrs(f"{B17}/Branch_1/Conv2d_0b_1x7", pad=(3, 0))
    editor.set_attrs(f"{B17}/Branch_1/Conv2d_0c_7x1", pad=(0, 3))


def extra_filter(editor: SymbolEditor) -> None:
    """49 filters instead of 48 in a branch; the next 3x3 conv absorbs the extra channel."""
    editor.set_attrs(f"{B35}/Branch_2/Conv2d_0b_3x3", num_filter=49)


def missing_batch_norm(editor: SymbolEditor) -> None:
    """The batch norm of Mixed_6a's stride-2 Branch_0 conv left out (conv straight into relu)."""
    editor.bypass(scoped("Mixed_6a/Branch_0/Conv2d_1a_3x3/BatchNorm"))


def added_batch_norm(editor: SymbolEditor) -> None:
    """A batch norm after the residual up-projection, which slim leaves linear (conv + bias)."""
    up = f"{B35}/Conv2d_1x1"
    editor.insert_after(up, "BatchNorm", f"{up}/BatchNorm",
                        {"eps": 0.001, "momentum": 0.9997, "fix_gamma": True},
                        params=("gamma", "beta", "moving_mean", "moving_var"))


def dropped_branch(editor: SymbolEditor) -> None:
    """Branch_0 disconnected from the block35 concat; the 1x1 up-projection absorbs the
    missing 32 channels, so the block's output shape is still right."""
    concat = f"{B35}/concat"
    editor.set_data_inputs(concat, editor.data_inputs(concat)[1:])


def swapped_concat(editor: SymbolEditor) -> None:
    """Mixed_5b concatenates Branch_2 (96) before Branch_1 (64): same 320 channels, permuted."""
    concat = scoped("Mixed_5b/concat")
    b0, b1, b2, b3 = editor.data_inputs(concat)
    editor.set_data_inputs(concat, [b0, b2, b1, b3])


def valid_given_same_pads(editor: SymbolEditor) -> None:
    """Conv2d_2a_3x3 is VALID in slim; given SAME's pad=1 it outputs 149x149, not 147x147.
    The stem later floors it away: MaxPool_5a is 35x35 on both sides."""
    editor.set_attrs(scoped("Conv2d_2a_3x3"), pad=(1, 1))


def symmetric_stride2_same(editor: SymbolEditor) -> None:
    """align_feature_maps at 150: Conv2d_1a_3x3 (3x3/2 SAME) needs pads (0, 1); the pad op
    is dropped and pad=1 given instead: the same 75x75, windows shifted by one pixel."""
    conv = scoped("Conv2d_1a_3x3")
    editor.bypass(f"{conv}/pad")
    editor.set_attrs(conv, pad=(1, 1))


@dataclass(frozen=True)
class BrokenPort:
    """One deliberately broken port and what the verifier must say about it.

    Attributes:
        name: short id (the pytest parameter id).
        edit: changes our port's symbol in place (a ``SymbolEditor``).
        layer: the row's layer name the verifier must flag (TF name; the MXNet
            name for a layer only MXNet has).
        status: the row's status (a ``porting.core.diff.Status`` value).
        field: the ``Defect.field`` of that row.
        align: built from the align_feature_maps variant at ALIGN_SIZE.
        also: other (layer, status) rows the defect legitimately causes.

    Every defect here keeps the network's output shapes: ``infer_shape`` on the
    outputs alone cannot see any of them.
    """

    name: str
    edit: Callable[[SymbolEditor], None]
    layer: str
    status: str
    field: str
    align: bool = False
    also: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def size(self) -> int:
        return ALIGN_SIZE if self.align else SIZE

    @property
    def description(self) -> str:
        return " ".join((self.edit.__doc__ or "").split())

    def symbol(self, num_classes: int = 1001):
        editor = SymbolEditor(our_port(num_classes, self.align, self.size))
        self.edit(editor)
        return editor.symbol()

    def builder(self) -> Callable[[int], object]:
        """The MX builder contract ``fn(num_classes) -> Symbol``."""
        def build(num_classes: int = 1001):
            return self.symbol(num_classes)

        build.__name__ = f"broken_{self.name}"
        return build


BROKEN_PORTS = (
    BrokenPort("wrong_pad_undone", wrong_pad_undone, f"{B17}/Branch_1/Conv2d_0b_1x7", "shape_mismatch", "shape",
               also=((f"{B17}/Branch_1/Conv2d_0c_7x1", "attr_mismatch"),)),
    BrokenPort("extra_filter", extra_filter, f"{B35}/Branch_2/Conv2d_0b_3x3", "shape_mismatch", "channels"),
    BrokenPort("missing_batch_norm", missing_batch_norm, scoped("Mixed_6a/Branch_0/Conv2d_1a_3x3/BatchNorm"),
               "only_tf", "missing_layer"),
    BrokenPort("added_batch_norm", added_batch_norm, f"{B35}/Conv2d_1x1/BatchNorm", "only_mx", "extra_layer"),
    BrokenPort("dropped_branch", dropped_branch, f"{B35}/Branch_0/Conv2d_1x1", "only_tf", "missing_layer",
               also=((f"{B35}/concat", "shape_mismatch"),)),
    BrokenPort("swapped_concat", swapped_concat, scoped("Mixed_5b/concat"), "attr_mismatch", "inputs"),
    BrokenPort("valid_given_same_pads", valid_given_same_pads, scoped("Conv2d_2a_3x3"), "shape_mismatch", "shape",
               also=tuple((scoped(name), "shape_mismatch") for name in
                          ("Conv2d_2b_3x3", "MaxPool_3a_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"))
               + ((scoped("MaxPool_5a_3x3"), "attr_mismatch"),)),
    BrokenPort("symmetric_stride2_same", symmetric_stride2_same, scoped("Conv2d_1a_3x3"), "attr_mismatch", "pads",
               align=True),
)


# ------------------------------------------------------------- automatic names

def auto_named(symbol):
    """The same network with MXNet's automatic names: no slim scope name survives.

    Op nodes become ``<op><n>`` as ``mx.sym`` names them when no name is given
    (``convolution12``, ``batchnorm3``, ``activation40``...), parameters
    ``<new op name>_<role>`` (``convolution12_weight``); ``data`` keeps its name.
    """
    editor = SymbolEditor(symbol)
    counts: Counter = Counter()
    mapping: dict[str, str] = {}
    for node in editor.nodes:
        if node["op"] == "null":
            continue
        stem = node["op"].lower().lstrip("_").replace("_", "")
        mapping[node["name"]] = f"{stem}{counts[stem]}"
        counts[stem] += 1
    for node in editor.nodes:
        if node["op"] != "null" or node["name"] == "data":
            continue
        for old, new in mapping.items():
            suffix = node["name"][len(old):]
            if node["name"].startswith(old) and suffix in _PARAM_SUFFIXES:
                mapping[node["name"]] = new + suffix
                break
        else:
            raise ValueError(f"parameter {node['name']!r} belongs to no op")
    return editor.rename(mapping).symbol()


def auto_named_builder(align: bool = False, size: int = SIZE, full: bool = False) -> Callable[[int], object]:
    """MX builder contract for :func:`auto_named` of our port (reduced unless ``full``)."""
    def build(num_classes: int = 1001):
        return auto_named(our_port(num_classes, align, size, full))

    build.__name__ = "auto_named_port"
    return build


BY_NAME = {broken.name: broken for broken in BROKEN_PORTS}

# Module-level MX builders, so the CLI can load them: --mx tests/support/broken_ports.py:mx_<name>.
for _broken in BROKEN_PORTS:
    globals()[f"mx_{_broken.name}"] = _broken.builder()
mx_auto_named = auto_named_builder()
