"""Inception-ResNet-v2 in MXNet, ported layer by layer from tf.slim's definition.

The port keeps slim's semantics and names:

* every conv is ``Convolution(no_bias=True)`` -> ``BatchNorm(eps=0.001, momentum=0.9997,
  fix_gamma=True)`` -> ``relu`` (slim's arg_scope: batch norm with center and no scale);
  the residual up-projection is a 1x1 conv WITH bias and without batch norm or
  activation; ``net = relu(net + scale * up)``;
* every layer is named after the slim scope it ports, ``/`` included
  (``InceptionResnetV2/Repeat_1/block17_3/Branch_1/Conv2d_0b_1x7``), its batch norm
  ``<conv>/BatchNorm`` and its activation ``<conv>/Relu``; so MXNet's parameter names
  follow ``porting.core.naming`` (``<conv>_weight``, ``<conv>/BatchNorm_moving_var``, ...);
* spatial sizes are tracked as Python ints while building, and every pad comes from
  ``porting.padding.plan`` (through ``porting.frameworks.mx_ops``): where TF pads asymmetrically
  (``align_feature_maps=True``: stride-2 SAME at 150 -> 75 and 38 -> 19) the plan
  inserts an explicit pad op ``<layer>/pad`` or uses ``pooling_convention='full'``.

Entry points: :func:`get_symbol` (inference group, training head, or one end point),
:func:`get_end_points`, :func:`end_point_shapes`, and the MX builder contract
:func:`build` / :func:`build_reduced` (``fn(num_classes) -> Symbol``, input ``data``, NCHW).
The constants mirror ``reference_tf.inception_resnet_v2`` name for name.

Shape comments are NCHW without the batch axis, for the default 299x299 input.
"""
from __future__ import annotations

from dataclasses import dataclass

from porting import compat
from porting.frameworks import mx_ops
from porting.padding import plan

mx = compat.import_mx()

SCOPE = "InceptionResnetV2"

#: slim's inception_resnet_v2_arg_scope: batch_norm_decay, batch_norm_epsilon (scale=False).
BN_MOMENTUM = 0.9997
BN_EPS = 0.001

#: End points of inception_resnet_v2_base, in order.
BASE_END_POINTS = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_3a_3x3", "Conv2d_3b_1x1",
    "Conv2d_4a_3x3", "MaxPool_5a_3x3", "Mixed_5b", "Mixed_6a", "PreAuxLogits", "Mixed_7a",
    "Conv2d_7b_1x1",
)
#: End points the classification head adds (AuxLogits only with create_aux_logits).
HEAD_END_POINTS = ("AuxLogits", "global_pool", "PreLogitsFlatten", "Logits", "Predictions")
#: Every end point of the full network, in order.
END_POINTS = BASE_END_POINTS + HEAD_END_POINTS
#: Residual scales slim uses for block35, block17 and block8.
BLOCK35_SCALE = 0.17
BLOCK17_SCALE = 0.10
BLOCK8_SCALE = 0.20
#: Residual blocks per stage (block35, block17, block8), as in slim.
DEFAULT_REPEATS = (10, 20, 9)
#: "reduced": one block of each kind, so every layer kind is there and it builds fast.
REDUCED_REPEATS = (1, 1, 1)
#: "small": two blocks of each kind, so ``_2`` names exist.
SMALL_REPEATS = (2, 2, 2)
#: Named repeat presets (``porting.train --repeats NAME``); the end-point shapes do not
#: depend on the repeats.
REPEAT_PRESETS = {"full": DEFAULT_REPEATS, "reduced": REDUCED_REPEATS, "small": SMALL_REPEATS}

#: Weight of the auxiliary loss in slim's train_image_classifier.py.
AUX_LOSS_WEIGHT = 0.4

#: Label of both SoftmaxOutput heads (Module's default label name).
LABEL_NAME = "softmax_label"


@dataclass(frozen=True)
class _Tensor:
    """A symbol with the shape TF gives it, tracked as Python ints (NCHW, no batch)."""

    sym: object
    channels: int
    size: tuple[int, ...] | None  # (H, W); None once flattened

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.channels,) if self.size is None else (self.channels, *self.size)


# ------------------------------------------------------------------- layers

def _conv(x: _Tensor, num_filter: int, kernel, name: str, stride=1, padding: str = "SAME",
          dilation=1, normalize: bool = True) -> _Tensor:
    """slim.conv2d under the IRv2 arg_scope.

    normalize=True: conv without bias -> BatchNorm -> relu. normalize=False (the residual
    up-projection, ``normalizer_fn=None, activation_fn=None``): a linear conv with bias.
    """
    layer_plan = plan("conv", x.size, kernel, stride, padding, dilation)
    net = mx_ops.conv2d(x.sym, num_filter, layer_plan, name, no_bias=normalize)
    if normalize:
        net = mx.sym.BatchNorm(net, eps=BN_EPS, momentum=BN_MOMENTUM, fix_gamma=True,
                               use_global_stats=False, name=f"{name}/BatchNorm")
        net = mx.sym.Activation(net, act_type="relu", name=f"{name}/Relu")
    return _Tensor(net, num_filter, layer_plan.out)


def _pool(x: _Tensor, op: str, kernel, stride, padding: str, name: str) -> _Tensor:
    """slim.max_pool2d / avg_pool2d ('max' / 'avg'); count_include_pad comes from the plan."""
    layer_plan = plan(op, x.size, kernel, stride, padding)
    return _Tensor(mx_ops.pool2d(x.sym, layer_plan, name), x.channels, layer_plan.out)


def _concat(parts: list[_Tensor], name: str) -> _Tensor:
    sizes = {part.size for part in parts}
    if len(sizes) != 1:  # would be a bug in this module, not in the caller's input
        raise AssertionError(f"layer {name}: branches disagree on the spatial size: {sorted(sizes)}")
    return _Tensor(mx.sym.concat(*(part.sym for part in parts), dim=1, name=name),
                   sum(part.channels for part in parts), parts[0].size)


def _flatten(x: _Tensor, name: str) -> _Tensor:
    return _Tensor(mx.sym.flatten(x.sym, name=name), x.channels * x.size[0] * x.size[1], None)


def _fully_connected(x: _Tensor, num_hidden: int, name: str) -> _Tensor:
    return _Tensor(mx.sym.FullyConnected(x.sym, num_hidden=num_hidden, name=name), num_hidden, None)


# ---------------------------------------------------------- residual blocks

def _residual(net: _Tensor, branches: list[_Tensor], scale: float, activate: bool, name: str,
              dilation: int = 1) -> _Tensor:
    """Concat the branches, project back to the block's input width, add, activate."""
    mixed = _concat(branches, f"{name}/concat")
    up = _conv(mixed, net.channels, 1, f"{name}/Conv2d_1x1", dilation=dilation, normalize=False)
    # ``up.sym * scale`` builds the same _mul_scalar op but with an automatic name.
    scaled = mx.sym._internal._mul_scalar(up.sym, scalar=scale, name=f"{name}/mul")
    out = mx.sym.elemwise_add(net.sym, scaled, name=f"{name}/add")
    if activate:
        out = mx.sym.Activation(out, act_type="relu", name=f"{name}/Relu")
    return _Tensor(out, net.channels, net.size)


def _block35(net: _Tensor, scale: float, activate: bool, name: str) -> _Tensor:
    """35x35 residual block (input width kept: 320)."""
    branch_0 = _conv(net, 32, 1, f"{name}/Branch_0/Conv2d_1x1")
    branch_1 = _conv(net, 32, 1, f"{name}/Branch_1/Conv2d_0a_1x1")
    branch_1 = _conv(branch_1, 32, 3, f"{name}/Branch_1/Conv2d_0b_3x3")
    branch_2 = _conv(net, 32, 1, f"{name}/Branch_2/Conv2d_0a_1x1")
    branch_2 = _conv(branch_2, 48, 3, f"{name}/Branch_2/Conv2d_0b_3x3")
    branch_2 = _conv(branch_2, 64, 3, f"{name}/Branch_2/Conv2d_0c_3x3")
    return _residual(net, [branch_0, branch_1, branch_2], scale, activate, name)


def _block17(net: _Tensor, scale: float, activate: bool, name: str, dilation: int = 1) -> _Tensor:
    """17x17 residual block (input width kept: 1088); dilation 2 when output_stride=8."""
    branch_0 = _conv(net, 192, 1, f"{name}/Branch_0/Conv2d_1x1", dilation=dilation)
    branch_1 = _conv(net, 128, 1, f"{name}/Branch_1/Conv2d_0a_1x1", dilation=dilation)
    branch_1 = _conv(branch_1, 160, (1, 7), f"{name}/Branch_1/Conv2d_0b_1x7", dilation=dilation)
    branch_1 = _conv(branch_1, 192, (7, 1), f"{name}/Branch_1/Conv2d_0c_7x1", dilation=dilation)
    return _residual(net, [branch_0, branch_1], scale, activate, name, dilation=dilation)


def _block8(net: _Tensor, scale: float, activate: bool, name: str) -> _Tensor:
    """8x8 residual block (input width kept: 2080)."""
    branch_0 = _conv(net, 192, 1, f"{name}/Branch_0/Conv2d_1x1")
    branch_1 = _conv(net, 192, 1, f"{name}/Branch_1/Conv2d_0a_1x1")
    branch_1 = _conv(branch_1, 224, (1, 3), f"{name}/Branch_1/Conv2d_0b_1x3")
    branch_1 = _conv(branch_1, 256, (3, 1), f"{name}/Branch_1/Conv2d_0c_3x1")
    return _residual(net, [branch_0, branch_1], scale, activate, name)


def _repeat(net: _Tensor, times: int, block, scope: str, **kwargs) -> _Tensor:
    """slim.repeat: scopes ``<scope>/<block>_1`` ... ``<scope>/<block>_<times>``."""
    block_name = block.__name__.lstrip("_")
    for index in range(1, times + 1):
        net = block(net, name=f"{scope}/{block_name}_{index}", activate=True, **kwargs)
    return net


# ---------------------------------------------------------------- argument checks

def _image_size(image_size) -> tuple[int, int]:
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        size = (image_size, image_size)
    else:
        try:
            size = tuple(image_size)
        except TypeError:
            size = ()
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                 for v in size):
        raise ValueError(f"image_size must be a positive int or (height, width), got {image_size!r}")
    return size


def _check_args(num_classes, output_stride, dropout_keep_prob, repeats, final_endpoint,
                create_aux_logits) -> tuple[int, int, int]:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 0:
        raise ValueError(f"num_classes must be a non-negative int (0: no logits), got {num_classes!r}")
    if output_stride not in (8, 16):
        raise ValueError(f"output_stride must be 8 or 16, got {output_stride!r}")
    if not 0.0 < dropout_keep_prob <= 1.0:
        raise ValueError(f"dropout_keep_prob must be in (0, 1], got {dropout_keep_prob!r}")
    repeats = tuple(repeats)
    if len(repeats) != 3 or not all(isinstance(v, int) and v >= 0 for v in repeats):
        raise ValueError(f"repeats must be three non-negative ints (block35, block17, block8), "
                         f"got {repeats!r}")
    if final_endpoint not in END_POINTS:
        raise ValueError(f"unknown final_endpoint {final_endpoint!r}. Available: {', '.join(END_POINTS)}")
    if final_endpoint == "AuxLogits" and not (create_aux_logits and num_classes):
        raise ValueError("final_endpoint 'AuxLogits' needs create_aux_logits=True and num_classes > 0")
    if final_endpoint in ("PreLogitsFlatten", "Logits", "Predictions") and not num_classes:
        raise ValueError(f"final_endpoint {final_endpoint!r} needs num_classes > 0")
    if output_stride == 8 and END_POINTS.index(final_endpoint) > END_POINTS.index("PreAuxLogits"):
        # slim: "output_stride==8 is only supported up to the PreAuxlogits end_point for now."
        raise ValueError(f"output_stride=8 is only supported up to the PreAuxLogits end point "
                         f"(as in slim), got final_endpoint {final_endpoint!r}")
    return repeats


# ------------------------------------------------------------------ network

def _build(num_classes: int = 1001, create_aux_logits: bool = False,
           align_feature_maps: bool = False, output_stride: int = 16,
           dropout_keep_prob: float = 0.8, repeats=DEFAULT_REPEATS, image_size=299,
           final_endpoint: str = "Predictions", global_pool: bool = False) -> dict[str, _Tensor]:
    """All end points up to ``final_endpoint``, in slim's order."""
    repeats = _check_args(num_classes, output_stride, dropout_keep_prob, repeats, final_endpoint,
                          create_aux_logits)
    size = _image_size(image_size)
    padding = "SAME" if align_feature_maps else "VALID"
    use_atrous = output_stride == 8
    end_points: dict[str, _Tensor] = {}

    def add(name: str, tensor: _Tensor) -> bool:
        end_points[name] = tensor
        return name == final_endpoint

    def scoped(name: str) -> str:
        return f"{SCOPE}/{name}"

    net = _Tensor(mx.sym.Variable("data"), 3, size)  # 3 x 299 x 299

    # 32 x 149 x 149
    net = _conv(net, 32, 3, scoped("Conv2d_1a_3x3"), stride=2, padding=padding)
    if add("Conv2d_1a_3x3", net):
        return end_points
    # 32 x 147 x 147
    net = _conv(net, 32, 3, scoped("Conv2d_2a_3x3"), padding=padding)
    if add("Conv2d_2a_3x3", net):
        return end_points
    # 64 x 147 x 147
    net = _conv(net, 64, 3, scoped("Conv2d_2b_3x3"))
    if add("Conv2d_2b_3x3", net):
        return end_points
    # 64 x 73 x 73
    net = _pool(net, "max", 3, 2, padding, scoped("MaxPool_3a_3x3"))
    if add("MaxPool_3a_3x3", net):
        return end_points
    # 80 x 73 x 73
    net = _conv(net, 80, 1, scoped("Conv2d_3b_1x1"), padding=padding)
    if add("Conv2d_3b_1x1", net):
        return end_points
    # 192 x 71 x 71
    net = _conv(net, 192, 3, scoped("Conv2d_4a_3x3"), padding=padding)
    if add("Conv2d_4a_3x3", net):
        return end_points
    # 192 x 35 x 35
    net = _pool(net, "max", 3, 2, padding, scoped("MaxPool_5a_3x3"))
    if add("MaxPool_5a_3x3", net):
        return end_points

    # 320 x 35 x 35
    scope = scoped("Mixed_5b")
    branch_0 = _conv(net, 96, 1, f"{scope}/Branch_0/Conv2d_1x1")
    branch_1 = _conv(net, 48, 1, f"{scope}/Branch_1/Conv2d_0a_1x1")
    branch_1 = _conv(branch_1, 64, 5, f"{scope}/Branch_1/Conv2d_0b_5x5")
    branch_2 = _conv(net, 64, 1, f"{scope}/Branch_2/Conv2d_0a_1x1")
    branch_2 = _conv(branch_2, 96, 3, f"{scope}/Branch_2/Conv2d_0b_3x3")
    branch_2 = _conv(branch_2, 96, 3, f"{scope}/Branch_2/Conv2d_0c_3x3")
    # SAME even when align_feature_maps=False; the plan sets count_include_pad=False.
    branch_3 = _pool(net, "avg", 3, 1, "SAME", f"{scope}/Branch_3/AvgPool_0a_3x3")
    branch_3 = _conv(branch_3, 64, 1, f"{scope}/Branch_3/Conv2d_0b_1x1")
    net = _concat([branch_0, branch_1, branch_2, branch_3], f"{scope}/concat")
    if add("Mixed_5b", net):
        return end_points

    # 320 x 35 x 35
    net = _repeat(net, repeats[0], _block35, scoped("Repeat"), scale=BLOCK35_SCALE)

    # 1088 x 17 x 17 (output_stride 8: stride 1, so 1088 x 33 x 33)
    stride = 1 if use_atrous else 2
    scope = scoped("Mixed_6a")
    branch_0 = _conv(net, 384, 3, f"{scope}/Branch_0/Conv2d_1a_3x3", stride=stride, padding=padding)
    branch_1 = _conv(net, 256, 1, f"{scope}/Branch_1/Conv2d_0a_1x1")
    branch_1 = _conv(branch_1, 256, 3, f"{scope}/Branch_1/Conv2d_0b_3x3")
    branch_1 = _conv(branch_1, 384, 3, f"{scope}/Branch_1/Conv2d_1a_3x3", stride=stride,
                     padding=padding)
    branch_2 = _pool(net, "max", 3, stride, padding, f"{scope}/Branch_2/MaxPool_1a_3x3")
    net = _concat([branch_0, branch_1, branch_2], f"{scope}/concat")
    if add("Mixed_6a", net):
        return end_points

    # 1088 x 17 x 17
    net = _repeat(net, repeats[1], _block17, scoped("Repeat_1"), scale=BLOCK17_SCALE,
                  dilation=2 if use_atrous else 1)
    if add("PreAuxLogits", net):
        return end_points
    pre_aux_logits = net

    # 2080 x 8 x 8
    scope = scoped("Mixed_7a")
    branch_0 = _conv(net, 256, 1, f"{scope}/Branch_0/Conv2d_0a_1x1")
    branch_0 = _conv(branch_0, 384, 3, f"{scope}/Branch_0/Conv2d_1a_3x3", stride=2, padding=padding)
    branch_1 = _conv(net, 256, 1, f"{scope}/Branch_1/Conv2d_0a_1x1")
    branch_1 = _conv(branch_1, 288, 3, f"{scope}/Branch_1/Conv2d_1a_3x3", stride=2, padding=padding)
    branch_2 = _conv(net, 256, 1, f"{scope}/Branch_2/Conv2d_0a_1x1")
    branch_2 = _conv(branch_2, 288, 3, f"{scope}/Branch_2/Conv2d_0b_3x3")
    branch_2 = _conv(branch_2, 320, 3, f"{scope}/Branch_2/Conv2d_1a_3x3", stride=2, padding=padding)
    branch_3 = _pool(net, "max", 3, 2, padding, f"{scope}/Branch_3/MaxPool_1a_3x3")
    net = _concat([branch_0, branch_1, branch_2, branch_3], f"{scope}/concat")
    if add("Mixed_7a", net):
        return end_points

    # 2080 x 8 x 8: 9 blocks with relu, then one at scale 1.0 without activation
    net = _repeat(net, repeats[2], _block8, scoped("Repeat_2"), scale=BLOCK8_SCALE)
    net = _block8(net, scale=1.0, activate=False, name=scoped("Block8"))
    # 1536 x 8 x 8
    net = _conv(net, 1536, 1, scoped("Conv2d_7b_1x1"))
    if add("Conv2d_7b_1x1", net):
        return end_points

    if create_aux_logits and num_classes:
        scope = scoped("AuxLogits")
        # 1088 x 5 x 5 (slim names this avg pool Conv2d_1a_3x3)
        aux = _pool(pre_aux_logits, "avg", 5, 3, "VALID", f"{scope}/Conv2d_1a_3x3")
        # 128 x 5 x 5
        aux = _conv(aux, 128, 1, f"{scope}/Conv2d_1b_1x1")
        # 768 x 1 x 1: the kernel covers the whole (5 x 5 at 299) map
        aux = _conv(aux, 768, aux.size, f"{scope}/Conv2d_2a_5x5", padding="VALID")
        aux = _flatten(aux, f"{scope}/Flatten")
        aux = _fully_connected(aux, num_classes, f"{scope}/Logits")
        if add("AuxLogits", aux):
            return end_points

    scope = scoped("Logits")
    # 1536 x 1 x 1: slim's avg_pool2d over the whole map, VALID, default stride 2
    if global_pool:
        pooled = mx.sym.Pooling(net.sym, kernel=(1, 1), global_pool=True, pool_type="avg",
                                name=f"{scope}/AvgPool_1a_8x8")
        net = _Tensor(pooled, net.channels, (1, 1))
    else:
        net = _pool(net, "avg", net.size, 2, "VALID", f"{scope}/AvgPool_1a_8x8")
    if add("global_pool", net) or not num_classes:
        return end_points
    net = _flatten(net, f"{scope}/Flatten")
    # MXNet's p is the drop probability; rounded so 1 - 0.8 reads 0.2 in the symbol JSON.
    drop = round(1.0 - dropout_keep_prob, 7)
    net = _Tensor(mx.sym.Dropout(net.sym, p=drop, name=f"{scope}/Dropout"), net.channels, None)
    if add("PreLogitsFlatten", net):
        return end_points
    logits = _fully_connected(net, num_classes, f"{scope}/Logits")
    if add("Logits", logits):
        return end_points
    add("Predictions", _Tensor(mx.sym.softmax(logits.sym, axis=1, name=f"{scope}/Predictions"),
                               num_classes, None))
    return end_points


def get_end_points(num_classes: int = 1001, create_aux_logits: bool = False,
                   align_feature_maps: bool = False, output_stride: int = 16,
                   dropout_keep_prob: float = 0.8, repeats=DEFAULT_REPEATS, image_size=299,
                   final_endpoint: str = "Predictions",
                   global_pool: bool = False) -> dict[str, object]:
    """Symbols of slim's end points (same names), up to and including ``final_endpoint``.

    With ``output_stride=8`` pass ``final_endpoint='PreAuxLogits'`` or earlier (as slim).
    """
    built = _build(num_classes, create_aux_logits, align_feature_maps, output_stride,
                   dropout_keep_prob, repeats, image_size, final_endpoint, global_pool)
    return {name: tensor.sym for name, tensor in built.items()}


def end_point_shapes(num_classes: int = 1001, create_aux_logits: bool = False,
                     align_feature_maps: bool = False, output_stride: int = 16,
                     dropout_keep_prob: float = 0.8, repeats=DEFAULT_REPEATS, image_size=299,
                     final_endpoint: str = "Predictions",
                     global_pool: bool = False) -> dict[str, tuple[int, ...]]:
    """The shapes (NCHW without batch; (K,) once flat) this module tracked while building."""
    built = _build(num_classes, create_aux_logits, align_feature_maps, output_stride,
                   dropout_keep_prob, repeats, image_size, final_endpoint, global_pool)
    return {name: tensor.shape for name, tensor in built.items()}


def get_symbol(num_classes: int = 1001, create_aux_logits: bool = False,
               align_feature_maps: bool = False, output_stride: int = 16,
               dropout_keep_prob: float = 0.8, repeats=DEFAULT_REPEATS, image_size=299,
               final_endpoint: str | None = None, global_pool: bool = False,
               for_training: bool = False, label_smoothing: float = 0.0):
    """Inception-ResNet-v2 as an MXNet symbol with input ``data`` (NCHW).

    Args:
        num_classes: logits width (1001: slim's ImageNet with background class 0).
            0 returns the global-pool features.
        create_aux_logits: add the AuxLogits head on PreAuxLogits.
        align_feature_maps: slim's option: the stem and reductions use SAME padding.
        output_stride: 16, or 8 (atrous block17s; only with ``final_endpoint`` up to
            ``PreAuxLogits``, as in slim).
        dropout_keep_prob: slim's keep probability (MXNet drop p = 1 - keep).
        repeats: residual blocks per stage (block35, block17, block8).
        image_size: int or (height, width) the pads are derived for.
        final_endpoint: return this end point's symbol alone (see END_POINTS).
        global_pool: pool with ``global_pool=True`` instead of a kernel of the map size.
        for_training: wrap the logits in SoftmaxOutput (label ``softmax_label``), and the
            aux logits in a second SoftmaxOutput with grad_scale 0.4.
        label_smoothing: TF's label smoothing ``ls``; MXNet's smooth_alpha = ls*(K-1)/K.

    Returns:
        Inference: Group [Logits, Predictions] (+ AuxLogits). Training: Group of the
        SoftmaxOutput heads (main first), or the main head alone without aux.
        With ``final_endpoint``: that end point's symbol.
    """
    if final_endpoint is not None:
        if for_training:
            raise ValueError("for_training builds the whole network; do not pass final_endpoint")
        return get_end_points(num_classes, create_aux_logits, align_feature_maps, output_stride,
                              dropout_keep_prob, repeats, image_size, final_endpoint,
                              global_pool)[final_endpoint]
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    if for_training and not num_classes:
        raise ValueError("for_training needs num_classes > 0")
    if label_smoothing and not for_training:
        raise ValueError("label_smoothing only applies with for_training=True")
    last = "Predictions" if num_classes else "global_pool"
    ends = get_end_points(num_classes, create_aux_logits, align_feature_maps, output_stride,
                          dropout_keep_prob, repeats, image_size, last, global_pool)
    if not num_classes:
        return ends["global_pool"]
    aux = ends.get("AuxLogits")
    if not for_training:
        outputs = [ends["Logits"], ends["Predictions"]] + ([aux] if aux is not None else [])
        return mx.sym.Group(outputs)
    label = mx.sym.Variable(LABEL_NAME)
    # TF's smoothing gives the gold class 1 - ls + ls/K; MXNet's gives 1 - alpha.
    alpha = label_smoothing * (num_classes - 1) / num_classes
    heads = [mx.sym.SoftmaxOutput(ends["Logits"], label=label, smooth_alpha=alpha,
                                  name=f"{SCOPE}/Logits/Predictions")]
    if aux is not None:
        heads.append(mx.sym.SoftmaxOutput(aux, label=label, smooth_alpha=alpha,
                                          grad_scale=AUX_LOSS_WEIGHT,
                                          name=f"{SCOPE}/AuxLogits/Predictions"))
    return heads[0] if len(heads) == 1 else mx.sym.Group(heads)


def build(num_classes: int = 1001):
    """MX builder contract ``fn(num_classes) -> Symbol``: slim's default network.

    Like slim's ``inception_resnet_v2`` defaults: AuxLogits on, 299x299 pads, full repeats.
    Returns the Group [Logits, Predictions, AuxLogits].
    """
    return get_symbol(num_classes, create_aux_logits=True)


def build_reduced(num_classes: int = 1001):
    """Like :func:`build` with REDUCED_REPEATS (one block of each kind; same end-point shapes)."""
    return get_symbol(num_classes, create_aux_logits=True, repeats=REDUCED_REPEATS)
