"""The files the page hands out (textrnn/web/downloads.py): the process's folder that holds
them."""

import os
import subprocess
import sys
from pathlib import Path

from textrnn.web import downloads


PROCESS = """
import sys
from pathlib import Path
from textrnn.web import downloads
print(downloads.copy(Path(sys.argv[1])), flush=True)
"""


def test_the_folder_goes_at_exit_and_a_dead_apps_at_start(tmp_path):
    (tmp_path / "web-x-0.zip").write_bytes(b"PK")
    served = subprocess.run([sys.executable, "-c", PROCESS, tmp_path / "web-x-0.zip"],
                            capture_output=True, text=True, check=True,
                            timeout=120).stdout.split()
    assert Path(served[0]).parent.name.startswith("textrnn-zips-")
    assert not Path(served[0]).parent.exists()  # gone with its process
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = downloads.FOLDER.parent / f"textrnn-zips-{dead.pid}"
    alive = downloads.FOLDER.parent / f"textrnn-zips-{os.getppid()}"
    for folder in (left, alive):
        folder.mkdir(exist_ok=True)
        (folder / "a.zip").write_bytes(b"PK")
    try:
        downloads.clear()
        assert not left.exists() and alive.exists()
    finally:
        for folder in (left, alive):
            if folder.exists():
                (folder / "a.zip").unlink()
                folder.rmdir()
