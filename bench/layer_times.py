"""Where inference time goes: every convolution of Inception-ResNet-v2, MXNet port vs tf.slim.

The throughput bench (``bench/train_throughput.py``) says how fast each framework runs the
whole network; this one says which layers make the difference. One fresh process per
framework, the same network, input and batch, inference mode:

* MXNet: the serving executor (``for_training=False``, so MXNet's MKL-DNN fusion applies,
  residual scales folded as ``porting.predict`` serves) with ``DNNL_VERBOSE=1``: oneDNN
  prints every convolution it runs with its shape and milliseconds.
* TensorFlow: a ``tf.compat.v1.Session`` run with a full trace; each node's time is charged
  to the verifier's layer record that owns it (``porting.frameworks.tf_reader.records_from_graph``).

Convolutions are grouped by shape (in/out channels, input and output size, kernel,
stride), which both sides' layer records give; within a group the per-layer time is the
median over every execution, times the group's layer count. Tracing and verbose output
slow both sides a little; the ratios, not the absolute times, are the result. The last
rows give all convolutions, everything else, and the untraced forward time.

    .venv/bin/python bench/layer_times.py                 # full network, 299x299, batch 8
    .venv/bin/python bench/layer_times.py --quick         # smoke test (tests/test_bench_layer_times.py)

Writes ``reports/bench/layer_times.json`` (atomically; ``--quick`` writes to a temporary folder
unless ``--out`` is given) and prints the table. A child that fails is reported with its own
error line.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (publish, ChildFailed, UsageError, child_failure, out_help, parse_repeats,  # noqa: E402
                          report_path, settle, step_times)

NAME = "layer_times"
RESULT_PREFIX = "RESULT "
NUM_CLASSES = 1001
NAMED_REPEATS = {"full": (10, 20, 9), "reduced": (1, 1, 1)}
QUICK = {"size": 107, "batch": 2, "repeats": (1, 1, 1), "steps": 2, "warmup": 1}
TABLE_HEADERS = ["conv shape (C_in>C_out HxW>HxW k s)", "layers", "first layer", "MACs/batch", "MX ms", "TF ms",
                 "MX/TF time", "MX GFLOP/s", "TF GFLOP/s"]
#: oneDNN's convolution descriptor: mb8_ic3oc32_ih299oh149kh3sh2dh0ph0_iw299ow149kw3sw2dw0pw0
_DNNL_CONV = re.compile(r"mb(\d+)(?:_g\d+)?_ic(\d+)oc(\d+)_ih(\d+)oh(\d+)kh(\d+)sh(\d+)dh\d+ph\d+"
                        r"_iw(\d+)ow(\d+)kw(\d+)sw(\d+)")


def conv_key(record) -> str:
    """'C_in>C_out HxW>HxW kHxkW sHxsW' of a conv record (NCHW shapes on both sides)."""
    _, in_c, in_h, in_w = record.in_shape
    _, out_c, out_h, out_w = record.shape
    (kh, kw), (sh, sw) = record.kernel, record.stride
    return f"{in_c}>{out_c} {in_h}x{in_w}>{out_h}x{out_w} k{kh}x{kw} s{sh}x{sw}"


def dnnl_key(line: str) -> tuple[str, float] | None:
    """(conv_key, ms) of a ``dnnl_verbose,exec,cpu,convolution,...`` line; None for others."""
    parts = line.strip().split(",")
    if len(parts) < 4 or parts[0] != "dnnl_verbose" or parts[1] != "exec" or parts[3] != "convolution":
        return None
    match = _DNNL_CONV.search(line)
    if match is None:
        return None
    _, ic, oc, ih, oh, kh, sh, iw, ow, kw, sw = match.groups()
    return f"{ic}>{oc} {ih}x{iw}>{oh}x{ow} k{kh}x{kw} s{sh}x{sw}", float(parts[-1])


def _conv_records(records) -> list:
    from porting.core.records import Kind

    return [r for r in records if r.kind in (Kind.CONV, Kind.DWCONV) and r.in_shape and len(r.shape) == 4]


# ------------------------------------------------------------------------------ children


def child_mxnet(args) -> dict:
    import numpy as np

    from porting import compat

    mx = compat.import_mx()
    from mx_impl import inception_resnet_v2 as irv2
    from porting.core import cost
    from porting.frameworks import mx_reader
    from porting.serving import rewrites

    shape = (args.batch, 3, args.size, args.size)
    symbol = mx.sym.Group(list(irv2.get_symbol(NUM_CLASSES, create_aux_logits=True, repeats=args.repeats,
                                                image_size=args.size)))
    records = _conv_records(mx_reader.read_symbol(symbol, (args.size, args.size), NUM_CLASSES, args.batch).records)
    arg_shapes, _, aux_shapes = symbol.infer_shape(data=shape)
    rng = np.random.default_rng(0)
    arg_params = {name: mx.nd.array(rng.normal(0, 0.05, s)) for name, s in zip(symbol.list_arguments(), arg_shapes)
                  if name != "data"}
    aux_params = {name: mx.nd.array(np.ones(s) if name.endswith("_var") else np.zeros(s))
                  for name, s in zip(symbol.list_auxiliary_states(), aux_shapes)}
    served, arg_params, _ = rewrites.fold_residual_scales(symbol, arg_params)
    module = mx.mod.Module(served, data_names=["data"], label_names=None, context=mx.cpu())
    module.bind(data_shapes=[("data", shape)], for_training=False)
    module.set_params(arg_params, aux_params, allow_extra=True)
    batch = mx.io.DataBatch(data=[mx.nd.array(rng.uniform(-1, 1, shape))])

    def step():
        module.forward(batch, is_train=False)
        for out in module.get_outputs():
            out.wait_to_read()

    times = step_times(step, args.steps, args.warmup)
    return {"forward_s": times, "calls": args.warmup + args.steps,
            "layers": [{"name": r.name, "key": conv_key(r), "macs": cost.conv_macs(r) * args.batch}
                       for r in records]}


def child_tensorflow(args) -> dict:
    import numpy as np

    from porting import compat

    tf = compat.import_tf()
    slim = compat.import_slim()
    from porting.core import cost
    from porting.frameworks import tf_reader
    from reference_tf import inception_resnet_v2 as irv2

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), compat.fast_graph_building():
        images = v1.placeholder(tf.float32, [args.batch, args.size, args.size, 3], name="images")
        with slim.arg_scope(irv2.inception_resnet_v2_arg_scope()):
            logits, end_points = irv2.inception_resnet_v2(images, NUM_CLASSES, is_training=False,
                                                          repeats=args.repeats, create_aux_logits=True)
        outputs = [logits, end_points["AuxLogits"]]
        init = v1.global_variables_initializer()
    records, _, owner = tf_reader.records_from_graph(graph, images, outputs)
    convs = _conv_records(records)
    record_names = sorted({r.name for r in records}, key=len, reverse=True)

    def record_of(node: str) -> str | None:
        """The record that owns a (possibly fused or renamed) node: by op name, else by scope."""
        name = node.split(":")[0]
        if name in owner:
            return owner[name]
        return next((r for r in record_names if name.startswith(r + "/")), None)

    feed = {images: np.random.default_rng(0).uniform(-1, 1, images.shape.as_list()).astype(np.float32)}
    per_record: dict[str, list[float]] = {}
    with v1.Session(graph=graph) as session:
        session.run(init)
        times = step_times(lambda: session.run(outputs, feed), args.steps, args.warmup)
        options = v1.RunOptions(trace_level=v1.RunOptions.FULL_TRACE)
        for _ in range(args.steps):
            metadata = v1.RunMetadata()
            session.run(outputs, feed, options=options, run_metadata=metadata)
            totals: dict[str, float] = {}
            for device in metadata.step_stats.dev_stats:
                for node in device.node_stats:
                    record = record_of(node.node_name) or "(other)"
                    totals[record] = totals.get(record, 0.0) + node.all_end_rel_micros / 1e3
            for record, ms in totals.items():
                per_record.setdefault(record, []).append(ms)
    return {"forward_s": times,
            "record_ms": {name: statistics.median(values) for name, values in per_record.items()},
            "layers": [{"name": r.name, "key": conv_key(r), "macs": cost.conv_macs(r) * args.batch} for r in convs]}


def child_main(args) -> int:
    result = child_mxnet(args) if args.child == "mxnet" else child_tensorflow(args)
    sys.stdout.flush()
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


# ------------------------------------------------------------------------------ parent


def run_child(framework: str, args) -> tuple[dict, list[str]]:
    """One child's RESULT and its other stdout lines (oneDNN's verbose output)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if framework == "mxnet":
        env["DNNL_VERBOSE"] = "1"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", framework, "--size", str(args.size),
               "--batch", str(args.batch), "--repeats", ",".join(map(str, args.repeats)),
               "--steps", str(args.steps), "--warmup", str(args.warmup)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=args.timeout)
    lines = done.stdout.splitlines()
    results = [line for line in lines if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not results:
        raise ChildFailed(child_failure(f"the {framework} process", done.returncode, done.stderr,
                                        "\n".join(line for line in lines if not line.startswith("dnnl_verbose"))))
    return json.loads(results[-1][len(RESULT_PREFIX):]), lines


def join(mx_result: dict, mx_lines: list[str], tf_result: dict) -> dict:
    """Per conv shape: both sides' layers, MACs and milliseconds per batch."""
    executions: dict[str, list[float]] = {}
    for line in mx_lines:
        parsed = dnnl_key(line)
        if parsed is not None:
            executions.setdefault(parsed[0], []).append(parsed[1])
    groups: dict[str, dict] = {}
    for layer in mx_result["layers"]:
        group = groups.setdefault(layer["key"], {"key": layer["key"], "layers": 0, "first": layer["name"],
                                                 "macs": 0, "tf_ms": 0.0, "tf_layers": 0})
        group["layers"] += 1
        group["macs"] += layer["macs"]
    for layer in tf_result["layers"]:
        group = groups.get(layer["key"])
        if group is None:  # a shape only TF has: the verifier would have said so; keep it visible
            group = groups.setdefault(layer["key"], {"key": layer["key"], "layers": 0, "first": layer["name"],
                                                     "macs": layer["macs"], "tf_ms": 0.0, "tf_layers": 0})
        group["tf_layers"] += 1
        group["tf_ms"] += tf_result["record_ms"].get(layer["name"], 0.0)
    for key, group in groups.items():
        runs = executions.get(key, [])
        group["mx_executions"] = len(runs)
        group["mx_ms"] = statistics.median(runs) * group["layers"] if runs else None
    tf_conv_names = {layer["name"] for layer in tf_result["layers"]}
    tf_other = sum(ms for name, ms in tf_result["record_ms"].items() if name not in tf_conv_names)
    mx_conv = sum(g["mx_ms"] or 0.0 for g in groups.values())
    mx_forward = min(mx_result["forward_s"]) * 1e3
    return {"groups": sorted(groups.values(), key=lambda g: -(g["mx_ms"] or 0.0)),
            "mx": {"conv_ms": mx_conv, "forward_ms": mx_forward, "other_ms": max(0.0, mx_forward - mx_conv),
                   "calls": mx_result["calls"]},
            "tf": {"conv_ms": sum(g["tf_ms"] for g in groups.values()), "other_ms": tf_other,
                   "forward_ms": min(tf_result["forward_s"]) * 1e3}}


def _ms(value) -> str:
    return "--" if value is None else f"{value:.1f}"


def _gflops(macs: int, ms) -> str:
    return "--" if not ms else f"{2 * macs / (ms / 1e3) / 1e9:.1f}"


def _ratio(a, b) -> str:
    return "--" if a is None or not b else f"{a / b:.2f}x"


def render(report: dict, top: int) -> str:
    from tabulate import tabulate

    from porting.core.cost import human

    rows = []
    for group in report["groups"][:top]:
        rows.append([group["key"], str(group["layers"]), group["first"].split("/", 1)[-1], human(group["macs"]),
                     _ms(group["mx_ms"]), _ms(group["tf_ms"]), _ratio(group["mx_ms"], group["tf_ms"]),
                     _gflops(group["macs"], group["mx_ms"]), _gflops(group["macs"], group["tf_ms"])])
    mx, tf = report["mx"], report["tf"]
    macs = sum(group["macs"] for group in report["groups"])
    layers = sum(group["layers"] for group in report["groups"])
    rows.append([f"all convolutions ({len(report['groups'])} shapes)", str(layers), "", human(macs),
                 _ms(mx["conv_ms"]), _ms(tf["conv_ms"]), _ratio(mx["conv_ms"], tf["conv_ms"]),
                 _gflops(macs, mx["conv_ms"]), _gflops(macs, tf["conv_ms"])])
    rows.append(["everything else (traced)", "", "", "", _ms(mx["other_ms"]), _ms(tf["other_ms"]),
                 _ratio(mx["other_ms"], tf["other_ms"]), "", ""])
    rows.append(["forward, untraced (best)", "", "", human(macs), _ms(mx["forward_ms"]), _ms(tf["forward_ms"]),
                 _ratio(mx["forward_ms"], tf["forward_ms"]), _gflops(macs, mx["forward_ms"]),
                 _gflops(macs, tf["forward_ms"])])
    c = report["config"]
    title = (f"layer_times: Inception-ResNet-v2 repeats {tuple(c['repeats'])}, {c['size']}x{c['size']}, "
             f"batch {c['batch']}, inference; top {min(top, len(report['groups']))} conv shapes by MXNet time")
    note = ("MX: oneDNN verbose (median per execution x layers); TF: full-trace node times charged to layer "
            "records; 'everything else' for MX = untraced forward - convolutions.")
    return "\n".join([title, tabulate(rows, headers=TABLE_HEADERS, tablefmt="simple", disable_numparse=True),
                      note]) + "\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python bench/layer_times.py", description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=299, help="input side (default 299)")
    p.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    p.add_argument("--repeats", default="full", help="full (10,20,9, default), reduced (1,1,1) or A,B,C")
    p.add_argument("--steps", type=int, default=3, help="timed and traced forward passes (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed forward passes first (default 1)")
    p.add_argument("--top", type=int, default=15, help="conv shapes listed (default 15)")
    p.add_argument("--quick", action="store_true", help="smoke test: reduced net, 107x107, batch 2")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per framework process (default 900)")
    p.add_argument("--out", help=out_help(NAME))
    p.add_argument("--child", choices=("mxnet", "tensorflow"), help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.repeats = parse_repeats(args.repeats, NAMED_REPEATS)
        settle(args, QUICK, ("size", "batch", "steps", "top"))
        out = report_path(args.out, NAME, args.quick) if not args.child else None
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.child:
        return child_main(args)
    try:
        mx_result, mx_lines = run_child("mxnet", args)
        tf_result, _ = run_child("tensorflow", args)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    report = {"format": "porting-bench-layer-times/1", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "quick": bool(args.quick), "loadavg": [round(v, 2) for v in os.getloadavg()],
              "config": {"size": args.size, "batch": args.batch, "repeats": list(args.repeats),
                         "steps": args.steps, "warmup": args.warmup},
              **join(mx_result, mx_lines, tf_result)}
    report["table"] = render(report, args.top)
    publish(report, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
