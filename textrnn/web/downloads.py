"""The files the page hands out: a folder of the app process's own in the system's temporary
folder, from which Gradio serves downloads (copying each file into its own cache). The folder
goes when the app exits (server.py turns SIGTERM into an exit), and a later start removes those
of app processes that died without removing theirs. It holds a visitor's run zipped (the Train
tab's copy of it). The runs and checkpoints folders themselves are never served."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

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
