"""The files the page hands out: a folder of the app process's own in the system's temporary
folder, from which Gradio serves downloads (copying each file into its own cache). The folder
goes when the app exits (server.py turns SIGTERM into an exit), and a later start removes those
of app processes that died without removing theirs. It holds two kinds of file: a visitor's run
zipped (the Train tab's copy of it), and a model's web page zipped (WebPages), built on demand
once per model. The runs and checkpoints folders themselves are never served."""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import textrnn

from .catalog import Catalog, unavailable

FOLDER = Path(tempfile.gettempdir()) / f"textrnn-zips-{os.getpid()}"
MAX_COPY_AGE_S = 24 * 3600  # a run's zip copied out more than a day ago is removed
_folder_lock = threading.Lock()


def folder() -> Path:
    """The process's folder, made on first use, removed at exit."""
    with _folder_lock:  # two requests at once make it, and register its removal, once
        if not FOLDER.is_dir():
            FOLDER.mkdir(exist_ok=True)
            atexit.register(shutil.rmtree, FOLDER, True)
    return FOLDER


def copy(path: Path) -> str:
    """`path` copied into the folder, as Gradio may serve it; copies older than a day go."""
    here = folder()
    for old in here.iterdir():
        with contextlib.suppress(FileNotFoundError):  # another request removed it meanwhile
            if old.is_file() and time.time() - old.stat().st_mtime > MAX_COPY_AGE_S:
                old.unlink()
    return str(shutil.copy(path, here / path.name))


def clear() -> None:
    """Remove the folders of app processes that have died without removing their own."""
    for old in FOLDER.parent.glob("textrnn-zips-*"):
        pid = old.name.rsplit("-", 1)[1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:  # another user's
        return True
    except (ProcessLookupError, OverflowError):
        return False
    return True


class WebPages:
    """Each model's web page (textrnn.export_web, fp32), zipped as one folder named after the
    model. Built on a model's first request, then kept for the life of the process: a model
    asked for again, or by many visitors at once, is exported once (again only if its
    checkpoint's files change). One export runs at a time: each holds its model's weights
    several times over in memory while it writes model.js."""

    def __init__(self, catalog: Catalog, max_bytes: int | None = None):
        """`max_bytes`: the most weights a page may carry (None: export_web's own limit)."""
        self.catalog = catalog
        self.max_bytes = max_bytes
        self._pages: dict[str, tuple[tuple, Path | str]] = {}  # name -> (stamp, zip or why not)
        self._lock = threading.Lock()  # guards _pages
        self._building = threading.Lock()  # one export at a time

    def offers(self, name: str) -> bool:
        """Whether `name` is a model the catalog can offer (a page, or why it has none)."""
        return self._folder(name) is not None

    def ready(self, name: str) -> bool:
        """Whether `name`'s page (or why it has none) is known already: no export to wait for."""
        path = self._folder(name)
        with self._lock:
            return path is not None and self._cached(name, path) is not None

    def get(self, name: str) -> Path | None:
        """The zip of `name`'s page; None for a model the catalog cannot offer (unknown or
        unavailable); ValueError, in one line, for a model a page cannot carry (too large);
        OSError where the server could not write it."""
        with self._lock:
            self._forget_gone()
            path = self._folder(name)
            done = None if path is None else self._cached(name, path)
        if path is None:
            return None
        if done is None:  # (a model already built is not kept waiting behind another's export)
            done = self._made(name, path)
        if isinstance(done, str):
            raise ValueError(done)
        return done

    def _made(self, name: str, path: Path) -> Path | str:
        """Build `name`'s page, unless a request that held the export before this one just
        has."""
        with self._building:
            with self._lock:
                done = self._cached(name, path)
            if done is None:
                stamp = _stamp(path)  # before: a checkpoint rewritten meanwhile is built again
                done = self._build(name, path)
                with self._lock:
                    _remove(self._pages.get(name, (None, None))[1])
                    self._pages[name] = (stamp, done)
        return done

    def _folder(self, name: str) -> Path | None:
        entry = self.catalog.entries.get(name)
        return None if entry is None or "error" in entry else entry["path"]

    def _cached(self, name: str, path: Path) -> Path | str | None:
        stamp, done = self._pages.get(name, (None, None))
        if done is None or stamp != _stamp(path) or isinstance(done, Path) and not done.is_file():
            return None
        return done

    def _forget_gone(self) -> None:
        """Drop the pages of models that have left the catalog (a visitor's run cleaned away)."""
        for name in [n for n in self._pages if n not in self.catalog.entries]:
            _remove(self._pages.pop(name)[1])

    def _build(self, name: str, path: Path) -> Path | str:
        """Export and zip `name`'s page, in a folder of its own (two models whose names read
        alike make two zips), written whole or not at all; or why it never can be."""
        base = re.sub(r"[^\w.-]+", "-", name).strip("-.") or "model"  # user/name@rev, too
        work = Path(tempfile.mkdtemp(dir=folder(), prefix="page-"))
        try:
            page = textrnn.export_web(path, work / base, max_bytes=self.max_bytes).files[0]
            partial = work / ".page.zip.tmp"
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as z:
                for f in sorted(page.iterdir()):
                    z.write(f, f"{base}/{f.name}")
            shutil.rmtree(page)
            return partial.rename(work / f"{base}-web-page.zip")
        except ValueError as e:  # kept: its first clause, the why (not the CLI's advice)
            shutil.rmtree(work, ignore_errors=True)
            return unavailable(e, name, path).split(": ")[0]
        except BaseException:  # an OSError (the disk, say) is not kept: the next pick retries
            shutil.rmtree(work, ignore_errors=True)
            raise


def _remove(done: Path | str | None) -> None:
    """A page's zip and its folder, once no longer offered (Gradio serves its own copy)."""
    if isinstance(done, Path):
        shutil.rmtree(done.parent, ignore_errors=True)


def _stamp(path: Path) -> tuple:
    """What changes when a checkpoint is rewritten: its files' sizes and times (a run's last/
    included, which a run without a best checkpoint is read from)."""
    files = [path / f for f in ("config.json", "model.safetensors", "tokenizer.json")]
    files += [path / "last" / f.name for f in files]
    return tuple((f.stat().st_mtime_ns, f.stat().st_size) if f.is_file() else None
                 for f in files)
