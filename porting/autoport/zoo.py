"""The networks autoport is proved on, in one declarative table.

Every network of ``tf_slim.nets`` that builds on the installed TensorFlow, plus
our Inception-ResNet-v2 reference. Each entry names a TF builder by
``module:function`` (nothing is imported until it is used), the input size the
network is defined for, a smaller size the test suite may use, the number of
classes, parity tolerances and, where it cannot run, a ``skip`` with its reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from porting.frameworks.models import import_target


@dataclass(frozen=True)
class ZooNet:
    """One network autoport translates and verifies.

    Attributes:
        name: the ``--slim-net`` name.
        builder: 'module:function' of the network; ``arg_scope`` is the
            'module:function' of its slim arg scope (None: the builder opens its own).
        size: default input size (H, W) the network is defined for.
        test_size: the smallest size the test suite uses (fixed-size VALID heads such
            as VGG's 7x7 fc6 cannot shrink: then it equals ``size``).
        classes: logits width.
        kwargs: extra keyword arguments for the builder.
        rtol, atol: numeric parity tolerances; None: ``porting.verifier.parity``'s defaults (rtol 1e-4, and
            an atol proportional to each layer's range, since float32 error scales with magnitude).
        skip: why this network cannot be built here, or None.
        note: what is special about it (shown in the bench table).
    """

    name: str
    builder: str
    arg_scope: str | None
    size: tuple[int, int]
    test_size: tuple[int, int]
    classes: int = 1000
    kwargs: dict = field(default_factory=dict)
    rtol: float | None = None
    atol: float | None = None
    skip: str | None = None
    note: str = ""


_N = "tf_slim.nets."
_RESNET_SCOPE = _N + "resnet_utils:resnet_arg_scope"

ZOO: dict[str, ZooNet] = {net.name: net for net in (
    ZooNet("alexnet_v2", _N + "alexnet:alexnet_v2", _N + "alexnet:alexnet_v2_arg_scope",
           (224, 224), (224, 224), note="fc layers as VALID convs; smallest input 195"),
    ZooNet("inception_v1", _N + "inception_v1:inception_v1", _N + "inception_v1:inception_v1_arg_scope",
           (224, 224), (224, 224), note="fixed 7x7 VALID average pool: needs 224"),
    ZooNet("inception_v2", _N + "inception_v2:inception_v2", _N + "inception_v2:inception_v2_arg_scope",
           (224, 224), (128, 128), note="separable stem conv (depthwise + pointwise)"),
    ZooNet("inception_v3", _N + "inception_v3:inception_v3", _N + "inception_v3:inception_v3_arg_scope",
           (299, 299), (139, 139), note="AuxLogits head"),
    ZooNet("resnet_v1_50", _N + "resnet_v1:resnet_v1_50", _RESNET_SCOPE, (224, 224), (64, 64)),
    ZooNet("resnet_v1_101", _N + "resnet_v1:resnet_v1_101", _RESNET_SCOPE, (224, 224), (64, 64)),
    ZooNet("resnet_v1_152", _N + "resnet_v1:resnet_v1_152", _RESNET_SCOPE, (224, 224), (64, 64)),
    ZooNet("resnet_v1_200", _N + "resnet_v1:resnet_v1_200", _RESNET_SCOPE, (224, 224), (64, 64)),
    ZooNet("resnet_v2_50", _N + "resnet_v2:resnet_v2_50", _RESNET_SCOPE, (224, 224), (64, 64)),
    ZooNet("resnet_v2_101", _N + "resnet_v2:resnet_v2_101", _RESNET_SCOPE, (224, 224), (64, 64)),
    ZooNet("resnet_v2_152", _N + "resnet_v2:resnet_v2_152", _RESNET_SCOPE, (224, 224), (64, 64)),
    ZooNet("resnet_v2_200", _N + "resnet_v2:resnet_v2_200", _RESNET_SCOPE, (224, 224), (64, 64)),
    ZooNet("vgg_a", _N + "vgg:vgg_a", _N + "vgg:vgg_arg_scope", (224, 224), (224, 224),
           note="fc6 is a 7x7 VALID conv: smallest input 193"),
    ZooNet("vgg_16", _N + "vgg:vgg_16", _N + "vgg:vgg_arg_scope", (224, 224), (224, 224),
           note="fc6 is a 7x7 VALID conv: smallest input 193"),
    ZooNet("vgg_19", _N + "vgg:vgg_19", _N + "vgg:vgg_arg_scope", (224, 224), (224, 224),
           note="fc6 is a 7x7 VALID conv: smallest input 193"),
    ZooNet("overfeat", _N + "overfeat:overfeat", _N + "overfeat:overfeat_arg_scope", (231, 231), (231, 231),
           note="fc6 is a 6x6 VALID conv: needs 231"),
    ZooNet("inception_resnet_v2", "reference_tf.inception_resnet_v2:inception_resnet_v2",
           "reference_tf.inception_resnet_v2:inception_resnet_v2_arg_scope", (299, 299), (299, 299),
           classes=1001, note="our reference, with AuxLogits"),
    # (2, 2, 2) is the networks' SMALL_REPEATS, written out: reading this table imports no framework.
    ZooNet("inception_resnet_v2_small", "reference_tf.inception_resnet_v2:inception_resnet_v2",
           "reference_tf.inception_resnet_v2:inception_resnet_v2_arg_scope", (299, 299), (299, 299),
           classes=1001, kwargs={"repeats": (2, 2, 2)},
           note="two blocks of each kind (the hand port's SMALL_REPEATS)"),
)}


class UnknownNet(KeyError):
    """A --slim-net name that is not in the table."""

    def __str__(self) -> str:
        return self.args[0]


def available() -> str:
    return ", ".join(ZOO)


def get(name: str) -> ZooNet:
    """The table entry, or UnknownNet listing the valid names."""
    try:
        return ZOO[name]
    except KeyError:
        raise UnknownNet(f"unknown network {name!r}. Available: {available()}") from None


def builder(net: ZooNet | str):
    """The network as a TF builder ``fn(images, num_classes, is_training=False)``."""
    net = get(net) if isinstance(net, str) else net

    def build(images, num_classes, is_training=False):
        return _build(net, images, num_classes, is_training)

    build.__name__ = build.__qualname__ = net.name
    return build


def _build(net: ZooNet, images, num_classes, is_training=False):
    from porting import compat

    slim = compat.import_slim()
    function = import_target(net.builder)
    if net.arg_scope is None:
        return function(images, num_classes, is_training=is_training, **net.kwargs)
    with slim.arg_scope(import_target(net.arg_scope)()):
        return function(images, num_classes, is_training=is_training, **net.kwargs)
