"""The shape of the code, read from its source (ast, nothing imported): plain imports
that point one way, rooms of a size a reader can hold, and a map that names them all.

Layers, top to bottom: the launcher; the commands (rebyte/cli/); the client's face
(rebyte_client.py); the library (rebyte/*.py). A module may import only its own layer
or those below it, and the whole graph, function-level imports included, has no cycle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
SERVER = ROOT / "tests" / "fakerebyte"

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60
MAX_CLASS_LINES = 300


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SCRIPTS).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or "scripts"


def product_files() -> List[Path]:
    return sorted(
        p for p in SCRIPTS.rglob("*.py") if p.name != "__init__.py" or p.parent != SCRIPTS
    )


MODULES: Dict[str, Path] = {module_name(p): p for p in product_files()}


def layer(name: str) -> int:
    if name == "rebyte_cli":
        return 3
    if name == "rebyte.cli" or name.startswith("rebyte.cli."):
        return 2
    if name == "rebyte_client":
        return 1
    return 0


def resolve(importer: str, node: ast.ImportFrom) -> Iterator[str]:
    """The modules of ours that a `from ... import ...` names (submodules included)."""
    if node.level:
        package = importer.split(".")
        if not MODULES[importer].name == "__init__.py":
            package = package[:-1]
        base = package[: len(package) - (node.level - 1)]
        if importer == "rebyte_client":  # `from .rebyte import x`: scripts/ as a package
            base = []
        target = ".".join(base + (node.module.split(".") if node.module else []))
    else:
        target = node.module or ""
    if target.startswith("scripts."):
        target = target[len("scripts.") :]
    if target in MODULES:
        yield target
    for alias in node.names:
        if f"{target}.{alias.name}" in MODULES:
            yield f"{target}.{alias.name}"


def imports_of(name: str) -> Set[str]:
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found.update(resolve(name, node))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in MODULES)
    found.discard(name)
    return {m for m in found if m not in ("rebyte", "rebyte.cli")}  # packages: docstrings only


GRAPH: Dict[str, Set[str]] = {name: imports_of(name) for name in MODULES}


def test_the_graph_is_read_from_real_imports():
    assert {"rebyte.cli.app"} == GRAPH["rebyte_cli"]
    assert "rebyte.transport" in GRAPH["rebyte.client"]
    assert "rebyte_client" in GRAPH["rebyte.cli.session"]  # a function-level import
    assert "rebyte.tasks" in GRAPH["rebyte_client"]
    assert len(GRAPH) >= 40


def test_packages_hold_no_code():
    for init in SCRIPTS.rglob("__init__.py"):
        body = ast.parse(init.read_text(encoding="utf-8")).body
        assert all(isinstance(n, ast.Expr) for n in body), init


def test_imports_point_down_or_sideways_never_up():
    upward = [
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        for target in targets
        if layer(target) > layer(name)
    ]
    assert upward == []


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    state: Dict[str, int] = {}
    path: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = 2
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return []


def test_no_module_imports_itself_round_a_circle():
    assert find_cycle(GRAPH) == []
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def calls(tree: ast.AST) -> Iterator[str]:
    """The names of functions called by bare name, and `import_module` however reached."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                yield func.id
            elif isinstance(func, ast.Attribute) and func.attr == "import_module":
                yield func.attr


@pytest.mark.parametrize("path", product_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_plain_imports_and_no_strings_run_as_code(path):
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    named = set(calls(tree))
    assert not named & {"import_module", "__import__", "exec", "eval", "compile"}, path
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "importlib" not in imported, path
    if path.name != "rebyte_cli.py":
        assert "sys.path" not in strip_text(tree), path


def strip_text(tree: ast.AST) -> str:
    """The module's code with docstrings and strings taken out (ast.unparse of the rest)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
    return ast.unparse(tree)


def long_definitions(path: Path) -> Iterator[Tuple[str, int, bool]]:
    """(name, lines, says why) of every function and class over its limit in `path`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for node in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        size = node.end_lineno - node.lineno + 1
        limit = MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else MAX_FUNCTION_LINES
        if size <= limit:
            continue
        first = node.body[0]
        top = lines[node.lineno : first.end_lineno + 3]  # the header, docstring and after
        says_why = any(line.strip().startswith("#") for line in top) or (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and re.search(r"[Oo]ver \d+ lines", str(first.value.value)) is not None
        )
        yield node.name, size, says_why


ROOMS = product_files() + sorted(SERVER.glob("*.py")) + [ROOT / "tests" / "fake_rebyte.py"]


@pytest.mark.parametrize("path", ROOMS, ids=lambda p: str(p.relative_to(ROOT)))
def test_rooms_are_small_or_say_why(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_MODULE_LINES, path
    unexplained = [(name, size) for name, size, why in long_definitions(path) if not why]
    assert unexplained == [], f"{path}: long and no comment at its top saying why"


def test_the_map_names_every_module():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = [
        str(path.relative_to(ROOT))
        for path in product_files() + sorted(SERVER.glob("*.py"))
        if path.name != "__init__.py" and path.name not in text
    ]
    assert missing == []


def handlers() -> Iterator[Tuple[str, ast.FunctionDef]]:
    for path in sorted((SCRIPTS / "rebyte" / "cli").glob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("cmd_"):
                yield f"{path.name}:{node.name}", node


def test_each_handler_makes_its_options_first_and_reads_args_no_further():
    found = dict(handlers())
    assert len(found) >= 25
    for where, handler in found.items():
        assert handler.args.args[0].arg == "args", where
        body = handler.body
        if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]
        assert re.fullmatch(r"opts = \w+\.of\(args\)", ast.unparse(body[0])), where
        uses = [n for n in ast.walk(handler) if isinstance(n, ast.Name) and n.id == "args"]
        assert len(uses) == 1, f"{where} reads args below its first line"
