"""Network checks of the classifier head: class count, logits vs probabilities, the auxiliary head."""
from __future__ import annotations

from porting.core.records import Kind, LayerRecord
from porting.frameworks import mx_attrs
from porting.verifier.lint.base import Context, Finding, Severity, make_finding, network_check


def tf_record_of_tensor(context: Context, tensor) -> LayerRecord | None:
    """The TF record whose output is ``tensor``, or the nearest one above it along first inputs."""
    by_output = {record.attrs.get("output_node"): record for record in context.tf_by_name.values()}
    op = tensor.op
    for _ in range(20):
        if op.name in by_output:
            return by_output[op.name]
        if not op.inputs:
            return None
        op = op.inputs[0].op
    return None


def mx_heads(context: Context) -> list[LayerRecord]:
    """The MXNet records of the symbol's outputs, in output order."""
    graph = context.mx_graph
    symbol = getattr(graph, "symbol", None)
    if symbol is None:
        return []
    heads = mx_attrs.symbol_graph(symbol)["heads"]
    by_output = {record.attrs.get("output_node"): record for record in context.mx_by_name.values()}
    records = []
    for index, _, *_ in heads:
        entry = context.mx_entries[index] if index < len(context.mx_entries) else None
        for _ in range(20):
            if entry is None or entry["name"] in by_output or not entry.get("inputs"):
                break
            entry = context.mx_entries[entry["inputs"][0][0]]
        record = by_output.get(entry["name"]) if entry is not None else None
        if record is not None:
            records.append(record)
    return records


def output_width(record: LayerRecord) -> int | None:
    """The channels (classes, for a head) of a record's output; None without a record."""
    return int(record.shape[1]) if record is not None and len(record.shape) >= 2 else None


#: Kinds whose output is the logits when they end a classifier head.
LOGITS_KINDS = frozenset({Kind.CONV, Kind.DWCONV, Kind.FC})
#: Kinds a head may put between the logits and the network's output without changing their width.
_AFTER_LOGITS = frozenset({Kind.SOFTMAX, Kind.RESHAPE, Kind.FLATTEN, Kind.DROPOUT, Kind.ACT, Kind.BIAS,
                           Kind.SCALE, Kind.MEAN, Kind.POOL_AVG, Kind.POOL_MAX, Kind.PAD, Kind.BN})


def logits_record(by_name: dict, output: LayerRecord | None) -> LayerRecord | None:
    """The layer that computes the logits behind a network's output record.

    From the output back along first inputs, through softmax / SoftmaxOutput, squeezes, flattens and
    the like, to the last dense or conv layer: slim ends with a 1x1 conv and a squeeze, an MXNet port
    with ``FullyConnected`` and ``SoftmaxOutput``; both have the class count as that layer's width.
    Without such a layer (a network that ends in a pool), the output itself, or its softmax's input.
    """
    record = output
    for _ in range(20):
        if record is None or record.kind in LOGITS_KINDS:
            return record
        if record.kind not in _AFTER_LOGITS or not record.inputs or record.inputs[0] not in by_name:
            break
        record = by_name[record.inputs[0]]
    if output is not None and output.kind == Kind.SOFTMAX and output.inputs:
        return by_name.get(output.inputs[0], output)
    return output


@network_check("num_classes", "number of classes (slim's 1001 with background class 0 vs MXNet's 1000)")
def check_num_classes(context: Context) -> list[Finding]:
    tf_graph = context.tf_graph
    if tf_graph is None or getattr(tf_graph, "logits", None) is None:
        return []
    tf = logits_record(context.tf_by_name, tf_record_of_tensor(context, tf_graph.logits))
    if tf is None:
        return []
    # Each side's own output, not the record paired with TF's: when heads are built differently
    # (conv + squeeze vs flatten + FullyConnected) the pairing may put the feature vector there.
    heads = mx_heads(context)
    mx = logits_record(context.mx_by_name, heads[0] if heads else context.tf_to_mx.get(tf.name))
    a, b = output_width(tf), output_width(mx)
    if a is None or b is None:
        return []
    if a != b:
        background = {a, b} == {1000, 1001}
        message = (f"TF's logits have {a} classes, MXNet's {b}."
                   + (" slim's ImageNet checkpoints (Inception, ResNet-v2, MobileNet) have 1001 logits, class 0 = "
                      "background; MXNet ImageNet models and synsets have 1000 (index 0..999). Slicing the wrong row "
                      "shifts every label by one (accuracy ~0)." if background else ""))
        width = "num_hidden" if mx.kind == Kind.FC else "num_filter"
        fix = (f"build the MXNet logits layer {mx.name} with {width}={a}" + ("; or, to drop the background class, take rows 1: of "
                                                             "the TF logits weight and bias and use labels_offset=1"
                                                             if a == 1001 and b == 1000 else ""))
        return [make_finding("num_classes", Severity.ERROR, tf, mx, f"{a} classes", f"{b} classes", message, fix)]
    if a == 1001:
        return [make_finding("num_classes", Severity.INFO, tf, mx, "1001 classes", "1001 classes",
                             "both heads have 1001 logits: slim's ImageNet convention with class 0 = background. "
                             "Labels from a 1000-class synset (MXNet's) need +1 (labels_offset=1 in slim terms); "
                             "predictions need -1 before looking up a 1000-class synset.",
                             "no change needed; keep labels_offset=1 in the data pipeline")]
    return []


@network_check("output_kind", "the builder returns logits on one side and softmax probabilities on the other")
def check_output_kind(context: Context) -> list[Finding]:
    tf_graph = context.tf_graph
    if tf_graph is None or getattr(tf_graph, "logits", None) is None:
        return []
    tf = tf_record_of_tensor(context, tf_graph.logits)
    heads = mx_heads(context)
    if tf is None or not heads:
        return []
    mx = heads[0]
    tf_soft, mx_soft = tf.kind == Kind.SOFTMAX, mx.kind == Kind.SOFTMAX
    if tf_soft == mx_soft:
        return []
    what = {True: "softmax probabilities", False: "logits"}
    extra = (" SoftmaxOutput is MXNet's training head: its forward is the softmax, its backward the "
             "cross-entropy gradient." if mx.op == "SoftmaxOutput" else "")
    # Info, never a failure: the softmax is monotonic per row, so the classes predicted agree, and the
    # network behind it is compared layer by layer up to the logits.
    return [make_finding("output_kind", Severity.INFO, tf, mx, what[tf_soft], f"{what[mx_soft]} ({mx.op})",
                         f"the TF builder's first output is {what[tf_soft]}; the MXNet symbol's first output is "
                         f"{what[mx_soft]}. The layers up to the logits are the same network and the top-k classes "
                         "agree; only the output values differ by the softmax." + extra,
                         ("no change needed; to read the logits, put them first: "
                          "mx.sym.Group([logits, mx.sym.softmax(logits, axis=1)])" if mx_soft else
                          "no change needed; to compare probabilities, return the softmax first, or compare against "
                          "TF's logits end point"))]


def _paired_through_identities(context: Context, record) -> bool:
    """Whether a TF record has an MXNet counterpart, itself or, for a squeeze/reshape the equivalences
    dropped (it pairs with nothing, e.g. AuxLogits' SpatialSqueeze), the layer it reshapes."""
    paired_tf = {pair.tf.name for pair in getattr(context.result, "pairs", []) or [] if pair.tf is not None}
    seen = set()
    while record is not None and record.name not in seen:
        seen.add(record.name)
        if record.name in context.tf_to_mx:
            return True
        if record.name in paired_tf or record.kind not in (Kind.FLATTEN, Kind.RESHAPE) or not record.inputs:
            return False  # a row of its own (only in TF), or not an identity: no counterpart
        record = context.tf_by_name.get(record.inputs[0])
    return False


@network_check("aux_head", "an auxiliary classifier head present on one side only")
def check_aux_head(context: Context) -> list[Finding]:
    findings = []
    tf_graph = context.tf_graph
    tf_aux = set()
    for key, name in (getattr(tf_graph, "end_point_records", {}) or {}).items():
        if "aux" in key.lower():
            tf_aux.add(name)
    tf_aux |= {name for name, record in context.tf_by_name.items()
               if "auxlogits" in name.lower().replace("_", "") and record.kind == Kind.FC}
    for name in sorted(tf_aux):
        record = context.tf_by_name.get(name)
        if record is not None and not _paired_through_identities(context, record):
            findings.append(make_finding(
                "aux_head", Severity.WARNING, record, None, "auxiliary head", "none",
                f"TF has an auxiliary classifier ({name}); the MXNet port has no counterpart. It does not feed the "
                "main logits, so inference is the same; training loses the auxiliary loss (weight 0.4 in slim's "
                "train_image_classifier).",
                "add the AuxLogits head and a second SoftmaxOutput with grad_scale=0.4 (mx_impl: "
                "create_aux_logits=True)"))
    if not tf_aux:
        for record in context.mx_by_name.values():
            if "aux" in record.name.lower() and record.kind == Kind.FC and record.name not in context.mx_to_tf:
                findings.append(make_finding(
                    "aux_head", Severity.WARNING, None, record, "none", "auxiliary head",
                    f"the MXNet port has an auxiliary head ({record.name}) that TF does not build; inference of "
                    "the main logits is the same, training adds a loss TF does not have.",
                    "remove the auxiliary head, or build TF with it (slim: create_aux_logits=True)"))
    return findings
