"""Inception-ResNet-v2 exactly as tf.slim defines it: the reference side of the comparison.

Szegedy, Ioffe, Vanhoucke, Alemi, "Inception-v4, Inception-ResNet and the Impact of
Residual Connections on Learning" (arXiv:1602.07261), in the form of tf.slim's
``nets/inception_resnet_v2.py``: same layers, scope names, variables, paddings and
end points (the measured facts: shared/IRV2.md and tests/golden/).

Public API, in slim's pattern:
  * ``inception_resnet_v2_base(inputs, final_endpoint, ...) -> (net, end_points)``
  * ``inception_resnet_v2(inputs, num_classes, ...) -> (logits, end_points)``
  * ``inception_resnet_v2_arg_scope(...)``
  * ``block35``, ``block17``, ``block8``: the three residual blocks
  * ``build`` / ``build_reduced``: the project's TF builder contract
    ``fn(images, num_classes) -> (logits, end_points)`` in inference mode.

The constants mirror ``mx_impl.inception_resnet_v2`` name for name (``BASE_END_POINTS``,
``HEAD_END_POINTS``, ``END_POINTS``, ``BLOCK35_SCALE`` ..., ``REPEAT_PRESETS``).

Differences from slim, all additive (the default graph is slim's, op for op):
  * ``repeats`` chooses how many block35/block17/block8 are stacked (slim: 10, 20, 9);
    the presets are "full", "reduced" (one block of each kind: every layer kind, fast)
    and "small" (two of each, so ``_2`` names exist). The final scale-1.0 ``Block8``
    is always added.
  * ``inception_resnet_v2`` also accepts ``align_feature_maps`` (slim hard-codes False
    in the full network; the golden ops table for it was measured with it passed
    through to the base).
  * Bad arguments fail up front, before any layer is built, with one-line messages;
    slim raises some of them only after building the graph and lets TF's shape
    inference fail on inputs that are too small.

Graph notes for whoever reads the built graph:
  * The full network re-enters its variable scope object inside the base, as slim
    does, so trunk ops are named ``InceptionResnetV2/InceptionResnetV2/...`` while
    the heads' ops and every variable are ``InceptionResnetV2/...``.
  * With ``output_stride=8`` TF2 builds block17's dilation-2 convolutions as
    SpaceToBatchND -> Conv2D (dilations 1) -> BatchToSpaceND.
  * The residual is clipped to [-6, 6] only when ``activation_fn`` is relu6 (slim).

Shape comments (``# 35 x 35 x 320``) give each layer's NHWC output for the default
299 x 299 input, ``align_feature_maps=False`` and ``output_stride=16``.
"""
from __future__ import annotations


from porting import compat
from porting.padding import PaddingError, output_size

tf = compat.import_tf()
slim = compat.import_slim()


#: Valid ``final_endpoint`` names of ``inception_resnet_v2_base``, in network order.
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
#: slim's numbers of block35, block17 and block8 (the last scale-1.0 Block8 comes on top).
DEFAULT_REPEATS = (10, 20, 9)
#: "reduced": one block of each kind, so every layer kind is there and it builds fast.
REDUCED_REPEATS = (1, 1, 1)
#: "small": two blocks of each kind, so ``_2`` names exist.
SMALL_REPEATS = (2, 2, 2)
#: Named repeat presets (``porting.train --repeats NAME``).
REPEAT_PRESETS = {"full": DEFAULT_REPEATS, "reduced": REDUCED_REPEATS, "small": SMALL_REPEATS}
OUTPUT_STRIDES = (8, 16)
DEFAULT_IMAGE_SIZE = 299
_LAST_OS8_END_POINT = "PreAuxLogits"


# ------------------------------------------------------------------ residual blocks

def _residual(net, mixed, scale, activation_fn):
    """``net + scale * up(mixed)``, then the activation; ``up`` is a 1x1 conv with bias.

    The up-projection restores the block's input width; it has a bias and no batch
    norm or activation. slim clips the scaled residual to [-6, 6] when the activation
    is relu6 (a band-pass imitation), whatever the dtype; with relu there is no clip.
    """
    up = slim.conv2d(mixed, net.get_shape()[3], 1, normalizer_fn=None, activation_fn=None,
                     scope="Conv2d_1x1")
    scaled_up = up * scale
    if activation_fn == tf.nn.relu6:
        scaled_up = tf.clip_by_value(scaled_up, -6.0, 6.0)
    net += scaled_up
    if activation_fn:
        net = activation_fn(net)
    return net


def block35(net, scale=1.0, activation_fn=tf.nn.relu, scope=None, reuse=None):
    """The 35 x 35 residual block (Inception-ResNet-A), input and output 320 wide."""
    with tf.compat.v1.variable_scope(scope, "Block35", [net], reuse=reuse):
        with tf.compat.v1.variable_scope("Branch_0"):
            tower_0 = slim.conv2d(net, 32, 1, scope="Conv2d_1x1")  # 35 x 35 x 32
        with tf.compat.v1.variable_scope("Branch_1"):
            tower_1 = slim.conv2d(net, 32, 1, scope="Conv2d_0a_1x1")  # 35 x 35 x 32
            tower_1 = slim.conv2d(tower_1, 32, 3, scope="Conv2d_0b_3x3")  # 35 x 35 x 32
        with tf.compat.v1.variable_scope("Branch_2"):
            tower_2 = slim.conv2d(net, 32, 1, scope="Conv2d_0a_1x1")  # 35 x 35 x 32
            tower_2 = slim.conv2d(tower_2, 48, 3, scope="Conv2d_0b_3x3")  # 35 x 35 x 48
            tower_2 = slim.conv2d(tower_2, 64, 3, scope="Conv2d_0c_3x3")  # 35 x 35 x 64
        mixed = tf.concat(axis=3, values=[tower_0, tower_1, tower_2])  # 35 x 35 x 128
        net = _residual(net, mixed, scale, activation_fn)  # 35 x 35 x 320
    return net


def block17(net, scale=1.0, activation_fn=tf.nn.relu, scope=None, reuse=None):
    """The 17 x 17 residual block (Inception-ResNet-B), input and output 1088 wide."""
    with tf.compat.v1.variable_scope(scope, "Block17", [net], reuse=reuse):
        with tf.compat.v1.variable_scope("Branch_0"):
            tower_0 = slim.conv2d(net, 192, 1, scope="Conv2d_1x1")  # 17 x 17 x 192
        with tf.compat.v1.variable_scope("Branch_1"):
            tower_1 = slim.conv2d(net, 128, 1, scope="Conv2d_0a_1x1")  # 17 x 17 x 128
            tower_1 = slim.conv2d(tower_1, 160, [1, 7], scope="Conv2d_0b_1x7")  # 17 x 17 x 160
            tower_1 = slim.conv2d(tower_1, 192, [7, 1], scope="Conv2d_0c_7x1")  # 17 x 17 x 192
        mixed = tf.concat(axis=3, values=[tower_0, tower_1])  # 17 x 17 x 384
        net = _residual(net, mixed, scale, activation_fn)  # 17 x 17 x 1088
    return net


def block8(net, scale=1.0, activation_fn=tf.nn.relu, scope=None, reuse=None):
    """The 8 x 8 residual block (Inception-ResNet-C), input and output 2080 wide."""
    with tf.compat.v1.variable_scope(scope, "Block8", [net], reuse=reuse):
        with tf.compat.v1.variable_scope("Branch_0"):
            tower_0 = slim.conv2d(net, 192, 1, scope="Conv2d_1x1")  # 8 x 8 x 192
        with tf.compat.v1.variable_scope("Branch_1"):
            tower_1 = slim.conv2d(net, 192, 1, scope="Conv2d_0a_1x1")  # 8 x 8 x 192
            tower_1 = slim.conv2d(tower_1, 224, [1, 3], scope="Conv2d_0b_1x3")  # 8 x 8 x 224
            tower_1 = slim.conv2d(tower_1, 256, [3, 1], scope="Conv2d_0c_3x1")  # 8 x 8 x 256
        mixed = tf.concat(axis=3, values=[tower_0, tower_1])  # 8 x 8 x 448
        net = _residual(net, mixed, scale, activation_fn)  # 8 x 8 x 2080
    return net


# ------------------------------------------------------------- argument checking

def _stem_padding(align_feature_maps: bool) -> str:
    """Padding of the stem and of the reductions: slim's VALID, or SAME to align maps."""
    return "SAME" if align_feature_maps else "VALID"


def _check_options(final_endpoint, output_stride, align_feature_maps, repeats) -> tuple[int, int, int]:
    """Validate the base network's options; return ``repeats`` as a tuple of ints."""
    if final_endpoint not in BASE_END_POINTS:
        raise ValueError(f"unknown final_endpoint {final_endpoint!r}; valid end points: "
                         f"{', '.join(BASE_END_POINTS)}")
    if isinstance(output_stride, bool) or output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be 8 or 16, got {output_stride!r}")
    if output_stride == 8:
        if align_feature_maps:
            raise ValueError(
                "output_stride=8 with align_feature_maps=True is not supported: slim's atrous "
                "path (stride-1 Mixed_6a, dilation-2 block17) is defined and tested only with "
                "align_feature_maps=False")
        if BASE_END_POINTS.index(final_endpoint) > BASE_END_POINTS.index(_LAST_OS8_END_POINT):
            raise ValueError(
                f"output_stride=8 is supported only up to final_endpoint='{_LAST_OS8_END_POINT}' "
                f"(as in slim), got final_endpoint={final_endpoint!r}")
    return _check_repeats(repeats)


def _check_repeats(repeats) -> tuple[int, int, int]:
    try:
        values = tuple(repeats)
    except TypeError:
        values = None
    if (values is None or len(values) != 3
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values)):
        raise ValueError(f"repeats must be three positive integers (block35, block17, block8), "
                         f"slim's are {DEFAULT_REPEATS}; got {repeats!r}")
    return values


def _size_changing_layers(final_endpoint, output_stride, align_feature_maps, aux_logits):
    """Every layer that changes the spatial size, in order, up to ``final_endpoint``.

    Yields ``(end point, layer name, kernel, stride, padding, side_branch)``; a side
    branch (the AuxLogits pool) does not feed the layers after it. Layers left out
    (1x1 convolutions and stride-1 SAME layers) keep the size; in Mixed_6a and
    Mixed_7a every branch reduces like Branch_0's last convolution.
    """
    padding = _stem_padding(align_feature_maps)
    mixed_6a_stride = 1 if output_stride == 8 else 2
    layers = [
        ("Conv2d_1a_3x3", "Conv2d_1a_3x3", 3, 2, padding, False),
        ("Conv2d_2a_3x3", "Conv2d_2a_3x3", 3, 1, padding, False),
        ("MaxPool_3a_3x3", "MaxPool_3a_3x3", 3, 2, padding, False),
        ("Conv2d_4a_3x3", "Conv2d_4a_3x3", 3, 1, padding, False),
        ("MaxPool_5a_3x3", "MaxPool_5a_3x3", 3, 2, padding, False),
        ("Mixed_6a", "Mixed_6a/Branch_0/Conv2d_1a_3x3", 3, mixed_6a_stride, padding, False),
        ("AuxLogits", "AuxLogits/Conv2d_1a_3x3", 5, 3, "VALID", True),
        ("Mixed_7a", "Mixed_7a/Branch_0/Conv2d_1a_3x3", 3, 2, padding, False),
    ]
    last = BASE_END_POINTS.index(final_endpoint)
    for layer in layers:
        endpoint = layer[0]
        if endpoint == "AuxLogits":
            if aux_logits and last >= BASE_END_POINTS.index("PreAuxLogits"):
                yield layer
        elif BASE_END_POINTS.index(endpoint) <= last:
            yield layer


def _first_empty_layer(size: int, layers) -> tuple | None:
    """The first layer whose VALID output is empty for an input side ``size``, with its input size."""
    for layer in layers:
        _, _, kernel, stride, padding, side_branch = layer
        try:
            out = output_size(size, kernel, stride, padding)
        except PaddingError:
            return layer, size
        if not side_branch:
            size = out
    return None


def smallest_input_size(final_endpoint="Conv2d_7b_1x1", output_stride=16,
                        align_feature_maps=False, aux_logits=False) -> int:
    """Smallest input side (height or width) for which no feature map vanishes.

    Pure arithmetic with ``porting.padding.output_size``; e.g. 75 for the default
    base network, 107 with AuxLogits, 1 for the base with ``align_feature_maps``.
    """
    _check_options(final_endpoint, output_stride, align_feature_maps, DEFAULT_REPEATS)
    layers = tuple(_size_changing_layers(final_endpoint, output_stride, align_feature_maps,
                                         aux_logits))
    size = 1
    while _first_empty_layer(size, layers) is not None:
        size += 1
    return size


def check_input_size(height, width, final_endpoint="Conv2d_7b_1x1", output_stride=16,
                     align_feature_maps=False, aux_logits=False) -> None:
    """Raise ValueError naming the layer where a feature map vanishes for this input.

    ``height`` or ``width`` may be None (unknown until run time): that axis is not checked.
    """
    _check_options(final_endpoint, output_stride, align_feature_maps, DEFAULT_REPEATS)
    layers = tuple(_size_changing_layers(final_endpoint, output_stride, align_feature_maps,
                                         aux_logits))
    for side in (height, width):
        if side is None:
            continue
        if side < 1:
            raise ValueError(f"input {height}x{width} has an empty spatial dimension")
        failure = _first_empty_layer(side, layers)
        if failure is None:
            continue
        (_, name, kernel, stride, padding, _), map_size = failure
        smallest = smallest_input_size(final_endpoint, output_stride, align_feature_maps,
                                       aux_logits)
        what = f"InceptionResnetV2 up to {final_endpoint}" + (" with AuxLogits" if aux_logits else "")
        raise ValueError(
            f"input {height}x{width} is too small for {what} (output_stride={output_stride}, "
            f"align_feature_maps={align_feature_maps}): the feature map vanishes at {name} "
            f"({kernel}x{kernel} stride {stride} {padding} on a side of {map_size}); "
            f"the smallest valid input is {smallest}x{smallest}")


def _static_spatial_size(inputs) -> tuple[int | None, int | None]:
    shape = inputs.get_shape()
    if shape.rank is not None and shape.rank != 4:
        raise ValueError(f"inputs must be a 4-D NHWC tensor [batch, height, width, channels], "
                         f"got shape {shape}")
    if shape.rank is None:
        return None, None
    return shape[1], shape[2]


# ------------------------------------------------------------------------ network

@compat.fast_graph_building()
def inception_resnet_v2_base(inputs, final_endpoint="Conv2d_7b_1x1", output_stride=16,
                             align_feature_maps=False, scope=None, activation_fn=tf.nn.relu,
                             repeats=DEFAULT_REPEATS):
    """Inception-ResNet-v2 from the input up to ``final_endpoint``.

    Args:
        inputs: a float tensor [batch, height, width, channels].
        final_endpoint: the last end point to build, one of ``BASE_END_POINTS``.
        output_stride: 16 (slim's network) or 8 (stride-1 Mixed_6a and dilation-2
            block17; supported up to 'PreAuxLogits' only, as in slim).
        align_feature_maps: make the stem and reduction layers SAME instead of VALID,
            so that feature maps are aligned with the input (150, 75, 38, 19, 10 at 299).
        scope: optional variable scope (default 'InceptionResnetV2').
        activation_fn: activation of the residual blocks.
        repeats: numbers of block35, block17 and block8 (slim: 10, 20, 9).

    Returns:
        ``(net, end_points)``: the tensor at ``final_endpoint`` and an ordered dict of
        every end point built on the way.

    Raises:
        ValueError: an unknown ``final_endpoint``, an ``output_stride`` other than 8 or
            16, ``output_stride=8`` with ``align_feature_maps`` or past 'PreAuxLogits',
            bad ``repeats``, or an input so small that a feature map vanishes.
    """
    n35, n17, n8 = _check_options(final_endpoint, output_stride, align_feature_maps, repeats)
    height, width = _static_spatial_size(inputs)
    check_input_size(height, width, final_endpoint, output_stride, align_feature_maps)

    padding = _stem_padding(align_feature_maps)
    use_atrous = output_stride == 8
    end_points = {}

    def reached(name, net):
        end_points[name] = net
        return name == final_endpoint

    with tf.compat.v1.variable_scope(scope, "InceptionResnetV2", [inputs]):
        with slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d], stride=1,
                            padding="SAME"):
            net = slim.conv2d(inputs, 32, 3, stride=2, padding=padding, scope="Conv2d_1a_3x3")  # 149 x 149 x 32
            if reached("Conv2d_1a_3x3", net):
                return net, end_points
            net = slim.conv2d(net, 32, 3, padding=padding, scope="Conv2d_2a_3x3")  # 147 x 147 x 32
            if reached("Conv2d_2a_3x3", net):
                return net, end_points
            net = slim.conv2d(net, 64, 3, scope="Conv2d_2b_3x3")  # 147 x 147 x 64
            if reached("Conv2d_2b_3x3", net):
                return net, end_points
            net = slim.max_pool2d(net, 3, stride=2, padding=padding, scope="MaxPool_3a_3x3")  # 73 x 73 x 64
            if reached("MaxPool_3a_3x3", net):
                return net, end_points
            net = slim.conv2d(net, 80, 1, padding=padding, scope="Conv2d_3b_1x1")  # 73 x 73 x 80
            if reached("Conv2d_3b_1x1", net):
                return net, end_points
            net = slim.conv2d(net, 192, 3, padding=padding, scope="Conv2d_4a_3x3")  # 71 x 71 x 192
            if reached("Conv2d_4a_3x3", net):
                return net, end_points
            net = slim.max_pool2d(net, 3, stride=2, padding=padding, scope="MaxPool_5a_3x3")  # 35 x 35 x 192
            if reached("MaxPool_5a_3x3", net):
                return net, end_points

            with tf.compat.v1.variable_scope("Mixed_5b"):
                with tf.compat.v1.variable_scope("Branch_0"):
                    tower_0 = slim.conv2d(net, 96, 1, scope="Conv2d_1x1")  # 35 x 35 x 96
                with tf.compat.v1.variable_scope("Branch_1"):
                    tower_1 = slim.conv2d(net, 48, 1, scope="Conv2d_0a_1x1")  # 35 x 35 x 48
                    tower_1 = slim.conv2d(tower_1, 64, 5, scope="Conv2d_0b_5x5")  # 35 x 35 x 64
                with tf.compat.v1.variable_scope("Branch_2"):
                    tower_2 = slim.conv2d(net, 64, 1, scope="Conv2d_0a_1x1")  # 35 x 35 x 64
                    tower_2 = slim.conv2d(tower_2, 96, 3, scope="Conv2d_0b_3x3")  # 35 x 35 x 96
                    tower_2 = slim.conv2d(tower_2, 96, 3, scope="Conv2d_0c_3x3")  # 35 x 35 x 96
                with tf.compat.v1.variable_scope("Branch_3"):
                    # SAME average pooling: border cells average over fewer values.
                    tower_3 = slim.avg_pool2d(net, 3, stride=1, padding="SAME", scope="AvgPool_0a_3x3")  # 35 x 35 x 192
                    tower_3 = slim.conv2d(tower_3, 64, 1, scope="Conv2d_0b_1x1")  # 35 x 35 x 64
                net = tf.concat([tower_0, tower_1, tower_2, tower_3], 3)  # 35 x 35 x 320
            if reached("Mixed_5b", net):
                return net, end_points

            net = slim.repeat(net, n35, block35, scale=BLOCK35_SCALE, activation_fn=activation_fn)  # 35 x 35 x 320

            # output_stride=8 keeps 33 x 33 (stride 1) instead of reducing to 17 x 17.
            reduction = 1 if use_atrous else 2
            with tf.compat.v1.variable_scope("Mixed_6a"):
                with tf.compat.v1.variable_scope("Branch_0"):
                    tower_0 = slim.conv2d(net, 384, 3, stride=reduction, padding=padding, scope="Conv2d_1a_3x3")  # 17 x 17 x 384
                with tf.compat.v1.variable_scope("Branch_1"):
                    tower_1 = slim.conv2d(net, 256, 1, scope="Conv2d_0a_1x1")  # 35 x 35 x 256
                    tower_1 = slim.conv2d(tower_1, 256, 3, scope="Conv2d_0b_3x3")  # 35 x 35 x 256
                    tower_1 = slim.conv2d(tower_1, 384, 3, stride=reduction, padding=padding, scope="Conv2d_1a_3x3")  # 17 x 17 x 384
                with tf.compat.v1.variable_scope("Branch_2"):
                    tower_2 = slim.max_pool2d(net, 3, stride=reduction, padding=padding, scope="MaxPool_1a_3x3")  # 17 x 17 x 320
                net = tf.concat([tower_0, tower_1, tower_2], 3)  # 17 x 17 x 1088
            if reached("Mixed_6a", net):
                return net, end_points

            # Dilation 2 keeps block17's receptive field when Mixed_6a did not reduce.
            with slim.arg_scope([slim.conv2d], rate=2 if use_atrous else 1):
                net = slim.repeat(net, n17, block17, scale=BLOCK17_SCALE, activation_fn=activation_fn)  # 17 x 17 x 1088
            if reached("PreAuxLogits", net):
                return net, end_points

            with tf.compat.v1.variable_scope("Mixed_7a"):
                with tf.compat.v1.variable_scope("Branch_0"):
                    tower_0 = slim.conv2d(net, 256, 1, scope="Conv2d_0a_1x1")  # 17 x 17 x 256
                    tower_0 = slim.conv2d(tower_0, 384, 3, stride=2, padding=padding, scope="Conv2d_1a_3x3")  # 8 x 8 x 384
                with tf.compat.v1.variable_scope("Branch_1"):
                    tower_1 = slim.conv2d(net, 256, 1, scope="Conv2d_0a_1x1")  # 17 x 17 x 256
                    tower_1 = slim.conv2d(tower_1, 288, 3, stride=2, padding=padding, scope="Conv2d_1a_3x3")  # 8 x 8 x 288
                with tf.compat.v1.variable_scope("Branch_2"):
                    tower_2 = slim.conv2d(net, 256, 1, scope="Conv2d_0a_1x1")  # 17 x 17 x 256
                    tower_2 = slim.conv2d(tower_2, 288, 3, scope="Conv2d_0b_3x3")  # 17 x 17 x 288
                    tower_2 = slim.conv2d(tower_2, 320, 3, stride=2, padding=padding, scope="Conv2d_1a_3x3")  # 8 x 8 x 320
                with tf.compat.v1.variable_scope("Branch_3"):
                    tower_3 = slim.max_pool2d(net, 3, stride=2, padding=padding, scope="MaxPool_1a_3x3")  # 8 x 8 x 1088
                net = tf.concat([tower_0, tower_1, tower_2, tower_3], 3)  # 8 x 8 x 2080
            if reached("Mixed_7a", net):
                return net, end_points

            net = slim.repeat(net, n8, block8, scale=BLOCK8_SCALE, activation_fn=activation_fn)  # 8 x 8 x 2080
            # The last block: scale 1.0 and no activation (scope 'Block8').
            net = block8(net, activation_fn=None)  # 8 x 8 x 2080
            net = slim.conv2d(net, 1536, 1, scope="Conv2d_7b_1x1")  # 8 x 8 x 1536
            reached("Conv2d_7b_1x1", net)
            return net, end_points


@compat.fast_graph_building()
def inception_resnet_v2(inputs, num_classes=1001, is_training=True, dropout_keep_prob=0.8,
                        reuse=None, scope="InceptionResnetV2", create_aux_logits=True,
                        activation_fn=tf.nn.relu, repeats=DEFAULT_REPEATS,
                        align_feature_maps=False):
    """The whole Inception-ResNet-v2 classifier, as slim builds it.

    Args:
        inputs: a float tensor [batch, height, width, 3]; the batch may be unknown,
            and height and width too when ``create_aux_logits`` is False.
        num_classes: number of classes (slim's ImageNet checkpoints: 1001, class 0 =
            background). 0 or None omits the logits layers (and AuxLogits) and returns
            the globally pooled features.
        is_training: batch statistics and dropout (True) or moving statistics and no
            dropout (False).
        dropout_keep_prob: fraction of pre-logits features kept in training.
        reuse: reuse the variables of ``scope``.
        scope: variable scope of the whole network.
        create_aux_logits: add the auxiliary classifier on 'PreAuxLogits'.
        activation_fn: activation of the residual blocks.
        repeats: numbers of block35, block17 and block8 (slim: 10, 20, 9).
        align_feature_maps: SAME instead of VALID in the stem and reductions.

    Returns:
        ``(logits, end_points)``; with ``num_classes`` 0 or None, ``(global_pool,
        end_points)``.

    Raises:
        ValueError: bad ``repeats``, an input that is not 4-D or so small that a
            feature map vanishes, or AuxLogits requested on an input of unknown size.
    """
    _check_repeats(repeats)
    aux_logits = bool(create_aux_logits and num_classes)
    height, width = _static_spatial_size(inputs)
    if aux_logits and (height is None or width is None):
        raise ValueError("AuxLogits needs a static input height and width (its 5x5 convolution "
                         "spans the whole pooled map); pass create_aux_logits=False otherwise")
    check_input_size(height, width, align_feature_maps=align_feature_maps, aux_logits=aux_logits)

    with tf.compat.v1.variable_scope(scope, "InceptionResnetV2", [inputs], reuse=reuse) as net_scope:
        with slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training):
            net, end_points = inception_resnet_v2_base(
                inputs, scope=net_scope, activation_fn=activation_fn, repeats=repeats,
                align_feature_maps=align_feature_maps)

            if aux_logits:
                with tf.compat.v1.variable_scope("AuxLogits"):
                    aux = end_points["PreAuxLogits"]
                    # slim names this pooling 'Conv2d_1a_3x3' although it is a 5x5 average pool.
                    aux = slim.avg_pool2d(aux, 5, stride=3, padding="VALID", scope="Conv2d_1a_3x3")  # 5 x 5 x 1088
                    aux = slim.conv2d(aux, 128, 1, scope="Conv2d_1b_1x1")  # 5 x 5 x 128
                    # The kernel spans the whole map (5 x 5 at 299): one output position.
                    aux = slim.conv2d(aux, 768, aux.get_shape()[1:3], padding="VALID", scope="Conv2d_2a_5x5")  # 1 x 1 x 768
                    aux = slim.flatten(aux)  # 768
                    aux = slim.fully_connected(aux, num_classes, activation_fn=None, scope="Logits")  # 1001
                    end_points["AuxLogits"] = aux

            with tf.compat.v1.variable_scope("Logits"):
                kernel_size = net.get_shape()[1:3]
                if kernel_size.is_fully_defined():
                    # slim's default stride 2 is irrelevant: the window covers the whole map.
                    net = slim.avg_pool2d(net, kernel_size, padding="VALID", scope="AvgPool_1a_8x8")  # 1 x 1 x 1536
                else:
                    net = tf.reduce_mean(input_tensor=net, axis=[1, 2], keepdims=True, name="global_pool")
                end_points["global_pool"] = net
                if not num_classes:
                    return net, end_points
                net = slim.flatten(net)  # 1536
                net = slim.dropout(net, dropout_keep_prob, is_training=is_training, scope="Dropout")  # 1536
                end_points["PreLogitsFlatten"] = net
                logits = slim.fully_connected(net, num_classes, activation_fn=None, scope="Logits")  # 1001
                end_points["Logits"] = logits
                end_points["Predictions"] = tf.nn.softmax(logits, name="Predictions")  # 1001
    return logits, end_points


inception_resnet_v2.default_image_size = DEFAULT_IMAGE_SIZE


def inception_resnet_v2_arg_scope(weight_decay=0.00004, batch_norm_decay=0.9997,
                                  batch_norm_epsilon=0.001, activation_fn=tf.nn.relu,
                                  batch_norm_updates_collections=tf.compat.v1.GraphKeys.UPDATE_OPS,
                                  batch_norm_scale=False):
    """slim's arg_scope for Inception-ResNet-v2.

    L2 weight decay on conv and fully connected weights and biases; every conv gets
    batch norm (center, no gamma unless ``batch_norm_scale``) and ``activation_fn``.

    Returns:
        an arg_scope to open with ``slim.arg_scope(...)``.
    """
    with slim.arg_scope([slim.conv2d, slim.fully_connected],
                        weights_regularizer=slim.l2_regularizer(weight_decay),
                        biases_regularizer=slim.l2_regularizer(weight_decay)):
        batch_norm_params = {
            "decay": batch_norm_decay,
            "epsilon": batch_norm_epsilon,
            "updates_collections": batch_norm_updates_collections,
            "fused": None,  # fused when the input allows it, as slim does
            "scale": batch_norm_scale,
        }
        with slim.arg_scope([slim.conv2d], activation_fn=activation_fn,
                            normalizer_fn=slim.batch_norm,
                            normalizer_params=batch_norm_params) as scope:
            return scope


# ----------------------------------------------------------------------- builders

def build(images, num_classes=1001, **kwargs):
    """TF builder contract ``fn(images, num_classes) -> (logits, end_points)``.

    Opens slim's arg_scope and builds the network in inference mode (moving
    batch-norm statistics, no dropout). Extra keywords go to ``inception_resnet_v2``.
    """
    kwargs.setdefault("is_training", False)
    with slim.arg_scope(inception_resnet_v2_arg_scope()):
        return inception_resnet_v2(images, num_classes=num_classes, **kwargs)


def build_reduced(images, num_classes=1001, **kwargs):
    """``build`` with ``REDUCED_REPEATS`` (one block of each kind): every layer kind, fast to build."""
    kwargs.setdefault("repeats", REDUCED_REPEATS)
    return build(images, num_classes, **kwargs)
