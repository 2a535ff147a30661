"""slim's ``inception_v2`` (BN-Inception) ported to MXNet by hand, at 128x128.

Written the way MXNet's ``symbol_inception-bn.py`` writes it, not mirrored from slim: its
``ConvFactory``/``InceptionFactoryA``/``InceptionFactoryB`` names (``conv_3a_double_3x3_0``,
``bn_3a_proj``, ``ch_concat_3a_chconcat``), each module's branches created in another order than
slim's but concatenated in slim's channel order, a ``global_pool`` average pool, ``Flatten`` +
``FullyConnected`` for slim's 1x1 logits conv, and ``SoftmaxOutput`` at the end.

What the port has to get right at 128 (every stride-2 layer meets an even map, so slim's SAME
pads are asymmetric):

* ``Conv2d_1a_7x7`` is slim's ``separable_conv2d`` (depthwise multiplier 8, then a 1x1 to 64), with
  a bias and a ReLU but no batch norm (slim's arg scope puts the norm on ``conv2d`` only) and no
  activation between the two convs: here a grouped conv (``num_group=3``, 24 filters, no bias)
  after an explicit ``mx.sym.pad`` (2, 3), then a 1x1 conv with bias, then ReLU;
* stride-2 SAME convs in ``Mixed_4a``/``Mixed_5a`` pad (0, 1): ``mx.sym.pad`` + a conv with pad 0;
  stride-2 SAME max pools: ``pooling_convention='full'`` with pad 0;
* the stride-1 SAME average pools divide by the valid cells only: ``count_include_pad=False``;
  ``Mixed_5c``'s pool branch is a max pool (the other modules' are average pools);
* batch norm: ``scale=False`` (``fix_gamma=True``), eps 0.001, decay 0.9997; no conv bias;
* slim reduces the final 7x7 average pool to the 4x4 map: a global pool is the same window.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from porting import compat
from tests.support.ports import common

mx = compat.import_mx()

SLIM = "tf_slim.nets.inception_v2:inception_v2"
ARG_SCOPE = "tf_slim.nets.inception_v2:inception_v2_arg_scope"
SIZE = 128
CLASSES = 10
SLIM_KWARGS: dict = {}
HEADS: tuple[str, ...] = ()

tf_build = common.slim_builder(SLIM, ARG_SCOPE, **SLIM_KWARGS)

_SCOPE = "InceptionV2"
BN_EPS = 0.001
BN_MOMENTUM = 0.9997
DROPOUT_P = 0.2  # slim's keep_prob 0.8

#: InceptionFactoryA: (name, slim scope, #1x1, #3x3 reduce, #3x3, #double 3x3 reduce, #double 3x3,
#: pool, #proj)
MODULES_A = {
    "3a": ("Mixed_3b", 64, 64, 64, 64, 96, "avg", 32),
    "3b": ("Mixed_3c", 64, 64, 96, 64, 96, "avg", 64),
    "4a": ("Mixed_4b", 224, 64, 96, 96, 128, "avg", 128),
    "4b": ("Mixed_4c", 192, 96, 128, 96, 128, "avg", 128),
    "4c": ("Mixed_4d", 160, 128, 160, 128, 160, "avg", 96),
    "4d": ("Mixed_4e", 96, 128, 192, 160, 192, "avg", 96),
    "5a": ("Mixed_5b", 352, 192, 320, 160, 224, "avg", 128),
    "5b": ("Mixed_5c", 352, 192, 320, 192, 224, "max", 128),
}
#: InceptionFactoryB (stride 2): (name, slim scope, #3x3 reduce, #3x3, #double 3x3 reduce, #double 3x3)
MODULES_B = {
    "3c": ("Mixed_4a", 128, 160, 64, 96),
    "4e": ("Mixed_5a", 128, 192, 192, 256),
}
ORDER = ("3a", "3b", "3c", "4a", "4b", "4c", "4d", "4e", "5a", "5b")


@dataclass(frozen=True)
class _Choices:
    """How each construct is written; the defaults are the correct port, a mutant changes one."""

    count_include_pad: bool = False  # MXNet's default (True) counts the pads of SAME average pools
    pool_5b: str = "max"  # Mixed_5c's pool branch
    reduction_pad_symmetric: bool = False  # pad=1 on the stride-2 3x3s instead of TF's (0, 1)
    relu_inside_separable: bool = False  # a ReLU between the depthwise and the pointwise conv
    stem_full_conv: bool = False  # one full 7x7/2 conv (pad 3) where slim's stem is separable
    dropout_p: float = DROPOUT_P


def ConvFactory(data, num_filter, kernel, name, choices, stride=(1, 1), pad=(0, 0), suffix=""):
    conv = mx.sym.Convolution(data, num_filter=num_filter, kernel=kernel, stride=stride, pad=pad, no_bias=True,
                              name=f"conv_{name}{suffix}")
    bn = mx.sym.BatchNorm(conv, fix_gamma=True, eps=BN_EPS, momentum=BN_MOMENTUM, name=f"bn_{name}{suffix}")
    return mx.sym.Activation(bn, act_type="relu", name=f"relu_{name}{suffix}")


def _same_conv_s2(data, num_filter, name, choices, suffix=""):
    """slim's SAME 3x3/2 conv on an even map (pads (0, 1))."""
    if choices.reduction_pad_symmetric:
        return ConvFactory(data, num_filter, (3, 3), name, choices, stride=(2, 2), pad=(1, 1), suffix=suffix)
    padded = mx.sym.pad(data, mode="constant", pad_width=(0, 0, 0, 0, 0, 1, 0, 1), name=f"pad_{name}{suffix}")
    return ConvFactory(padded, num_filter, (3, 3), name, choices, stride=(2, 2), suffix=suffix)


def InceptionFactoryA(data, num_1x1, num_3x3red, num_3x3, num_d3x3red, num_d3x3, pool, proj, name, choices):
    # the pool branch first, then the double 3x3, the 3x3, the 1x1; concatenated as slim's Branch_0..3
    if pool == "avg":
        pooling = mx.sym.Pooling(data, kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="avg",
                                 count_include_pad=choices.count_include_pad, name=f"avg_pool_{name}_pool")
    else:
        pooling = mx.sym.Pooling(data, kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="max",
                                 name=f"max_pool_{name}_pool")
    cproj = ConvFactory(pooling, proj, (1, 1), f"{name}_proj", choices)
    cd3x3r = ConvFactory(data, num_d3x3red, (1, 1), f"{name}_double_3x3", choices, suffix="_reduce")
    cd3x3 = ConvFactory(cd3x3r, num_d3x3, (3, 3), f"{name}_double_3x3_0", choices, pad=(1, 1))
    cd3x3 = ConvFactory(cd3x3, num_d3x3, (3, 3), f"{name}_double_3x3_1", choices, pad=(1, 1))
    c3x3r = ConvFactory(data, num_3x3red, (1, 1), f"{name}_3x3", choices, suffix="_reduce")
    c3x3 = ConvFactory(c3x3r, num_3x3, (3, 3), f"{name}_3x3", choices, pad=(1, 1))
    c1x1 = ConvFactory(data, num_1x1, (1, 1), f"{name}_1x1", choices)
    return mx.sym.Concat(c1x1, c3x3, cd3x3, cproj, dim=1, name=f"ch_concat_{name}_chconcat")


def InceptionFactoryB(data, num_3x3red, num_3x3, num_d3x3red, num_d3x3, name, choices):
    pooling = mx.sym.Pooling(data, kernel=(3, 3), stride=(2, 2), pool_type="max", pooling_convention="full",
                             name=f"max_pool_{name}_pool")
    cd3x3r = ConvFactory(data, num_d3x3red, (1, 1), f"{name}_double_3x3", choices, suffix="_reduce")
    cd3x3 = ConvFactory(cd3x3r, num_d3x3, (3, 3), f"{name}_double_3x3_0", choices, pad=(1, 1))
    cd3x3 = _same_conv_s2(cd3x3, num_d3x3, f"{name}_double_3x3_1", choices)
    c3x3r = ConvFactory(data, num_3x3red, (1, 1), f"{name}_3x3", choices, suffix="_reduce")
    c3x3 = _same_conv_s2(c3x3r, num_3x3, f"{name}_3x3", choices)
    return mx.sym.Concat(c3x3, cd3x3, pooling, dim=1, name=f"ch_concat_{name}_chconcat")


def _build(num_classes: int, choices: _Choices):
    data = mx.sym.Variable("data")  # 3 x 128 x 128
    if choices.stem_full_conv:  # the stem of BN-Inception papers: one full conv, padded symmetrically
        net = mx.sym.Convolution(data, num_filter=64, kernel=(7, 7), stride=(2, 2), pad=(3, 3), name="conv_1")
    else:
        # slim's separable_conv2d: depthwise 7x7/2 (multiplier 8) -> pointwise 1x1 + bias -> ReLU
        net = mx.sym.pad(data, mode="constant", pad_width=(0, 0, 0, 0, 2, 3, 2, 3), name="pad_1")
        net = mx.sym.Convolution(net, num_filter=24, num_group=3, kernel=(7, 7), stride=(2, 2), no_bias=True,
                                 name="conv_1_depthwise")
        if choices.relu_inside_separable:
            net = mx.sym.Activation(net, act_type="relu", name="relu_1_depthwise")
        net = mx.sym.Convolution(net, num_filter=64, kernel=(1, 1), name="conv_1_pointwise")
    net = mx.sym.Activation(net, act_type="relu", name="relu_1")  # 64 x 64 x 64
    net = mx.sym.Pooling(net, kernel=(3, 3), stride=(2, 2), pool_type="max", pooling_convention="full",
                         name="pool_1")  # 64 x 32 x 32
    net = ConvFactory(net, 64, (1, 1), "2_red", choices)
    net = ConvFactory(net, 192, (3, 3), "2", choices, pad=(1, 1))
    net = mx.sym.Pooling(net, kernel=(3, 3), stride=(2, 2), pool_type="max", pooling_convention="full",
                         name="pool_2")  # 192 x 16 x 16
    for name in ORDER:  # 3a, 3b: 16 x 16; 3c .. 4d: 8 x 8; 4e .. 5b: 4 x 4
        if name in MODULES_B:
            _, *filters = MODULES_B[name]
            net = InceptionFactoryB(net, *filters, name, choices)
        else:
            _, *filters, pool, proj = MODULES_A[name]
            if name == "5b":
                pool = choices.pool_5b
            net = InceptionFactoryA(net, *filters, pool, proj, name, choices)
    # 1024 x 4 x 4
    net = mx.sym.Pooling(net, kernel=(7, 7), global_pool=True, pool_type="avg", name="global_pool")
    net = mx.sym.Dropout(net, p=choices.dropout_p, name="dropout")
    net = mx.sym.Flatten(net, name="flatten")
    net = mx.sym.FullyConnected(net, num_hidden=num_classes, name="fc1")
    return mx.sym.SoftmaxOutput(net, name="softmax")


def build(num_classes: int = CLASSES):
    """The port: input ``data`` (N, 3, 128, 128), output ``softmax`` (label ``softmax_label``)."""
    return _build(num_classes, _Choices())


def _conv_scopes():
    """(MXNet name after ``conv_``/``bn_``, slim scope) of every conv + batch norm."""
    yield "2_red", f"{_SCOPE}/Conv2d_2b_1x1"
    yield "2", f"{_SCOPE}/Conv2d_2c_3x3"
    for name, (mixed, *_) in MODULES_A.items():
        scope = f"{_SCOPE}/{mixed}"
        yield f"{name}_1x1", f"{scope}/Branch_0/Conv2d_0a_1x1"
        yield f"{name}_3x3_reduce", f"{scope}/Branch_1/Conv2d_0a_1x1"
        yield f"{name}_3x3", f"{scope}/Branch_1/Conv2d_0b_3x3"
        yield f"{name}_double_3x3_reduce", f"{scope}/Branch_2/Conv2d_0a_1x1"
        yield f"{name}_double_3x3_0", f"{scope}/Branch_2/Conv2d_0b_3x3"
        yield f"{name}_double_3x3_1", f"{scope}/Branch_2/Conv2d_0c_3x3"
        yield f"{name}_proj", f"{scope}/Branch_3/Conv2d_0b_1x1"
    for name, (mixed, *_) in MODULES_B.items():
        scope = f"{_SCOPE}/{mixed}"
        yield f"{name}_3x3_reduce", f"{scope}/Branch_0/Conv2d_0a_1x1"
        yield f"{name}_3x3", f"{scope}/Branch_0/Conv2d_1a_3x3"
        yield f"{name}_double_3x3_reduce", f"{scope}/Branch_1/Conv2d_0a_1x1"
        yield f"{name}_double_3x3_0", f"{scope}/Branch_1/Conv2d_0b_3x3"
        yield f"{name}_double_3x3_1", f"{scope}/Branch_1/Conv2d_1a_3x3"


def weights_from_tf(tf_values):
    """slim's variables -> (arg_params, aux_params) of this port (numpy arrays)."""
    stem = f"{_SCOPE}/Conv2d_1a_7x7"
    arg_params = {
        "conv_1_depthwise_weight": common.depthwise_weight(tf_values[f"{stem}/depthwise_weights"]),
        "conv_1_pointwise_weight": common.conv_weight(tf_values[f"{stem}/pointwise_weights"]),
        "conv_1_pointwise_bias": tf_values[f"{stem}/biases"],
    }
    aux_params = {}
    for name, scope in _conv_scopes():
        args, aux = common.conv_bn(tf_values, scope, f"conv_{name}", f"bn_{name}")
        arg_params.update(args)
        aux_params.update(aux)
    logits = f"{_SCOPE}/Logits/Conv2d_1c_1x1"
    arg_params["fc1_weight"] = common.dense_from_1x1(tf_values[f"{logits}/weights"])
    arg_params["fc1_bias"] = tf_values[f"{logits}/biases"]
    return arg_params, aux_params


def _mutant(**change):
    choices = replace(_Choices(), **change)
    return lambda num_classes=CLASSES: _build(num_classes, choices)


MUTANTS = {
    "count_include_pad": (_mutant(count_include_pad=True),
                          "the SAME 3x3/1 average pools count the padded cells (MXNet's default)"),
    "mixed_5c_avg_pool": (_mutant(pool_5b="avg"),
                          "5b (Mixed_5c) pools with avg where slim's Branch_3 is a max pool"),
    "reduction_pad_symmetric": (_mutant(reduction_pad_symmetric=True),
                                "stride-2 3x3 convs of 3c/4e (Mixed_4a/5a) pad 1 on every side; slim's SAME "
                                "pads (0, 1) on 16 and 8"),
    "relu_inside_separable": (_mutant(relu_inside_separable=True),
                              "a ReLU between the depthwise and the pointwise conv of the stem (slim has none)"),
    "dropout_keep_prob": (_mutant(dropout_p=0.8),
                          "Dropout p=0.8 is slim's keep_prob (MXNet p drops): training only"),
    "stem_full_conv": (_mutant(stem_full_conv=True),
                       "one full 7x7/2 conv with pad 3 where slim's stem is separable (depthwise 7x7/2 padded "
                       "(2, 3), then a 1x1): the layer split in two, and windows shifted"),
}
TRAINING_ONLY = {"dropout_keep_prob": ("dropout", "p")}
#: Mutants whose defect changes the parameters themselves: slim's weights do not load into them.
CHANGES_PARAMETERS = ("stem_full_conv",)
#: Where each mutant's defect is, as slim's layer (the root cause a verifier should report first):
#: a row whose TF layer is this scope or under it names the root.
MUTANT_ROOTS = {
    "count_include_pad": "InceptionV2/Mixed_3b/Branch_3/AvgPool_0a_3x3",
    "mixed_5c_avg_pool": "InceptionV2/Mixed_5c/Branch_3/MaxPool_0a_3x3",
    "reduction_pad_symmetric": "InceptionV2/Mixed_4a",
    "relu_inside_separable": "InceptionV2/Conv2d_1a_7x7",
    "dropout_keep_prob": "InceptionV2/Logits/Dropout_1b",
    "stem_full_conv": "InceptionV2/Conv2d_1a_7x7",
}
