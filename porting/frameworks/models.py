"""Registered model pairs, in one declarative table, and loading of users' builders.

A registered pair names a TF builder and an MX builder by ``module:function``
plus keyword arguments, so nothing is imported until a pair is used (reading the
table, e.g. ``python -m porting.compare --list``, imports no framework). Users'
builders come from ``path/to/file.py:function``.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path

from porting.util import UsageError  # noqa: F401  (re-exported: the commands catch it from here)


@dataclass(frozen=True)
class ModelSpec:
    """One registered TF/MXNet pair and the settings it is verified with."""

    name: str
    description: str
    tf: str  # 'module:function' with the TF builder contract (plus is_training)
    mx: str  # 'module:function' returning a Symbol; receives num_classes and image_size
    size: tuple[int, int] = (299, 299)
    classes: int = 1001
    tf_kwargs: dict = field(default_factory=dict)
    mx_kwargs: dict = field(default_factory=dict)


_IRV2_TF = "reference_tf.inception_resnet_v2:build"
_IRV2_MX = "mx_impl.inception_resnet_v2:get_symbol"
_IRV2_TF_BASE = "porting.frameworks.models:irv2_base_tf"
_IRV2_MX_END = "mx_impl.inception_resnet_v2:get_symbol"
#: The networks' REDUCED_REPEATS (one block of each kind), written out because importing
#: reference_tf or mx_impl here would import a framework; tests/networks checks they agree.
_IRV2_REDUCED_REPEATS = (1, 1, 1)

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("inception_resnet_v2", "slim's Inception-ResNet-v2 with AuxLogits, 299x299, 1001 classes",
              _IRV2_TF, _IRV2_MX, mx_kwargs={"create_aux_logits": True}),
    ModelSpec("inception_resnet_v2_align", "align_feature_maps=True: SAME stem and reductions (asymmetric pads)",
              _IRV2_TF, _IRV2_MX, tf_kwargs={"align_feature_maps": True},
              mx_kwargs={"create_aux_logits": True, "align_feature_maps": True}),
    ModelSpec("inception_resnet_v2_os8", "output_stride=8 base up to PreAuxLogits (dilated block17s)",
              _IRV2_TF_BASE, _IRV2_MX_END, tf_kwargs={"output_stride": 8, "final_endpoint": "PreAuxLogits"},
              mx_kwargs={"output_stride": 8, "final_endpoint": "PreAuxLogits"}),
    ModelSpec("inception_resnet_v2_reduced", "one block35/block17/block8 each: every layer kind, fast",
              _IRV2_TF, _IRV2_MX, tf_kwargs={"repeats": _IRV2_REDUCED_REPEATS},
              mx_kwargs={"create_aux_logits": True, "repeats": _IRV2_REDUCED_REPEATS}),
)}


def available() -> str:
    return ", ".join(sorted(MODELS))


def get_model(name: str) -> ModelSpec:
    """The registered pair, or a UsageError that lists the valid names."""
    try:
        return MODELS[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}. Available: {available()}") from None


def import_target(target: str):
    """The object named by 'package.module:attribute', imported on first use."""
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def tf_builder(spec: ModelSpec):
    """The spec's TF builder as ``fn(images, num_classes, is_training=False)``."""
    function = import_target(spec.tf)

    def build(images, num_classes, is_training=False):
        return function(images, num_classes, is_training=is_training, **spec.tf_kwargs)

    build.__name__ = f"{spec.name}_tf"
    return build


def mx_builder(spec: ModelSpec, size: tuple[int, int]):
    """The spec's MX builder as ``fn(num_classes)``, its pads derived for ``size``."""
    function = import_target(spec.mx)
    build = functools.partial(_call_mx, function, size, spec.mx_kwargs)
    build.__name__ = f"{spec.name}_mx"  # named in error messages, like the TF side
    return build


def _call_mx(function, size, kwargs, num_classes):
    return function(num_classes, image_size=size, **kwargs)


def irv2_base_tf(images, num_classes, is_training=False, **kwargs):
    """TF builder for a slim base network variant: returns (last end point, end_points)."""
    from porting import compat

    slim = compat.import_slim()
    from reference_tf import inception_resnet_v2 as irv2

    with slim.arg_scope(irv2.inception_resnet_v2_arg_scope()):
        with slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training):
            return irv2.inception_resnet_v2_base(images, **kwargs)


def import_user_file(path: Path, prefix: str, flag: str):
    """Import the user's Python file ``path`` as a module of its own (it is code: it runs); UsageError, naming
    ``flag``, when it raises."""
    module_name = f"{prefix}_{abs(hash(path.resolve()))}"
    try:
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        module_spec.loader.exec_module(module)
    except Exception as error:
        raise UsageError(f"{flag}: cannot import {path}: {type(error).__name__}: {error}") from error
    return module


def load_builder(spec: str, side: str):
    """Load ``path/to/file.py:function``; UsageError names what is wrong."""
    path_text, sep, function_name = spec.rpartition(":")
    if not sep or not path_text or not function_name:
        raise UsageError(f"--{side} must be path/to/file.py:function, got {spec!r}")
    path = Path(path_text)
    if not path.is_file():
        raise UsageError(f"--{side}: builder file {path} does not exist or is not a file")
    module = import_user_file(path, f"_porting_user_{side}", f"--{side}")
    function = getattr(module, function_name, None)
    if function is None or not callable(function):
        names = sorted(name for name, value in vars(module).items()
                       if inspect.isfunction(value) and not name.startswith("_") and value.__module__ == module.__name__)
        raise UsageError(f"--{side}: {path} has no function {function_name!r}. "
                         f"Functions there: {', '.join(names) or 'none'}")
    return function
