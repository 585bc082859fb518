"""Shared fixtures: where the real data lives, and hypothesis settings.

Tests that need the real MNIST / Fashion-MNIST files ask for the ``data_root``
fixture. It reads the folder from ``$TINYBNN_DATA`` (CI points it at
``../shared/datasets``). Without it those tests skip, unless
``$TINYBNN_REQUIRE_DATA=1`` (set by ``.ci/run``), in which case a missing
folder is a failure, so CI never passes by skipping them.

A relative ``$TINYBNN_DATA`` (the README's ``TINYBNN_DATA=../shared/datasets``)
means relative to the folder pytest was started from. Tests change folder
(``monkeypatch.chdir``, subprocesses with their own ``cwd``), so the value is
made absolute once, when the session starts, before any test runs; every
reader (the fixture, tinybnn's own data lookup, child processes) then sees
the same folder.
"""

import os
from pathlib import Path

import pytest
from hypothesis import settings

# JIT compilation makes the first example slow; deadlines would be noise.
settings.register_profile("default", deadline=None, max_examples=60)
settings.register_profile("ci", deadline=None, max_examples=40, derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def absolute_data_folder(environ: dict) -> None:
    """Make ``environ["TINYBNN_DATA"]``, if set, absolute against the current folder."""
    value = environ.get("TINYBNN_DATA")
    if value:
        environ["TINYBNN_DATA"] = str(Path(value).absolute())


def pytest_configure(config) -> None:
    absolute_data_folder(os.environ)


def pytest_collection_modifyitems(config, items) -> None:
    """Mark the tests listed in tests/slow_tests.py ``slow`` (the fast loop is ``-m "not slow"``)."""
    from tests.slow_tests import SLOW_TESTS

    for item in items:
        if item.nodeid.split("[")[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The folder holding ``mnist-5k/`` and ``fashion-mnist/`` (from $TINYBNN_DATA)."""
    value = os.environ.get("TINYBNN_DATA")
    required = os.environ.get("TINYBNN_REQUIRE_DATA") == "1"
    if not value:
        if required:
            pytest.fail("TINYBNN_REQUIRE_DATA=1 but TINYBNN_DATA is not set")
        pytest.skip("set TINYBNN_DATA to the folder holding mnist-5k/ to run this test")
    root = Path(value)
    if not (root / "mnist-5k").is_dir():
        message = f"TINYBNN_DATA={value} has no mnist-5k/ folder"
        if required:
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def mnist_dir(data_root: Path) -> Path:
    return data_root / "mnist-5k"


@pytest.fixture(scope="session")
def fashion_dir(data_root: Path) -> Path:
    return data_root / "fashion-mnist"
