"""slim's ``inception_v1`` (GoogLeNet with batch norm) ported to MXNet by hand, at 224x224.

Written the way the MXNet GoogLeNet examples write it, not mirrored from slim: Caffe-style names
(``conv1_7x7_s2``, ``inception_3a_3x3_reduce``, ``loss3_classifier``), each Inception module's
branches created pool branch first and concatenated in slim's channel order, a ``Flatten`` +
``FullyConnected`` head for slim's 1x1 logits conv, and ``SoftmaxOutput`` at the end.

What the port has to get right at 224 (slim's SAME is asymmetric at every stride-2 layer):

* ``Conv2d_1a_7x7`` (224, stride 2) pads (2, 3): an explicit ``mx.sym.pad``, then a conv with pad 0;
* the stride-2 SAME max pools on 112, 56, 28 pad (0, 1): ``pooling_convention='full'`` with pad 0
  gives the same windows (the extra window row only reads real cells plus the ignored pad);
* batch norm: ``scale=False`` (``fix_gamma=True``), eps 0.001, decay 0.9997; no conv bias;
* the branch TF calls ``Mixed_*/Branch_2`` is a 3x3 conv in slim (5x5 in the paper), and
  ``Mixed_5b/Branch_2``'s 3x3 is scoped ``Conv2d_0a_3x3`` (sic);
* the 7x7 VALID average pool needs a 7x7 map: the input must be 193..224 (224 here).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from porting import compat
from tests.support.ports import common

mx = compat.import_mx()

SLIM = "tf_slim.nets.inception_v1:inception_v1"
ARG_SCOPE = "tf_slim.nets.inception_v1:inception_v1_arg_scope"
SIZE = 224
CLASSES = 10
SLIM_KWARGS: dict = {}
#: Extra slim end points compared with the port's other SoftmaxOutput inputs (none here).
HEADS: tuple[str, ...] = ()

tf_build = common.slim_builder(SLIM, ARG_SCOPE, **SLIM_KWARGS)

_SCOPE = "InceptionV1"
BN_EPS = 0.001
BN_MOMENTUM = 0.9997
DROPOUT_P = 0.2  # slim's keep_prob 0.8

#: (module, slim scope, #1x1, #3x3 reduce, #3x3, #3x3b reduce, #3x3b, #pool proj)
INCEPTIONS = (
    ("3a", "Mixed_3b", 64, 96, 128, 16, 32, 32),
    ("3b", "Mixed_3c", 128, 128, 192, 32, 96, 64),
    ("4a", "Mixed_4b", 192, 96, 208, 16, 48, 64),
    ("4b", "Mixed_4c", 160, 112, 224, 24, 64, 64),
    ("4c", "Mixed_4d", 128, 128, 256, 24, 64, 64),
    ("4d", "Mixed_4e", 112, 144, 288, 32, 64, 64),
    ("4e", "Mixed_4f", 256, 160, 320, 32, 128, 128),
    ("5a", "Mixed_5b", 256, 160, 320, 32, 128, 128),
    ("5b", "Mixed_5c", 384, 192, 384, 48, 128, 128),
)


@dataclass(frozen=True)
class _Choices:
    """How each construct is written; the defaults are the correct port, a mutant changes one."""

    stem_pad_symmetric: bool = False  # Convolution(pad=3) instead of TF's (2, 3)
    pool_caffe_style: bool = False  # pad=1 + 'valid' instead of pad 0 + 'full' on SAME stride-2 pools
    concat_in_creation_order: str | None = None  # a module that concatenates in creation order
    no_bn: str | None = None  # a conv written without its batch norm
    dropout_p: float = DROPOUT_P


def _conv(data, name, num_filter, kernel, choices, stride=(1, 1), pad=(0, 0)):
    net = mx.sym.Convolution(data, num_filter=num_filter, kernel=kernel, stride=stride, pad=pad,
                             no_bias=True, name=name)
    if choices.no_bn != name:
        net = mx.sym.BatchNorm(net, fix_gamma=True, eps=BN_EPS, momentum=BN_MOMENTUM, name=f"{name}_bn")
    return mx.sym.Activation(net, act_type="relu", name=f"{name}_relu")


def _same_pool_s2(data, name, choices):
    """slim's SAME 3x3/2 max pool on an even map (pads (0, 1))."""
    if choices.pool_caffe_style:
        return mx.sym.Pooling(data, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max", name=name)
    return mx.sym.Pooling(data, kernel=(3, 3), stride=(2, 2), pool_type="max", pooling_convention="full",
                          name=name)


def _inception(data, module, n1x1, n3x3r, n3x3, n3x3br, n3x3b, nproj, choices):
    prefix = f"inception_{module}"
    pool = mx.sym.Pooling(data, kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="max", name=f"{prefix}_pool")
    proj = _conv(pool, f"{prefix}_pool_proj", nproj, (1, 1), choices)
    b3x3b = _conv(data, f"{prefix}_3x3b_reduce", n3x3br, (1, 1), choices)
    b3x3b = _conv(b3x3b, f"{prefix}_3x3b", n3x3b, (3, 3), choices, pad=(1, 1))
    b3x3 = _conv(data, f"{prefix}_3x3_reduce", n3x3r, (1, 1), choices)
    b3x3 = _conv(b3x3, f"{prefix}_3x3", n3x3, (3, 3), choices, pad=(1, 1))
    b1x1 = _conv(data, f"{prefix}_1x1", n1x1, (1, 1), choices)
    branches = [b1x1, b3x3, b3x3b, proj]  # slim's Branch_0..3 channel order
    if choices.concat_in_creation_order == module:
        branches = [proj, b3x3b, b3x3, b1x1]
    return mx.sym.Concat(*branches, dim=1, name=f"{prefix}_output")


def _build(num_classes: int, choices: _Choices):
    data = mx.sym.Variable("data")  # 3 x 224 x 224
    if choices.stem_pad_symmetric:
        net = mx.sym.Convolution(data, num_filter=64, kernel=(7, 7), stride=(2, 2), pad=(3, 3), no_bias=True,
                                 name="conv1_7x7_s2")
    else:
        net = mx.sym.pad(data, mode="constant", pad_width=(0, 0, 0, 0, 2, 3, 2, 3), name="conv1_pad")
        net = mx.sym.Convolution(net, num_filter=64, kernel=(7, 7), stride=(2, 2), no_bias=True,
                                 name="conv1_7x7_s2")
    net = mx.sym.BatchNorm(net, fix_gamma=True, eps=BN_EPS, momentum=BN_MOMENTUM, name="conv1_7x7_s2_bn")
    net = mx.sym.Activation(net, act_type="relu", name="conv1_7x7_s2_relu")  # 64 x 112 x 112
    net = _same_pool_s2(net, "pool1_3x3_s2", choices)  # 64 x 56 x 56
    net = _conv(net, "conv2_3x3_reduce", 64, (1, 1), choices)
    net = _conv(net, "conv2_3x3", 192, (3, 3), choices, pad=(1, 1))  # 192 x 56 x 56
    net = _same_pool_s2(net, "pool2_3x3_s2", choices)  # 192 x 28 x 28
    for module, _, *filters in INCEPTIONS:
        net = _inception(net, module, *filters, choices)
        if module == "3b":  # 480 x 28 x 28
            net = _same_pool_s2(net, "pool3_3x3_s2", choices)  # 480 x 14 x 14
        elif module == "4e":  # 832 x 14 x 14; 2x2/2 on 14 needs no pad
            net = mx.sym.Pooling(net, kernel=(2, 2), stride=(2, 2), pool_type="max", name="pool4_2x2_s2")
    # 1024 x 7 x 7
    net = mx.sym.Pooling(net, kernel=(7, 7), stride=(1, 1), pool_type="avg", name="pool5_7x7_s1")
    net = mx.sym.Dropout(net, p=choices.dropout_p, name="pool5_drop_7x7_s1")
    net = mx.sym.Flatten(net, name="flatten")
    net = mx.sym.FullyConnected(net, num_hidden=num_classes, name="loss3_classifier")
    return mx.sym.SoftmaxOutput(net, name="softmax")


def build(num_classes: int = CLASSES):
    """The port: input ``data`` (N, 3, 224, 224), output ``softmax`` (label ``softmax_label``)."""
    return _build(num_classes, _Choices())


def _conv_scopes():
    """(MXNet conv name, slim scope) of every conv + batch norm."""
    yield "conv1_7x7_s2", f"{_SCOPE}/Conv2d_1a_7x7"
    yield "conv2_3x3_reduce", f"{_SCOPE}/Conv2d_2b_1x1"
    yield "conv2_3x3", f"{_SCOPE}/Conv2d_2c_3x3"
    for module, mixed, *_ in INCEPTIONS:
        prefix, scope = f"inception_{module}", f"{_SCOPE}/{mixed}"
        yield f"{prefix}_1x1", f"{scope}/Branch_0/Conv2d_0a_1x1"
        yield f"{prefix}_3x3_reduce", f"{scope}/Branch_1/Conv2d_0a_1x1"
        yield f"{prefix}_3x3", f"{scope}/Branch_1/Conv2d_0b_3x3"
        yield f"{prefix}_3x3b_reduce", f"{scope}/Branch_2/Conv2d_0a_1x1"
        yield f"{prefix}_3x3b", f"{scope}/Branch_2/" + ("Conv2d_0a_3x3" if mixed == "Mixed_5b" else "Conv2d_0b_3x3")
        yield f"{prefix}_pool_proj", f"{scope}/Branch_3/Conv2d_0b_1x1"


def weights_from_tf(tf_values):
    """slim's variables -> (arg_params, aux_params) of this port (numpy arrays)."""
    arg_params, aux_params = {}, {}
    for conv, scope in _conv_scopes():
        args, aux = common.conv_bn(tf_values, scope, conv, f"{conv}_bn")
        arg_params.update(args)
        aux_params.update(aux)
    logits = f"{_SCOPE}/Logits/Conv2d_0c_1x1"
    arg_params["loss3_classifier_weight"] = common.dense_from_1x1(tf_values[f"{logits}/weights"])
    arg_params["loss3_classifier_bias"] = tf_values[f"{logits}/biases"]
    return arg_params, aux_params


def _mutant(**change):
    choices = replace(_Choices(), **change)
    return lambda num_classes=CLASSES: _build(num_classes, choices)


MUTANTS = {
    "stem_pad_symmetric": (_mutant(stem_pad_symmetric=True),
                           "conv1_7x7_s2 pads 3 on every side; slim's SAME pads (2, 3) at 224 (window shifted)"),
    "pool_caffe_style": (_mutant(pool_caffe_style=True),
                         "SAME stride-2 max pools written pad=1 'valid' instead of pad 0 'full' (windows shifted)"),
    "concat_order": (_mutant(concat_in_creation_order="4a"),
                     "inception_4a (Mixed_4b) concatenates in creation order: channels permuted"),
    "missing_bn": (_mutant(no_bn="inception_4d_3x3"),
                   "inception_4d_3x3 (Mixed_4e/Branch_1/Conv2d_0b_3x3) without its batch norm"),
    "dropout_keep_prob": (_mutant(dropout_p=0.8),
                          "Dropout p=0.8 is slim's keep_prob (MXNet p drops): training only"),
}
#: Mutants whose defect only changes training (compared by symbol attribute, not by output).
TRAINING_ONLY = {"dropout_keep_prob": ("pool5_drop_7x7_s1", "p")}
#: Where each mutant's defect is, as slim's layer (the root cause a verifier should report first):
#: a row whose TF layer is this scope or under it names the root.
MUTANT_ROOTS = {
    "stem_pad_symmetric": "InceptionV1/Conv2d_1a_7x7",
    "pool_caffe_style": "InceptionV1/MaxPool_2a_3x3",
    "concat_order": "InceptionV1/Mixed_4b/concat",
    "missing_bn": "InceptionV1/Mixed_4e/Branch_1/Conv2d_0b_3x3",
    "dropout_keep_prob": "InceptionV1/Logits/Dropout_0b",
}
