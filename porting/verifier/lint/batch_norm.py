"""Lint checks of batch norm: presence, axis, epsilon, momentum, gamma, beta, moving statistics."""
from __future__ import annotations

from porting.core.records import Kind
from porting.frameworks import mx_attrs
from porting.verifier.lint.base import (Context, Finding, Severity, make_finding, num, pair_check, part_attrs,
                                        part_name, variable_frozen)


def _bn_sides(pair):
    return part_attrs(pair.tf, Kind.BN), part_attrs(pair.mx, Kind.BN)


@pair_check("batch_norm", "batch norm present on one side only; MXNet BatchNorm axis must be 1 (channels, NCHW)")
def check_batch_norm(pair, context: Context) -> list[Finding]:
    tf_bn, mx_bn = _bn_sides(pair)
    tf, mx = pair.tf, pair.mx
    if tf_bn is not None and mx_bn is None:
        return [make_finding("batch_norm", Severity.ERROR, tf, mx, "batch norm", "none",
                             f"TF normalizes the output of {tf.name} (slim's normalizer_fn=slim.batch_norm); the MXNet "
                             f"layer {mx.name} has no BatchNorm, so every output after it differs.",
                             f"add mx.sym.BatchNorm(..., eps={num(tf_bn.get('eps'))}, "
                             f"momentum={num(tf_bn.get('momentum') or 0.999)}, "
                             f"fix_gamma={not tf_bn.get('scale', False)}) "
                             f"after {mx.name}")]
    if tf_bn is None and mx_bn is not None:
        return [make_finding("batch_norm", Severity.ERROR, tf, mx, "none", "batch norm",
                             f"the MXNet port normalizes the output of {mx.name}; TF does not (e.g. slim.conv2d with "
                             "normalizer_fn=None, like a residual up-projection).",
                             f"remove the BatchNorm after {mx.name}")]
    if mx_bn is not None and int(mx_bn.get("axis", 1)) not in (1, -3):
        return [make_finding("batch_norm", Severity.ERROR, tf, mx, "channels (NHWC axis 3)",
                             f"axis {mx_bn.get('axis')}",
                             "MXNet's BatchNorm normalizes per index of `axis`; on NCHW data the channels are axis 1.",
                             "mx.sym.BatchNorm(..., axis=1)")]
    return []


@pair_check("bn_eps", "batch-norm epsilon (slim 0.001; resnet_arg_scope 1e-5)")
def check_bn_eps(pair, context: Context) -> list[Finding]:
    tf_bn, mx_bn = _bn_sides(pair)
    if tf_bn is None or mx_bn is None:
        return []
    a, b = mx_attrs.as_float(tf_bn.get("eps")), mx_attrs.as_float(mx_bn.get("eps"))
    if a is None or b is None or context.close(a, b):
        return []
    return [make_finding("bn_eps", Severity.ERROR, pair.tf, pair.mx, f"epsilon {num(a)}", f"eps {num(b)}",
                         f"the variance is offset by epsilon before the square root: {num(a)} in TF, {num(b)} in MXNet "
                         "(1e-5 instead of 1e-3 gave 5e-3 max abs diff per layer on unit-variance data).",
                         f"mx.sym.BatchNorm(..., eps={num(a)})")]


@pair_check("bn_momentum", "batch-norm moving-average decay (TF) vs momentum (MXNet)")
def check_bn_momentum(pair, context: Context) -> list[Finding]:
    tf_bn, mx_bn = _bn_sides(pair)
    if tf_bn is None or mx_bn is None:
        return []
    decay, momentum = mx_attrs.as_float(tf_bn.get("momentum")), mx_attrs.as_float(mx_bn.get("momentum"))
    if decay is None:
        context.mark_not_visible("bn_momentum", pair.tf.name)
        return []
    if momentum is None or context.close(decay, momentum):
        return []
    return [make_finding("bn_momentum", Severity.WARNING, pair.tf, pair.mx, f"decay {num(decay)}",
                         f"momentum {num(momentum)}",
                         "both update moving = moving * m + batch * (1 - m); with a different m the moving statistics "
                         "learned in training differ (inference with converted statistics is unaffected).",
                         f"mx.sym.BatchNorm(..., momentum={num(decay)})")]


@pair_check("bn_gamma", "TF scale (learned gamma) vs MXNet fix_gamma: fix_gamma must be not scale")
def check_bn_gamma(pair, context: Context) -> list[Finding]:
    tf_bn, mx_bn = _bn_sides(pair)
    if tf_bn is None or mx_bn is None:
        return []
    scale = bool(tf_bn.get("scale", False))
    fix_gamma = mx_attrs.as_flag(mx_bn.get("fix_gamma"))
    if fix_gamma is None or fix_gamma == (not scale):
        return []
    if scale:
        # An error: the TF gamma is loaded and then ignored, so inference differs wherever gamma != 1.
        return [make_finding("bn_gamma", Severity.ERROR, pair.tf, pair.mx, f"scale={scale}", f"fix_gamma={fix_gamma}",
                             "TF learns a gamma (scale=True: Keras, slim ResNet); MXNet's fix_gamma=True forces gamma "
                             "to 1 in the forward pass even when a gamma is loaded (2.07 max abs diff measured), so "
                             "the loaded TF gamma is silently ignored.", f"mx.sym.BatchNorm(..., fix_gamma={not scale})")]
    # Info: slim's gamma is 1 and the converted `_gamma` holds 1, so inference is equal; only a
    # gamma trained away from 1 on the MXNet side would differ, and --numeric checks the weights.
    bn_name = part_name(pair.mx, Kind.BN) or pair.mx.name
    return [make_finding("bn_gamma", Severity.INFO, pair.tf, pair.mx, f"scale={scale} (gamma 1)",
                         f"fix_gamma={fix_gamma} (learned gamma)",
                         "TF has no gamma (slim.batch_norm scale=False: gamma is 1); MXNet's fix_gamma=False uses "
                         f"{bn_name}_gamma, which the TF checkpoint does not have. Equal at inference while the gamma "
                         "weights hold 1 (the converter fills them with 1); training learns a scale TF does not. With "
                         "weights present, --numeric settles it.",
                         f"no change needed at inference; mx.sym.BatchNorm(..., fix_gamma={not scale}) to train like TF")]


@pair_check("bn_beta", "TF center (beta) vs a trainable or frozen MXNet beta")
def check_bn_beta(pair, context: Context) -> list[Finding]:
    tf_bn, mx_bn = _bn_sides(pair)
    if tf_bn is None or mx_bn is None:
        return []
    center = bool(tf_bn.get("center", True))
    bn_name = part_name(pair.mx, Kind.BN) or pair.mx.name
    beta = context.mx_input_entry(bn_name, 2)
    frozen = variable_frozen(beta)
    if center and frozen:
        return [make_finding("bn_beta", Severity.WARNING, pair.tf, pair.mx, "center=True (beta learned)",
                             "beta lr_mult=0", "TF learns beta; the MXNet beta is frozen, so fine-tuning differs "
                             "(inference with the converted beta is unaffected).",
                             f"remove lr_mult=0 from {beta['name'] if beta else 'the beta variable'}")]
    if not center and not frozen:
        return [make_finding("bn_beta", Severity.WARNING, pair.tf, pair.mx, "center=False (no beta)", "beta trainable",
                             "TF has no beta (center=False, offset 0); MXNet's BatchNorm always has a `_beta`. "
                             "Loaded as zeros it is exact at inference, but training moves it away from 0.",
                             "declare the beta frozen at zero: mx.sym.Variable('<bn>_beta', lr_mult=0, wd_mult=0, "
                             "init=mx.init.Zero()) passed as beta=")]
    return []


@pair_check("bn_moving_stats", "moving mean/variance present (MXNet auxiliary states), use_global_stats")
def check_bn_moving_stats(pair, context: Context) -> list[Finding]:
    tf_bn, mx_bn = _bn_sides(pair)
    if tf_bn is None or mx_bn is None:
        return []
    findings = []
    bn_name = part_name(pair.mx, Kind.BN) or pair.mx.name
    aux_names = [entry["name"] for entry in (context.mx_input_entry(bn_name, 3), context.mx_input_entry(bn_name, 4))
                 if entry is not None]
    aux_states = set(getattr(context.mx_graph, "aux_shapes", {}) or {})
    mx_has = len(aux_names) == 2 and (not aux_states or all(name in aux_states for name in aux_names))
    tf_has = tf_bn.get("has_moving_stats")
    if tf_has is False and mx_has:
        findings.append(make_finding(
            "bn_moving_stats", Severity.ERROR, pair.tf, pair.mx, "batch statistics only (no moving mean/variance)",
            "moving_mean/moving_var aux states",
            "TF normalizes with the statistics of the current batch, even at inference; MXNet's BatchNorm uses its "
            "moving statistics whenever is_train=False, so inference outputs differ.",
            "mx.sym.BatchNorm(..., use_global_stats=False) and run the MXNet forward with is_train=True for this "
            "layer, or give the TF layer moving statistics (slim.batch_norm)"))
    elif tf_has and not mx_has:
        findings.append(make_finding(
            "bn_moving_stats", Severity.ERROR, pair.tf, pair.mx, "moving_mean, moving_variance", "no aux states",
            f"TF's moving statistics have no MXNet auxiliary state to load into (expected {bn_name}_moving_mean and "
            f"{bn_name}_moving_var in list_auxiliary_states()); left at 0/1 the normalization is wrong.",
            "use mx.sym.BatchNorm, whose moving_mean/moving_var are auxiliary states, and load them as aux params"))
    if mx_attrs.as_flag(mx_bn.get("use_global_stats")) and context.training and tf_bn.get("is_training", True):
        findings.append(make_finding(
            "bn_moving_stats", Severity.WARNING, pair.tf, pair.mx, "batch statistics in training",
            "use_global_stats=True",
            "in training TF normalizes with batch statistics and updates the moving ones; MXNet's "
            "use_global_stats=True freezes the layer to its moving statistics (inference is the same).",
            "mx.sym.BatchNorm(..., use_global_stats=False) unless the freeze is intended"))
    return findings
