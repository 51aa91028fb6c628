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


DOORS = ["app.py", "app_train.py", "app_inside.py", "app_compare.py", "workbench.py"]


def test_the_web_app_uses_the_public_api_only():
    for name in DOORS:
        tree = ast.parse((ROOT / name).read_text())
        imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        imported += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [m for m in imported if m.startswith("textrnn.")], name
        used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name) and n.value.id == "textrnn"}
        assert used <= set(textrnn.__all__), (name, used - set(textrnn.__all__))
    assert "textrnn" in (ROOT / "app.py").read_text()


def test_no_module_imports_another_modules_private_names():
    for path in [*(ROOT / d for d in DOORS), *sorted((ROOT / "textrnn").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                private = [a.name for a in node.names if a.name.startswith("_")
                           and a.name != "__version__"]
                assert not private, f"{path.name} imports {private} from {node.module}"
