"""The layering of docs/ARCHITECTURE.md holds: no import circle, no upward import, files of a readable size.

The floors and the core's order are read from the document itself, so the document and the code
cannot drift apart silently. Every import statement counts, those inside functions too.
"""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
FLOOR_NUMBERS = {"API": 4, "core": 3, "backends": 2, "kernels": 1}


def module_files():
    """{dotted module name: path} for nnengine/ and kernels/ (installed as nnengine.kernels)."""
    files = {}
    for base, package in ((ROOT / "nnengine", "nnengine"), (ROOT / "kernels", "nnengine.kernels")):
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join([package, *parts])] = path
    return files


MODULES = module_files()


def _is_package(name):
    return MODULES[name].name == "__init__.py"


def _resolve(module, node):
    """The nnengine modules an import node brings in (an imported name that is a module counts as it)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in MODULES]
    if node.level:
        package = module if _is_package(module) else module.rsplit(".", 1)[0]
        for _ in range(node.level - 1):
            package = package.rsplit(".", 1)[0]
        base = package + (f".{node.module}" if node.module else "")
    else:
        base = node.module or ""
    if base not in MODULES:
        return []
    targets = []
    for alias in node.names:
        child = f"{base}.{alias.name}"
        targets.append(child if child in MODULES else base)
    return targets


def import_graph():
    """{module: set of nnengine modules it imports}, self-imports left out."""
    graph = {}
    for module, path in MODULES.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges.update(t for t in _resolve(module, node) if t != module)
        graph[module] = edges
    return graph


def floors_from_doc():
    """{module: floor number} from the table 'Floors, module by module' (patterns ending in .* allowed)."""
    table = DOC.split("## Floors, module by module", 1)[1].lstrip().split("\n\n", 1)[0]
    floors = {}
    for label, number in FLOOR_NUMBERS.items():
        row = re.search(rf"^\| {number} {label} \| (.+) \|$", table, re.M)
        assert row, f"docs/ARCHITECTURE.md has no row for floor {number} {label}"
        for entry in row.group(1).replace("\\*", "*").split(","):
            floors[entry.strip()] = number
    return floors


def floor_of(module, floors):
    name = module[len("nnengine."):]
    if name in floors:
        return floors[name]
    for pattern, number in floors.items():
        if pattern.endswith(".*") and (name == pattern[:-2] or name.startswith(pattern[:-1])):
            return number
    return None


def core_order():
    line = re.search(r"^dtypes -> .+$", DOC, re.M)
    assert line, "docs/ARCHITECTURE.md must state the core's order as 'dtypes -> ...'"
    return [f"nnengine.{name.strip()}" for name in line.group(0).split("->")]


GRAPH = import_graph()
FLOORS = floors_from_doc()


def test_every_module_has_a_floor_in_the_document():
    unplaced = [m for m in MODULES if m != "nnengine" and floor_of(m, FLOORS) is None]
    assert not unplaced, f"add these to the floor table of docs/ARCHITECTURE.md: {unplaced}"


def test_no_module_imports_one_on_a_higher_floor_or_the_package_front_door():
    upward = []
    for module, targets in GRAPH.items():
        if module == "nnengine":
            continue
        for target in targets:
            if target == "nnengine" or floor_of(target, FLOORS) > floor_of(module, FLOORS):
                upward.append(f"{module} -> {target}")
    assert not upward, f"imports that point up: {upward}"


def test_there_is_no_import_cycle():
    state, path, cycles = {}, [], []

    def visit(module):
        state[module] = "open"
        path.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_core_imports_only_leftwards_in_the_documented_order():
    order = core_order()
    assert set(order) == {m for m in MODULES if floor_of(m, FLOORS) == 3}, "the order line must list the core"
    for position, module in enumerate(order):
        later = set(order[position + 1:])
        assert not GRAPH[module] & later, f"{module} imports {sorted(GRAPH[module] & later)}, to its right"


def test_the_checker_sees_a_cycle_and_an_upward_import():
    # the walk above is only worth something if it would notice: feed it a known-bad pair
    node = ast.parse("from .models import Sequential").body[0]
    assert _resolve("nnengine.saving", node) == ["nnengine.models"]
    assert floor_of("nnengine.models", FLOORS) == 4 and floor_of("nnengine.tensor", FLOORS) == 3
    assert floor_of("nnengine.kernels.cpu.nn", FLOORS) == 1
    assert "nnengine.functional" in GRAPH["nnengine.tensor"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_files_stay_readable_or_say_why_they_are_one_piece(module):
    path = MODULES[module]
    lines = len(path.read_text().splitlines())
    if lines <= 450:
        return
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert "one piece" in docstring or "one file" in docstring.lower(), (
        f"{path.relative_to(ROOT)} has {lines} lines: split it, or say in its docstring why it is one piece")
