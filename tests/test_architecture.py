"""The import rules of docs/ARCHITECTURE.md, read from the source with ``ast``.

Every ``import`` and ``from ... import`` statement of porting/, mx_impl/ and
reference_tf/ counts, also those inside functions (a lazy import is still a
dependency). Each module belongs to one layer (``LAYERS``, longest prefix wins);
``ALLOWED`` says which layers, or single modules, a layer may import besides its
own; ``STDLIB_ONLY`` and ``NO_FRAMEWORKS`` limit third-party imports. The tests
fail on a forbidden edge, on a circle between layers and on a circle between
modules, naming ``file:line`` and the edge. The doc quotes ``ALLOWED`` as a table,
and a test keeps the two the same.
"""
from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("porting", "mx_impl", "reference_tf")
DOC = ROOT / "docs" / "ARCHITECTURE.md"

#: Module name prefix -> layer; the longest matching prefix wins.
LAYERS = {
    "porting": "package",  # porting/__init__.py: ``from porting import verify``
    "porting.util": "util",
    "porting.padding": "padding",
    "porting.threads": "threads",
    "porting.progress": "progress",
    "porting.compat": "compat",
    "porting.core": "core",
    "porting.frameworks": "frameworks",
    "porting.verifier": "verifier",
    "porting.autoport": "autoport",
    "porting.data": "data",
    "porting.training": "training",
    "porting.serving": "serving",
    "porting.cli": "cli",
    # thin ``python -m`` entry points: the commands live in porting.cli
    "porting.compare": "stubs",
    "porting.convert": "stubs",
    "porting.train": "stubs",
    "porting.predict": "stubs",
    "porting.data.__main__": "stubs",
    "porting.autoport.__main__": "stubs",
    "reference_tf": "reference_tf",
    "mx_impl": "mx_impl",
}

#: What each layer may import besides its own modules and third-party packages: layer
#: names, or single modules (dotted) where a layer may use one module of another layer.
ALLOWED = {
    "util": set(),
    "padding": set(),
    "threads": set(),
    "progress": set(),
    "compat": {"threads"},
    "core": {"util", "padding"},
    "reference_tf": {"util", "padding", "compat"},
    "frameworks": {"core", "util", "padding", "compat", "reference_tf", "progress"},
    "mx_impl": {"util", "padding", "compat", "porting.frameworks.mx_ops"},
    "verifier": {"core", "frameworks", "util", "padding", "compat", "progress"},
    "autoport": {"core", "frameworks", "verifier", "util", "padding", "compat", "progress"},
    "data": {"util", "compat", "progress"},
    "training": {"data", "core", "util", "padding", "compat", "mx_impl", "porting.frameworks.mx_ops",
                 "porting.frameworks.mx_attrs", "progress"},
    "serving": {"training", "data", "core", "util", "compat", "porting.frameworks.mx_attrs", "progress"},
    "package": {"compat", "verifier"},
    "cli": {"util", "padding", "threads", "compat", "core", "frameworks", "verifier", "autoport", "data",
            "training", "serving", "reference_tf", "mx_impl", "progress"},
    "stubs": {"cli"},
}

#: Modules a layer may not import although their layer is allowed, with the reason.
FORBIDDEN_MODULES = {
    ("serving", "porting.training.loop"): "serving reads checkpoints, it does not import the training loop",
    ("serving", "porting.training.preparation"): "serving reads checkpoints, it does not prepare a training run",
}

#: Layers that import nothing outside the standard library (and no porting module but ALLOWED).
STDLIB_ONLY = {"util", "threads", "stubs"}
#: Layers that import no deep-learning framework, not even through porting.compat.
NO_FRAMEWORKS = {"util", "threads", "padding", "core"}
FRAMEWORKS = {"tensorflow", "tf_slim", "mxnet", "keras", "tf_keras"}



@dataclass(frozen=True)
class Edge:
    """One import statement's dependency: ``source`` imports ``target`` (a module or a package)."""

    source: str
    target: str
    path: str
    line: int

    def where(self) -> str:
        return f"{self.path}:{self.line}: {self.source} -> {self.target}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


MODULES = _modules()


def _resolve(name: str) -> str:
    """The module or package an import statement loads: ``porting.util`` for ``porting.util.slug``."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    """Every imported name, dotted and absolute, with its line."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    # Imports under ``if TYPE_CHECKING:`` only name types for annotations: no run-time edge.
    typing_only = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                   for statement in node.body for inner in ast.walk(statement)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def _edges() -> tuple[list[Edge], list[Edge]]:
    """(internal edges between our modules, external edges to top-level third-party names)."""
    internal, external = [], []
    for module, path in MODULES.items():
        rel = str(path.relative_to(ROOT))
        for name, line in _imports(module, path):
            if name.split(".")[0] in PACKAGES:
                target = _resolve(name)
                if target != module:
                    internal.append(Edge(module, target, rel, line))
            else:
                external.append(Edge(module, name.split(".")[0], rel, line))
    # ``from x import a, b`` is one edge
    return list(dict.fromkeys(internal)), list(dict.fromkeys(external))


INTERNAL, EXTERNAL = _edges()


def layer_of(module: str) -> str | None:
    prefixes = [prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")]
    return LAYERS[max(prefixes, key=len)] if prefixes else None


def _allowed(edge: Edge) -> bool:
    source, target = layer_of(edge.source), layer_of(edge.target)
    if (source, edge.target) in FORBIDDEN_MODULES:
        return False
    if source == target:
        return True
    rules = ALLOWED[source]
    return target in rules or any(edge.target == rule or edge.target.startswith(rule + ".")
                                  for rule in rules if "." in rule)


def _describe(edge: Edge) -> str:
    reason = FORBIDDEN_MODULES.get((layer_of(edge.source), edge.target))
    text = f"{edge.where()}  [{layer_of(edge.source)} -> {layer_of(edge.target)}]"
    return f"{text}: {reason}" if reason else text


# ------------------------------------------------------------------------ the table


def test_every_module_has_a_layer():
    assert not [module for module in MODULES if layer_of(module) is None]
    assert set(LAYERS.values()) == set(ALLOWED)


def test_rule_table_names_only_known_layers_and_modules():
    for layer, rules in ALLOWED.items():
        for rule in rules:
            known = rule in MODULES if "." in rule else rule in ALLOWED
            assert known, f"ALLOWED[{layer!r}] names {rule!r}, which is neither a layer nor a module"


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph`` as [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(step) == 1:
                return path[path.index(step):] + [step]
            elif not state.get(step):
                state[step] = 1
                path.append(step)
                stack.append(iter(sorted(graph.get(step, ()))))
    return None


def test_rule_table_is_layered():
    """The allowed layer edges form no circle, so the layers have an order."""
    graph = {layer: {rule if "." not in rule else layer_of(rule) for rule in rules} - {layer}
             for layer, rules in ALLOWED.items()}
    assert _find_cycle(graph) is None, f"ALLOWED has a circle: {' -> '.join(_find_cycle(graph))}"


def rules_markdown() -> str:
    """The rule tables as the Markdown table docs/ARCHITECTURE.md quotes."""
    lines = ["| layer | may import (besides itself) | third-party |", "|---|---|---|"]
    for layer, rules in ALLOWED.items():
        allowed = []
        for rule in sorted(rules):
            unless = sorted(module for (source, module) in FORBIDDEN_MODULES
                            if source == layer and layer_of(module) == rule)
            allowed.append(f"{rule} (not {', '.join(unless)})" if unless else rule)
        third_party = ("stdlib only" if layer in STDLIB_ONLY else
                       "no framework" if layer in NO_FRAMEWORKS else "any")
        lines.append(f"| {layer} | {', '.join(allowed) or '--'} | {third_party} |")
    return "\n".join(lines) + "\n"


def test_doc_quotes_the_rule_table():
    assert rules_markdown() in DOC.read_text("utf-8"), (
        f"docs/ARCHITECTURE.md must quote the rule table of tests/test_architecture.py:\n{rules_markdown()}")


# ----------------------------------------------------------------------- the tree


def test_no_forbidden_import():
    bad = [edge for edge in INTERNAL if not _allowed(edge)]
    assert not bad, "forbidden imports (see docs/ARCHITECTURE.md):\n" + "\n".join(map(_describe, bad))



def test_third_party_imports():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    bad = []
    for edge in EXTERNAL:
        layer = layer_of(edge.source)
        if layer in STDLIB_ONLY and edge.target not in stdlib:
            bad.append(f"{edge.where()}  [{layer} imports the standard library only]")
        elif layer in NO_FRAMEWORKS and edge.target in FRAMEWORKS:
            bad.append(f"{edge.where()}  [{layer} imports no framework]")
    for edge in INTERNAL:  # porting.compat is the frameworks' door
        if layer_of(edge.source) in NO_FRAMEWORKS and layer_of(edge.target) == "compat":
            bad.append(f"{edge.where()}  [{layer_of(edge.source)} imports no framework shim]")
    assert not bad, "\n".join(bad)


def test_only_the_command_line_imports_the_commands():
    bad = [edge for edge in INTERNAL
           if layer_of(edge.target) == "cli" and layer_of(edge.source) not in ("cli", "stubs")]
    assert not bad, "\n".join(map(_describe, bad))


def test_stubs_import_only_their_command():
    bad = [edge for edge in INTERNAL if layer_of(edge.source) == "stubs" and layer_of(edge.target) != "cli"]
    bad += [edge for edge in EXTERNAL if layer_of(edge.source) == "stubs" and edge.target != "sys"
            and edge.target != "__future__"]
    assert not bad, "\n".join(edge.where() for edge in bad)


def test_layers_form_no_circle():
    graph: dict[str, set[str]] = defaultdict(set)
    first: dict[tuple[str, str], Edge] = {}
    for edge in INTERNAL:
        source, target = layer_of(edge.source), layer_of(edge.target)
        if source != target:
            graph[source].add(target)
            first.setdefault((source, target), edge)
    cycle = _find_cycle(graph)
    assert cycle is None, "layers import each other in a circle:\n" + "\n".join(
        first[pair].where() for pair in zip(cycle, cycle[1:]))


def test_modules_form_no_circle():
    graph: dict[str, set[str]] = defaultdict(set)
    first: dict[tuple[str, str], Edge] = {}
    for edge in INTERNAL:
        graph[edge.source].add(edge.target)
        first.setdefault((edge.source, edge.target), edge)
    cycle = _find_cycle(graph)
    assert cycle is None, "modules import each other in a circle:\n" + "\n".join(
        first[pair].where() for pair in zip(cycle, cycle[1:]))


def test_the_reader_sees_lazy_and_relative_imports():
    """Sanity of the AST reader on modules whose imports are known."""
    targets = {(edge.source, edge.target) for edge in INTERNAL}
    assert ("porting", "porting.verifier.api") in targets  # inside a function
    assert ("porting.compare", "porting.cli.compare") in targets
    assert ("mx_impl.inception_resnet_v2", "porting.frameworks.mx_ops") in targets
    assert layer_of("porting.data.__main__") == "stubs" and layer_of("porting.data.sources") == "data"
