"""The suite's own set-up: a relative ``$TINYBNN_DATA`` still finds the data after a test changes folder.

The README runs the tests with ``TINYBNN_DATA=../shared/datasets``, a path
relative to the folder the command is typed in. The check runs a small test
in a fresh pytest process, started from a folder where that relative path
exists, with ``tests/conftest.py`` as its only plugin; the test changes
folder first and only then asks for the data, as the tutorial test does.
"""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import absolute_data_folder

ROOT = Path(__file__).resolve().parents[1]

CHILD_TEST = """
import os
from pathlib import Path

def test_data_after_a_change_of_folder(tmp_path, monkeypatch, request):
    monkeypatch.chdir(tmp_path)
    root = request.getfixturevalue("data_root")
    assert root.is_absolute() and root.resolve() == Path({expected!r}).resolve()
    assert os.environ["TINYBNN_DATA"] == str(root)
"""


def test_a_relative_data_folder_is_found_after_a_test_changes_folder(tmp_path):
    data = tmp_path / "shared" / "datasets"
    (data / "mnist-5k").mkdir(parents=True)
    caller = tmp_path / "clone"
    caller.mkdir()
    (tmp_path / "test_child.py").write_text(CHILD_TEST.format(expected=str(data)), encoding="utf-8")
    env = dict(
        os.environ,
        TINYBNN_DATA="../shared/datasets",
        TINYBNN_REQUIRE_DATA="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.conftest",
            str(tmp_path / "test_child.py"),
        ],
        cwd=caller,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_only_a_set_value_is_touched(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    environ = {"TINYBNN_DATA": "data"}
    absolute_data_folder(environ)
    assert environ == {"TINYBNN_DATA": str(tmp_path / "data")}
    absolute_data_folder(environ)  # an absolute value stays as it is
    assert environ == {"TINYBNN_DATA": str(tmp_path / "data")}
    for unset in ({}, {"TINYBNN_DATA": ""}):
        before = dict(unset)
        absolute_data_folder(unset)
        assert unset == before
