"""A small tf-keras network with every Keras layer form the TF reader folds, and its hand-written MXNet port.

``keras_model(size, classes)`` builds the network as a ``tf_keras.Model``; ``build`` is the TF builder
contract over it (the Keras layers called on ``images``); ``build_mx`` is the MXNet port. The layers, 16x16 in::

    ZeroPadding2D(1) -> Conv 3x3/2 'valid' (no bias) -> BatchNormalization -> Activation(relu)   # 8x8x8
    Conv 3x3 'same' (bias, relu)                                                                  # 8x8x8
    Conv 1x1 (bias, linear) -> Lambda(x * 0.2) -> Add(with the first conv's output) -> relu      # 8x8x8
    GlobalAveragePooling2D -> Dense(classes, softmax)

The residual scale (a ``Lambda``) is what Keras' Inception-ResNet-v2 application does with its
``CustomScaleLayer``; the logits are the Dense output before its softmax.
"""
from __future__ import annotations

from porting import compat

RESIDUAL_SCALE = 0.2


def keras_layers(inputs, classes: int, lambda_scale: bool = True):
    """Apply the network's Keras layers to ``inputs``; return the softmax output."""
    import tf_keras
    from tf_keras import layers

    net = layers.ZeroPadding2D(1, name="stem_pad")(inputs)
    net = layers.Conv2D(8, 3, strides=2, padding="valid", use_bias=False, name="stem_conv")(net)
    net = layers.BatchNormalization(epsilon=1e-3, name="stem_bn")(net)
    shortcut = layers.Activation("relu", name="stem_relu")(net)
    net = layers.Conv2D(8, 3, padding="same", activation="relu", name="branch_conv")(shortcut)
    net = layers.Conv2D(8, 1, name="branch_up")(net)
    if lambda_scale:
        net = layers.Lambda(lambda x: x * RESIDUAL_SCALE, name="residual_scale")(net)
    else:
        net = layers.Rescaling(RESIDUAL_SCALE, name="residual_scale")(net)
    net = layers.Add(name="residual_add")([shortcut, net])
    net = layers.Activation("relu", name="residual_relu")(net)
    net = layers.GlobalAveragePooling2D(name="avg_pool")(net)
    del tf_keras
    return layers.Dense(classes, activation="softmax", name="predictions")(net)


def keras_model(size: int = 16, classes: int = 5, lambda_scale: bool = False, seed: int = 0):
    """The network as a Keras model on a (size, size, 3) input, with seeded non-trivial BN statistics.

    ``lambda_scale=False`` uses a ``Rescaling`` layer for the residual scale (no Python code in the
    saved file); ``True`` a ``Lambda`` (its code is serialised, so loading it needs the trust flag).
    """
    import numpy as np
    import tf_keras

    inputs = tf_keras.Input((size, size, 3), name="images")
    model = tf_keras.Model(inputs, keras_layers(inputs, classes, lambda_scale), name="keras_tiny")
    rng = np.random.default_rng(seed)
    bn = model.get_layer("stem_bn")
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                    rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
    for name in ("branch_conv", "branch_up", "predictions"):
        layer = model.get_layer(name)
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape)])
    return model


def build(images, num_classes):
    """TF builder: the Keras layers called on ``images`` (logits: the Dense output before softmax)."""
    predictions = keras_layers(images, num_classes, lambda_scale=True)
    logits = predictions.op.inputs[0]
    return logits, {"Predictions": predictions}


def build_mx(num_classes, global_pool: bool = False):
    """The MXNet port: explicit symmetric pad folded into the conv, BN with learned gamma, the scale as a multiply.

    ``global_pool``: GlobalAveragePooling2D written as a global average ``Pooling`` and a ``Flatten``
    (slim's form) instead of a mean over H and W.
    """
    mx = compat.import_mx()
    data = mx.sym.Variable("data")
    net = mx.sym.Convolution(data, kernel=(3, 3), stride=(2, 2), pad=(1, 1), num_filter=8, no_bias=True,
                             name="stem_conv")
    net = mx.sym.BatchNorm(net, eps=1e-3, fix_gamma=False, momentum=0.99, name="stem_bn")
    shortcut = mx.sym.Activation(net, act_type="relu", name="stem_relu")
    net = mx.sym.Convolution(shortcut, kernel=(3, 3), pad=(1, 1), num_filter=8, name="branch_conv")
    net = mx.sym.Activation(net, act_type="relu", name="branch_conv_relu")
    net = mx.sym.Convolution(net, kernel=(1, 1), num_filter=8, name="branch_up")
    net = net * RESIDUAL_SCALE
    net = mx.sym.elemwise_add(shortcut, net, name="residual_add")
    net = mx.sym.Activation(net, act_type="relu", name="residual_relu")
    if global_pool:
        net = mx.sym.Pooling(net, global_pool=True, kernel=(1, 1), pool_type="avg", name="avg_pool")
        net = mx.sym.flatten(net, name="flatten")
    else:
        net = mx.sym.mean(net, axis=(2, 3), name="avg_pool")  # GlobalAveragePooling2D: a mean over H and W
    return mx.sym.FullyConnected(net, num_hidden=num_classes, name="predictions")


def build_mx_pooled(num_classes):
    """``build_mx`` with slim's global average pool + flatten."""
    return build_mx(num_classes, global_pool=True)
