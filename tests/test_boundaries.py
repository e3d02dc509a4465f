"""The dependency rules of DESIGN.md, checked on the source: commands/ sits on top, the read side
does not load the trainer, nn/ does not use the teaching code, the teaching code uses nothing
but NumPy and the shared geometry, no cnnlab modules import each other in a cycle, and the base
layers (config, data, models, runs) import nothing above them.

The import graph is built from the AST of every file, imports inside functions included (a lazy
import is still a dependency): ``from cnnlab.x import y`` is an edge to module ``cnnlab.x.y`` when
that is a module, else to ``cnnlab.x``; relative imports are resolved against the importing package.
Importing a submodule is not counted as importing its parent package's ``__init__``.
"""

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import cnnlab

SRC = Path(cnnlab.__file__).parent


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count too)."""
    package = ".".join(("cnnlab",) + path.relative_to(SRC).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing package
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def modules(under: str = "") -> dict[str, set[str]]:
    root = SRC / under
    return {str(p.relative_to(SRC)): imports_of(p) for p in sorted(root.rglob("*.py"))}


def offenders(files: dict[str, set[str]], bad) -> dict[str, list[str]]:
    return {name: sorted(m for m in found if bad(m)) for name, found in files.items() if any(bad(m) for m in found)}


def test_the_source_tree_is_found():
    files = modules()
    assert "cli.py" in files and "bench/conv.py" in files and len(files) > 40


def test_nothing_below_the_cli_imports_commands():
    library = {k: v for k, v in modules().items() if not k.startswith("commands/") and k != "cli.py"}
    assert offenders(library, lambda m: m == "cnnlab.commands" or m.startswith("cnnlab.commands.")) == {}


def test_nn_does_not_import_scratch():
    assert offenders(modules("nn"), lambda m: m.startswith("cnnlab.scratch")) == {}


def test_scratch_depends_on_numpy_and_the_shared_geometry_only():
    allowed = ("cnnlab.scratch", "cnnlab.geometry", "cnnlab.errors", "numpy")

    def bad(m):
        top = m.split(".")[0]
        return not (m.startswith(allowed) or m == "cnnlab" or top in sys.stdlib_module_names)

    assert offenders(modules("scratch"), bad) == {}
    assert offenders({"geometry.py": imports_of(SRC / "geometry.py")},
                     lambda m: m.startswith("cnnlab") and m not in ("cnnlab.errors", "cnnlab.errors.CnnlabError")) == {}


def test_reading_a_run_does_not_import_the_trainer():
    code = ("import sys, cnnlab.runs, cnnlab.predict, cnnlab.report.evaluation; "
            "print(sorted(m for m in ('cnnlab.train.trainer', 'cnnlab.train.run') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# The import graph of cnnlab's own modules


def module_name(path: Path) -> str:
    """``cnnlab/models/registry.py`` -> ``cnnlab.models.registry``; a package's ``__init__.py`` is the package."""
    parts = ("cnnlab",) + path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = SRC) -> dict[str, dict[str, int]]:
    """module -> {cnnlab module it imports: line of the first such import}, at any depth in the file."""
    files = {module_name(p): p for p in sorted(root.rglob("*.py"))}

    def resolve(name: str) -> str | None:  # the longest prefix that is a module of ours
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, int]] = {}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against the importing package
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            for name in names:
                target = resolve(name) if name.split(".")[0] == "cnnlab" else None
                if target is not None and target != module:
                    edges.setdefault(target, node.lineno)
        graph[module] = edges
    return graph


def import_cycles(graph: dict[str, Any]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            step = next(targets, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph.get(step, ())))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.add(frozenset(component))
    return found


def describe(component: frozenset[str], graph: dict[str, dict[str, int]]) -> str:
    """One line per edge inside a component: ``a -> b (line N)``."""
    return "\n".join(f"  {m} -> {t} (line {graph[m][t]})" for m in sorted(component)
                     for t in sorted(graph[m]) if t in component)


# Registration, not layering: a registry imports the modules that register in it, so their decorators run,
# and each of them imports the registry it registers in. These stay, on purpose: models/families.py for
# the model zoo, data/registry.py for the dataset formats.
REGISTRATIONS = {
    frozenset({
        "cnnlab.models.airbench", "cnnlab.models.convnet", "cnnlab.models.efficientnet_lite",
        "cnnlab.models.families", "cnnlab.models.inception", "cnnlab.models.mobilenet",
        "cnnlab.models.registry", "cnnlab.models.resnet", "cnnlab.models.resnet9", "cnnlab.models.simple",
        "cnnlab.models.vgg",
    }),
    frozenset({
        "cnnlab.data.datasets", "cnnlab.data.formats", "cnnlab.data.formats.coco", "cnnlab.data.formats.voc",
        "cnnlab.data.formats.yolo", "cnnlab.data.locate", "cnnlab.data.registry", "cnnlab.data.scenes",
    }),
}


def test_the_import_graph_sees_imports_inside_functions():
    graph = import_graph()
    assert "cnnlab.models.families" in graph["cnnlab.models.registry"]  # _import_families(): a lazy import
    assert "cnnlab.models.checks" in graph["cnnlab.models.convnet"]  # from cnnlab.models import checks
    assert "cnnlab.models.registry" in graph["cnnlab.models"]  # from cnnlab.models.registry import ...
    assert "cnnlab.api.results" in graph["cnnlab.api"]  # from cnnlab.api.results import TableResult
    assert all(t.startswith("cnnlab") for edges in graph.values() for t in edges)


def test_the_cycle_detector_finds_a_cycle_and_only_cycles():
    acyclic = {"a": {"b": 1, "c": 1}, "b": {"c": 1}, "c": {}, "d": {"a": 1}}
    assert import_cycles(acyclic) == set()
    knotted = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1, "d": 1}, "d": {"e": 1}, "e": {"d": 1}, "f": {"a": 1}}
    assert import_cycles(knotted) == {frozenset("abc"), frozenset("de")}
    assert import_cycles({"x": {"y": 1}, "y": {"x": 1}}) == {frozenset("xy")}


def test_the_cycle_detector_finds_a_cycle_added_to_the_real_graph():
    graph = {m: dict(edges) for m, edges in import_graph().items()}
    graph["cnnlab.errors"]["cnnlab.runs"] = 1  # runs imports errors: this closes a loop
    new = import_cycles(graph) - import_cycles(import_graph())
    assert any({"cnnlab.errors", "cnnlab.runs"} <= c for c in import_cycles(graph))
    assert new, "a deliberately added cycle went unnoticed"


def test_no_import_cycles_between_cnnlab_modules():
    graph = import_graph()
    found = import_cycles(graph) - REGISTRATIONS
    assert not found, "import cycles:\n" + "\n\n".join(describe(c, graph) for c in sorted(found, key=sorted))
    assert REGISTRATIONS <= import_cycles(graph), "a registration cycle changed: update REGISTRATIONS"


# The base layers, lowest first: each may import itself, the layers before it and the small shared
# helpers, never anything above (the library packages, the API, the commands).
BASE_LAYERS = ("cnnlab.config", "cnnlab.data", "cnnlab.models", "cnnlab.runs")
SHARED_HELPERS = ("cnnlab.errors", "cnnlab.fileio", "cnnlab.filemeta", "cnnlab.rundir", "cnnlab.geometry",
                  "cnnlab.version", "cnnlab.nn", "cnnlab.yamlsafe", "cnnlab.checkpoint",
                  "cnnlab.tasks")  # the task registry and interface; the tasks themselves live above

def within(module: str, packages) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def upward_imports(graph: dict[str, dict[str, int]]) -> set[tuple[str, str]]:
    found = set()
    for level, layer in enumerate(BASE_LAYERS):
        allowed = BASE_LAYERS[: level + 1] + SHARED_HELPERS
        for module, edges in graph.items():
            if within(module, (layer,)):
                found.update((module, t) for t in edges if not within(t, allowed))
    return found


def test_the_upward_rule_sees_an_upward_import():
    graph = {"cnnlab.models.x": {"cnnlab.train.run": 1, "cnnlab.errors": 1, "cnnlab.data.idx": 1},
             "cnnlab.data.y": {"cnnlab.models.x": 1}, "cnnlab.runs": {"cnnlab.models.x": 1},
             "cnnlab.train.run": {"cnnlab.runs": 1}}
    assert upward_imports(graph) == {("cnnlab.models.x", "cnnlab.train.run"), ("cnnlab.data.y", "cnnlab.models.x")}


def test_the_base_layers_import_nothing_above_them():
    graph = import_graph()
    found = upward_imports(graph)
    assert not found, "upward imports:\n" + "\n".join(f"  {m} -> {t} (line {graph[m][t]})" for m, t in sorted(found))


def test_the_shared_helpers_import_only_each_other():
    """What the base layers may use stands on nothing above it (the task registry loads tasks by name)."""
    graph = import_graph()
    bad = {(m, t) for m, edges in graph.items() if within(m, SHARED_HELPERS)
           for t in edges if not within(t, SHARED_HELPERS + ("cnnlab.config",))}
    assert not bad, sorted(bad)


# Files being reworked for issue 19 elsewhere, not checked by the rule below yet (this list only shrinks).
LAZY_UNCHECKED = ()


def lazy_cnnlab_imports(path: Path) -> list[int]:
    """Lines of the imports of cnnlab modules that sit inside a function or class body."""
    tree = ast.parse(path.read_text(), str(path))
    top = {id(node) for node in tree.body}
    return sorted(node.lineno for node in ast.walk(tree) if id(node) not in top and (
        isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "cnnlab"
        or isinstance(node, ast.Import) and any(a.name.split(".")[0] == "cnnlab" for a in node.names)))


def test_imports_inside_functions_say_why():
    """cnnlab modules are imported at the top of a file; a file that must import some lazily (the CLI's
    and the API's entry points, an ONNX path without torch) says why in a ``# why`` comment."""
    silent = {}
    for path in sorted(SRC.rglob("*.py")):
        name = str(path.relative_to(SRC))
        if name.startswith(LAZY_UNCHECKED):
            continue
        lines = lazy_cnnlab_imports(path)
        if lines and "# why" not in path.read_text():
            silent[name] = lines
    assert silent == {}


def test_lazy_imports_are_found(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import os\nfrom cnnlab.errors import CnnlabError\n\n\ndef f():\n    import numpy\n"
                      "    from cnnlab.runs import load_run\n    import cnnlab.models\n")
    assert lazy_cnnlab_imports(source) == [7, 8]
