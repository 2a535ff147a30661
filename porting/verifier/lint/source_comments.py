"""The shape-comment check: `# H x W x C` comments in the TF source against the shapes TF infers.

Reading the source: comments attached to the statements they describe, the builder's own
files (not TF, slim, the standard library or this package), its nominal input size, and
whether the file on disk is still the one the graph was built from.
"""
from __future__ import annotations

import ast
import functools
import inspect
import io
import os
import re
import sys
import sysconfig
import tokenize
from dataclasses import dataclass
from pathlib import Path

from porting.verifier.lint.base import Context, Finding, Severity, network_check
from porting.verifier.lint.head import output_width, tf_record_of_tensor

_SHAPE_COMMENT = re.compile(r"^#\s*(\d+(?:\s*[x×X*]\s*\d+)*)\b\s*(.*)$")
_CONDITIONAL = re.compile(r"\b(if|when|unless|else|otherwise|or)\b", re.IGNORECASE)
_SKIP_PATH_PARTS = ("site-packages", "dist-packages")
_SKIP_DIRS = tuple({os.path.realpath(sysconfig.get_paths()[key]) + os.sep for key in ("stdlib", "platstdlib", "purelib",
                                                                                    "platlib")})


@dataclass(frozen=True)
class ShapeComment:
    file: str
    line: int
    dims: tuple[int, ...]
    text: str
    start: int  # the statement the comment describes: first and last line
    end: int


def shape_comments(path: str) -> list[ShapeComment]:
    """Every ``# H x W x C`` comment of a Python file (cached per file version); see ``_shape_comments``."""
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        return []
    return list(_cached_shape_comments(path, stamp))


@functools.lru_cache(maxsize=64)
def _cached_shape_comments(path: str, stamp: int) -> tuple[ShapeComment, ...]:
    return tuple(_shape_comments(path))


def _shape_comments(path: str) -> list[ShapeComment]:
    """Every ``# H x W x C`` comment of a Python file, with the statement it describes.

    A comment after code describes the statement on its line; a comment on a
    line of its own describes the statement right below it (slim's style:
    ``# 149 x 149 x 32`` above the conv), when no blank line separates them.
    Conditional comments ('17 x 17 if output_stride == 8') are skipped.
    """
    try:
        source = Path(path).read_text()
        tree = ast.parse(source)
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (OSError, SyntaxError, tokenize.TokenError, UnicodeDecodeError):
        return []
    statements = [node for node in ast.walk(tree) if isinstance(node, ast.stmt)
                  and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    lines = source.splitlines()
    code_lines = {token.start[0] for token in tokens
                  if token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                                        tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER)}
    result = []
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        match = _SHAPE_COMMENT.match(token.string)
        if not match or _CONDITIONAL.search(match.group(2)):
            continue
        dims = tuple(int(d) for d in re.split(r"\s*[x×X*]\s*", match.group(1).strip()))
        line = token.start[0]
        if line in code_lines:  # trailing: the innermost statement on this line
            around = [s for s in statements if s.lineno <= line <= (s.end_lineno or s.lineno)]
            if not around:
                continue
            target = min(around, key=lambda s: (s.end_lineno or s.lineno) - s.lineno)
        else:  # own line: the statement right below (only comment lines in between)
            below = line + 1
            while below <= len(lines) and lines[below - 1].strip().startswith("#"):
                below += 1
            starting = [s for s in statements if s.lineno == below]
            if not starting:
                continue
            target = max(starting, key=lambda s: (s.end_lineno or s.lineno) - s.lineno)
        result.append(ShapeComment(path, line, dims, token.string.strip(), target.lineno,
                                   target.end_lineno or target.lineno))
    return result


#: The porting package itself (every layer below it): never a builder author's file.
# porting/verifier/lint/source_comments.py -> porting/
_PACKAGE_DIR = str(Path(__file__).resolve().parents[2]) + os.sep


@functools.lru_cache(maxsize=1024)
def _user_file(filename: str) -> bool:
    """A source file of the builder's author: not TF, slim, the standard library or this package."""
    if not filename or filename.startswith("<"):
        return False
    normalized = filename.replace("\\", "/")
    if any(part in normalized for part in _SKIP_PATH_PARTS):
        return False
    real = os.path.realpath(filename)
    if real.startswith(_PACKAGE_DIR) or real.startswith(_SKIP_DIRS):
        return False
    return os.path.isfile(filename)


def _builder_frames(frames) -> list:
    """The frames inside the TF builder call: below tf_reader's build_graph (the caller's stack is not the builder)."""
    frames = list(frames)
    start = 0
    for index, frame in enumerate(frames):
        if os.path.basename(frame.filename) == "tf_reader.py" and frame.name == "build_graph":
            start = index + 1
    return frames[start:]


def module_nominal_size(path: str) -> tuple[int, int] | None:
    """slim's convention: a module's DEFAULT_IMAGE_SIZE, or ``default_image_size`` on one of its functions."""
    module = _module_of(path)
    if module is not None:
        values = []
        for attribute in ("DEFAULT_IMAGE_SIZE", "default_image_size", "IMAGE_SIZE"):
            if isinstance(getattr(module, attribute, None), int):
                values.append(getattr(module, attribute))
        for value in vars(module).values():
            size = getattr(value, "default_image_size", None) if callable(value) else None
            if isinstance(size, int):
                values.append(size)
        if values:
            return (values[0], values[0])
    return None


def _nominal_size(tf_graph, path: str) -> tuple[int, int] | None:
    """The module's nominal size; a cached TF side (its modules not imported) recorded it when it was built."""
    recorded = getattr(tf_graph, "nominal_sizes", None)
    return recorded.get(path) if recorded is not None else module_nominal_size(path)


def _module_of(path: str):
    resolved = os.path.realpath(path)
    name = os.path.basename(resolved)
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and os.path.basename(file) == name and os.path.realpath(file) == resolved:
            return module
    return None


def _source_is_current(path: str) -> bool:
    """Whether the file on disk is the one the graph was built from.

    The graph's tracebacks carry the line numbers of the code as imported; if the
    file was edited since, comments would be matched to the wrong statements. The
    first line of every top-level function (decorators included) must agree
    between the imported module and the file; an unknown module counts as current.
    """
    module = _module_of(path)
    if module is None:
        return True
    try:
        tree = ast.parse(Path(path).read_text())
    except (OSError, SyntaxError, UnicodeDecodeError):
        return False
    on_disk = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            on_disk[node.name] = min([node.lineno] + [d.lineno for d in node.decorator_list])
    resolved = os.path.realpath(path)
    for name, value in vars(module).items():
        function = inspect.unwrap(value) if callable(value) else None
        code = getattr(function, "__code__", None)
        if code is None or os.path.realpath(code.co_filename) != resolved or function.__name__ != name:
            continue
        if name in on_disk and on_disk[name] != code.co_firstlineno:
            return False
    return True


def _as_size(value) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, int):
        return (value, value)
    return tuple(int(v) for v in value)[:2]


#: Builder options that change no shape (registered variants with only these keep the comments valid).
SHAPE_NEUTRAL_OPTIONS = frozenset({"repeats", "is_training", "dropout_keep_prob", "reuse", "scope"})


@network_check("shape_comment", "a `# H x W x C` comment in the TF source that contradicts the inferred shape")
def check_shape_comments(context: Context) -> list[Finding]:
    if not context.options.shape_comments:
        return []
    tf_graph = context.tf_graph
    graph = getattr(tf_graph, "graph", None)
    images = getattr(tf_graph, "images", None)
    if graph is None or images is None:
        return []
    size = tuple(images.shape.as_list()[1:3])
    spec = getattr(context.result, "spec", None)
    variant = sorted(set(getattr(spec, "tf_kwargs", {}) or {}) - SHAPE_NEUTRAL_OPTIONS) if spec is not None else []
    # The ops on the data path, with the lines of user source that created them.
    op_names = []
    for record in tf_graph.records:
        op_names.extend(part.name for part in record.parts)
        op_names.extend(record.attrs.get("members", []) or [])
    owner = {}
    for record in tf_graph.records:
        for part in record.parts:
            owner[part.name] = record.name
        for member in record.attrs.get("members", []) or []:
            owner[member] = record.name
    ops = []
    for name in dict.fromkeys(op_names):
        try:
            ops.append(graph.get_operation_by_name(name))
        except (KeyError, ValueError):
            continue
    sites: dict[str, dict[int, list]] = {}  # file -> line -> ops created (directly or below) from that line
    for op in ops:
        try:
            frames = op.traceback
        except Exception:  # noqa: BLE001  (no traceback: nothing to map)
            continue
        for frame in _builder_frames(frames or ()):  # imported graphs (model files) keep no tracebacks
            if _user_file(frame.filename):
                sites.setdefault(frame.filename, {}).setdefault(frame.lineno, []).append(op)
    findings = []
    logits = getattr(tf_graph, "logits", None)
    classes = output_width(tf_record_of_tensor(context, logits)) if logits is not None else None
    for path in sorted(sites):
        comments = shape_comments(path)
        if not comments:
            continue
        nominal = _as_size(context.options.nominal_size) or _nominal_size(tf_graph, path) or (
            _as_size(getattr(spec, "size", None)) if spec is not None else None)
        shown = _display_path(path)
        if nominal is None:
            findings.append(Finding(shown, "shape_comment", Severity.INFO, "--", "--",
                                    f"{len(comments)} shape comments in {shown} were not checked: the nominal input "
                                    "size they describe is unknown.",
                                    "set DEFAULT_IMAGE_SIZE (or fn.default_image_size) in the builder's module, or "
                                    "pass lint.apply(result, nominal_size=N)", file=shown))
            continue
        if tuple(nominal) != size or variant:
            continue  # the comments describe another input size or configuration
        if not _source_is_current(path):
            findings.append(Finding(shown, "shape_comment", Severity.INFO, "--", "--",
                                    f"the shape comments in {shown} were not checked: the file changed after the "
                                    "graph was built from it, so its line numbers no longer match the graph's.",
                                    "run the comparison again", file=shown))
            continue
        lines = sites[path]
        for comment in comments:
            candidates = [op for line in range(comment.start, comment.end + 1) for op in lines.get(line, [])]
            candidates = list(dict.fromkeys(candidates))
            if not candidates:
                continue
            inside = set(candidates)
            sinks = [op for op in candidates
                     if not any(reader in inside for tensor in op.outputs for reader in tensor.consumers())]
            seen = set()
            for op in sinks:
                if not op.outputs or op.outputs[0].shape.rank is None:
                    continue
                actual = tuple(op.outputs[0].shape.as_list()[1:])
                if actual in seen or None in actual:
                    continue
                seen.add(actual)
                dims = comment.dims
                if len(dims) == 1 and len(actual) != 1:
                    continue  # a bare number on a feature map: not a shape
                if actual == dims:
                    continue
                if classes is not None and actual and actual[-1] == classes and dims[-1] != classes \
                        and actual[:-1] == dims[:-1]:
                    continue  # the class count is a builder argument, not part of the geometry
                layer = owner.get(op.name, op.name)
                expected = " x ".join(map(str, actual))
                findings.append(Finding(
                    layer, "shape_comment", Severity.INFO, f"inferred {expected}", "--",
                    f"{shown}:{comment.line}: the comment `{comment.text}` says "
                    f"{' x '.join(map(str, dims))}, but TF infers {expected} (NHWC without batch) for the tensor this "
                    f"statement produces ({layer}) at the nominal {size[0]}x{size[1]} input.",
                    f"correct the comment to `# {expected}` (or the layer, if the comment states the intent)",
                    file=shown, line=comment.line))
    return findings


def _display_path(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
