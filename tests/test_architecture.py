"""The layout's rules (docs/architecture.md), checked on the source: imports point down, none hides in a
function, no private name crosses a module, no cycle, no module past 1,000 lines.

Read from the files with ``ast`` (nothing is imported), so a broken rule names the file and line.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("exam", "question_bank", "proctor")
MAX_LINES = 1000

# Where each rule module stands: a module may import its own area, any area's ``models``, and the rule
# modules of areas below it. Pages and commands (views, api, cli, forms, the app, the demo) sit on top and may
# call any area's rules. A few rule modules stand lower than their area because a lower area needs them and
# they import nothing above it: the audit chain (every area writes to it), the scoring rule and the one array
# builder (the room grades at submission), the ranking rule (the exam's specification carries it).
LEVELS = {
    "exam.core": 0,
    "exam.audit.chain": 1,
    "exam.accounts": 2,
    "question_bank": 3,
    "exam.grading.scoring": 1,
    "exam.merit.rule": 1,
    "exam.setup": 4,
    "exam.grading.arrays": 4,
    "exam.room": 5,
    "proctor": 6,
    "exam.grading": 6,
    "exam.merit": 7,
    "exam.audit": 8,
}
ON_TOP = {"views", "api", "cli", "forms", "lane"}  # pages, the JSON API (and its lane), commands, forms
# The app, its commands and demo, and the writer process's program (``python -m exam.room.writer``, which builds
# the app as wsgi.py does; nothing imports it).
TOP_MODULES = {"exam", "exam.app", "exam.cli", "exam.demo", "exam.home", "exam.room.writer"}
# Defer a heavy library to the function that needs it: nothing of the project's own.
DEFERRED_OK: set[tuple[str, str]] = set()


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = modules()


def imported(name: str, path: Path, node: ast.ImportFrom | ast.Import) -> list[tuple[str, str]]:
    """(module, imported name) pairs of the project's own that ``node`` imports."""
    if isinstance(node, ast.Import):
        return [(alias.name, "") for alias in node.names if alias.name.split(".")[0] in PACKAGES]
    base = node.module or ""
    if node.level:
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
    if base.split(".")[0] not in PACKAGES:
        return []
    # ``from exam.setup import exams`` imports the module exam.setup.exams.
    return [(f"{base}.{alias.name}", "") if f"{base}.{alias.name}" in MODULES else (base, alias.name)
            for alias in node.names]


def top_level_imports(name: str, path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target, what in imported(name, path, node):
                yield node.lineno, target, what


def level_of(module: str) -> int | None:
    best = None
    for prefix, level in LEVELS.items():
        if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, level)
    return None if best is None else best[1]


def area_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "exam" and len(parts) > 2 else parts[0]


def is_on_top(module: str) -> bool:
    return module in TOP_MODULES or module.rsplit(".", 1)[-1] in ON_TOP


def test_no_project_import_inside_a_function():
    found = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    for target, _ in imported(name, path, node):
                        if (name, target) not in DEFERRED_OK:
                            found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {target} in {function.name}")
    assert not found, "\n".join(sorted(set(found)))


def test_no_private_name_crosses_a_module():
    found = [f"{path.relative_to(ROOT)}:{line} imports {what} from {target}"
             for name, path in MODULES.items() for line, target, what in top_level_imports(name, path)
             if what.startswith("_") and not what.startswith("__") and target != name]
    assert not found, "\n".join(found)


def test_no_import_cycle():
    graph = {name: {target for _, target, _ in top_level_imports(name, path) if target in MODULES and target != name}
             for name, path in MODULES.items()}
    # A package's __init__ runs before its modules: an edge into a package is an edge into its __init__ only.
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append(" -> ".join(trail[trail.index(target):] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(cycles)


def test_imports_point_down():
    found = []
    for name, path in MODULES.items():
        if is_on_top(name):
            continue
        level = level_of(name)
        assert level is not None, f"{name} has no level in LEVELS"
        for line, target, _ in top_level_imports(name, path):
            if is_on_top(target) and target != "exam":
                found.append(f"{path.relative_to(ROOT)}:{line}: a rule module imports {target}, a page/command")
            elif area_of(target) != area_of(name) and not target.endswith(".models") and level_of(target) > level:
                found.append(f"{path.relative_to(ROOT)}:{line}: {name} (level {level}) imports {target} "
                             f"(level {level_of(target)})")
    assert not found, "\n".join(found)


def test_core_imports_no_area():
    found = [f"{path.relative_to(ROOT)}:{line} imports {target}"
             for name, path in MODULES.items() if name.startswith("exam.core")
             for line, target, _ in top_level_imports(name, path) if not target.startswith("exam.core")]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("module", ["exam.audit.chain", "exam.grading.scoring"])
def test_the_chain_and_the_scoring_rule_import_only_the_core(module):
    path = MODULES[module]
    own_models = module.rsplit(".", 1)[0] + ".models"
    found = [target for _, target, _ in top_level_imports(module, path)
             if not target.startswith("exam.core") and target != own_models]
    assert not found, found


def test_no_module_past_a_thousand_lines():
    sizes = {str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
             for path in MODULES.values()}
    assert not {path: n for path, n in sizes.items() if n > MAX_LINES}


def test_exam_holds_few_modules_and_one_package_per_area():
    direct = sorted(p.name for p in (ROOT / "exam").glob("*.py"))
    areas = sorted(p.name for p in (ROOT / "exam").iterdir() if (p / "__init__.py").exists())
    assert len(direct) <= 6, direct
    assert areas == ["accounts", "audit", "core", "grading", "merit", "room", "setup"]
    for area in areas:
        names = {p.stem for p in (ROOT / "exam" / area).glob("*.py")}
        assert not names & {"utils", "helpers", "manager", "misc", "common"}, (area, names)
