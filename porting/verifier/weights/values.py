"""TF variable values: read from a checkpoint or a session, assigned, seeded, written back.

``CheckpointValues`` reads slim/Saver name-based and ``tf.train.Checkpoint`` object-based
checkpoints lazily as name -> array; ``seeded_values`` draws values that exercise every
numeric check of parity; ``write_tf_checkpoint`` saves values with TF's own ``Saver``.
"""
from __future__ import annotations

import os
import shutil
import zlib
from collections.abc import Mapping as MappingABC
from pathlib import Path

import numpy as np

from porting import compat, util
from porting.core.records import Kind
from porting.verifier.weights.mapping import SOURCE_VARIABLE, TransferPlan, WeightTransferError, to_shape

#: Checkpoint entries that are bookkeeping of the checkpoint format, never model values.
_CHECKPOINT_BOOKKEEPING = ("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter")


class CheckpointValues(MappingABC):
    """A TF checkpoint (slim/Saver name-based, or tf.train.Checkpoint object-based) as name -> array.

    Keys are TF variable names (``InceptionResnetV2/Conv2d_1a_3x3/weights``). For an
    object-based checkpoint the names come from the object graph's ``full_name``
    (the variable's name when it was saved). Values are read lazily.
    """

    def __init__(self, path: str | os.PathLike):
        tf = compat.import_tf()
        self.path = str(path)
        prefix = self.path
        if os.path.isdir(prefix):
            found = tf.train.latest_checkpoint(prefix)
            if found is None:
                raise FileNotFoundError(f"no TF checkpoint in directory {prefix}")
            prefix = found
        if not (os.path.exists(prefix + ".index") or os.path.exists(prefix)):
            raise FileNotFoundError(f"TF checkpoint {prefix!r} not found (expected {prefix}.index and data files)")
        try:
            self._reader = tf.train.load_checkpoint(prefix)
        except Exception as error:  # NotFoundError / DataLossError: say which file
            raise FileNotFoundError(f"cannot read TF checkpoint {prefix!r}: {error}") from error
        self.prefix = prefix
        shapes = self._reader.get_variable_to_shape_map()
        self._keys: dict[str, str] = {}
        if "_CHECKPOINTABLE_OBJECT_GRAPH" in shapes:
            from tensorflow.core.protobuf import trackable_object_graph_pb2

            graph = trackable_object_graph_pb2.TrackableObjectGraph()
            graph.ParseFromString(self._reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
            for node in graph.nodes:
                for attribute in node.attributes:
                    if attribute.checkpoint_key in shapes:
                        name = attribute.full_name or attribute.checkpoint_key
                        self._keys[name] = attribute.checkpoint_key
        named = set(self._keys.values())
        for key in shapes:  # name-based (Saver, slim) entries, and object entries without a full name
            if key not in named and key not in self._keys:
                self._keys[key] = key
        self._keys = {name: key for name, key in self._keys.items()
                      if name not in _CHECKPOINT_BOOKKEEPING and key not in _CHECKPOINT_BOOKKEEPING}
        self._shapes = {name: to_shape(shapes[key]) for name, key in self._keys.items()}

    def shape(self, name: str) -> tuple[int, ...]:
        return self._shapes[name]

    def __getitem__(self, name: str) -> np.ndarray:
        value = np.asarray(self._reader.get_tensor(self._keys[name]))
        if value.dtype != np.float32 and np.issubdtype(value.dtype, np.floating):
            value = value.astype(np.float32)
        return value

    def __iter__(self):
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, name) -> bool:
        return name in self._keys


def value_shape(values: MappingABC, name: str) -> tuple[int, ...]:
    """The shape of one value, without reading a checkpoint value from disk."""
    if isinstance(values, CheckpointValues):
        return values.shape(name)
    return to_shape(np.shape(values[name]))


def values_from_session(session, tf_graph, plan: TransferPlan) -> dict[str, np.ndarray]:
    """Current values of every TF variable the plan uses, read from a live session in one run."""
    fetches = {}
    for mapping in plan.mappings:
        if mapping.source == SOURCE_VARIABLE and mapping.tf_name not in fetches:
            fetches[mapping.tf_name] = tf_graph.graph.get_tensor_by_name(mapping.tf_tensor)
    return session.run(fetches) if fetches else {}


def assign_values(session, graph, values: MappingABC) -> None:
    """Set TF variables to values in one run (by feeding each variable's initializer).

    Variables not in the graph's variable collections get an assign op.
    """
    tf = compat.import_tf()
    by_name = {variable.op.name: variable
               for variable in graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)
               + graph.get_collection(tf.compat.v1.GraphKeys.LOCAL_VARIABLES)}
    ops, feed = [], {}
    for name in values:
        value = np.asarray(values[name])
        variable = by_name.get(name)
        if variable is not None and len(variable.initializer.inputs) > 1:
            ops.append(variable.initializer)
            feed[variable.initializer.inputs[1]] = value
            continue
        op = graph.get_operation_by_name(name)
        with graph.as_default():
            holder = tf.compat.v1.placeholder(op.get_attr("dtype"), value.shape, name=None)
            if op.type == "VarHandleOp":
                assign = tf.raw_ops.AssignVariableOp(resource=op.outputs[0], value=holder)
            else:
                assign = tf.compat.v1.assign(op.outputs[0], holder)
        ops.append(assign)
        feed[holder] = value
    if ops:
        session.run(ops, feed_dict=feed)


def seeded_values(plan: TransferPlan, seed: int = 0) -> dict[str, np.ndarray]:
    """Random values for every TF variable that exercise everything numeric parity checks.

    Conv/dense weights ~ He-uniform (std sqrt(2/fan_in)) so activations stay O(1) through depth;
    betas and biases ~ N(0, 0.1); gamma ~ U(0.5, 1.5); moving mean ~ N(0, 0.1); moving
    variance ~ U(0.5, 1.5). Each variable has its own stream seeded by (seed, name), so
    a value does not depend on which other variables exist.
    """
    roles = plan.roles()
    values = {}
    for name, shape in plan.tf_variables.items():
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode())])
        role, kind, mapping = roles.get(name, (None, None, None))
        if role == "weight":
            if mapping.pre_transpose:
                fan_in = int(shape[-1]) if len(shape) == 2 else 1
            elif kind == Kind.DWCONV:
                fan_in = int(np.prod(shape[:2]))
            else:
                fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            # He-uniform: U(-a, a) with a = sqrt(6 / fan_in), so std = sqrt(2 / fan_in) (twice as
            # fast to draw as a normal, which matters for 59M weights).
            value = rng.random(shape, dtype=np.float32)
            value -= np.float32(0.5)
            value *= np.float32(2.0 * np.sqrt(6.0 / max(fan_in, 1)))
            values[name] = value
        elif role in ("gamma", "moving_var"):
            values[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:  # beta, bias, moving_mean, and variables no parameter takes
            values[name] = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.1)
    return values


def write_tf_checkpoint(tf_graph, values: MappingABC, path: str | os.PathLike) -> str:
    """Save values into a TF checkpoint with TF's own ``Saver``; returns the prefix written.

    Only the variables given are saved (a variable with no value is never written
    with its initializer's value). Keys are the TF variable names, as slim's.
    """
    tf = compat.import_tf()
    graph = tf_graph.graph
    by_name = {variable.op.name: variable
               for variable in graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)}
    unknown = [name for name in values if name not in by_name]
    if unknown:
        raise WeightTransferError(f"{len(unknown)} values name no variable of the TF graph: {', '.join(unknown[:10])}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with graph.as_default():
        saver = tf.compat.v1.train.Saver({name: by_name[name] for name in values}, write_version=2,
                                         save_relative_paths=True)
    # Saved into a temporary folder beside the target, then renamed into place (data files,
    # then the index, then the 'checkpoint' state file): an interrupted or failed write
    # leaves the old checkpoint or the new one, never an index without its data.
    staging = util.temp_path(path.parent / f"{path.name}.staging")
    try:
        staging.mkdir()
        with tf.compat.v1.Session(graph=graph) as session:
            assign_values(session, graph, values)
            saver.save(session, str(staging / path.name), write_meta_graph=False)
        written = sorted(staging.iterdir(), key=lambda item: (item.name == "checkpoint",
                                                             item.name.endswith(".index")))
        for item in written:
            os.replace(item, path.parent / item.name)
        util.fsync_dir(path.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(path)
