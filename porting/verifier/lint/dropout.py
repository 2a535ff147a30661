"""Lint checks of dropout: TF keep probability vs MXNet drop probability, and the mode."""
from __future__ import annotations

from porting.core.records import Kind
from porting.frameworks import mx_attrs
from porting.verifier.lint.base import Context, Finding, Severity, make_finding, num, pair_check


@pair_check("dropout", "TF keep probability vs MXNet drop probability p (keep 0.8 <=> p 0.2); mode='always'")
def check_dropout(pair, context: Context) -> list[Finding]:
    tf, mx = pair.tf, pair.mx
    if tf.kind != Kind.DROPOUT or mx.kind != Kind.DROPOUT:
        return []
    findings = []
    p = mx_attrs.as_float(mx.attrs.get("p"))
    mode = str(mx.attrs.get("mode", "training"))
    if mode == "always":
        findings.append(make_finding(
            "dropout", Severity.ERROR, tf, mx, "dropout in training only", f"mode='always' (p {num(p)})",
            "MXNet Dropout(mode='always') drops activations at inference too; TF's slim.dropout is the "
            "identity when is_training=False, so every inference output differs.",
            "use mx.sym.Dropout(..., mode='training') (the default)"))
    keep = tf.attrs.get("keep_prob")
    if not tf.attrs.get("visible", keep is not None) or keep is None:
        context.mark_not_visible("dropout", tf.name)
        return findings
    if p is None:
        return findings
    expected = 1.0 - keep
    if context.close(p, expected) or abs(p - expected) < 1e-6:
        return findings
    inverted = abs(p - keep) < 1e-6
    message = (f"TF keeps {num(keep)} of the activations (keep_prob {num(keep)}); MXNet's p is the DROP "
               f"probability, so p={num(p)} keeps {num(1 - p)}. Inference is unaffected (dropout is the "
               "identity there), training is not")
    if inverted:
        message += (": p was set to TF's keep_prob, the inverted convention (PITFALLS #6), so training drops "
                    f"{num(p):s} instead of {num(expected)} of the features")
    findings.append(make_finding("dropout", Severity.ERROR if inverted else Severity.WARNING, tf, mx,
                                 f"keep_prob {num(keep)}", f"p {num(p)}", message + ".",
                                 f"mx.sym.Dropout(..., p={num(expected)})  # p = 1 - keep_prob"))
    return findings
