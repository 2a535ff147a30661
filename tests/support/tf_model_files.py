"""Model files of the tiny slim network (tests/support/tiny_tf.py), written the ways users hold theirs.

``write_all(folder)`` builds ``tiny_tf.build`` on an 8x8 input with an open batch size, gives its
variables seeded values, and writes them as a TF1 checkpoint with its ``.meta``, a frozen ``.pb``
and a SavedModel directory. ``two_heads`` (two logits outputs) and ``two_inputs`` (two image
placeholders) are the ambiguous graphs; ``no_image_input`` has only a rank-2 input.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from porting import compat
from tests.support import tiny_tf

tf = compat.import_tf()
slim = compat.import_slim()

CLASSES = 5
SIZE = 8


def _seeded(session, graph, seed: int) -> None:
    """Every variable of the graph set to seeded values (biases non-zero, so a lost bias shows)."""
    rng = np.random.default_rng(seed)
    with graph.as_default():
        variables = tf.compat.v1.global_variables()
        session.run(tf.compat.v1.global_variables_initializer())
        for variable in variables:
            shape = variable.shape.as_list()
            variable.load(rng.normal(0.0, 0.3, shape).astype(np.float32), session)


def _save(graph, session, output: str, folder: Path) -> dict[str, str]:
    """Checkpoint + .meta, frozen .pb and SavedModel of a built graph whose input is 'images'."""
    folder.mkdir(parents=True, exist_ok=True)
    with graph.as_default():
        saver = tf.compat.v1.train.Saver()
        prefix = saver.save(session, str(folder / "ckpt" / "model"))
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(session, graph.as_graph_def(), [output])
        (folder / "frozen.pb").write_bytes(frozen.SerializeToString())
        saved = folder / "saved_model"
        tf.compat.v1.saved_model.simple_save(session, str(saved), inputs={"images": graph.get_tensor_by_name(
            "images:0")}, outputs={"logits": graph.get_tensor_by_name(f"{output}:0")})
    return {"checkpoint": prefix, "meta": f"{prefix}.meta", "frozen": str(folder / "frozen.pb"),
            "saved_model": str(saved)}


def write_all(folder: Path, seed: int = 1) -> dict[str, str]:
    """The tiny network's checkpoint (PREFIX, with .meta), frozen .pb and SavedModel under ``folder``."""
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, SIZE, SIZE, 3], name="images")
        logits, _ = tiny_tf.build(images, CLASSES)
        tf.nn.softmax(logits, name="Predictions")
    with tf.compat.v1.Session(graph=graph) as session:
        _seeded(session, graph, seed)
        return _save(graph, session, "Predictions", folder)


def _write_frozen(graph, outputs: list[str], path: Path) -> str:
    with tf.compat.v1.Session(graph=graph) as session:
        _seeded(session, graph, 0)
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(session, graph.as_graph_def(), outputs)
    path.write_bytes(frozen.SerializeToString())
    return str(path)


def two_heads(path: Path) -> str:
    """A frozen .pb with two logits heads on one trunk: 'Tiny/Logits/BiasAdd' and 'Aux/BiasAdd'."""
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, SIZE, SIZE, 3], name="images")
        logits, end_points = tiny_tf.build(images, CLASSES)
        aux = slim.fully_connected(slim.flatten(end_points["MaxPool_2a_4x4"]), CLASSES, activation_fn=None,
                                   scope="Aux")
    return _write_frozen(graph, [logits.op.name, aux.op.name], path)


def two_inputs(path: Path) -> str:
    """A frozen .pb with two image placeholders: 'images' feeds the network, 'thumbnail' only a brightness."""
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, SIZE, SIZE, 3], name="images")
        thumbnail = tf.compat.v1.placeholder(tf.float32, [None, 4, 4, 3], name="thumbnail")
        logits, _ = tiny_tf.build(images, CLASSES)
        brightness = tf.reduce_mean(thumbnail, name="brightness")
    return _write_frozen(graph, [logits.op.name, brightness.op.name], path)


def no_image_input(path: Path) -> str:
    """A frozen .pb whose only input is rank 2 (features, not images)."""
    graph = tf.Graph()
    with graph.as_default():
        features = tf.compat.v1.placeholder(tf.float32, [None, 12], name="features")
        logits = slim.fully_connected(features, CLASSES, activation_fn=None, scope="Logits")
    return _write_frozen(graph, [logits.op.name], path)


def writes_a_file(path: Path, marker: Path) -> str:
    """A frozen .pb whose logits wait (control edge) on a WriteFile of ``marker``: running it would write."""
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, SIZE, SIZE, 3], name="images")
        logits, _ = tiny_tf.build(images, CLASSES)
        write = tf.io.write_file(str(marker), tf.strings.as_string(tf.reduce_sum(logits)))
        with tf.control_dependencies([write]):
            tf.identity(logits, name="Output")
    return _write_frozen(graph, ["Output"], path)
