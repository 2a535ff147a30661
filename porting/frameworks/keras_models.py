"""tf-keras models as TF graphs: the learning phase of builders, and Keras files loaded as data.

A Keras ``BatchNormalization`` called without ``training=`` in graph mode builds a ``tf.cond`` on
Keras' learning phase, which no reader can see through; :func:`learning_phase` fixes the phase
while a builder runs, so the batch norm is one ``FusedBatchNorm`` (inference or training) that
folds into its conv like slim's.

A Keras file is data until it holds Python code: a ``Lambda`` layer serialises its function's
bytecode, which loading would run. :func:`load` refuses such a file unless the caller trusts it
(``--trust-keras-code``), before tf-keras reads the code (it checks the saved config itself,
and passes ``safe_mode`` to tf-keras as well). Layer classes that tf-keras' own applications
define (Inception-ResNet-v2's ``CustomScaleLayer``) are known without the user naming them; any
other custom layer comes from a module the user names (``--keras-objects module.py``).
"""
from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import pkgutil
import sys
import warnings
import zipfile
from pathlib import Path

from porting.util import UsageError

#: Suffixes of the Keras files :func:`load` reads.
KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")
#: The flag (and keyword) that lets a Keras file's Lambda code run.
TRUST_FLAG = "--trust-keras-code"
#: The flag (and keyword) that names a module defining custom layers.
OBJECTS_FLAG = "--keras-objects"


def keras_loaded() -> bool:
    """Whether tf-keras is imported (a builder that uses it imported it)."""
    return "tf_keras" in sys.modules


@contextlib.contextmanager
def learning_phase(is_training: bool | None):
    """Keras' learning phase fixed to ``is_training`` while building (no-op without tf-keras or a mode)."""
    if is_training is None or not keras_loaded():
        yield
        return
    import tf_keras

    with warnings.catch_warnings():  # the scope is deprecated in tf-keras, and the only graph-mode way to fix the phase
        warnings.filterwarnings("ignore", message=".*learning_phase_scope.*", category=UserWarning)
        with tf_keras.backend.learning_phase_scope(1 if is_training else 0):
            yield


def session():
    """The session tf-keras loaded a graph-mode model's weights into (tf-keras' v1 API; not in its v2 namespace)."""
    from tf_keras.src import backend

    return backend.get_session()


# ------------------------------------------------------------------ the saved config, read as data

def saved_config(path: Path) -> dict:
    """The model config a Keras file holds (JSON), read without tf-keras; UsageError when unreadable."""
    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        import h5py

        with h5py.File(path, "r") as handle:
            text = handle.attrs.get("model_config")
        if text is None:
            raise UsageError(f"--tf: {path} holds no Keras model config (a weights-only file?); "
                             "expected a whole model saved with model.save()")
        return json.loads(text.decode() if isinstance(text, bytes) else text)
    except UsageError:
        raise
    except Exception as error:  # zip, HDF5 and JSON errors alike: the file is not a Keras model
        raise UsageError(f"--tf: {path} is not a readable Keras {path.suffix} file: "
                         f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from error


def _layers(model_config: dict):
    """Every layer config of a (Functional or Sequential) model config, nested models' layers included."""
    layers = model_config.get("config", {}).get("layers", []) if isinstance(model_config, dict) else []
    for layer in layers if isinstance(layers, list) else []:
        if isinstance(layer, dict) and "class_name" in layer:
            yield layer
            if isinstance(layer.get("config"), dict) and "layers" in layer["config"]:
                yield from _layers(layer)


def _every_object(config):
    """Every serialised object (a dict with a class_name) at any depth: wrappers hold layers outside 'layers'."""
    if isinstance(config, dict):
        if "class_name" in config:
            yield config
        for value in config.values():
            yield from _every_object(value)
    elif isinstance(config, list):
        for value in config:
            yield from _every_object(value)


def code_layers(config: dict) -> list[str]:
    """Names of the layers whose saved config carries Python code (``Lambda``), wherever they are nested."""
    return [str((layer.get("config") or {}).get("name", "?")) for layer in _every_object(config)
            if str(layer["class_name"]).rsplit(">", 1)[-1] == "Lambda"]


def layer_classes(config: dict) -> set[str]:
    """Every layer class name a model config uses ('Custom>CustomScaleLayer': a registered name, less its package)."""
    return {str(layer["class_name"]).rsplit(">", 1)[-1] for layer in _layers(config)}


# ------------------------------------------------------------------ custom objects

def application_objects() -> dict[str, type]:
    """The layer classes tf-keras' applications define (e.g. ``CustomScaleLayer``), by class name."""
    import tf_keras
    from tf_keras.src import applications

    found = {}
    for module_info in pkgutil.iter_modules(applications.__path__):
        module = importlib.import_module(f"{applications.__name__}.{module_info.name}")
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, tf_keras.layers.Layer) \
                    and value.__module__ == module.__name__:
                found[name] = value
    return found


def module_objects(path: str) -> dict[str, type]:
    """The Keras layer classes (and functions) a user's module defines, by name (the module is code: imported)."""
    source = Path(path)
    if source.suffix != ".py" or not source.is_file():
        raise UsageError(f"{OBJECTS_FLAG} must be an existing Python file defining custom Keras layers, got {path!r}")
    from porting.frameworks.models import import_user_file

    module = import_user_file(source, "_porting_keras_objects", OBJECTS_FLAG)
    return {key: value for key, value in vars(module).items()
            if (inspect.isclass(value) or inspect.isfunction(value))
            and getattr(value, "__module__", "") == module.__name__}


def _known_classes(custom: dict) -> set[str]:
    import tf_keras

    known = {name for name, value in vars(tf_keras.layers).items() if inspect.isclass(value)}
    return known | {"Functional", "Sequential", "Model", "InputLayer"} | set(custom)


# ------------------------------------------------------------------ loading

def load(path: Path, trust_code: bool = False, objects_module: str | None = None):
    """The Keras model in ``path``, refused (UsageError) when it holds code and ``trust_code`` is False.

    Call inside the graph (and learning phase) the model is to be built in.
    """
    import tf_keras

    config = saved_config(path)
    lambdas = code_layers(config)
    if lambdas and not trust_code:
        shown = ", ".join(lambdas[:5]) + (", ..." if len(lambdas) > 5 else "")
        raise UsageError(f"--tf: {path} has {len(lambdas)} Lambda layer{'s' if len(lambdas) != 1 else ''} "
                         f"({shown}) whose saved Python code would run on loading; refused: a model file is "
                         f"data. Pass {TRUST_FLAG} (trust_keras_code=True) only if you trust its source")
    custom = application_objects()
    if objects_module is not None:
        custom.update(module_objects(objects_module))
    unknown = sorted(layer_classes(config) - _known_classes(custom))
    if unknown:
        raise UsageError(f"--tf: {path} uses the custom Keras layer{'s' if len(unknown) != 1 else ''} "
                         f"{', '.join(unknown)}, which neither tf-keras nor its applications define; give the "
                         f"Python file that defines {'them' if len(unknown) != 1 else 'it'} with "
                         f"{OBJECTS_FLAG} FILE.py (keras_objects=)")
    from tf_keras.src.saving import serialization_lib

    kwargs = {"safe_mode": not trust_code} if path.suffix == ".keras" else {}
    try:  # the safe-mode scope also covers .h5, whose loader takes no safe_mode (the scan above came first)
        with serialization_lib.SafeModeScope(not trust_code):
            return tf_keras.models.load_model(str(path), custom_objects=custom, compile=False, **kwargs)
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise UsageError(f"--tf: tf-keras cannot load {path}: {type(error).__name__}: {first}") from error
