"""The package's shape: the doors use the public API, and benchmarks and teaching code do not load
with the library."""

import ast
import subprocess
import sys
from pathlib import Path

import textrnn

ROOT = Path(__file__).resolve().parent.parent


def test_the_library_loads_without_benchmarks_or_teaching_code():
    """benchmarks/ and lessons/ sit beside the package: nothing in it imports them, and
    `import textrnn` and the CLI load none of their modules (even where they can be found)."""
    for path in sorted((ROOT / "textrnn").rglob("*.py")):
        package = ".".join(path.relative_to(ROOT).parent.parts)  # textrnn, textrnn.web
        for module, _ in _imports(ast.parse(path.read_text()), package):
            assert module.split(".")[0] not in ("benchmarks", "lessons"), \
                f"{path.relative_to(ROOT)} imports {module}"
    code = ("import sys, textrnn, textrnn.cli\n"
            "print(' '.join(m for m in sys.modules if m.startswith(('textrnn', 'benchmarks', "
            "'lessons'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.split()
    assert "textrnn.train" in out and "textrnn.cli" in out
    assert not [m for m in out if m.split(".")[0] in ("benchmarks", "lessons")], out


WEB = ROOT / "textrnn" / "web"
DOORS = [ROOT / "app.py", *sorted(WEB.glob("*.py"))]  # the page: every module of it


def _imports(tree: ast.AST, package: str = "textrnn.web") -> list[tuple[str, list[str]]]:
    """(module, names) of every import, relative ones resolved against `package`."""
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            found += [(a.name, []) for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[:len(parts) + 1 - n.level]) if n.level else ""  # absolute
            module = ".".join(p for p in (base, n.module or "") if p)
            found.append((module, [a.name for a in n.names]))
    return found


def test_the_web_app_uses_the_public_api_only():
    """The page reaches the library through `textrnn` (its __all__) alone: no `textrnn.x`
    module, in any import form (`import textrnn.x`, `from textrnn import x`, `from textrnn.x
    import y`, `from .. import x`), and no attribute of `textrnn` outside __all__."""
    public = set(textrnn.__all__)
    for path in DOORS:
        tree = ast.parse(path.read_text())
        for module, names in _imports(tree):
            if module.startswith("textrnn.web") or not module.startswith("textrnn"):
                continue  # the page's own modules, or another package
            assert module == "textrnn", f"{path.name} imports {module}"
            assert set(names) <= public, f"{path.name}: from textrnn import {names}"
        used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name) and n.value.id == "textrnn"
                and not n.attr.startswith("__")}  # a module's own __file__, __version__
        assert used <= public, (path.name, used - public)
    assert "textrnn.web" in (ROOT / "app.py").read_text()


def test_the_public_api_test_sees_every_import_form():
    """The check above, on imports it must refuse."""
    for bad in ("import textrnn.checkpoint", "from textrnn import checkpoint",
                "from textrnn.lm import LM", "from .. import checkpoint",
                "from ..checkpoint import load"):
        module, names = _imports(ast.parse(bad))[0]
        assert module != "textrnn" or not set(names) <= set(textrnn.__all__), bad


def _page(module: str) -> bool:
    """Whether `module` is the page (textrnn.web) or Gradio; not the static page's writer,
    textrnn.webpage, which the library re-exports (export_web)."""
    return module.split(".")[0] == "gradio" or module.split(".")[:2] == ["textrnn", "web"]


def test_the_library_never_loads_the_page_or_gradio():
    code = ("import sys, textrnn, textrnn.cli\n"
            "print(' '.join(m for m in sys.modules if m.startswith(('textrnn', 'gradio'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert "textrnn.cli" in out and not [m for m in out if _page(m)]
    for path in sorted((ROOT / "textrnn").glob("*.py")):
        for module, _ in _imports(ast.parse(path.read_text()), "textrnn"):
            assert not _page(module) or path.name == "cli.py", f"{path.name} imports {module}"
    assert _page("textrnn.web.page") and _page("gradio") and not _page("textrnn.webpage")


def test_no_module_imports_another_modules_private_names():
    for path in [*DOORS, *sorted((ROOT / "textrnn").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                private = [a.name for a in node.names if a.name.startswith("_")
                           and a.name != "__version__"]
                assert not private, f"{path.name} imports {private} from {node.module}"


def test_every_module_is_named_in_the_layout_of_the_docs():
    """docs/development.md's layout lists each module of the library, the page, the benchmarks
    and the lessons, under its own folder."""
    text = (ROOT / "docs" / "development.md").read_text()
    block = text[text.index("## Layout"):].split("```")[1]
    folders, current, named = {}, None, set()
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip())
        word = line.split()[0] if line.strip() else ""
        if word.endswith("/"):
            current = word if indent == 0 else f"{current.split('/')[0]}/{word}"
            folders[current] = indent
        elif word.endswith((".py", ".c")):
            named.add((current if indent else "") + word)
    for folder in ("textrnn/", "textrnn/web/", "benchmarks/", "lessons/"):
        for path in sorted((ROOT / folder).iterdir()):
            if path.suffix in (".py", ".c") and path.name != "__init__.py" or \
                    path.name == "__init__.py" and folder == "textrnn/":
                assert folder + path.name in named, f"{folder}{path.name} is not in the layout"
    assert "app.py" in named
