"""Full-depth Inception-ResNet-v2 model files, written the ways users hold theirs, at the smallest input.

The registered pair 'inception_resnet_v2' at 75x75 (the smallest input slim's VALID stem allows;
its AuxLogits head needs 107x107, so both sides are built without it) and 10 classes: every block
of the full network (10 block35, 20 block17, 10 block8), ~55M parameters, in seconds per pass.

``write_tf`` builds the TF graph once, gives every variable the house's seeded values
(``weights.seeded_values``: He-scaled weights, moving variances in [0.5, 1.5]) and writes a
checkpoint with its ``.meta``, a frozen ``.pb`` and a SavedModel. ``write_mx`` converts that
checkpoint with the verified transfer (``porting.verifier.conversion``) into
``PREFIX-symbol.json`` + ``PREFIX-0000.params`` and exports those with ``export_onnx``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from porting import compat
from porting.frameworks import models

tf = compat.import_tf()

SIZE, CLASSES = 75, 10
#: The registered network without its AuxLogits head (which needs 107x107), everything else as registered.
SPEC = dataclasses.replace(models.get_model("inception_resnet_v2"), tf_kwargs={"create_aux_logits": False},
                           mx_kwargs={"create_aux_logits": False})


def tf_build():
    """The TF builder of :data:`SPEC` (inference mode)."""
    return models.tf_builder(SPEC)


def mx_build():
    """The MX builder of :data:`SPEC`, its pads derived for SIZE x SIZE."""
    return models.mx_builder(SPEC, (SIZE, SIZE))


def write_tf(folder: Path, seed: int = 1):
    """``(tf_graph, files)``: the read TF graph and its checkpoint/.meta/frozen .pb/SavedModel under ``folder``."""
    from porting.frameworks import mx_reader, tf_reader
    from porting.verifier import weights

    tf_graph = tf_reader.read_graph(tf_build(), (SIZE, SIZE), CLASSES, 1, is_training=False)
    mx_graph = mx_reader.read_symbol(mx_build(), (SIZE, SIZE), CLASSES)
    values = weights.seeded_values(weights.plan_transfer(tf_graph, mx_graph), seed)
    graph = tf_graph.graph
    softmax = tf_graph.end_points["Predictions"].op.name
    folder.mkdir(parents=True, exist_ok=True)
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        session.run(tf.compat.v1.global_variables_initializer())
        weights.assign_values(session, graph, values)
        prefix = tf.compat.v1.train.Saver().save(session, str(folder / "ckpt" / "irv2"))
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(session, graph.as_graph_def(), [softmax])
        (folder / "irv2.pb").write_bytes(frozen.SerializeToString())
        saved = folder / "saved_model"
        tf.compat.v1.saved_model.simple_save(session, str(saved), inputs={"images": tf_graph.images},
                                             outputs={"predictions": tf_graph.end_points["Predictions"]})
    return tf_graph, {"checkpoint": prefix, "meta": f"{prefix}.meta", "frozen": str(folder / "irv2.pb"),
                      "saved_model": str(saved)}


def write_mx(folder: Path, checkpoint: str, tf_graph) -> dict[str, str]:
    """The checkpoint converted to ``irv2-symbol.json`` + ``irv2-0000.params`` and exported to ``irv2.onnx``."""
    from porting.frameworks import mx_files
    from porting.serving.onnx_export import export_onnx
    from porting.verifier import conversion

    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "irv2"
    conversion.convert_tf_to_mx(checkpoint, str(out), model=SPEC.name, size=(SIZE, SIZE), classes=CLASSES,
                                tf_graph=tf_graph, symbol=mx_build()(CLASSES))
    symbol_path, params_path = conversion.output_files(str(out))
    model = mx_files.load(symbol_path, params_path)
    args, aux = model.params
    onnx_path = export_onnx(model.symbol, args, aux, (1, 3, SIZE, SIZE), folder / "irv2.onnx")
    return {"symbol": str(symbol_path), "params": str(params_path), "onnx": str(onnx_path)}
