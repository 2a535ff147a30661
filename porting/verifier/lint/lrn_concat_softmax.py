"""Lint checks of LRN parameters and of the axes of concat and softmax (NHWC vs NCHW)."""
from __future__ import annotations

from porting.core.records import Kind
from porting.frameworks import mx_attrs
from porting.verifier.lint.base import Context, Finding, Severity, make_finding, num, pair_check


@pair_check("lrn", "LRN depth_radius/alpha/beta/bias <=> nsize=2r+1, alpha*(2r+1), beta, knorm")
def check_lrn(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind != Kind.LRN or mx.kind != Kind.LRN:
        return []
    r = int(tf.attrs["depth_radius"])
    want = {"nsize": 2 * r + 1, "alpha": tf.attrs["alpha"] * (2 * r + 1), "beta": tf.attrs["beta"],
            "knorm": tf.attrs["bias"]}
    wrong = [key for key, value in want.items()
             if not context.close(float(value), mx_attrs.as_float(mx.attrs.get(key)))]
    if not wrong:
        return []
    notes = []
    if "alpha" in wrong and context.close(float(tf.attrs["alpha"]), mx_attrs.as_float(mx.attrs.get("alpha"))):
        notes.append("alpha was copied unscaled: MXNet divides alpha by nsize, TF does not")
    if "nsize" in wrong and int(mx.attrs.get("nsize", 0)) == r:
        notes.append("nsize was set to TF's depth_radius; it is the full window 2r+1")
    message = ("TF: x / (bias + alpha * sum_{2r+1} x^2)^beta; MXNet: x / (knorm + alpha/nsize * sum_{nsize} x^2)^beta. "
               f"Wrong: {', '.join(wrong)}" + (f" ({'; '.join(notes)})" if notes else "") +
               " (1.19 max abs diff measured for r=5, alpha=1 unscaled).")
    fix = "mx.sym.LRN(..., " + ", ".join(f"{key}={num(value)}" for key, value in want.items()) + ")"
    return [make_finding("lrn", Severity.ERROR, tf, mx,
                         f"depth_radius {r}, alpha {num(tf.attrs['alpha'])}, beta {num(tf.attrs['beta'])}, "
                         f"bias {num(tf.attrs['bias'])}",
                         ", ".join(f"{key} {num(mx.attrs.get(key))}" for key in want), message, fix)]


def _axis(value, rank: int) -> int | None:
    if value is None:
        return None
    value = int(value)
    return value + rank if value < 0 else value


@pair_check("concat_axis", "concat axis (NHWC 3 = NCHW 1)")
def check_concat_axis(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind != Kind.CONCAT or mx.kind != Kind.CONCAT:
        return []
    a = _axis(tf.attrs.get("axis"), len(tf.shape))
    b = _axis(mx.attrs.get("axis"), len(mx.shape))
    if a is None or b is None or a == b:
        return []
    names = {1: "channels", 2: "height", 3: "width", 0: "batch"}
    return [make_finding("concat_axis", Severity.ERROR, tf, mx, f"axis {a} (NCHW: {names.get(a, a)})",
                         f"dim {b} ({names.get(b, b)})",
                         f"TF concatenates along {names.get(a, a)} (NHWC axis 3 is NCHW axis 1); MXNet along "
                         f"{names.get(b, b)}.", f"mx.sym.concat(..., dim={a})")]


@pair_check("softmax_axis",
            "softmax axis (TF: last = channels; mx.sym.softmax default -1 is W in NCHW), SoftmaxOutput on 4-D")
def check_softmax_axis(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind != Kind.SOFTMAX or mx.kind != Kind.SOFTMAX:
        return []
    rank = len(mx.shape)
    a = _axis(tf.attrs.get("axis"), len(tf.shape))
    b = _axis(mx.attrs.get("axis"), rank)
    findings = []
    attrs = mx_attrs.attrs_of(context.mx_entry(mx.part(Kind.SOFTMAX).name if mx.part(Kind.SOFTMAX) else mx.name))
    if mx.op == "SoftmaxOutput":
        spatial = rank == 4 and mx.shape[2] * mx.shape[3] > 1
        if mx_attrs.as_flag(attrs.get("preserve_shape")):
            b = rank - 1
        elif spatial and not mx_attrs.as_flag(attrs.get("multi_output")):
            findings.append(make_finding(
                "softmax_axis", Severity.ERROR, tf, mx, f"axis {a} (channels)", "SoftmaxOutput over C*H*W",
                "SoftmaxOutput flattens its 4-D input to (N, C*H*W) unless multi_output=True, so it normalizes over "
                "every position and channel at once; TF normalizes each position over the channels.",
                "mx.sym.SoftmaxOutput(..., multi_output=True) or mx.sym.softmax(..., axis=1)"))
            return findings
    if a is not None and b is not None and a != b:
        findings.append(make_finding("softmax_axis", Severity.ERROR, tf, mx, f"axis {a} (NCHW)", f"axis {b}",
                                     "TF's softmax runs over the last NHWC axis (the channels, NCHW axis 1); "
                                     "mx.sym.softmax's default axis=-1 is the width in NCHW.",
                                     f"mx.sym.softmax(..., axis={a})"))
    if bool(tf.attrs.get("log")) != bool(mx.attrs.get("log")):
        findings.append(make_finding("softmax_axis", Severity.ERROR, tf, mx,
                                     "log_softmax" if tf.attrs.get("log") else "softmax",
                                     "log_softmax" if mx.attrs.get("log") else "softmax",
                                     "one side returns log-probabilities, the other probabilities.",
                                     "use mx.sym.log_softmax" if tf.attrs.get("log") else "use mx.sym.softmax"))
    return findings
