"""The package's shape: the doors use the public API, and benchmarks and teaching code do not load
with the library."""

import ast
import subprocess
import sys
from pathlib import Path

import textrnn

ROOT = Path(__file__).resolve().parent.parent


def test_the_library_loads_without_benchmarks_or_teaching_code():
    code = ("import sys, textrnn, textrnn.cli\n"
            "print(' '.join(m for m in sys.modules if m.startswith('textrnn')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert "textrnn.train" in out and "textrnn.cli" in out
    assert not {"textrnn.bench", "textrnn.reference", "textrnn.gradflow"} & set(out)


def test_the_web_app_uses_the_public_api_only():
    tree = ast.parse((ROOT / "app.py").read_text())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert "textrnn" in imported and not [m for m in imported if m.startswith("textrnn.")]
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name) and n.value.id == "textrnn"}
    assert used and used <= set(textrnn.__all__), used - set(textrnn.__all__)


def test_no_module_imports_another_modules_private_names():
    for path in [ROOT / "app.py", *sorted((ROOT / "textrnn").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                private = [a.name for a in node.names if a.name.startswith("_")
                           and a.name != "__version__"]
                assert not private, f"{path.name} imports {private} from {node.module}"
