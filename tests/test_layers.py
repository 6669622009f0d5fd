"""The package's import graph: every arrow points down a fixed order of layers, and there is no circle.

Read from the source with ``ast`` (function-level imports included: a lazy import is still an arrow),
so no module is imported to check it. ``LAYERS`` is the layout docs/development.md shows.
"""

import ast
from pathlib import Path
from typing import Dict, Set

PACKAGE = Path(__file__).resolve().parents[1] / "spacy_universalner"

#: Bottom to top. A module may import modules of its own layer or of layers below it, never above.
LAYERS = [
    # the floor: shared types and formats, importing nothing above
    {
        "types",
        "registry",
        "parsing",
        "jsonl",
        "http",
        "chunking",
        "display",
        "span_weights",
        "backends.offsets",
        "configs",
        "weights",
    },
    {"prompt", "pretrained", "alignment", "confidence", "cache", "extensions"},
    {
        "conversations",
        "templates",
        "doc_spans",
        "testing",
        "backends.tokens",
        "backends.constrained",
        "backends.fast_spans",
        "backends.engine",
    },
    {"backends.hf", "backends.gliner", "backends.openai", "backends.vllm"},
    {
        "backends",
        "component",
        "extract",
        "distributed",
        "eval",
        "eval.metrics",
        "eval.readers",
        "eval.benchmarks",
        "eval.run",
        "eval.report",
        "llm",
        "llm.models",
        "llm.task",
    },
    {
        "distill",
        "distill.config",
        "distill.tuples",
        "distill.teachers",
        "distill.annotate",
        "distill.build",
        "distill.gold",
        "distill.sample",
        "distill.train",
        "distill.student",
        "distill.span",
        "distill.gguf",
    },
    {"cli.app"},
    {"cli.download", "cli.extract", "cli.distill", "cli.evaluate"},
    {"cli", "__main__", ""},
]


def modules() -> Dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: Set[str]) -> Set[str]:
    """Package modules that ``name`` imports, anywhere in its source."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    package = [p for p in package if p]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
            elif node.module and node.module.split(".")[0] == "spacy_universalner":
                base = []
            else:
                continue
            module = node.module or ""
            if not node.level:
                module = module[len("spacy_universalner") :].lstrip(".")
            target = ".".join(base + ([module] if module else []))
            for alias in node.names:  # `from . import x` names a module; `from .x import y` a name in x
                candidate = f"{target}.{alias.name}".strip(".")
                found.add(candidate if candidate in known else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("spacy_universalner"):
                    found.add(alias.name[len("spacy_universalner") :].lstrip("."))
    return {target for target in found if target in known and target != name}


def graph() -> Dict[str, Set[str]]:
    known = modules()
    return {name: imports(name, path, set(known)) for name, path in known.items()}


def test_every_module_has_a_layer():
    layered = set().union(*LAYERS)
    assert set(modules()) - layered == set()  # a new module: give it a place in LAYERS (and docs/development.md)


def test_every_import_points_to_the_same_layer_or_below():
    layer = {name: i for i, names in enumerate(LAYERS) for name in names}
    upward = sorted(
        f"{name or 'spacy_universalner'} (layer {layer[name]}) imports {target} (layer {layer[target]})"
        for name, targets in graph().items()
        for target in targets
        if layer[target] > layer[name]
    )
    assert upward == []


def test_the_import_graph_has_no_circle():
    edges = graph()
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    circles = []

    def visit(name, path):
        state[name] = 1
        for target in sorted(edges[name]):
            if state.get(target) == 1:
                circles.append(" -> ".join(path[path.index(target) :] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert circles == []
