"""The package's shape: no import loops (module-level and function-level imports alike).

A small `ast` walk rather than pydeps: the question is one graph's strongly connected
components, and the walk needs nothing installed.
"""

from __future__ import annotations

import ast
from pathlib import Path

from lakehouse.config import project_root

PACKAGE = project_root() / "spark" / "lakehouse"


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(tree: ast.AST, name: str, is_package: bool) -> set[str]:
    """Every module named by an import anywhere in `tree` (relative ones resolved)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    paths = {module_name(p, package): p for p in package.rglob("*.py")}
    return {
        name: {m for m in imports(ast.parse(p.read_text()), name, p.name == "__init__.py") if m in paths and m != name}
        for name, p in paths.items()
    }


def loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_walk_finds_a_loop_it_is_given(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from ..c import x\n")
    (package / "c.py").write_text("import pkg.a\n")
    (package / "d.py").write_text("from pkg import a\n")
    assert loops(import_graph(package)) == [["pkg.a", "pkg.c", "pkg.sub.b"]]


def test_the_package_has_no_import_loop():
    graph = import_graph()
    assert len(graph) > 50
    assert loops(graph) == []


def top_level_imports(path: Path) -> set[str]:
    """Modules imported when `path` is imported (its module body, not its functions)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.add(node.module or "")
    return found


def test_the_runtime_package_does_not_load_the_developer_tooling():
    loading = {
        str(p.relative_to(PACKAGE)): sorted(m for m in top_level_imports(p) if m.split(".")[0] == "lakehouse_dev")
        for p in PACKAGE.rglob("*.py")
    }
    assert {path: mods for path, mods in loading.items() if mods} == {}
    assert not any(name.startswith(("services", "samples", "bench")) for name in map(str, loading))


def test_the_executors_zip_holds_the_runtime_package_only(tmp_path):
    import zipfile

    from lakehouse.executor_env import package_zip

    names = zipfile.ZipFile(package_zip(tmp_path)).namelist()
    assert "lakehouse/transforms/gold.py" in names
    assert [n for n in names if not n.startswith("lakehouse/") or "/services/" in n or "bench" in n or "samples" in n] == []
