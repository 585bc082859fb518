"""Rules about the package's source as a whole, read from the files themselves."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tinybnn"


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_memory_is_handed_out_by_reference_counts():
    """Scratch memory has an owner (tinybnn.workspace); CPython's reference counts are not a promise."""
    for path in package_files():
        tree = ast.parse(path.read_text(), str(path))
        names = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        names |= {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        assert "getrefcount" not in names, f"{path.relative_to(ROOT)} calls sys.getrefcount"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The tinybnn modules that ``path`` imports, anywhere in the file (top level, functions,
    ``if TYPE_CHECKING:`` blocks excepted): ``from . import x`` names the submodule x when
    there is one, else the package."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    type_checking = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_checking:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    files = package_files()
    modules = {module_name(path) for path in files}
    return {module_name(path): imported_modules(path, modules) for path in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_imports_of_relative_and_absolute_forms_are_read():
    graph = import_graph()
    assert "tinybnn.autograd.kernels" in graph["tinybnn.autograd.ops"]  # from . import kernels
    assert "tinybnn.autograd.function" in graph["tinybnn.autograd.ops"]  # from .function import Function
    assert "tinybnn.errors" in graph["tinybnn.autograd.conv"]  # from ..errors import ...
    assert "tinybnn.autograd" in graph["tinybnn.layers.module"]  # from ..autograd import Tensor


def test_no_import_cycles_among_tinybnn_modules():
    """Every module can be read after the ones it imports: no module imports itself round a loop,
    not even through an import at the bottom of a file or inside a function."""
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_imports_come_before_the_code():
    """No import at the bottom of a file, the way a cycle used to be held together."""
    for path in package_files():
        body = ast.parse(path.read_text(), str(path)).body
        first_code = next(
            (i for i, node in enumerate(body) if isinstance(node, (ast.FunctionDef, ast.ClassDef))), len(body)
        )
        late = [node.lineno for node in body[first_code:] if isinstance(node, (ast.Import, ast.ImportFrom))]
        assert not late, f"{path.relative_to(ROOT)}: imports after the first definition, line(s) {late}"


LIBRARY = ("tinybnn.autograd", "tinybnn.layers", "tinybnn.gemm", "tinybnn.data")
TOOLS = ("tinybnn.benchmarks", "tinybnn.charts", "tinybnn.pictures", "tinybnn.graph_picture")


def is_tool(module: str) -> bool:
    return any(module == tool or module.startswith(tool + ".") for tool in TOOLS)


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def test_the_library_does_not_import_the_tools():
    """Benchmarks, charts and picture drawing sit on top of the library, never inside it."""
    graph = import_graph()
    for module in graph:
        if module.startswith(LIBRARY):
            tools = sorted(m for m in reachable(graph, module) if is_tool(m))
            assert not tools, f"{module} imports {tools}"


def test_importing_the_library_loads_no_tool():
    import subprocess
    import sys

    code = (
        "import sys\n"
        f"for name in {LIBRARY!r}: __import__(name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({TOOLS!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_nothing_points_to_files_outside_the_repository():
    """The conventions live in docs/conventions.md; no docstring or doc cites the project's private spec."""
    texts = [*package_files(), *sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
    citing = [str(path.relative_to(ROOT)) for path in texts if "SPEC.md" in path.read_text()]
    assert not citing, f"cite SPEC.md: {citing}"
    assert (ROOT / "docs" / "conventions.md").is_file()


def test_every_file_a_docstring_names_is_in_the_repository():
    """A path like docs/x.md or tinybnn/y.py in the package's source names a file of this repository."""
    named = re.compile(r"\b((?:docs|tinybnn|tests|scripts|exercises)/[\w./-]*\w\.(?:md|py|npz|json|txt))\b")
    missing = sorted(
        {
            f"{path.relative_to(ROOT)}: {name}"
            for path in package_files()
            for name in named.findall(path.read_text())
            if not (ROOT / name).exists()
        }
    )
    assert not missing, f"name files that are not in the repository: {missing}"


PAPER = re.compile(r"\((?:[A-Za-z.\s]+\s)?(?:19|20)\d\d[,;)]")  # "(ECCV 2016, ...)", "(2016, arXiv:...)", "(JMLR 2014)"


def test_quantizers_and_layers_cite_their_papers():
    modules = [PACKAGE / "autograd" / "quantize.py"] + [
        path for path in sorted((PACKAGE / "layers").glob("*.py")) if path.name not in ("__init__.py", "module.py")
    ]
    uncited = [path.name for path in modules if not PAPER.search(ast.get_docstring(ast.parse(path.read_text())) or "")]
    assert not uncited, f"module docstrings without a paper reference: {uncited}"
