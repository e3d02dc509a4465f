"""The dependency rules of DESIGN.md, checked on the source: commands/ sits on top, the read side
does not load the trainer, nn/ does not use the teaching code, and the teaching code uses nothing
but NumPy and the shared geometry."""

import ast
import subprocess
import sys
from pathlib import Path

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
