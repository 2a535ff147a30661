"""A tiny TF builder module for command-line tests (``--tf tests/support/tiny_tf.py:build``).

``build``: 8x8 input -> 3x3/2 SAME conv (pads (0, 1)) -> 4x4 VALID max pool -> 1x1 -> logits; the other
functions each break the builder contract or the input in one way.
"""
from __future__ import annotations

import os
import time

from porting import compat

tf = compat.import_tf()
slim = compat.import_slim()


def build(images, num_classes):
    """8x8 -> 3x3/2 SAME conv -> 4x4 VALID max pool -> 1x1 -> logits."""
    end_points = {}
    with tf.compat.v1.variable_scope("Tiny"):
        net = slim.conv2d(images, 8, 3, stride=2, padding="SAME", scope="Conv2d_1a_3x3")
        end_points["Conv2d_1a_3x3"] = net
        net = slim.max_pool2d(net, 4, stride=1, padding="VALID", scope="MaxPool_2a_4x4")
        end_points["MaxPool_2a_4x4"] = net
        net = slim.flatten(net, scope="Flatten")
        logits = slim.fully_connected(net, num_classes, activation_fn=None, scope="Logits")
        end_points["Logits"] = logits
    return logits, end_points


def raises(images, num_classes):
    raise ValueError("boom in the TF builder")


def wrong_type(images, num_classes):
    return slim.conv2d(images, 8, 3)


def detached(images, num_classes):
    """Logits computed from a constant, not from images (the builder ignores its input)."""
    logits = slim.fully_connected(tf.ones([1, 4]), num_classes, activation_fn=None, scope="Logits")
    return logits, {"Logits": logits}


def unsupported(images, num_classes):
    net = tf.math.cumsum(images, axis=3)
    logits = tf.reduce_mean(tf.sin(net), [1, 2])
    return logits, {"Logits": logits}


def slow(images, num_classes):
    """Says it has started (a file), then takes a minute: the test interrupts it."""
    with open(os.environ["PORTING_TEST_MARKER"], "w") as handle:
        handle.write("building")
    time.sleep(120)
    return build(images, num_classes)
