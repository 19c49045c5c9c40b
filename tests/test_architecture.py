"""The shape of the code, checked: no import cycles among our modules (imports inside
functions count too; only imports for type checkers, under ``if TYPE_CHECKING:``, are
left out of the cycle check, as they never run), the engine never imports textual,
rich, the CLI or the UI (not even for type checkers), and every engine module imports
cleanly without them."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the wheel maps screens/ and assets/ inside the package (pyproject.toml)
PACKAGES = {"regwizard": ROOT / "regwizard", "regwizard.screens": ROOT / "screens"}
# cli.webserver runs textual-serve, which imports rich (cli.serve imports it lazily)
UI = ("regwizard.app", "regwizard.screens", "regwizard.cli.wizard", "regwizard.cli.webserver")
CLI = ("regwizard.cli", "regwizard.__main__")
FORBIDDEN_FOR_ENGINE = ("textual", "rich")


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg, base in PACKAGES.items():
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([pkg, *parts])
            if pkg == "regwizard" and parts[:1] == ["screens"]:
                continue
            out[name] = path
    return out


MODULES = _modules()


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _typing_only(tree: ast.Module) -> set[int]:
    """ids of the import statements under ``if TYPE_CHECKING:``."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                out |= {id(n) for n in ast.walk(stmt)}
    return out


def _imports(name: str, path: Path, *, typing: bool = True) -> set[str]:
    """Every module ``name`` imports, wherever the statement is (functions included);
    ``typing=False`` leaves out the imports made for type checkers only."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    skip = set() if typing else _typing_only(tree)
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import sub` runs pkg's __init__ as well as sub: both count
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in MODULES}
    return out


GRAPH = {
    m: {t for t in _imports(m, p, typing=False) if t in MODULES and t != m}
    for m, p in MODULES.items()
}
RAW = {m: _imports(m, p) for m, p in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _path(graph: dict[str, set[str]], start: str, goal: str) -> list[str]:
    seen, todo = {start: [start]}, [start]
    while todo:
        v = todo.pop(0)
        for w in sorted(graph[v]):
            if w not in seen:
                seen[w] = [*seen[v], w]
                if w == goal:
                    return seen[w]
                todo.append(w)
    return []


def test_every_module_is_seen():
    assert "regwizard.engine" in MODULES and "regwizard.steps.container" in MODULES
    assert "regwizard.screens.run" in MODULES and "regwizard.cli.apply" in MODULES


def test_no_import_cycles():
    cycles = _cycles(GRAPH)
    shown = []
    for comp in cycles:
        a = comp[0]
        b = next(x for x in comp if x in GRAPH[a] or _path(GRAPH, a, x))
        shown.append(" -> ".join(_path(GRAPH, a, b) + _path(GRAPH, b, a)[1:]))
    assert cycles == [], "import cycles:\n" + "\n".join(shown)


def test_the_engine_imports_no_ui_no_cli():
    engine = [m for m in MODULES if not _within(m, UI + CLI)]
    bad = []
    for m in engine:
        for t in RAW[m]:
            top = t.split(".")[0]
            if top in FORBIDDEN_FOR_ENGINE or _within(t, UI + CLI):
                bad.append(f"{m} imports {t}")
    assert bad == []


def test_every_engine_module_imports_without_textual_or_rich():
    engine = sorted(m for m in MODULES if not _within(m, UI) and m != "regwizard.__main__")
    code = (
        "import importlib, json, sys\n"
        f"for m in {engine!r}:\n"
        "    importlib.import_module(m)\n"
        "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in ('textual','rich'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
