"""The code's shape, as figures: lines per module, the longest functions, functions with many
parameters, and the import graph's floors (each module with the modules it imports from the
project). Run from the repository's root: `python scripts/code_shape.py [--top 15]`.

Tests are left out: a test's length is its setup, not a design. A function's length counts its
lines from `def` to its last statement, docstring included; its parameters leave out `self`
and `cls`."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = {"tests", ".venv", ".git", "build", "runs", "checkpoints", "corpora", "docs"}


def modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py")
                  if not SKIP & set(p.relative_to(ROOT).parts[:-1]))


def name_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def functions(tree: ast.AST):
    """(qualified name, lines, parameters) of every function, nested ones included."""
    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = child.args
                params = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs
                          if p.arg not in ("self", "cls")]
                params += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
                yield (f"{prefix}{child.name}", child.end_lineno - child.lineno + 1,
                       len(params))
                yield from walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)
    yield from walk(tree, "")


def imports(tree: ast.AST, module: str, known: set[str]) -> set[str]:
    """The project's modules that `module` imports (at any depth of its code). A submodule's
    `from <its package> import __version__` is no edge: it reads a constant the package sets
    before it imports anything."""
    found = set()
    package = module if module in {k.rsplit(".", 1)[0] for k in known if "." in k} else \
        module.rpartition(".")[0]
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            subs = [f"{base}.{a.name}" for a in node.names]
            names = [n for n in subs if n in known]  # `from . import x`: x, a module
            if not names and not all(a.name.startswith("__") for a in node.names):
                names = [base]
        for n in names:
            while n and n not in known:
                n = n.rpartition(".")[0]
            if n and n != module:
                found.add(n)
    return found


def floors(graph: dict[str, set[str]]) -> list[list[str]]:
    """Modules by level: each imports only modules on lower floors; a cycle is left over."""
    placed: dict[str, int] = {}
    levels = []
    while len(placed) < len(graph):
        level = sorted(m for m, deps in graph.items()
                       if m not in placed and deps <= set(placed))
        if not level:
            raise SystemExit("import cycle among: " + ", ".join(
                sorted(set(graph) - set(placed))))
        for m in level:
            placed[m] = len(levels)
        levels.append(level)
    return levels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15, help="longest functions shown (15)")
    parser.add_argument("--max-lines", type=int, default=60)
    parser.add_argument("--max-params", type=int, default=6)
    args = parser.parse_args()
    paths = modules()
    trees = {name_of(p): ast.parse(p.read_text(encoding="utf-8")) for p in paths}
    lines = {name_of(p): len(p.read_text(encoding="utf-8").splitlines()) for p in paths}
    print(f"## lines per module ({sum(lines.values()):,} in {len(lines)} modules)")
    for name, n in sorted(lines.items(), key=lambda kv: -kv[1]):
        print(f"{n:6,}  {name}")
    found = [(n, name, fn, p) for name, tree in trees.items() for fn, n, p in functions(tree)]
    print(f"\n## the {args.top} longest functions")
    for n, name, fn, _ in sorted(found, reverse=True)[:args.top]:
        print(f"{n:6}  {name}.{fn}")
    print(f"\nover {args.max_lines} lines: {sum(n > args.max_lines for n, *_ in found)}; "
          f"over {args.max_params} parameters: "
          + (", ".join(f"{name}.{fn} ({p})" for n, name, fn, p in sorted(found, key=lambda f: -f[3])
                       if p > args.max_params) or "none"))
    known = set(trees)
    graph = {m: imports(t, m, known) for m, t in trees.items()}
    print("\n## import floors (each module imports only from floors below it)")
    for i, level in enumerate(floors(graph)):
        print(f"{i:2}  " + ", ".join(level))


if __name__ == "__main__":
    main()
