"""The exercises' format (docs/tutorial/exercises/README.md), checked for every chapter.

Chapter ``docs/tutorial/NN-some-title.md`` has a stub
``docs/tutorial/exercises/NN_some_title.py``, a solution of the same name in
``docs/tutorial/solutions/`` and tests in ``tests/exercises/test_NN_some_title.py``;
the stub's public functions only raise NotImplementedError, carry a docstring,
and match the solution's signatures; the chapter's last section is
"Exercises" and links the stub.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from .conftest import ROOT, SOLUTIONS, STUBS, TUTORIAL, chapter_of, load_exercise, pytest_pyfunc_call, readers_folder

TESTS = Path(__file__).resolve().parent
CHAPTERS = sorted(TUTORIAL.glob("[0-9][0-9]-*.md"))
NAMES = [p.stem.replace("-", "_") for p in CHAPTERS]
ALLOWED_IMPORTS = {"numpy", "math", "tinybnn", "__future__"}


def public_definitions(path: Path) -> dict[str, ast.AST]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")
    }


def signature(node: ast.AST) -> str:
    if isinstance(node, ast.ClassDef):
        methods = [n for n in node.body if isinstance(n, ast.FunctionDef)]
        bases = ", ".join(ast.unparse(b) for b in node.bases)
        return f"class({bases}) " + "; ".join(f"{m.name}({ast.unparse(m.args)})" for m in methods)
    return f"({ast.unparse(node.args)})"


def stub_bodies(node: ast.AST) -> list[ast.FunctionDef]:
    if isinstance(node, ast.ClassDef):
        return [n for n in node.body if isinstance(n, ast.FunctionDef)]
    return [node]


def only_raises_not_implemented(function: ast.FunctionDef) -> bool:
    body = function.body[1:] if ast.get_docstring(function) is not None else function.body
    return (
        len(body) == 1
        and isinstance(body[0], ast.Raise)
        and isinstance(body[0].exc, ast.Call)
        and ast.unparse(body[0].exc.func) == "NotImplementedError"
        and len(body[0].exc.args) == 1
    )


@pytest.mark.parametrize("name", NAMES)
def test_every_chapter_has_a_stub_a_solution_and_tests(name):
    for path in (STUBS / f"{name}.py", SOLUTIONS / f"{name}.py", TESTS / f"test_{name}.py"):
        assert path.is_file(), f"chapter {name[:2]} has no {path.relative_to(ROOT)}"


def test_no_exercise_file_without_a_chapter():
    files = [*STUBS.glob("*.py"), *SOLUTIONS.glob("*.py")]
    files += [p.with_name(chapter_of(p) + ".py") for p in TESTS.glob("test_[0-9][0-9]_*.py")]
    strays = sorted({p.stem for p in files} - set(NAMES))
    assert not strays, f"exercise files without a chapter docs/tutorial/NN-name.md: {strays}"


@pytest.mark.parametrize("name", NAMES)
def test_a_stub_states_each_task_and_does_nothing_else(name):
    path = STUBS / f"{name}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    first_line = (ast.get_docstring(tree) or "").splitlines()[:1]
    number = int(name[:2])
    assert first_line and first_line[0].startswith(f"Exercises of chapter {number}: "), (
        f"{path.name}: the docstring must start with 'Exercises of chapter {number}: <title>.'"
    )
    definitions = public_definitions(path)
    assert 2 <= len(definitions) <= 4, f"{path.name}: {len(definitions)} exercises; two or three per chapter"
    for definition in definitions.values():
        assert ast.get_docstring(definition), f"{path.name}: {definition.name} has no docstring stating the task"
        for function in stub_bodies(definition):
            assert only_raises_not_implemented(function), (
                f"{path.name}: {function.name} must only raise NotImplementedError('...') (after its docstring)"
            )


@pytest.mark.parametrize("name", NAMES)
def test_stub_and_solution_define_the_same_names_and_signatures(name):
    stub, solution = public_definitions(STUBS / f"{name}.py"), public_definitions(SOLUTIONS / f"{name}.py")
    assert list(stub) == list(solution), f"{name}: stub defines {list(stub)}, solution {list(solution)}"
    for key in stub:
        assert signature(stub[key]) == signature(solution[key]), f"{name}.{key}: signatures differ"


@pytest.mark.parametrize(
    "path", [*STUBS.glob("*.py"), *SOLUTIONS.glob("*.py")], ids=lambda p: p.parent.name + "/" + p.name
)
def test_exercises_need_only_numpy_and_tinybnn(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        else:
            continue
        for module in modules:
            assert module.split(".")[0] in ALLOWED_IMPORTS, f"{path.name} imports {module}"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_chapter_ends_with_its_exercises(path):
    text = path.read_text(encoding="utf-8")
    prose = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    headings = re.findall(r"^## (.+)$", prose, flags=re.MULTILINE)
    assert headings and headings[-1].strip() == "Exercises", f"{path.name}: the last section must be '## Exercises'"
    section = prose[prose.rindex("## Exercises") :]
    name = path.stem.replace("-", "_")
    assert f"(exercises/{name}.py)" in section, f"{path.name}: its Exercises section does not link exercises/{name}.py"
    assert f"tests/exercises/test_{name}.py" in text[text.rindex("## Exercises") :], (
        f"{path.name}: its Exercises section does not give the command that checks them"
    )


def test_each_test_takes_only_the_exercise():
    for path in TESTS.glob("test_[0-9][0-9]_*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                args = [a.arg for a in node.args.args]
                assert args == ["exercise"], f"{path.name}: {node.name} takes {args}; exercise tests take (exercise)"


def test_a_missing_file_of_the_reader_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYBNN_EXERCISES", str(tmp_path))
    assert readers_folder() == tmp_path
    with pytest.raises(FileNotFoundError, match="01_sign_and_ste.py does not exist"):
        load_exercise(readers_folder() / "01_sign_and_ste.py", "yours")


class FakeItem:
    """What pytest_pyfunc_call reads of a test item."""

    def __init__(self, kind, function):
        self.callspec = type("CallSpec", (), {"params": {"exercise": (kind, "01_sign_and_ste")}})()
        self._fixtureinfo = type("FixtureInfo", (), {"argnames": ("exercise",)})()
        self.funcargs = {"exercise": None}
        self.obj = function


def test_a_stub_run_passes_only_on_not_implemented_error():
    def unfinished(exercise):
        raise NotImplementedError("exercise 1.1")

    def solved(exercise):
        pass

    def broken(exercise):
        raise AttributeError("module has no attribute 'sign'")

    assert pytest_pyfunc_call(FakeItem("stub", unfinished)) is True
    with pytest.raises(pytest.fail.Exception, match="the untouched stub passes this test"):
        pytest_pyfunc_call(FakeItem("stub", solved))
    with pytest.raises(pytest.fail.Exception, match="raised AttributeError: module has no attribute 'sign'"):
        pytest_pyfunc_call(FakeItem("stub", broken))
    assert pytest_pyfunc_call(FakeItem("solution", solved)) is None  # left to pytest
