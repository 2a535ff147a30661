"""The op reader registries: one reader per op type, a duplicate is an error, every op type is known."""
from __future__ import annotations

import pytest

from porting.frameworks.mx_op_readers import FAMILIES as MX_FAMILIES, MX_READERS
from porting.frameworks.op_readers import DuplicateReader, ReaderRegistry
from porting.frameworks.tf_op_readers import FAMILIES as TF_FAMILIES, TF_READERS

#: Every TF op type the TF reader reads itself (others are Kind.OTHER or handled as patterns).
TF_OP_TYPES = {
    "io": {"Placeholder"},
    "conv": {"Conv2D", "DepthwiseConv2dNative"},
    "pool": {"MaxPool", "AvgPool"},
    "norm": {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3", "LRN"},
    "activation": {"Relu", "Relu6", "Elu", "Selu", "Sigmoid", "Tanh", "LeakyRelu", "Softplus", "Softsign",
                   "Softmax", "LogSoftmax"},
    "dense": {"MatMul", "BiasAdd"},
    "elementwise": {"AddV2", "Add", "AddN", "Mul", "RealDiv", "Div"},
    "shape": {"ConcatV2", "Concat", "Pad", "PadV2", "MirrorPad", "Reshape", "Squeeze", "Mean"},
}
MX_OP_TYPES = {
    "conv": {"Convolution"},
    "pool": {"Pooling"},
    "norm": {"BatchNorm", "LRN"},
    "activation": {"Activation", "relu", "sigmoid", "tanh", "LeakyReLU", "clip", "softmax", "SoftmaxOutput",
                   "SoftmaxActivation", "log_softmax", "Softmax"},
    "dense": {"FullyConnected", "Dropout", "_linalg_gemm2", "linalg_gemm2", "dot"},
    "elementwise": {"elemwise_add", "_Plus", "_plus", "broadcast_add", "add_n", "ElementWiseSum", "_add",
                    "_mul_scalar", "_MulScalar", "elemwise_mul", "broadcast_mul", "_Mul", "_mul",
                    "broadcast_div", "elemwise_div", "_div", "_Div", "_div_scalar", "_DivScalar"},
    "shape": {"Concat", "concat", "Flatten", "flatten", "Reshape", "reshape", "Pad", "pad", "mean", "transpose",
              "Transpose"},
}


@pytest.mark.parametrize("registry, families, expected", [(TF_READERS, TF_FAMILIES, TF_OP_TYPES),
                                                          (MX_READERS, MX_FAMILIES, MX_OP_TYPES)],
                         ids=["tf", "mx"])
def test_every_registered_op_type_is_known_by_family(registry, families, expected):
    by_family: dict[str, set[str]] = {}
    for reader in registry.readers():
        by_family.setdefault(reader.family, set()).add(reader.op_type)
    assert by_family == expected
    assert list(expected) == list(families)
    assert registry.op_types() == sorted(op for ops in expected.values() for op in ops)


@pytest.mark.parametrize("registry", [TF_READERS, MX_READERS], ids=["tf", "mx"])
def test_every_reader_says_what_it_reads(registry):
    for reader in registry.readers():
        assert "->" in reader.summary, f"{reader.qualname}: the docstring opens with 'source -> target'"
        assert registry.lookup(reader.op_type) is reader.function


def test_a_duplicate_registration_is_an_error():
    registry = ReaderRegistry("TF", "nowhere", ())

    @registry.reads("Conv2D", "DepthwiseConv2dNative")
    def convolution(node, op, data):
        """Conv2D -> conv."""

    with pytest.raises(DuplicateReader, match="'DepthwiseConv2dNative' is already read by .*convolution"):
        @registry.reads("MaxPool", "DepthwiseConv2dNative")
        def other(node, op, data):
            """MaxPool -> pool."""
    assert registry.lookup("MaxPool") is None  # nothing of a refused registration stays


def test_the_real_registries_refuse_a_second_reader():
    with pytest.raises(DuplicateReader):
        TF_READERS.reads("Conv2D")(lambda node, op, data: None)
    with pytest.raises(DuplicateReader):
        MX_READERS.reads("Convolution")(lambda node, attrs: None)
    assert TF_READERS.lookup("Conv2D").__name__ == "convolution"


def test_reads_needs_an_op_type_and_unregister_removes():
    registry = ReaderRegistry("MXNet", "nowhere", ())
    with pytest.raises(ValueError):
        registry.reads()
    registry.reads("Pooling")(lambda node, attrs: None)
    registry.unregister("Pooling")
    assert registry.lookup("Pooling") is None
