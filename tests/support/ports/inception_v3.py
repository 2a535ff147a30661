"""slim's ``inception_v3`` with its AuxLogits head ported to MXNet by hand, at 139x139.

Written the way MXNet's ``symbol_inception-v3.py`` writes it, not mirrored from slim: its
``Conv``/``Inception7A..7E`` helpers and names (``mixed_4_tower_1_conv_3_conv2d``,
``ch_concat_mixed_9_chconcat``), branches created pool branch first but concatenated in slim's
channel order, ``Mixed_7b``/``Mixed_7c`` as one flat ``Concat`` of six maps where slim concatenates
a concat, ``Flatten`` + ``FullyConnected`` heads for slim's 1x1 logits convs, and a ``Group`` of two
``SoftmaxOutput`` heads (``softmax`` first, ``aux_softmax`` with grad_scale 0.4, one label).

139 is the smallest input with the AuxLogits head (``create_aux_logits=True``, slim's default):
Mixed_6e is 7x7, the aux 5x5/3 VALID average pool gives 1x1, and slim shrinks the aux
``Conv2d_2a_5x5`` to a 1x1 (``Conv2d_2a_1x1``) and the final 8x8 average pool to 3x3.

What the port has to get right:

* every stride-2 layer is VALID and every SAME layer has stride 1 with an odd (or 1xk / kx1)
  kernel, so symmetric pads are exact: 3x3 -> (1, 1), 5x5 -> (2, 2), 1x7 -> (0, 3), 7x1 -> (3, 0);
* the stride-1 SAME average pools divide by the valid cells only: ``count_include_pad=False``;
  all pool branches (``Mixed_7c`` included) are average pools in slim;
* batch norm: ``scale=False`` (``fix_gamma=True``), eps 0.001, decay 0.9997; no conv bias;
* slim's scope names are irregular: ``Mixed_5c/Branch_1/{Conv2d_0b_1x1, Conv_1_0c_5x5}``,
  ``Mixed_6a/Branch_*/Conv2d_1a_1x1`` (3x3 convs), ``Mixed_7b/Branch_1/Conv2d_0b_3x1`` but
  ``Mixed_7c/Branch_1/Conv2d_0c_3x1``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from porting import compat
from tests.support.ports import common

mx = compat.import_mx()

SLIM = "tf_slim.nets.inception_v3:inception_v3"
ARG_SCOPE = "tf_slim.nets.inception_v3:inception_v3_arg_scope"
SIZE = 139
CLASSES = 10
SLIM_KWARGS = {"create_aux_logits": True}
#: slim's end points compared with the port's second SoftmaxOutput input.
HEADS: tuple[str, ...] = ("AuxLogits",)

tf_build = common.slim_builder(SLIM, ARG_SCOPE, **SLIM_KWARGS)

_SCOPE = "InceptionV3"
BN_EPS = 0.001
BN_MOMENTUM = 0.9997
DROPOUT_P = 0.2  # slim's keep_prob 0.8
AUX_GRAD_SCALE = 0.4

MODULES = {  # MXNet name: (factory, slim scope, arguments of the factory before pool/proj)
    "mixed": ("A", "Mixed_5b", (64, 64, 96, 96, 48, 64, "avg", 32)),
    "mixed_1": ("A", "Mixed_5c", (64, 64, 96, 96, 48, 64, "avg", 64)),
    "mixed_2": ("A", "Mixed_5d", (64, 64, 96, 96, 48, 64, "avg", 64)),
    "mixed_3": ("B", "Mixed_6a", (384, 64, 96, 96)),
    "mixed_4": ("C", "Mixed_6b", (192, 128, 128, 192, 128, 128, 128, 128, 192, "avg", 192)),
    "mixed_5": ("C", "Mixed_6c", (192, 160, 160, 192, 160, 160, 160, 160, 192, "avg", 192)),
    "mixed_6": ("C", "Mixed_6d", (192, 160, 160, 192, 160, 160, 160, 160, 192, "avg", 192)),
    "mixed_7": ("C", "Mixed_6e", (192, 192, 192, 192, 192, 192, 192, 192, 192, "avg", 192)),
    "mixed_8": ("D", "Mixed_7a", (192, 320, 192, 192, 192, 192)),
    "mixed_9": ("E", "Mixed_7b", (320, 384, 384, 384, 448, 384, 384, 384, "avg", 192)),
    "mixed_10": ("E", "Mixed_7c", (320, 384, 384, 384, 448, 384, 384, 384, "avg", 192)),
}


@dataclass(frozen=True)
class _Choices:
    """How each construct is written; the defaults are the correct port, a mutant changes one."""

    count_include_pad: bool = False  # MXNet's default (True) counts the pads of SAME average pools
    swap_mixed_9_pair: bool = False  # mixed_9's flat concat takes the 3x1 before the 1x3
    pool_mixed_10: str = "avg"  # MXNet's example has "max" here; slim averages
    no_bn: str | None = None  # a conv written without its batch norm
    dropout_p: float = DROPOUT_P


def Conv(data, num_filter, choices, kernel=(1, 1), stride=(1, 1), pad=(0, 0), name=None, suffix=""):
    conv = mx.sym.Convolution(data=data, num_filter=num_filter, kernel=kernel, stride=stride, pad=pad,
                              no_bias=True, name=f"{name}{suffix}_conv2d")
    net = conv
    if choices.no_bn != f"{name}{suffix}":
        net = mx.sym.BatchNorm(data=conv, fix_gamma=True, eps=BN_EPS, momentum=BN_MOMENTUM,
                               name=f"{name}{suffix}_batchnorm")
    return mx.sym.Activation(data=net, act_type="relu", name=f"{name}{suffix}_relu")


def _pool(data, pool, name, choices):
    """A 3x3/1 SAME pool branch."""
    if pool == "avg":
        return mx.sym.Pooling(data=data, kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="avg",
                              count_include_pad=choices.count_include_pad, name=f"avg_pool_{name}_pool")
    return mx.sym.Pooling(data=data, kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="max",
                          name=f"max_pool_{name}_pool")


def Inception7A(data, num_1x1, num_3x3_red, num_3x3_1, num_3x3_2, num_5x5_red, num_5x5, pool, proj, name, c):
    cproj = Conv(_pool(data, pool, name, c), proj, c, name=f"{name}_tower_2", suffix="_conv")
    tower_3x3 = Conv(data, num_3x3_red, c, name=f"{name}_tower_1", suffix="_conv")
    tower_3x3 = Conv(tower_3x3, num_3x3_1, c, kernel=(3, 3), pad=(1, 1), name=f"{name}_tower_1", suffix="_conv_1")
    tower_3x3 = Conv(tower_3x3, num_3x3_2, c, kernel=(3, 3), pad=(1, 1), name=f"{name}_tower_1", suffix="_conv_2")
    tower_5x5 = Conv(data, num_5x5_red, c, name=f"{name}_tower", suffix="_conv")
    tower_5x5 = Conv(tower_5x5, num_5x5, c, kernel=(5, 5), pad=(2, 2), name=f"{name}_tower", suffix="_conv_1")
    tower_1x1 = Conv(data, num_1x1, c, name=f"{name}_conv")
    return mx.sym.Concat(tower_1x1, tower_5x5, tower_3x3, cproj, name=f"ch_concat_{name}_chconcat")


def Inception7B(data, num_3x3, num_d3x3_red, num_d3x3_1, num_d3x3_2, name, c):
    tower_3x3 = Conv(data, num_3x3, c, kernel=(3, 3), stride=(2, 2), name=f"{name}_conv")
    tower_d3x3 = Conv(data, num_d3x3_red, c, name=f"{name}_tower", suffix="_conv")
    tower_d3x3 = Conv(tower_d3x3, num_d3x3_1, c, kernel=(3, 3), pad=(1, 1), name=f"{name}_tower", suffix="_conv_1")
    tower_d3x3 = Conv(tower_d3x3, num_d3x3_2, c, kernel=(3, 3), stride=(2, 2), name=f"{name}_tower",
                      suffix="_conv_2")
    pooling = mx.sym.Pooling(data=data, kernel=(3, 3), stride=(2, 2), pool_type="max", name=f"max_pool_{name}_pool")
    return mx.sym.Concat(tower_3x3, tower_d3x3, pooling, name=f"ch_concat_{name}_chconcat")


def Inception7C(data, num_1x1, num_d7_red, num_d7_1, num_d7_2, num_q7_red, num_q7_1, num_q7_2, num_q7_3,
                num_q7_4, pool, proj, name, c):
    cproj = Conv(_pool(data, pool, name, c), proj, c, name=f"{name}_tower_2", suffix="_conv")
    tower_q7 = Conv(data, num_q7_red, c, name=f"{name}_tower_1", suffix="_conv")
    tower_q7 = Conv(tower_q7, num_q7_1, c, kernel=(7, 1), pad=(3, 0), name=f"{name}_tower_1", suffix="_conv_1")
    tower_q7 = Conv(tower_q7, num_q7_2, c, kernel=(1, 7), pad=(0, 3), name=f"{name}_tower_1", suffix="_conv_2")
    tower_q7 = Conv(tower_q7, num_q7_3, c, kernel=(7, 1), pad=(3, 0), name=f"{name}_tower_1", suffix="_conv_3")
    tower_q7 = Conv(tower_q7, num_q7_4, c, kernel=(1, 7), pad=(0, 3), name=f"{name}_tower_1", suffix="_conv_4")
    tower_d7 = Conv(data, num_d7_red, c, name=f"{name}_tower", suffix="_conv")
    tower_d7 = Conv(tower_d7, num_d7_1, c, kernel=(1, 7), pad=(0, 3), name=f"{name}_tower", suffix="_conv_1")
    tower_d7 = Conv(tower_d7, num_d7_2, c, kernel=(7, 1), pad=(3, 0), name=f"{name}_tower", suffix="_conv_2")
    tower_1x1 = Conv(data, num_1x1, c, name=f"{name}_conv")
    return mx.sym.Concat(tower_1x1, tower_d7, tower_q7, cproj, name=f"ch_concat_{name}_chconcat")


def Inception7D(data, num_3x3_red, num_3x3, num_d7_3x3_red, num_d7_1, num_d7_2, num_d7_3x3, name, c):
    tower_3x3 = Conv(data, num_3x3_red, c, name=f"{name}_tower", suffix="_conv")
    tower_3x3 = Conv(tower_3x3, num_3x3, c, kernel=(3, 3), stride=(2, 2), name=f"{name}_tower", suffix="_conv_1")
    tower_d7_3x3 = Conv(data, num_d7_3x3_red, c, name=f"{name}_tower_1", suffix="_conv")
    tower_d7_3x3 = Conv(tower_d7_3x3, num_d7_1, c, kernel=(1, 7), pad=(0, 3), name=f"{name}_tower_1",
                        suffix="_conv_1")
    tower_d7_3x3 = Conv(tower_d7_3x3, num_d7_2, c, kernel=(7, 1), pad=(3, 0), name=f"{name}_tower_1",
                        suffix="_conv_2")
    tower_d7_3x3 = Conv(tower_d7_3x3, num_d7_3x3, c, kernel=(3, 3), stride=(2, 2), name=f"{name}_tower_1",
                        suffix="_conv_3")
    pooling = mx.sym.Pooling(data=data, kernel=(3, 3), stride=(2, 2), pool_type="max", name=f"max_pool_{name}_pool")
    return mx.sym.Concat(tower_3x3, tower_d7_3x3, pooling, name=f"ch_concat_{name}_chconcat")


def Inception7E(data, num_1x1, num_d3_red, num_d3_1, num_d3_2, num_3x3_d3_red, num_3x3, num_3x3_d3_1,
                num_3x3_d3_2, pool, proj, name, c):
    cproj = Conv(_pool(data, pool, name, c), proj, c, name=f"{name}_tower_2", suffix="_conv")
    tower_3x3_d3 = Conv(data, num_3x3_d3_red, c, name=f"{name}_tower_1", suffix="_conv")
    tower_3x3_d3 = Conv(tower_3x3_d3, num_3x3, c, kernel=(3, 3), pad=(1, 1), name=f"{name}_tower_1",
                        suffix="_conv_1")
    tower_3x3_d3_b = Conv(tower_3x3_d3, num_3x3_d3_2, c, kernel=(3, 1), pad=(1, 0), name=f"{name}_tower_1",
                          suffix="_mixed_conv_1")
    tower_3x3_d3_a = Conv(tower_3x3_d3, num_3x3_d3_1, c, kernel=(1, 3), pad=(0, 1), name=f"{name}_tower_1",
                          suffix="_mixed_conv")
    tower_d3 = Conv(data, num_d3_red, c, name=f"{name}_tower", suffix="_conv")
    tower_d3_b = Conv(tower_d3, num_d3_2, c, kernel=(3, 1), pad=(1, 0), name=f"{name}_tower", suffix="_mixed_conv_1")
    tower_d3_a = Conv(tower_d3, num_d3_1, c, kernel=(1, 3), pad=(0, 1), name=f"{name}_tower", suffix="_mixed_conv")
    tower_1x1 = Conv(data, num_1x1, c, name=f"{name}_conv")
    towers_d3 = [tower_d3_b, tower_d3_a] if (c.swap_mixed_9_pair and name == "mixed_9") else [tower_d3_a, tower_d3_b]
    # slim: concat([1x1, concat([1x3, 3x1]), concat([1x3, 3x1]), proj]); one flat concat here
    return mx.sym.Concat(tower_1x1, *towers_d3, tower_3x3_d3_a, tower_3x3_d3_b, cproj,
                         name=f"ch_concat_{name}_chconcat")


_FACTORIES = {"A": Inception7A, "B": Inception7B, "C": Inception7C, "D": Inception7D, "E": Inception7E}


def _build(num_classes: int, c: _Choices):
    data = mx.sym.Variable("data")  # 3 x 139 x 139
    conv = Conv(data, 32, c, kernel=(3, 3), stride=(2, 2), name="conv")  # 32 x 69 x 69
    conv_1 = Conv(conv, 32, c, kernel=(3, 3), name="conv_1")  # 32 x 67 x 67
    conv_2 = Conv(conv_1, 64, c, kernel=(3, 3), pad=(1, 1), name="conv_2")  # 64 x 67 x 67
    pool = mx.sym.Pooling(data=conv_2, kernel=(3, 3), stride=(2, 2), pool_type="max", name="pool")  # 64 x 33 x 33
    conv_3 = Conv(pool, 80, c, kernel=(1, 1), name="conv_3")  # 80 x 33 x 33
    conv_4 = Conv(conv_3, 192, c, kernel=(3, 3), name="conv_4")  # 192 x 31 x 31
    net = mx.sym.Pooling(data=conv_4, kernel=(3, 3), stride=(2, 2), pool_type="max", name="pool1")  # 192 x 15 x 15
    aux_input = None
    for name, (factory, _, arguments) in MODULES.items():
        if name == "mixed_10":
            arguments = arguments[:-2] + (c.pool_mixed_10, arguments[-1])
        net = _FACTORIES[factory](net, *arguments, name, c)
        if name == "mixed_7":  # 768 x 7 x 7
            aux_input = net
    # 2048 x 3 x 3
    net = mx.sym.Pooling(data=net, kernel=(3, 3), stride=(1, 1), pool_type="avg", name="global_pool")
    net = mx.sym.Dropout(data=net, p=c.dropout_p, name="dropout")
    net = mx.sym.Flatten(data=net, name="flatten")
    net = mx.sym.FullyConnected(data=net, num_hidden=num_classes, name="fc1")
    softmax = mx.sym.SoftmaxOutput(data=net, name="softmax")
    # AuxLogits on mixed_7: 5x5/3 VALID average pool -> 768 x 1 x 1
    aux = mx.sym.Pooling(data=aux_input, kernel=(5, 5), stride=(3, 3), pool_type="avg", name="aux_pool")
    aux = Conv(aux, 128, c, name="aux_conv")
    aux = Conv(aux, 768, c, kernel=(1, 1), name="aux_conv_1")  # slim's 5x5 shrunk to the 1x1 map
    aux = mx.sym.Flatten(data=aux, name="aux_flatten")
    aux = mx.sym.FullyConnected(data=aux, num_hidden=num_classes, name="aux_fc")
    label = mx.sym.Variable("softmax_label")
    aux_softmax = mx.sym.SoftmaxOutput(data=aux, label=label, grad_scale=AUX_GRAD_SCALE, name="aux_softmax")
    return mx.sym.Group([softmax, aux_softmax])


def build(num_classes: int = CLASSES):
    """The port: input ``data`` (N, 3, 139, 139); Group [``softmax``, ``aux_softmax``], label ``softmax_label``."""
    return _build(num_classes, _Choices())


def _module_scopes(name, factory, scope):
    """(MXNet conv prefix, slim scope) of one Inception module's convs."""
    if factory == "A":
        b1 = ("Conv2d_0b_1x1", "Conv_1_0c_5x5") if scope.endswith("Mixed_5c") else ("Conv2d_0a_1x1", "Conv2d_0b_5x5")
        return [(f"{name}_conv", "Branch_0/Conv2d_0a_1x1"),
                (f"{name}_tower_conv", f"Branch_1/{b1[0]}"), (f"{name}_tower_conv_1", f"Branch_1/{b1[1]}"),
                (f"{name}_tower_1_conv", "Branch_2/Conv2d_0a_1x1"), (f"{name}_tower_1_conv_1", "Branch_2/Conv2d_0b_3x3"),
                (f"{name}_tower_1_conv_2", "Branch_2/Conv2d_0c_3x3"), (f"{name}_tower_2_conv", "Branch_3/Conv2d_0b_1x1")]
    if factory == "B":
        return [(f"{name}_conv", "Branch_0/Conv2d_1a_1x1"), (f"{name}_tower_conv", "Branch_1/Conv2d_0a_1x1"),
                (f"{name}_tower_conv_1", "Branch_1/Conv2d_0b_3x3"), (f"{name}_tower_conv_2", "Branch_1/Conv2d_1a_1x1")]
    if factory == "C":
        return [(f"{name}_conv", "Branch_0/Conv2d_0a_1x1"),
                (f"{name}_tower_conv", "Branch_1/Conv2d_0a_1x1"), (f"{name}_tower_conv_1", "Branch_1/Conv2d_0b_1x7"),
                (f"{name}_tower_conv_2", "Branch_1/Conv2d_0c_7x1"),
                (f"{name}_tower_1_conv", "Branch_2/Conv2d_0a_1x1"), (f"{name}_tower_1_conv_1", "Branch_2/Conv2d_0b_7x1"),
                (f"{name}_tower_1_conv_2", "Branch_2/Conv2d_0c_1x7"), (f"{name}_tower_1_conv_3", "Branch_2/Conv2d_0d_7x1"),
                (f"{name}_tower_1_conv_4", "Branch_2/Conv2d_0e_1x7"), (f"{name}_tower_2_conv", "Branch_3/Conv2d_0b_1x1")]
    if factory == "D":
        return [(f"{name}_tower_conv", "Branch_0/Conv2d_0a_1x1"), (f"{name}_tower_conv_1", "Branch_0/Conv2d_1a_3x3"),
                (f"{name}_tower_1_conv", "Branch_1/Conv2d_0a_1x1"), (f"{name}_tower_1_conv_1", "Branch_1/Conv2d_0b_1x7"),
                (f"{name}_tower_1_conv_2", "Branch_1/Conv2d_0c_7x1"),
                (f"{name}_tower_1_conv_3", "Branch_1/Conv2d_1a_3x3")]
    b1_3x1 = "Conv2d_0b_3x1" if scope.endswith("Mixed_7b") else "Conv2d_0c_3x1"
    return [(f"{name}_conv", "Branch_0/Conv2d_0a_1x1"),
            (f"{name}_tower_conv", "Branch_1/Conv2d_0a_1x1"), (f"{name}_tower_mixed_conv", "Branch_1/Conv2d_0b_1x3"),
            (f"{name}_tower_mixed_conv_1", f"Branch_1/{b1_3x1}"),
            (f"{name}_tower_1_conv", "Branch_2/Conv2d_0a_1x1"), (f"{name}_tower_1_conv_1", "Branch_2/Conv2d_0b_3x3"),
            (f"{name}_tower_1_mixed_conv", "Branch_2/Conv2d_0c_1x3"),
            (f"{name}_tower_1_mixed_conv_1", "Branch_2/Conv2d_0d_3x1"), (f"{name}_tower_2_conv", "Branch_3/Conv2d_0b_1x1")]


def _conv_scopes():
    """(MXNet conv prefix, slim scope) of every conv + batch norm."""
    for name, scope in (("conv", "Conv2d_1a_3x3"), ("conv_1", "Conv2d_2a_3x3"), ("conv_2", "Conv2d_2b_3x3"),
                        ("conv_3", "Conv2d_3b_1x1"), ("conv_4", "Conv2d_4a_3x3"),
                        ("aux_conv", "AuxLogits/Conv2d_1b_1x1"), ("aux_conv_1", "AuxLogits/Conv2d_2a_1x1")):
        yield name, f"{_SCOPE}/{scope}"
    for name, (factory, mixed, _) in MODULES.items():
        for prefix, scope in _module_scopes(name, factory, mixed):
            yield prefix, f"{_SCOPE}/{mixed}/{scope}"


def weights_from_tf(tf_values):
    """slim's variables -> (arg_params, aux_params) of this port (numpy arrays)."""
    arg_params, aux_params = {}, {}
    for prefix, scope in _conv_scopes():
        args, aux = common.conv_bn(tf_values, scope, f"{prefix}_conv2d", f"{prefix}_batchnorm")
        arg_params.update(args)
        aux_params.update(aux)
    for fc, scope in (("fc1", "Logits/Conv2d_1c_1x1"), ("aux_fc", "AuxLogits/Conv2d_2b_1x1")):
        arg_params[f"{fc}_weight"] = common.dense_from_1x1(tf_values[f"{_SCOPE}/{scope}/weights"])
        arg_params[f"{fc}_bias"] = tf_values[f"{_SCOPE}/{scope}/biases"]
    return arg_params, aux_params


def _mutant(**change):
    choices = replace(_Choices(), **change)
    return lambda num_classes=CLASSES: _build(num_classes, choices)


MUTANTS = {
    "count_include_pad": (_mutant(count_include_pad=True),
                          "the SAME 3x3/1 average pools count the padded cells (MXNet's default)"),
    "concat_order": (_mutant(swap_mixed_9_pair=True),
                     "mixed_9 (Mixed_7b) flat concat takes Branch_1's 3x1 before its 1x3: channels permuted"),
    "mixed_7c_max_pool": (_mutant(pool_mixed_10="max"),
                          "mixed_10 (Mixed_7c) pool branch is a max pool, as in MXNet's example; slim averages"),
    "aux_missing_bn": (_mutant(no_bn="aux_conv"),
                       "aux_conv (AuxLogits/Conv2d_1b_1x1) without its batch norm: only the aux head differs"),
    "dropout_keep_prob": (_mutant(dropout_p=0.8),
                          "Dropout p=0.8 is slim's keep_prob (MXNet p drops): training only"),
}
TRAINING_ONLY = {"dropout_keep_prob": ("dropout", "p")}
#: Where each mutant's defect is, as slim's layer (the root cause a verifier should report first):
#: a row whose TF layer is this scope or under it names the root.
MUTANT_ROOTS = {
    "count_include_pad": "InceptionV3/Mixed_5b/Branch_3/AvgPool_0a_3x3",
    "concat_order": "InceptionV3/Mixed_7b",
    "mixed_7c_max_pool": "InceptionV3/Mixed_7c/Branch_3/AvgPool_0a_3x3",
    "aux_missing_bn": "InceptionV3/AuxLogits/Conv2d_1b_1x1",
    "dropout_keep_prob": "InceptionV3/Logits/Dropout_1b",
}
