"""Exporting a model to run without textrnn: what every export shares, the ONNX export and
the web page.

    textrnn.export_onnx("runs/mine", "mine.onnx")   # mine.onnx, mine.tokenizer.json,
                                                    # mine.config.json (onnxgraph.py)
    textrnn.export_web("runs/mine", "mine-page")    # mine-page/index.html, model.js, ...
                                                    # (webpage/)

`source` finds the checkpoint to export: a finished run's best checkpoint, a checkpoint folder,
or a Hub model, refused in one line as `textrnn push` refuses it (share.run_files) where it is
none. `output` writes what an export makes: never over a file that exists unless asked, and
through a temporary sibling renamed into place, so that an error or Ctrl-C leaves nothing
behind. Left out on purpose: exporting a run's unvalidated last/ (let the run validate first, as
`textrnn push` asks), and quantized weights.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import checkpoint, hub
from .share import run_files

ONNX_EXTRA = 'pip install "textrnn[onnx]"'


def source(run: str | Path) -> Path:
    """The checkpoint folder an export reads: `run` itself (a finished run folder, whose top
    holds its best checkpoint, or a checkpoint folder), or the Hub's copy of the model a repo
    id names. FileNotFoundError or ValueError, in one line, for anything else."""
    folder = hub.locate(run)
    run_files(folder)  # a best checkpoint, in a format this textrnn reads
    return folder


@contextlib.contextmanager
def output(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """A temporary sibling of `path` to write a file or a folder at, renamed to `path` when the
    block ends well and removed when it does not. FileExistsError where `path` exists and
    `overwrite` is false; a folder given for a file (or a file for a folder) is refused even
    with it. Nested blocks rename innermost first: name the main output outermost."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.rmdir()  # (a free name beside `path`: the caller makes a file or a folder there)
    try:
        yield tmp
        _replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        tmp.unlink(missing_ok=True)
        raise


def _replace(new: Path, path: Path) -> None:
    """Put `new` at `path`: a file over a file, or a folder in place of a folder."""
    if path.exists() and path.is_dir() != new.is_dir():
        raise FileExistsError(f"{path} is a {'folder' if path.is_dir() else 'file'}; give "
                              f"another name for the {'folder' if new.is_dir() else 'file'}")
    if not new.is_dir():
        os.chmod(new, 0o644)
        os.replace(new, path)
        return
    old = path.with_name(f".{path.name}.old")
    if path.exists():
        os.rename(path, old)
    os.rename(new, path)
    shutil.rmtree(old, ignore_errors=True)


@dataclass(frozen=True)
class Exported:
    files: tuple[Path, ...]  # what was written, the main output first
    bytes: int               # the main output's size
    checked: str             # what the export's own check found


def beside(out: Path, suffix: str) -> Path:
    """A file written beside `out`: its stem plus `suffix` (mine.onnx -> mine.tokenizer.json)."""
    return out.with_name(out.stem + suffix)


def export_onnx(run: str | Path, out: str | Path, *, sequence: bool = False,
                overwrite: bool = False) -> Exported:
    """Write `run`'s model to `out` as an ONNX graph (onnxgraph.py): one step, or with
    `sequence` a whole sequence per call; its tokenizer.json and config.json beside it, and
    in it. Checked against PyTorch with onnxruntime where it is installed, before anything is
    written."""
    out = Path(out)
    if out.suffix != ".onnx":
        raise ValueError(f"the ONNX file's name should end in .onnx, got {out.name!r}")
    folder = source(run)
    try:
        from . import onnxgraph
    except ImportError as e:
        if e.name != "onnx":
            raise
        raise ValueError(f"exporting to ONNX needs the onnx package: {ONNX_EXTRA}") from None
    model, _, _ = checkpoint.load(folder)
    texts = {f".{name}": (folder / name).read_text(encoding="utf-8")  # as they are there
             for name in ("config.json", "tokenizer.json")}
    data = onnxgraph.build(model, texts[".config.json"], texts[".tokenizer.json"], sequence)
    checked = onnxgraph.verify(data, model)
    files = (out, *(beside(out, s) for s in texts))
    with contextlib.ExitStack() as stack:  # (out is renamed last: whole beside it, or absent)
        tmp = [stack.enter_context(output(f, overwrite)) for f in files]
        tmp[0].write_bytes(data)
        for t, text in zip(tmp[1:], texts.values()):
            t.write_text(text, encoding="utf-8")
    return Exported(files, len(data), checked)


def export_web(run: str | Path, out: str | Path, *, dtype: str = "fp32",
               overwrite: bool = False, max_bytes: int | None = None) -> Exported:
    """Write `run`'s model as the folder `out`, a static page that writes text in the
    visitor's browser (webpage/: index.html, the engine, and model.js with the weights);
    refused in one line past `max_bytes` of weights (None: webpage.MAX_WEB_BYTES)."""
    from .webpage import export_web as write_page
    out = write_page(source(run), Path(out), dtype=dtype, overwrite=overwrite,
                     max_bytes=max_bytes)
    files = tuple(sorted(out.iterdir()))
    return Exported((out, *files), sum(f.stat().st_size for f in files), "")
