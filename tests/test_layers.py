"""The layers the README promises, checked on the source: dependencies point one way and nothing
imports in a cycle (lazy imports inside functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: installed package -> its folder in the repository
PACKAGES = {
    "mosxav": "mosxav",
    "mosxav_baselines": "baselines",
    "mosxav_diffproto": "diffproto",
    "mosxav_leaderboard": "leaderboard",
}
#: what each layer may import (besides itself and third-party packages), bottom first
ALLOWED = {
    "mosxav.root": {"mosxav.root"},
    "mosxav.data": {"mosxav.root", "mosxav.data"},
    "mosxav.evaluation": {"mosxav.root", "mosxav.data", "mosxav.evaluation"},
    "mosxav.training": {"mosxav.root", "mosxav.data", "mosxav.evaluation", "mosxav.training"},
    "mosxav.harness": {"mosxav.root", "mosxav.data", "mosxav.evaluation", "mosxav.training", "mosxav.harness"},
    "mosxav_baselines": {"mosxav.root", "mosxav.data", "mosxav.evaluation", "mosxav.training", "mosxav_baselines"},
    "mosxav_diffproto": {"mosxav.root", "mosxav.data", "mosxav.evaluation", "mosxav.training", "mosxav_diffproto"},
    "mosxav_leaderboard": {
        "mosxav.root",
        "mosxav.data",
        "mosxav.evaluation",
        "mosxav.training",
        "mosxav.harness",
        "mosxav_leaderboard",
    },
}
#: the package's public entry point loads its API lazily from the layers (PEP 562), which is not an import
LAZY_FACADE = "mosxav"


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def _imports(path: Path, module: str) -> set[str]:
    """Every first-party module named by an import anywhere in the file (functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level] if path.name != "__init__.py" else module.split(".")
                names.add(".".join(base + ([node.module] if node.module else [])))
            else:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] in PACKAGES}


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "mosxav":
        return parts[0]
    if len(parts) > 1 and parts[1] in ("data", "evaluation", "training", "harness"):
        return f"mosxav.{parts[1]}"
    return "mosxav.root"


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module an imported name belongs to (``a.b.func`` -> ``a.b``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def test_the_layout_is_what_the_readme_says():
    assert {"mosxav.data", "mosxav.evaluation", "mosxav.training", "mosxav.harness"} <= set(MODULES)
    root_modules = [m for m in MODULES if _layer(m) == "mosxav.root" and m != "mosxav"]
    assert sorted(root_modules) == [
        "mosxav.constants",
        "mosxav.errors",
        "mosxav.morphology",
        "mosxav.schema",
        "mosxav.submission",
    ]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_dependencies_point_down(module):
    if module == LAZY_FACADE:
        return
    allowed = ALLOWED[_layer(module)]
    wrong = {name for name in _imports(MODULES[module], module) if _layer(name) not in allowed}
    assert not wrong, f"{module} ({_layer(module)}) imports upward: {sorted(wrong)}"


def test_no_import_cycle():
    graph = {m: {_resolve(n) for n in _imports(p, m)} - {None, m} for m, p in MODULES.items() if m != LAZY_FACADE}
    for module in graph:  # packages import their own modules; a package importing itself is no cycle
        graph[module] = {n for n in graph[module] if n != LAZY_FACADE and not module.startswith(n + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt) :] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_every_entry_point_name_is_its_method_name():
    from mosxav.training.protocol import available_methods, get_method

    for name in available_methods():
        assert get_method(name).name == name


def test_installed_names_are_unambiguous():
    import mosxav_baselines
    import mosxav_diffproto
    import mosxav_leaderboard

    for module, folder in (
        (mosxav_baselines, "baselines"),
        (mosxav_diffproto, "diffproto"),
        (mosxav_leaderboard, "leaderboard"),
    ):
        assert Path(module.__file__).parent == ROOT / folder
