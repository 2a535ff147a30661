"""Audit another converter's output with our verifier: TF → tf2onnx → onnxruntime / MXNet's ONNX importer.

On Inception-ResNet-v2 with seeded random values in every variable (so every batch norm, bias and
scale matters), measured side by side in one run:

* the TF checkpoint is frozen and converted by tf2onnx (opset 13, NCHW input); onnxruntime runs it
  (max abs of the logits vs TF);
* MXNet's importer (``mx.contrib.onnx``, MXNet 1.9.1) imports it as is (it fails: initialisers that
  are not graph inputs), then after ``compat.onnx_initialisers_as_inputs`` (max abs vs TF);
* our verifier compares our TF builder (``weights=`` that checkpoint) with the imported model and
  its own weights (``--numeric``): the one error it reports, where, and what it says to fix; every
  form the converter merely rewrote is reported as equivalent;
* the bench patches that one layer in the imported symbol (the zero ``Pad`` + ``Pooling(avg)`` the
  importer wrote for Mixed_5b's SAME average pool becomes one ``Pooling`` with the pad and
  ``count_include_pad=False``) and the verifier runs again: it passes.

MMdnn is not measured: it is not installed here (it needs shims to run on TF 2.x; see the README).
``--quick``: a small network (``--repeats reduced``, 107x107), JSON under
``$TMPDIR/porting-bench-quick/``; a full run writes ``reports/bench/converter_audit.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tabulate import tabulate  # noqa: E402

from bench.common import UsageError, out_help, parse_repeats, report_path  # noqa: E402
from porting.util import atomic_write_text  # noqa: E402  (no framework import)

NAME = "converter_audit"
REPEAT_PRESETS = {"full": (10, 20, 9), "reduced": (1, 1, 1), "small": (2, 2, 2)}
OPSET = 13


def _seeded_value(name: str, shape, seed: int):
    """He-uniform weights, gammas and variances U(0.5, 1.5), the rest N(0, 0.1): one stream per variable."""
    import numpy as np

    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    if name.endswith("weights"):
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        value = rng.uniform(-1.0, 1.0, shape) * np.sqrt(6.0 / max(fan_in, 1))
    elif name.endswith(("moving_variance", "gamma")):
        value = rng.uniform(0.5, 1.5, shape)
    else:
        value = rng.normal(0.0, 0.1, shape)
    return value.astype(np.float32)


def build_and_convert(work: Path, repeats, size: int, seed: int) -> dict:
    """TF graph with seeded values → checkpoint → frozen GraphDef → tf2onnx; the TF logits on the seeded input."""
    from porting import compat

    tf = compat.import_tf()
    from porting.frameworks import models
    from porting.verifier.parity import seeded_input

    spec = models.get_model("inception_resnet_v2")
    build = models.tf_builder(spec)
    started = time.perf_counter()
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, size, size, 3], name="images")
        logits, end_points = build(images, spec.classes, is_training=False) if repeats == REPEAT_PRESETS["full"] \
            else models.import_target(spec.tf)(images, spec.classes, is_training=False, repeats=repeats)
        tf.identity(logits, name="logits_out")
        tf.identity(end_points["AuxLogits"], name="aux_out")
        variables = tf.compat.v1.global_variables()
        session = tf.compat.v1.Session(graph=graph)
        session.run([v.initializer for v in variables],
                    {v.initializer.inputs[1]: _seeded_value(v.op.name, v.shape.as_list(), seed) for v in variables})
        checkpoint = str(work / "ckpt" / "model")
        tf.compat.v1.train.Saver().save(session, checkpoint, write_meta_graph=False)
        x = seeded_input((1, size, size, 3), seed)
        reference = session.run("logits_out:0", {images: x})
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
            session, graph.as_graph_def(), ["logits_out", "aux_out"])
        session.close()
    built = time.perf_counter() - started
    import tf2onnx

    started = time.perf_counter()
    model, _ = tf2onnx.convert.from_graph_def(frozen, input_names=["images:0"],
                                              output_names=["logits_out:0", "aux_out:0"], opset=OPSET,
                                              inputs_as_nchw=["images:0"])
    converted = time.perf_counter() - started
    onnx_path = work / "irv2.onnx"
    onnx_path.write_bytes(model.SerializeToString())
    folded = sum(1 for init in model.graph.initializer if init.name.endswith("_weights_fused_bn"))
    normalised = sum(1 for node in model.graph.node if node.op_type == "BatchNormalization")
    return {"checkpoint": checkpoint, "onnx": onnx_path, "input": x, "reference": reference,
            "variables": len(variables), "build_s": built, "tf2onnx_s": converted,
            "folded_bn": folded, "unfolded_bn": normalised}


def run_onnxruntime(onnx_path: Path, x, reference) -> dict:
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    logits = session.run(["logits_out:0"], {"images:0": x.transpose(0, 3, 1, 2)})[0]
    return {"max_abs": float(np.abs(logits - reference).max())}


def mx_logits(symbol, arg_params, aux_params, x):
    """The imported model's main output on ``x`` (NHWC, fed as NCHW 'data')."""
    from porting import compat

    mx = compat.import_mx()
    head = symbol[0] if len(symbol.list_outputs()) > 1 else symbol
    args = {name: mx.nd.array(value) for name, value in arg_params.items() if name in head.list_arguments()}
    args["data"] = mx.nd.array(x.transpose(0, 3, 1, 2))
    aux = {name: mx.nd.array(value) for name, value in aux_params.items()}
    with compat.no_subgraph_fusion():
        executor = head.bind(mx.cpu(), args=args, aux_states=aux, grad_req="null")
        return executor.forward(is_train=False)[0].asnumpy()


def import_as_is(onnx_path: Path) -> dict:
    """MXNet's importer on the file as tf2onnx wrote it."""
    from porting import compat

    compat.import_mx()
    import contextlib
    import io

    from mxnet.contrib import onnx as onnx_mxnet

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            onnx_mxnet.import_model(str(onnx_path))
    except Exception as error:  # the importer's KeyError on an initialiser that is not an input
        return {"ok": False, "error": f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"}
    return {"ok": True, "error": None}


def verify_side(tf_checkpoint: str, mx_side: str, repeats, size: int, seed: int, mx_params=None, tf_graph=None):
    """Our verifier, ``--numeric`` with each side's weights (``tf_graph``: the TF side already built)."""
    from porting.frameworks import models
    from porting.verifier.api import verify

    if tf_graph is not None:
        return verify(tf_graph=tf_graph, mx=mx_side, mx_params=mx_params, classes=1001, numeric=True,
                      weights=tf_checkpoint, seed=seed, title="inception_resnet_v2_tf vs the patched model")

    spec = models.get_model("inception_resnet_v2")
    target = models.import_target(spec.tf)

    def build(images, num_classes, is_training=False):
        return target(images, num_classes, is_training=is_training, repeats=repeats)

    build.__name__ = "inception_resnet_v2_tf"
    return verify(tf=build, mx=mx_side, mx_params=mx_params, size=size, classes=spec.classes, numeric=True,
                  weights=tf_checkpoint, seed=seed)


def verdict_facts(result) -> dict:
    """What the verdict says: errors (layer, check, fix), first divergence, equivalences."""
    errors = [{"layer": f.layer, "check": f.check, "fix": f.fix} for f in result.findings
              if str(f.severity) == "error"]
    numeric = result.numeric or {}
    first = numeric.get("first_divergence") or {}
    rows = result.summary()
    return {"passed": bool(result), "verdict": result.verdict_line(), "rows": rows.get("rows"),
            "rows_match": rows.get("match"), "lint_errors": errors,
            "lint_warnings": sum(1 for f in result.findings if str(f.severity) == "warning"),
            "equivalences": len(result.equivalences),
            "numeric_failed_layers": numeric.get("failed"), "numeric_layers": numeric.get("layers"),
            "first_divergence": ({"layer": first.get("layer"), "mx_layer": first.get("mx_layer"),
                                  "max_abs": first.get("max_abs"), "border_only": first.get("border_only"),
                                  "hint": first.get("hint")} if first else None)}


def patch_avg_pool(symbol, mx_layer: str):
    """The imported symbol with ``mx_layer`` (a ``Pad`` + ``Pooling(avg)``) as one Pooling that excludes pads."""
    from porting import compat
    from porting.frameworks.mx_attrs import as_tuple

    mx = compat.import_mx()
    graph = json.loads(symbol.tojson())
    nodes = graph["nodes"]
    index = next(i for i, node in enumerate(nodes) if node["name"] == mx_layer)
    pool = nodes[index]
    pad = nodes[pool["inputs"][0][0]]
    if pool["op"] != "Pooling" or pad["op"] not in ("Pad", "pad"):
        raise RuntimeError(f"{mx_layer} is {pool['op']} after {pad['op']}, not the Pad + Pooling the bench patches")
    width = as_tuple(pad["attrs"]["pad_width"], (0,) * 8, 8)
    top, bottom, left, right = width[4:8]
    if (top, left) != (bottom, right):
        raise RuntimeError(f"{mx_layer}: asymmetric pads {width[4:8]}; the bench patches symmetric ones")
    pool["attrs"].update(pad=str((top, left)), count_include_pad="False")
    pool["inputs"][0] = pad["inputs"][0]
    return mx.sym.load_json(json.dumps(graph))


def measure(repeats, size: int, seed: int) -> dict:
    import numpy as np

    from porting.frameworks import mx_files

    with tempfile.TemporaryDirectory(prefix="porting-converter-audit-") as folder:
        work = Path(folder)
        converted = build_and_convert(work, repeats, size, seed)
        ort = run_onnxruntime(converted["onnx"], converted["input"], converted["reference"])
        as_is = import_as_is(converted["onnx"])
        model = mx_files.load_onnx(converted["onnx"])
        imported = float(np.abs(mx_logits(model.symbol, model.arg_params, model.aux_params, converted["input"])
                                 - converted["reference"]).max())
        started = time.perf_counter()
        before = verify_side(converted["checkpoint"], str(converted["onnx"]), repeats, size, seed)
        verify_s = time.perf_counter() - started
        facts = verdict_facts(before)
        culprit = (facts["first_divergence"] or {}).get("mx_layer")
        patched_facts, patched_abs = None, None
        if culprit:
            # The symbol the verifier read (MXNet names the imported nodes anew at every import).
            arg_params, aux_params = before.mx_graph.params
            patched = patch_avg_pool(before.mx_graph.symbol, culprit)
            symbol_path, params_path = mx_files.save_checkpoint(work / "patched", patched, arg_params, aux_params)
            patched_abs = float(np.abs(mx_logits(patched, arg_params, aux_params, converted["input"])
                                       - converted["reference"]).max())
            patched_facts = verdict_facts(verify_side(converted["checkpoint"], str(symbol_path), repeats, size,
                                                      seed, mx_params=str(params_path), tf_graph=before.tf_graph))
            patched_facts["patched_layer"] = culprit
    return {"network": "inception_resnet_v2", "repeats": list(repeats), "size": size, "seed": seed,
            "variables": converted["variables"], "python": platform.python_version(),
            "tf2onnx": {"opset": OPSET, "seconds": round(converted["tf2onnx_s"], 1),
                        "folded_batch_norms": converted["folded_bn"],
                        "unfolded_batch_norms": converted["unfolded_bn"]},
            "onnxruntime": ort, "mx_import_as_is": as_is, "mx_import_rewritten": {"max_abs": imported},
            "verifier": dict(facts, seconds=round(verify_s, 1)),
            "after_patch": dict(patched_facts or {}, max_abs=patched_abs),
            "mmdnn": "not measured: not installed (MMdnn 0.3.1 needs shims to run on TF 2.x)"}


def render(result: dict) -> str:
    verifier, patched = result["verifier"], result["after_patch"]
    errors = verifier["lint_errors"]
    first = verifier["first_divergence"] or {}
    one_error = (f"{len(errors)} error{'s' if len(errors) != 1 else ''}: "
                 + "; ".join(f"{e['check']} at {e['layer']}" for e in errors[:3]))
    rows = [
        ["freeze → tf2onnx (opset 13) → onnxruntime", "correct",
         f"max abs {result['onnxruntime']['max_abs']:.2g} vs TF; {result['tf2onnx']['seconds']} s to convert; "
         f"{result['tf2onnx']['folded_batch_norms']} batch norms folded into convs"],
        ["same ONNX → mx.contrib.onnx.import_model, as is",
         "imports" if result["mx_import_as_is"]["ok"] else "fails", result["mx_import_as_is"]["error"] or ""],
        ["same ONNX, initialisers listed as inputs → MXNet", "silently wrong",
         f"max abs {result['mx_import_rewritten']['max_abs']:.3g} in the logits vs TF"],
        ["our verifier --numeric (each side its own weights)", "FAILED" if not verifier["passed"] else "PASSED",
         f"{one_error}; first divergence {first.get('layer')} (max abs {first.get('max_abs') or 0:.3g}, "
         f"border only: {first.get('border_only')}); {verifier['rows_match']}/{verifier['rows']} rows match; "
         f"{verifier['equivalences']} converter rewrites taken as equivalent"],
        [f"after patching {patched.get('patched_layer')}", "PASSED" if patched.get("passed") else "FAILED",
         f"max abs {patched.get('max_abs') or 0:.2g} in the logits vs TF; "
         f"{str(patched.get('verdict')).replace(' | ', ': ')}"],
        ["MMdnn", "not measured", result["mmdnn"]],
    ]
    title = (f"Converter audit: Inception-ResNet-v2 repeats {tuple(result['repeats'])} at {result['size']}x"
             f"{result['size']}, {result['variables']} variables seeded")
    return title + "\n" + tabulate(rows, headers=["route", "result", "numbers"], tablefmt="github")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small network (repeats 'reduced', 107x107)")
    parser.add_argument("--repeats", default="full", help="full, reduced, small or A,B,C (default full)")
    parser.add_argument("--size", type=int, default=299, help="input side (default 299)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the input (default 0)")
    parser.add_argument("--out", help=out_help(NAME))
    args = parser.parse_args(argv)
    try:
        if args.quick:
            args.repeats, args.size = "reduced", 107
        repeats = parse_repeats(args.repeats, REPEAT_PRESETS)
        if args.size < 107:
            raise UsageError(f"--size must be at least 107 (the smallest input with AuxLogits), got {args.size}")
        full = repeats == REPEAT_PRESETS["full"] and args.size == 299
        out = report_path(args.out, NAME, smoke=not full)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result = measure(repeats, args.size, args.seed)
    result["quick"] = args.quick
    print(render(result))
    atomic_write_text(out, json.dumps(result, indent=1) + "\n", parents=True)
    print(f"wrote {out}")
    return 0 if result["after_patch"].get("passed") else 1


if __name__ == "__main__":
    sys.exit(main())
