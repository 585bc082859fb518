"""The tutorial runs: every code block of docs/tutorial/ is executed and its output checked.

Within each chapter, in order:

- a ```python block runs in one namespace shared by the chapter's python
  blocks, in a fresh temporary working directory, with stdout captured;
- a ```bash block runs its ``tinybnn ...`` commands (each as
  ``python -m tinybnn.cli ...`` in the same working directory; every one
  must exit with status 0); other shell lines (``pip install``, ``cd``) are
  left to the reader;
- a ```text block right after a python or bash block (nothing but blank
  lines between them) is that block's output, compared with what it printed
  line by line: exactly, except that trailing spaces and trailing blank
  lines do not count, and that ``...`` in an expected line stands for any
  run of characters (timings, sizes that vary). A ```text block anywhere
  else is an error, so no output in the text goes unchecked; illustrations
  use plain ``` fences.

The text calls the example data folder ``../shared/datasets``. A chapter that
mentions it needs the real data: the test asks for the ``data_root`` fixture
(``$TINYBNN_DATA``), puts that folder in place of ``../shared/datasets`` in
the code, and back in the output, so paths read the same on every machine.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import tinybnn

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial"
CHAPTERS = sorted(TUTORIAL.glob("[0-9][0-9]-*.md"))
DATA_PLACEHOLDER = "../shared/datasets"
FENCE = re.compile(r"^```([\w-]*)\s*$")


@dataclass
class Block:
    """One fenced block: its language ("" for a plain fence), first line number (1-based) and text."""

    language: str
    line: int
    end: int  # the line number of the closing fence
    text: str


def fenced_blocks(markdown: str) -> list[Block]:
    """The fenced blocks of a markdown text, in order; an unclosed fence is an error."""
    blocks, lines, i = [], markdown.splitlines(), 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start = i
        i += 1
        while i < len(lines) and lines[i].rstrip() != "```":
            i += 1
        if i == len(lines):
            raise AssertionError(f"line {start + 1}: the fence ``` is never closed")
        blocks.append(Block(match.group(1), start + 1, i + 1, "\n".join(lines[start + 1 : i]) + "\n"))
        i += 1
    return blocks


def steps(markdown: str) -> list[tuple[Block, Block | None]]:
    """(code block, its expected output or None) for every python and bash block, in order."""
    lines = markdown.splitlines()
    blocks = fenced_blocks(markdown)
    pairs: list[tuple[Block, Block | None]] = []
    previous: Block | None = None
    for block in blocks:
        if block.language == "text":
            between = lines[previous.end : block.line - 1] if previous is not None else ["(start)"]
            if previous is None or previous.language not in ("python", "bash") or any(s.strip() for s in between):
                raise AssertionError(
                    f"line {block.line}: a ```text block must directly follow the python or "
                    "bash block whose output it is (use a plain ``` fence for anything else)"
                )
            pairs[-1] = (pairs[-1][0], block)
        elif block.language in ("python", "bash"):
            pairs.append((block, None))
        previous = block
    return pairs


def line_matches(expected: str, actual: str) -> bool:
    """``actual`` equals ``expected``, where each ``...`` in ``expected`` matches any run of characters."""
    if "..." not in expected:
        return expected == actual
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual, flags=re.DOTALL) is not None


def output_lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def mismatch(expected: str, actual: str) -> str | None:
    """None if ``actual`` fits ``expected``, else a readable report of the first difference."""
    want, got = output_lines(expected), output_lines(actual)
    for number, (a, b) in enumerate(zip(want, got), 1):
        if not line_matches(a, b):
            return f"output line {number} differs:\n  expected: {a!r}\n  actual:   {b!r}\n\nactual output:\n{actual}"
    if len(want) != len(got):
        return (
            f"expected {len(want)} lines of output, got {len(got)}\n\nexpected:\n{expected}\nactual output:\n{actual}"
        )
    return None


class Chapter:
    """Runs the blocks of one chapter in a working directory; ``data`` replaces ``../shared/datasets``."""

    def __init__(self, path: Path, workdir: Path, data: Path | None):
        self.path, self.workdir, self.data = path, workdir, data
        self.namespace: dict = {"__name__": f"tutorial_{path.stem.replace('-', '_')}"}

    def substitute_code(self, source: str) -> str:
        if self.data is None:
            return source
        return source.replace(f'"{DATA_PLACEHOLDER}"', repr(str(self.data)))

    def substitute_output(self, text: str) -> str:
        if self.data is None:
            return text
        for spelling in sorted(
            {str(self.data.resolve()), str(self.data), str(self.data.absolute())}, key=len, reverse=True
        ):
            text = text.replace(spelling, DATA_PLACEHOLDER)
        return text

    def run_python(self, block: Block) -> str:
        code = compile(self.substitute_code(block.text), f"{self.path.name}, block at line {block.line}", "exec")
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(code, self.namespace)
        return self.substitute_output(buffer.getvalue())

    def run_bash(self, block: Block) -> str:
        printed = []
        for command in shell_commands(block.text):
            words = shlex.split(command)
            if words[0] != "tinybnn":
                continue  # pip install, cd, ...: the reader's business
            args = [str(self.data) if self.data is not None and w == DATA_PLACEHOLDER else w for w in words[1:]]
            env = dict(
                os.environ,
                PYTHONPATH=os.pathsep.join(
                    filter(None, [str(Path(tinybnn.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")])
                ),
            )
            done = subprocess.run(
                [sys.executable, "-m", "tinybnn.cli", *args],
                cwd=self.workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, (
                f"{self.path.name}, line {block.line}: `{command}` exited with {done.returncode}:\n{done.stderr}"
            )
            printed.append(done.stdout)
        return self.substitute_output("".join(printed))

    def run(self, block: Block) -> str:
        return self.run_python(block) if block.language == "python" else self.run_bash(block)


def shell_commands(text: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, blank lines and comments dropped."""
    commands, current = [], ""
    for line in text.splitlines():
        current += line.strip() if current else line.rstrip()
        if current.endswith("\\"):
            current = current[:-1].rstrip() + " "
            continue
        if current.strip() and not current.lstrip().startswith("#"):
            commands.append(current.strip())
        current = ""
    return commands


def run_chapter(path: Path, workdir: Path, data: Path | None) -> None:
    markdown = path.read_text(encoding="utf-8")
    chapter = Chapter(path, workdir, data)
    for block, expected in steps(markdown):
        actual = chapter.run(block)
        if expected is not None:
            problem = mismatch(expected.text, actual)
            assert problem is None, f"{path.name}, {block.language} block at line {block.line}: {problem}"


# --- the tests --------------------------------------------------------------------------
def test_the_chapters_are_numbered_once_each_and_all_in_the_index():
    numbers = [p.name[:2] for p in CHAPTERS]
    assert len(numbers) == len(set(numbers)), f"two chapters share a number: {numbers}"
    assert {"00", "01", "02", "03", "04", "05", "06", "07", "08", "09"} <= set(numbers), numbers
    index = (TUTORIAL / "README.md").read_text(encoding="utf-8")
    for chapter in CHAPTERS:
        assert f"({chapter.name})" in index, f"README.md does not link {chapter.name}"
        title = chapter.read_text(encoding="utf-8").splitlines()[0]
        assert title.startswith(f"# {int(chapter.name[:2])}. "), f"{chapter.name} is titled {title!r}"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_and_prints_what_it_says(path, tmp_path, monkeypatch, request):
    data = request.getfixturevalue("data_root") if DATA_PLACEHOLDER in path.read_text(encoding="utf-8") else None
    monkeypatch.chdir(tmp_path)
    run_chapter(path, tmp_path, data)


@pytest.mark.parametrize("path", [TUTORIAL / "README.md", *CHAPTERS], ids=["README", *[p.stem for p in CHAPTERS]])
def test_pictures_and_links_exist(path):
    text = path.read_text(encoding="utf-8")
    prose = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)  # links live outside code
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", prose)
    assert targets or path.name != "README.md"
    for target in targets:
        if "://" in target:
            continue
        resolved = (path.parent / target).resolve()
        assert resolved.exists(), f"{path.name} links {target}, which does not exist"


# --- the extractor itself -----------------------------------------------------------------
def test_wildcards_match_runs_of_characters_within_a_line():
    assert line_matches("took ... s", "took 0.31 s")
    assert line_matches("...", "")
    assert not line_matches("took ... s", "took 0.31 ms!")
    assert not line_matches("a.b", "axb")  # only ... is special
    assert mismatch("x = 1\n\n", "x = 1   \n") is None
    assert mismatch("x = 1\ny = 2\n", "x = 1\n") is not None
    assert mismatch("x = 1\n", "x = 1\ny = 2\n") is not None


def test_text_blocks_must_follow_the_code_they_belong_to():
    good = "```python\nprint(1)\n```\n\n```text\n1\n```\n"
    ((code, output),) = steps(good)
    assert code.language == "python" and output.text == "1\n"
    with pytest.raises(AssertionError, match="must directly follow"):
        steps("```python\nprint(1)\n```\nsome prose\n```text\n1\n```\n")
    with pytest.raises(AssertionError, match="never closed"):
        steps("```python\nprint(1)\n")


def test_a_wrong_output_fails_the_chapter(tmp_path):
    chapter = tmp_path / "01-example.md"
    chapter.write_text("```python\nx = 6 * 7\nprint(x)\n```\n\n```text\n41\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="expected: '41'"):
        run_chapter(chapter, tmp_path, None)
    chapter.write_text("```python\nx = 6 * 7\n```\n\n```python\nprint(x)\n```\n```text\n42\n```\n", encoding="utf-8")
    run_chapter(chapter, tmp_path, None)  # one namespace per chapter


def test_shell_lines_are_joined_and_only_tinybnn_runs():
    text = "pip install -e .\n# a comment\ntinybnn train --epochs 1 \\\n    --out m.npz\n"
    assert shell_commands(text) == ["pip install -e .", "tinybnn train --epochs 1 --out m.npz"]
