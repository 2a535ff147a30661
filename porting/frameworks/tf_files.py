"""The TF side from a model FILE: checkpoint + .meta, frozen .pb, SavedModel directory, Keras .h5 / .keras.

Every kind becomes the same thing: one frozen graph carrying its own weights as constants,
imported into a fresh ``tf.Graph`` behind a fixed-shape NHWC input placeholder (a batch or
spatial size the file leaves open is fed at ``--batch`` / ``--size``), read into records by
``tf_reader.records_from_graph`` like a builder's graph. The weight constants are marked
(``tf_variables.mark_frozen``) so the reader, the lint and the weight transfer see them as a
slim graph's variables; the result is a ``TfGraph`` with ``own_weights=True``.

The input is the one float rank-4 placeholder (else ``--tf-input NAME``), the output the logits:
the one rank-2 float op at the end of the data path, a softmax replaced by its input (else
``--tf-output NAME``). Checkpoints, frozen graphs and SavedModels are read as graphs: data, never
run as Python. Their variables are restored by a saver of ours (no restore or init op the file
names runs), and a network holding ops that touch files or call Python (``UNSAFE_OPS``) is
refused. A Keras file is loaded by tf-keras; one whose ``Lambda`` layers carry Python code is
refused unless trusted (``keras_models.load``).

Detection (:func:`file_kind`) imports no framework, so a bad path is refused before TF loads.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from porting.util import UsageError

#: The kinds of model file the TF side takes, as the messages list them.
ACCEPTED = ("a TF1 checkpoint prefix with its .meta (PREFIX.meta, PREFIX.index, PREFIX.data-*)",
            "a frozen GraphDef .pb", "a SavedModel directory (saved_model.pb)", "a Keras .h5 / .keras file")
#: File suffixes that name a model file (a checkpoint prefix has none of its own).
MODEL_SUFFIXES = (".meta", ".pb", ".h5", ".hdf5", ".keras")
#: Ops on the data path that are training machinery, never the network's output.
_NOT_OUTPUTS = ("gradients/", "save/", "train/", "Adam", "Momentum", "RMSProp", "GradientDescent")
#: Op types a model file's network must not hold: they touch files or call Python. Numeric parity
#: runs the network's ops; a crafted graph could hang one on the logits by a control edge.
UNSAFE_OPS = frozenset({"WriteFile", "ReadFile", "MatchingFiles", "PyFunc", "PyFuncStateless", "EagerPyFunc",
                        "Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2", "RestoreSlice",
                        "MergeV2Checkpoints", "WholeFileReader", "WholeFileReaderV2", "ImmutableConst"})
#: Layer ops whose parameter inputs (by index) hold weights: a ``Const`` read there through
#: ``Identity`` was a variable before freezing (a conv or dense weight always was).
_PARAMETER_INPUTS = {"Conv2D": (1,), "DepthwiseConv2dNative": (1,), "MatMul": (1,), "BiasAdd": (1,),
                     "FusedBatchNorm": (1, 2, 3, 4), "FusedBatchNormV2": (1, 2, 3, 4),
                     "FusedBatchNormV3": (1, 2, 3, 4)}
_ALWAYS_WEIGHTS = {"Conv2D", "DepthwiseConv2dNative", "MatMul"}


def accepted_text() -> str:
    return "; ".join(ACCEPTED)


def file_kind(value) -> str | None:
    """'checkpoint', 'frozen', 'savedmodel' or 'keras' for a model file path; None when ``value`` is none."""
    if not isinstance(value, (str, Path)):
        return None
    text = str(value)
    path = Path(text)
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "savedmodel"
        return None
    if path.suffix in (".h5", ".hdf5", ".keras") and path.is_file():
        return "keras"
    if path.suffix == ".pb" and path.is_file():
        return "frozen"
    if path.suffix == ".meta" and path.is_file():
        return "checkpoint"
    if Path(text + ".meta").is_file():
        return "checkpoint"
    return None


def check_model_file(value: str) -> str:
    """The kind of a model file that exists, or one UsageError naming what is wrong and the accepted kinds."""
    kind = file_kind(value)
    if kind is not None:
        return kind
    path = Path(str(value))
    if path.is_dir():
        raise UsageError(f"--tf: {path} is a directory without saved_model.pb; expected {accepted_text()}, "
                         "or a builder path/to/file.py:function")
    if Path(f"{value}.index").is_file():
        raise UsageError(f"--tf: the checkpoint {value} has no {value}.meta (its graph); give the builder that "
                         "makes its graph (path/to/file.py:function) with --weights instead, or save the .meta")
    if path.suffix in MODEL_SUFFIXES:
        raise UsageError(f"--tf: {path} does not exist or is not a file")
    raise UsageError(f"--tf: {value!r} is neither a builder path/to/file.py:function nor a model file "
                     f"(expected {accepted_text()})")


@dataclass
class LoadOptions:
    """How to read a model file: names of its input and output, and what to trust."""

    tf_input: str | None = None
    tf_output: str | None = None
    trust_keras_code: bool = False
    keras_objects: str | None = None


# ------------------------------------------------------------------ one frozen GraphDef per kind

def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def _op_name(name: str) -> str:
    return name.split(":")[0].lstrip("^")


def _input_candidates(graph) -> list:
    return [op for op in graph.get_operations()
            if op.type in ("Placeholder", "PlaceholderWithDefault") and op.outputs
            and op.outputs[0].dtype.is_floating and op.outputs[0].shape.rank == 4]


def _named_op(graph, name: str, flag: str, path, candidates: str):
    """The op ``flag`` names; a UsageError listing the ``candidates`` when the graph has none of that name."""
    try:
        return graph.get_operation_by_name(_op_name(name))
    except (KeyError, ValueError):
        raise UsageError(f"{flag} {name}: no such op in {path}; {candidates}") from None


def _find_input(graph, name: str | None, path):
    """The input placeholder: the named one, else the one float rank-4 placeholder."""
    candidates = _input_candidates(graph)
    listed = ", ".join(f"{op.name} {_shape_text(op.outputs[0])}" for op in candidates) or "none"
    if name is not None:
        op = _named_op(graph, name, "--tf-input", path, f"float rank-4 placeholders: {listed}")
        if op not in candidates:
            raise UsageError(f"--tf-input {name}: {op.type} {_shape_text(op.outputs[0]) if op.outputs else ''} is "
                             f"not a float rank-4 (NHWC) placeholder; candidates: {listed}")
        return op
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise UsageError(f"--tf: {path} has no float rank-4 (NHWC image) input placeholder; "
                         f"placeholders: {', '.join(op.name for op in graph.get_operations() if op.type == 'Placeholder') or 'none'}")
    raise UsageError(f"--tf: {path} has {len(candidates)} image inputs ({listed}); name one with --tf-input NAME")


def _shape_text(tensor) -> str:
    if tensor.shape.rank is None:
        return "(unknown shape)"
    return "x".join("?" if dim is None else str(dim) for dim in tensor.shape.as_list())


def _forward_ops(input_op) -> list:
    """Ops reachable from the input along float tensors, training machinery excluded, in graph order."""
    from porting.core.graph_walk import reachable

    def readers(op):
        return [reader for tensor in op.outputs if tensor.dtype.is_floating for reader in tensor.consumers()
                if not any(part in reader.name for part in _NOT_OUTPUTS)]

    seen = reachable([input_op], readers)
    return [op for op in input_op.graph.get_operations() if op in seen]


def _output_candidates(input_op) -> list:
    """Ends of the data path whose output is (N, classes): the softmax's input for a softmax."""
    forward = _forward_ops(input_op)
    inside = set(forward)
    ends = []
    for op in forward:
        floats = [t for t in op.outputs if t.dtype.is_floating]
        if not floats or any(reader in inside for t in floats for reader in t.consumers()):
            continue
        tensor = floats[0]
        if op.type == "Softmax":
            tensor = op.inputs[0]
            while tensor.op.type in ("Identity", "Reshape", "Squeeze") and tensor.shape.rank == 2 \
                    and tensor.op.inputs[0].shape.rank == 2:
                tensor = tensor.op.inputs[0]
        if tensor.shape.rank == 2 and tensor.op not in ends:
            ends.append(tensor.op)
    return ends


def _find_output(input_op, name: str | None, path):
    """The logits op: the named one, else the one rank-2 end of the data path."""
    graph = input_op.graph
    candidates = _output_candidates(input_op)
    listed = ", ".join(f"{op.name} ({op.type} {_shape_text(op.outputs[0])})" for op in candidates) or "none"
    if name is not None:
        op = _named_op(graph, name, "--tf-output", path, f"candidate outputs: {listed}")
        if op not in set(_forward_ops(input_op)):
            raise UsageError(f"--tf-output {name}: {op.type} does not depend on the input {input_op.name}; "
                             f"candidate outputs: {listed}")
        return op
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise UsageError(f"--tf: {path}: no rank-2 (N x classes) output depends on the input {input_op.name}; "
                         "name the output with --tf-output NAME")
    raise UsageError(f"--tf: {path} has {len(candidates)} candidate outputs ({listed}); "
                     "name the logits with --tf-output NAME")


def _freeze(session, graph, output_op):
    """The graph's subgraph up to ``output_op`` with every variable replaced by its value."""
    tf = _tf()
    try:
        return tf.compat.v1.graph_util.convert_variables_to_constants(session, graph.as_graph_def(),
                                                                      [output_op.name])
    except Exception as error:
        raise UsageError(f"--tf: cannot freeze the graph's variables: {_first_line(error)}") from error


def _restore(session, graph, prefix: str, where: str) -> None:
    """Restore the graph's variables from a checkpoint with a saver of our own.

    Not the file's own saver: its restore op is whatever the file names, and a model file
    must not choose which ops run while it is read.
    """
    tf = _tf()
    with graph.as_default():
        variables = graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)
        if not variables:
            return
        try:
            tf.compat.v1.train.Saver(var_list=variables).restore(session, prefix)
        except Exception as error:
            raise UsageError(f"--tf: cannot restore the variables of {where} from {prefix} (expected "
                             f"{prefix}.index and {prefix}.data-*): {_first_line(error)}") from error


def _from_checkpoint(path: str, options: LoadOptions):
    tf = _tf()
    prefix = path[:-len(".meta")] if path.endswith(".meta") else path
    meta = f"{prefix}.meta"
    graph = tf.Graph()
    with graph.as_default():
        try:
            tf.compat.v1.train.import_meta_graph(meta, clear_devices=True)
        except Exception as error:
            raise UsageError(f"--tf: {meta} is not a readable TF meta graph: {_first_line(error)}") from error
    input_op = _find_input(graph, options.tf_input, meta)
    output_op = _find_output(input_op, options.tf_output, meta)
    with tf.compat.v1.Session(graph=graph) as session:
        _restore(session, graph, prefix, f"the checkpoint {prefix}")
        frozen = _freeze(session, graph, output_op)
    return frozen, input_op.name, output_op.name, input_op.outputs[0].shape.as_list()


def _from_frozen(path: str, options: LoadOptions):
    tf = _tf()
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(Path(path).read_bytes())
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
    except Exception as error:
        raise UsageError(f"--tf: {path} is not a readable frozen GraphDef: {_first_line(error)}") from error
    variables = [op.name for op in graph.get_operations() if op.type in ("VariableV2", "VarHandleOp")]
    if variables:
        raise UsageError(f"--tf: {path} is not frozen: it holds {len(variables)} variables ({variables[0]}, ...) "
                         "without their values; give the checkpoint (PREFIX with its .meta) instead")
    input_op = _find_input(graph, options.tf_input, path)
    output_op = _find_output(input_op, options.tf_output, path)
    frozen = tf.compat.v1.graph_util.extract_sub_graph(graph_def, [output_op.name])
    return frozen, input_op.name, output_op.name, input_op.outputs[0].shape.as_list()


def _from_saved_model(path: str, options: LoadOptions):
    tf = _tf()
    graph = tf.Graph()
    from tensorflow.python.saved_model import loader_impl

    with tf.compat.v1.Session(graph=graph) as session:
        try:  # the graph only: no init op of the file's choosing runs (see _restore)
            loader = loader_impl.SavedModelLoader(path)
            meta_graph = loader.get_meta_graph_def_from_tags(["serve"])
            loader.load_graph(graph, ["serve"])
        except Exception as error:
            raise UsageError(f"--tf: cannot load the SavedModel {path} (tag 'serve'): {_first_line(error)}") from error
        _restore(session, graph, loader.variables_path, f"the SavedModel {path}")
        signature = meta_graph.signature_def.get("serving_default")
        tf_input, tf_output = options.tf_input, options.tf_output
        if signature is not None:
            if tf_input is None and len(signature.inputs) == 1:
                tf_input = next(iter(signature.inputs.values())).name
            if tf_output is None and len(signature.outputs) == 1:
                tf_output = next(iter(signature.outputs.values())).name
        input_op = _find_input(graph, tf_input, path)
        output_op = _find_output(input_op, tf_output, path)
        if output_op.type == "Softmax" and options.tf_output is None:
            output_op = output_op.inputs[0].op  # a serving signature's probabilities: compare at the logits
        functions = any(op.type in _CALLS for op in _forward_ops(input_op))
        frozen = None if functions else _freeze(session, graph, output_op)
    if functions:  # read eagerly, outside this graph
        return _from_saved_model_v2(path, options)
    return frozen, input_op.name, output_op.name, input_op.outputs[0].shape.as_list()


_CALLS = ("PartitionedCall", "StatefulPartitionedCall")


def _from_saved_model_v2(path: str, options: LoadOptions):
    """A TF2 SavedModel (layers inside functions): its serving signature, functions inlined and frozen.

    The frozen function names its weight constants after its capture placeholders ('unknown_3');
    they take the names of the variables they were ('stem_conv/kernel'), and the call's own
    prefix is dropped, so records read like a TF1 graph's.
    """
    tf = _tf()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    try:
        loaded = tf.saved_model.load(path)
        signature = loaded.signatures.get("serving_default") or next(iter(loaded.signatures.values()))
        frozen = convert_variables_to_constants_v2(signature)
    except StopIteration:
        raise UsageError(f"--tf: the SavedModel {path} has no signature to read its graph from") from None
    except Exception as error:
        raise UsageError(f"--tf: cannot read the TF2 SavedModel {path}: {_first_line(error)}") from error
    by_handle = {id(variable.handle): variable.name.split(":")[0] for variable in loaded.variables}
    renames = {internal.op.name: by_handle[id(external)] for external, internal in signature.graph.captures
               if id(external) in by_handle}
    graph_def = frozen.graph.as_graph_def()
    taken = {node.name for node in graph_def.node}
    for node in graph_def.node:
        if node.name.startswith("StatefulPartitionedCall/") and node.name not in renames:
            renames[node.name] = node.name[len("StatefulPartitionedCall/"):]
    renames = {old: new for old, new in renames.items() if new not in taken}
    _rename(graph_def, renames)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    names = [tensor.name for tensor in frozen.inputs if tensor.dtype.is_floating and tensor.shape.rank == 4]
    input_op = _find_input(graph, options.tf_input or (names[0] if len(names) == 1 else None), path)
    output_op = _find_output(input_op, options.tf_output, path)
    return graph_def, input_op.name, output_op.name, input_op.outputs[0].shape.as_list()


def _rename(graph_def, renames: dict[str, str]) -> None:
    """Rename nodes of a GraphDef in place, and every input that names them ('x', 'x:1', '^x')."""
    for node in graph_def.node:
        node.name = renames.get(node.name, node.name)
        for index, name in enumerate(node.input):
            control = name.startswith("^")
            base, colon, port = name.lstrip("^").partition(":")
            if base in renames:
                node.input[index] = ("^" if control else "") + renames[base] + colon + port


def _from_keras(path: str, options: LoadOptions):
    tf = _tf()
    from porting.frameworks import keras_models

    graph = tf.Graph()
    with graph.as_default(), keras_models.learning_phase(False):
        model = keras_models.load(Path(path), options.trust_keras_code, options.keras_objects)
        session = keras_models.session()
        input_op = _find_input(graph, options.tf_input or (model.inputs[0].op.name if len(model.inputs) == 1 else None),
                               path)
        output = options.tf_output
        if output is None and len(model.outputs) == 1:
            output = model.outputs[0].op.name
        output_op = _find_output(input_op, output, path)
        if output_op.type == "Softmax" and options.tf_output is None:
            output_op = output_op.inputs[0].op  # Dense(activation='softmax'): its logits are the pre-softmax op
        frozen = _freeze(session, graph, output_op)
    return frozen, input_op.name, output_op.name, input_op.outputs[0].shape.as_list()


_LOADERS = {"checkpoint": _from_checkpoint, "frozen": _from_frozen, "savedmodel": _from_saved_model,
            "keras": _from_keras}


# ------------------------------------------------------------------ the TF side

def _fed_shape(file_shape, size, batch: int, path) -> list[int]:
    """[N, H, W, C]: the file's fixed dimensions, the open ones at ``batch`` / ``size``."""
    n, h, w, c = file_shape
    if c is None:
        raise UsageError(f"--tf: the input of {path} has an open channel count; expected NHWC with C fixed")
    fixed = (h, w)
    if size is not None and all(dim is not None for dim in fixed) and tuple(size) != fixed:
        raise UsageError(f"--size {size[0]}x{size[1]}: the input of {path} is fixed at {h}x{w}")
    if n is not None and n != batch:
        raise UsageError(f"--batch {batch}: the input of {path} is fixed at batch {n}")
    default = (299, 299) if size is None else size
    return [batch, h if h is not None else default[0], w if w is not None else default[1], c]


def frozen_weights(graph) -> list[str]:
    """The ``Const`` ops of a frozen graph that were its weights (see ``_PARAMETER_INPUTS``)."""
    from porting.frameworks import tf_variables

    names = set()
    for op in graph.get_operations():
        for index in _PARAMETER_INPUTS.get(op.type, ()):
            if index >= len(op.inputs):
                continue
            source, reads = op.inputs[index].op, 0
            while source.type in tf_variables.READ_OPS and source.inputs and reads < tf_variables.MAX_READ_STEPS:
                source, reads = source.inputs[0].op, reads + 1
            if source.type == "Const" and source.outputs[0].dtype.is_floating \
                    and (reads > 0 or op.type in _ALWAYS_WEIGHTS):
                names.add(source.name)
    return sorted(names)


def _refuse_unsafe_ops(graph_def, path) -> None:
    nodes = list(graph_def.node) + [node for function in graph_def.library.function for node in function.node_def]
    unsafe = sorted({f"{node.op} ({node.name})" for node in nodes if node.op in UNSAFE_OPS})
    if unsafe:
        raise UsageError(f"--tf: the network in {path} holds ops that touch files or run Python: "
                         f"{', '.join(unsafe[:4])}{', ...' if len(unsafe) > 4 else ''}; refused (a model file is data)")


def read_model_file(path: str, size=None, batch: int = 1, options: LoadOptions | None = None):
    """The TF side of a model file as a ``tf_reader.TfGraph`` with its own weights (``own_weights=True``)."""
    from porting import compat
    from porting.frameworks import tf_reader, tf_variables

    tf = compat.import_tf()
    options = options or LoadOptions()
    kind = check_model_file(path)
    graph_def, input_name, output_name, file_shape = _LOADERS[kind](str(path), options)
    shape = _fed_shape(file_shape, size, batch, path)
    _refuse_unsafe_ops(graph_def, path)
    kept = type(graph_def)()
    kept.versions.CopyFrom(graph_def.versions)
    kept.library.CopyFrom(graph_def.library)
    kept.node.extend(node for node in graph_def.node if node.name != input_name)
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, shape, name=input_name)
        try:
            tf.compat.v1.import_graph_def(kept, input_map={f"{input_name}:0": images}, name="")
        except Exception as error:
            raise UsageError(f"--tf: {path} does not import at input {'x'.join(map(str, shape))}: "
                             f"{_first_line(error)}") from error
    tf_variables.mark_frozen(graph, frozen_weights(graph))
    logits = graph.get_operation_by_name(output_name).outputs[0]
    records, tensors, owner = tf_reader.records_from_graph(graph, images, [logits])
    end_points = {"Logits": logits}
    end_point_records = {"Logits": owner[logits.op.name]} if logits.op.name in owner else {}
    return tf_reader.TfGraph(graph, images, logits, end_points, records, tensors, end_point_records,
                             is_training=False, own_weights=True)


def _tf():
    from porting import compat

    return compat.import_tf()
