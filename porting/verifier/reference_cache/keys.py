"""Where entries live, their keys, and the source files a builder loaded (what makes an entry stale)."""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect
import json
import os
import sys
import types
from pathlib import Path

from porting.verifier.reference_cache.frozen import _PACKAGE_DIR, CachedTfGraph, _library_file

#: Bumped whenever what an entry holds, or how it is read, changes: older entries then miss.
FORMAT_VERSION = 3
#: Distributions whose versions can change the TF graph or how it is read.
_DISTRIBUTIONS = ("tensorflow", "tf-slim", "tf-keras", "numpy")
#: The same for the MX side's symbol and how it is read.
_MX_DISTRIBUTIONS = ("mxnet", "numpy")


# ------------------------------------------------------------------ keys and the files a builder loaded

def cache_root() -> Path:
    """``$PORTING_CACHE``, else ``$XDG_CACHE_HOME/porting``, else ``~/.cache/porting``."""
    if os.environ.get("PORTING_CACHE"):
        return Path(os.environ["PORTING_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "porting"


def entry_dir() -> Path:
    return cache_root() / "reference" / f"v{FORMAT_VERSION}"


def mx_entry_dir() -> Path:
    """The MX side's entries (``MxSide``)."""
    return cache_root() / "reference-mx" / f"v{FORMAT_VERSION}"


def _versions(distributions: tuple = _DISTRIBUTIONS) -> dict:
    versions = {"python": sys.version.split()[0]}
    for name in distributions:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@functools.lru_cache(maxsize=1)
def project_fingerprint() -> str:
    """A digest of every source file of the ``porting`` package (its readers decide what an entry holds)."""
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE_DIR.rglob("*.py")):
        digest.update(str(path.relative_to(_PACKAGE_DIR)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def side_identity(spec, builder, side: str = "tf") -> dict | None:
    """What names a side's builder before it is loaded; None when it cannot be cached (a Python callable)."""
    if isinstance(builder, str):
        path_text, _, function = builder.rpartition(":")
        return {"file": os.path.realpath(path_text), "function": function}
    if builder is None and spec is not None:
        return {"model": spec.name, "target": getattr(spec, side),
                "kwargs": repr(sorted(getattr(spec, f"{side}_kwargs").items()))}
    return None


def entry_key(identity: dict, size, classes: int, batch: int, is_training: bool) -> str:
    """The digest that names an entry: the builder, its arguments, the versions, this package."""
    text = json.dumps({"format": FORMAT_VERSION, "side": identity, "size": list(size), "classes": classes,
                       "batch": batch, "is_training": is_training, "versions": _versions(),
                       "project": project_fingerprint()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _user_source(path) -> str | None:
    """``path`` as a real .py file outside the standard library, site-packages and this package; else None."""
    if not path or not str(path).endswith(".py") or _library_file(str(path)):
        return None
    real = os.path.realpath(path)
    return real if os.path.isfile(real) else None


def _functions(builder) -> list:
    """The builder and the functions it wraps (closure cells, ``functools.partial``)."""
    found, stack, seen = [], [builder], set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, functools.partial):  # its arguments too: a registered MX builder is one
            stack.extend([item.func, *item.args, *item.keywords.values()])
            continue
        item = inspect.unwrap(item) if callable(item) else item
        if isinstance(item, types.FunctionType):
            found.append(item)
            stack.extend(cell.cell_contents for cell in (item.__closure__ or ()) if _filled(cell))
    return found


def _filled(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018  (an empty cell raises)
    except ValueError:
        return False
    return True


def loaded_sources(builder, imported: set[str], cached: CachedTfGraph | None = None) -> list[str]:
    """Every user source file the build depended on, sorted.

    The modules imported while building, the modules of the builder's functions, every
    module reachable from those through module globals (imported modules, and the modules
    of imported functions and classes), and the files in the ops' creation tracebacks;
    only files outside the standard library, site-packages and ``porting`` (which the
    versions and the package fingerprint cover).
    """
    modules = [sys.modules[name] for name in imported if name in sys.modules]
    modules += [sys.modules[function.__module__] for function in _functions(builder)
                if function.__module__ in sys.modules]
    files = {_user_source(getattr(function, "__code__", None) and function.__code__.co_filename)
             for function in _functions(builder)}
    seen: set[str] = set()
    while modules:
        module = modules.pop()
        if not isinstance(module, types.ModuleType) or module.__name__ in seen:
            continue
        seen.add(module.__name__)
        path = _user_source(getattr(module, "__file__", None))
        if path is None:
            continue
        files.add(path)
        parent = module.__name__.rpartition(".")[0]  # a package's __init__ runs before its modules
        if parent in sys.modules:
            modules.append(sys.modules[parent])
        for value in list(vars(module).values()):
            if isinstance(value, types.ModuleType):
                modules.append(value)
            elif isinstance(getattr(value, "__module__", None), str) and value.__module__ in sys.modules:
                modules.append(sys.modules[value.__module__])
    for op in cached.graph.ops.values() if cached is not None else ():
        files.update(_user_source(frame.filename) for frame in (op.frames or ()))
    files.discard(None)
    return sorted(files)


def _digest_file(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None

