"""The ``exercise`` fixture: one implementation of a chapter's exercises.

A test module ``tests/exercises/test_NN_name.py`` checks the functions of
``docs/tutorial/exercises/NN_name.py`` (the stub a reader fills in). Every
test that takes the argument ``exercise`` runs as

- ``[solution]``: on ``docs/tutorial/solutions/NN_name.py``; must pass;
- ``[stub]``: on the untouched stub ``docs/tutorial/exercises/NN_name.py``;
  passes when the test raises ``NotImplementedError`` and fails when the
  stub passes it, or fails it in any other way (it lacks a function the test
  calls, a signature differs): :func:`pytest_pyfunc_call` turns it round;
- ``[yours]``: on ``$TINYBNN_EXERCISES/NN_name.py`` (the stub's folder when
  unset), marked ``exercises`` and deselected unless the ``-m`` expression
  names ``exercises``: ``python -m pytest -m exercises tests/exercises``.

Each run loads the file afresh, as its own module, so a test never sees what
another left behind. With ``-m exercises`` the report ends with one line per
exercise test: ``ok`` or ``FAIL`` and the first line of the reason.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial"
STUBS = TUTORIAL / "exercises"
SOLUTIONS = TUTORIAL / "solutions"
KINDS = ("solution", "stub", "yours")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "exercises: check the reader's exercises (-m exercises)")


def readers_folder() -> Path:
    """Where the reader's files are: ``$TINYBNN_EXERCISES`` (relative to the current folder), else the stubs."""
    value = os.environ.get("TINYBNN_EXERCISES")
    return Path(value).absolute() if value else STUBS


def chapter_of(test_file: str | Path) -> str:
    """``NN_name`` of ``tests/exercises/test_NN_name.py``."""
    stem = Path(test_file).stem
    assert stem.startswith("test_"), stem
    return stem[len("test_") :]


def exercise_file(kind: str, chapter: str) -> Path:
    folder = {"solution": SOLUTIONS, "stub": STUBS, "yours": readers_folder()}[kind]
    return folder / f"{chapter}.py"


def load_exercise(path: Path, kind: str) -> ModuleType:
    """The Python file ``path`` as a fresh module (its name starts with a digit, so no plain import)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (copy the stubs: cp -r {STUBS} ...)")
    name = f"tinybnn_exercise_{kind}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and friends look their module up here
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def pytest_generate_tests(metafunc) -> None:
    if "exercise" not in metafunc.fixturenames:
        return
    chapter = chapter_of(metafunc.definition.fspath)
    params = [
        pytest.param(("solution", chapter), id="solution"),
        pytest.param(("stub", chapter), id="stub"),
        pytest.param(("yours", chapter), id="yours", marks=pytest.mark.exercises),
    ]
    metafunc.parametrize("exercise", params, indirect=True)


@pytest.fixture
def exercise(request) -> ModuleType:
    kind, chapter = request.param
    return load_exercise(exercise_file(kind, chapter), kind)


def pytest_collection_modifyitems(config, items) -> None:
    """Leave out the ``[yours]`` runs unless ``-m`` names ``exercises``."""
    if "exercises" in (config.getoption("markexpr") or ""):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("exercises") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def exercise_kind(item) -> str | None:
    callspec = getattr(item, "callspec", None)
    param = callspec.params.get("exercise") if callspec is not None else None
    return param[0] if param else None


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run a ``[stub]`` test inverted: NotImplementedError is the pass, anything else a failure."""
    if exercise_kind(pyfuncitem) != "stub":
        return None
    names = pyfuncitem._fixtureinfo.argnames
    try:
        pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names})
    except NotImplementedError:
        return True
    except Exception as error:  # noqa: BLE001 (any other failure is the finding)
        pytest.fail(
            f"the untouched stub should raise NotImplementedError here, but raised {type(error).__name__}: {error}",
            pytrace=False,
        )
    pytest.fail(
        "the untouched stub passes this test: the stub is solved, or the test calls no stub function", pytrace=False
    )


_results: list[tuple[str, str]] = []


def pytest_runtest_logreport(report) -> None:
    if "[yours]" not in report.nodeid or report.when != "call" and report.passed:
        return
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        reason = (crash.message if crash is not None else str(report.longrepr)).strip().splitlines()
        _results.append((report.nodeid, "FAIL  " + (reason[0] if reason else "failed")))
    elif report.when == "call":
        _results.append((report.nodeid, "ok"))


def pytest_terminal_summary(terminalreporter) -> None:
    if not _results:
        return
    terminalreporter.section("exercises")
    for nodeid, outcome in _results:
        test_file, _, name = nodeid.partition("::")
        chapter = chapter_of(test_file)
        terminalreporter.write_line(f"{chapter} {name.removesuffix('[yours]')}: {outcome}")
