"""Lint checks of pooling: padded cells in average and max pools, the output-size convention, global pools."""
from __future__ import annotations

from porting.core.causes import tf_rule_on
from porting.core.records import Kind, LayerRecord, format_shape
from porting.frameworks import mx_attrs
from porting.padding import mx_output_size
from porting.verifier.lint.base import Context, Finding, Severity, make_finding, num, pair_check


def _mx_pool_geometry(context: Context, record: LayerRecord) -> dict | None:
    """The MX Pooling node's own kernel, stride, symmetric pad, convention and input size (after a folded pad)."""
    part = record.part(record.kind) if record.kind in (Kind.POOL_AVG, Kind.POOL_MAX) else None
    entry = context.mx_entry(part.name) if part is not None else None
    if entry is None or entry.get("op") != "Pooling" or record.in_shape is None or len(record.in_shape) != 4:
        return None
    attrs = mx_attrs.attrs_of(entry)
    size = list(record.in_shape[2:4])
    pad_part = record.part(Kind.PAD)
    if pad_part is not None:  # the Pooling reads the output of the folded pad op
        width = mx_attrs.as_tuple(mx_attrs.attrs_of(context.mx_entry(pad_part.name)).get("pad_width"), (0,) * 8)
        if len(width) == 8:
            size = [size[0] + width[4] + width[5], size[1] + width[6] + width[7]]
    return {"kernel": mx_attrs.as_tuple(attrs.get("kernel"), (1, 1)),
            "stride": mx_attrs.as_tuple(attrs.get("stride"), (1, 1)),
            "pad": mx_attrs.as_tuple(attrs.get("pad"), (0, 0)),
            "convention": attrs.get("pooling_convention", "valid"), "size": tuple(size),
            "global": mx_attrs.as_flag(attrs.get("global_pool")) or False,
            "count_include_pad": mx_attrs.as_flag(attrs.get("count_include_pad"))}


@pair_check("avg_pool_padding", "average pooling over padded cells must not count them (count_include_pad=False)")
def check_avg_pool_padding(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind != Kind.POOL_AVG or mx.kind != Kind.POOL_AVG:
        return []
    tf_pad_part = tf.part(Kind.PAD)
    tf_counts = tf_pad_part is not None and any(tf.pads or ())
    mx_counts, how = False, ""
    if mx.part(Kind.PAD) is not None and any(mx.pads or ()):
        mx_counts, how = True, "an explicit mx.sym.pad before the Pooling (its zeros are data, counted whatever " \
                               "count_include_pad says)"
    else:
        geometry = _mx_pool_geometry(context, mx)
        sym_pad = geometry["pad"] if geometry else (mx.pads[0], mx.pads[2]) if mx.pads else (0, 0)
        include = mx.attrs.get("count_include_pad", True)
        if geometry and geometry["global"]:
            sym_pad = (0, 0)
        if any(sym_pad) and include is not False:
            mx_counts, how = True, f"pad={tuple(sym_pad)} with count_include_pad={include} (MXNet's default is True)"
    if tf_counts == mx_counts:
        return []
    if mx_counts:
        message = (f"TF's {tf.attrs.get('padding', 'SAME')} average pool divides by the number of real cells in "
                   f"each window; the MXNet port pads with {how}, so border outputs are divided by k*k and shrink "
                   "(0.577 max abs diff measured for 35x35 3x3 stride 1).")
        fix = ("mx.sym.Pooling(..., pool_type='avg', pad=<TF before-pad>, count_include_pad=False)"
               + ("; drop the explicit pad op (use pooling_convention='full' or the masked average for asymmetric "
                  "pads)" if mx.part(Kind.PAD) is not None else ""))
        return [make_finding("avg_pool_padding", Severity.ERROR, tf, mx, "padded cells not counted",
                             "padded cells counted", message, fix)]
    return [make_finding("avg_pool_padding", Severity.ERROR, tf, mx, "explicit zero pad: zeros counted",
                         "padded cells not counted",
                         "TF pads explicitly with zeros before a VALID average pool, so the zeros are averaged; the "
                         "MXNet port excludes padded cells from the count.",
                         "pad explicitly with mx.sym.pad(mode='constant') before the Pooling, or "
                         "count_include_pad=True")]


@pair_check("max_pool_padding", "max pooling over padded cells must pad with -inf (an explicit pad op with 0 is wrong)")
def check_max_pool_padding(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind != Kind.POOL_MAX or mx.kind != Kind.POOL_MAX:
        return []

    def pad_value(record: LayerRecord) -> float | None:
        part = record.part(Kind.PAD)
        if part is None or not any(record.pads or ()):
            return None  # only the op's own pad: ignored cells, i.e. -inf
        return mx_attrs.as_float(record.attrs.get("pad.pad_value", 0.0))

    a, b = pad_value(tf), pad_value(mx)
    a_eff = float("-inf") if a is None else a
    b_eff = float("-inf") if b is None else b
    if a_eff == b_eff:
        return []
    return [make_finding("max_pool_padding", Severity.ERROR, tf, mx, f"pads act as {num(a_eff)}",
                         f"pads are {num(b_eff)}",
                         "TF's max pool ignores padded cells (equivalent to -inf); an explicit pad with "
                         f"{num(b_eff)} wins the max wherever the activations near the border are below it "
                         "(1.6-2.6 max abs diff measured on negative inputs, e.g. pooling after batch norm).",
                         "mx.sym.pad(..., mode='constant', constant_value=-np.inf) before the Pooling, or "
                         "pooling_convention='full' with pad=<TF before-pad>")]


@pair_check("pooling_convention", "MXNet pooling_convention (floor 'valid' / ceil 'full') must give TF's output size")
def check_pooling_convention(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind not in (Kind.POOL_MAX, Kind.POOL_AVG) or mx.kind not in (Kind.POOL_MAX, Kind.POOL_AVG):
        return []
    geometry = _mx_pool_geometry(context, mx)
    if geometry is None or geometry["global"] or len(tf.shape) != 4:
        return []
    want = tuple(tf.shape[2:4])
    if tf.in_shape and mx.in_shape and tuple(tf.in_shape[2:4]) != tuple(mx.in_shape[2:4]):
        # The input already differs (an earlier layer's defect): judge the layer's own geometry on
        # ITS input, i.e. what TF's rule gives on the map the port feeds it, not the size it inherited.
        expected = tf_rule_on(tf, mx.in_shape)
        if expected is None:
            return []
        want = expected[0]
    sizes = {}
    for convention in ("valid", "full"):
        sizes[convention] = tuple(mx_output_size(geometry["size"][a], geometry["kernel"][a], geometry["stride"][a],
                                                 geometry["pad"][a], 1, convention) for a in range(2))
    got = sizes.get(geometry["convention"], tuple(mx.shape[2:4]))
    if got == want:
        return []
    other = next((c for c, s in sizes.items() if s == want), None)
    padding = tf.attrs.get("padding", "SAME")
    rule = "ceil(in / s)" if padding == "SAME" else "ceil((in - k + 1) / s)"
    message = (f"TF's {padding} rule out = {rule} gives {want[0]}x{want[1]}; MXNet's "
               f"pooling_convention='{geometry['convention']}' with pad={geometry['pad']} on "
               f"{geometry['size'][0]}x{geometry['size'][1]} gives {got[0]}x{got[1]} "
               "('valid' = floor((in + 2p - k) / s) + 1, 'full' = ceil(...) + 1).")
    if other:
        fix = f"mx.sym.Pooling(..., pooling_convention='{other}')"
    else:
        fix = "see `python -m porting.padding --op {op} --size {s} --kernel {k} --stride {st} --padding {p}`".format(
            op="max" if tf.kind == Kind.POOL_MAX else "avg", s=tf.in_shape[2] if tf.in_shape else "?",
            k=tf.kernel[0] if tf.kernel else "?", st=tf.stride[0] if tf.stride else "?", p=padding)
    return [make_finding("pooling_convention", Severity.ERROR, tf, mx, f"{padding}: {want[0]}x{want[1]}",
                         f"'{geometry['convention']}': {got[0]}x{got[1]}", message, fix)]


@pair_check("global_pool", "global pooling vs a kernel equal to the feature map")
def check_global_pool(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if not ({tf.kind, mx.kind} & {Kind.POOL_AVG, Kind.POOL_MAX, Kind.MEAN}):
        return []
    tf_global_any = tf.kind == Kind.MEAN and tuple(tf.attrs.get("axis") or ()) == (2, 3)
    mx_global_any = bool(mx.attrs.get("global_pool")) or (
        mx.kind == Kind.MEAN and tuple(mx.attrs.get("axis") or ()) == (2, 3))

    def covers_map(record: LayerRecord) -> bool:
        return (record.kernel is not None and record.in_shape is not None and len(record.in_shape) == 4
                and tuple(record.kernel) == tuple(record.in_shape[2:4]) and not any(record.pads or ()))

    if tf_global_any == mx_global_any:
        return []
    if mx_global_any and not tf_global_any:
        if covers_map(tf):
            return [make_finding("global_pool", Severity.INFO, tf, mx,
                                 f"kernel {tf.kernel[0]}x{tf.kernel[1]} = the whole map", "global_pool=True",
                                 "identical at this input size. TF's kernel is fixed when the graph is built, "
                                 "MXNet's global pool adapts to any input; built for another input size, TF's layer "
                                 "is no longer global unless its builder derives the kernel from the map (slim's IRv2 "
                                 "does).",
                                 "no change needed at this input size")]
        return [make_finding("global_pool", Severity.ERROR, tf, mx,
                             f"kernel {'x'.join(map(str, tf.kernel or ()))} on {format_shape(tf.in_shape)}",
                             "global_pool=True",
                             "MXNet averages (or maxes) the whole feature map; TF's window covers only part of it.",
                             f"mx.sym.Pooling(..., kernel={tuple(tf.kernel or ())}, stride={tuple(tf.stride or ())}, "
                             "global_pool=False)")]
    if covers_map(mx):
        return [make_finding("global_pool", Severity.INFO, tf, mx, "global mean over H, W",
                             f"kernel {mx.kernel[0]}x{mx.kernel[1]} = the whole map",
                             "identical at this input size; the MXNet kernel is fixed, so the symbol must be rebuilt "
                             "for another input size.",
                             "mx.sym.Pooling(..., global_pool=True) to follow any input size")]
    return [make_finding("global_pool", Severity.ERROR, tf, mx, "global mean over H, W",
                         f"kernel {'x'.join(map(str, mx.kernel or ()))} on {format_shape(mx.in_shape)}",
                         "TF averages the whole feature map; the MXNet window covers only part of it.",
                         "mx.sym.Pooling(..., pool_type='avg', global_pool=True)")]
