"""Rules about the package's source as a whole, read from the files themselves."""
import ast
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
