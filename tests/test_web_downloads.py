"""The files the page hands out (textrnn/web/downloads.py): each model's web page, zipped and
built once, the card's button that offers it, the process's folder that holds them, and the
Space that ships the page's assets."""

import json
import os
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import textrnn
from textrnn.web import downloads, generate
from textrnn.web.catalog import Catalog
from textrnn.web.downloads import WebPages
from textrnn.webpage import ASSETS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def exports(monkeypatch):
    """The calls to textrnn.export_web, each one run for real."""
    calls, real = [], textrnn.export_web

    def counted(path, out, **kw):
        calls.append(Path(path).name)
        return real(path, out, **kw)

    monkeypatch.setattr(textrnn, "export_web", counted)
    return calls


def model_doc(zipped: Path, folder: str) -> dict:
    """The model.js document of a zipped page (its first argument, JSON)."""
    with zipfile.ZipFile(zipped) as z:
        text = z.read(f"{folder}/model.js").decode("utf-8")
    return json.loads(text[text.index("(") + 1:text.index(",\n\"")])


def test_a_models_page_is_one_folder_in_a_zip_and_is_built_once(catalog, exports):
    pages = WebPages(catalog)
    zipped = pages.get("tiny")
    assert zipped.name == "tiny-web-page.zip" and zipped.parent.parent == downloads.FOLDER
    with zipfile.ZipFile(zipped) as z:
        assert sorted(z.namelist()) == sorted(f"tiny/{f}" for f in (*ASSETS, "model.js"))
        assert z.read("tiny/index.html") == (ROOT / "textrnn/webpage/index.html").read_bytes()
    for name, hidden in (("tiny", 128), ("tiny-bpe", 32)):  # the page holds the model picked
        doc = model_doc(pages.get(name), name)
        assert doc["model"]["hidden"] == hidden
        assert doc["tokenizer"] == json.loads(
            (catalog.entries[name]["path"] / "tokenizer.json").read_text(encoding="utf-8"))
    stamp = zipped.stat().st_mtime_ns
    assert pages.ready("tiny") and pages.get("tiny") == zipped  # asked again: the same file
    assert zipped.stat().st_mtime_ns == stamp and exports == ["tiny", "tiny-bpe"]
    assert pages.get("broken") is None and pages.get("nothing") is None  # no page to offer


def test_many_requests_at_once_build_a_page_once(catalog, exports):
    pages = WebPages(catalog)
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(pages.get, ["tiny-bpe"] * 8 + ["tiny"] * 8))
    assert len(set(got[:8])) == 1 and len(set(got[8:])) == 1 and got[0] != got[8]
    assert sorted(exports) == ["tiny", "tiny-bpe"]


def test_a_rewritten_checkpoint_gets_a_new_page_and_a_gone_one_loses_its_own(checkpoints,
                                                                          tmp_path, exports):
    import shutil
    root = tmp_path / "models"
    shutil.copytree(checkpoints / "tiny-bpe", root / "mine")
    catalog = Catalog(root)
    pages = WebPages(catalog)
    first = pages.get("mine")
    config = root / "mine" / "config.json"
    config.write_text(config.read_text())  # rewritten: a new time
    os.utime(config, ns=(0, 0))
    second = pages.get("mine")
    assert exports == ["mine", "mine"] and second.is_file() and not first.exists()
    shutil.rmtree(root / "mine")
    catalog.rescan()
    assert pages.get("mine") is None and not second.parent.exists()


def test_the_card_offers_the_page_says_why_not_or_shows_no_button(catalog, exports):
    offer = generate.offer(WebPages(catalog))
    preparing, ready = list(offer("tiny"))  # new: "Preparing" (no file yet), then the file
    assert preparing.label.startswith("Preparing") and not preparing.interactive
    assert preparing.value is None and preparing.visible
    assert ready.label == generate.WEBPAGE and ready.visible and ready.interactive
    assert ready.value["orig_name"] == "tiny-web-page.zip"
    assert model_doc(Path(ready.value["path"]), "tiny")["model"]["hidden"] == 128
    again = list(offer("tiny"))  # built: offered at once
    assert len(again) == 1 and again[0].value["orig_name"] == "tiny-web-page.zip"
    assert exports == ["tiny"]
    assert [b.visible for b in offer("broken")] == [False, False]  # unavailable: no button
    large = list(generate.offer(WebPages(catalog, max_bytes=1000))("tiny"))[-1]
    assert not large.visible or not large.interactive
    assert large.label.startswith("No web page: the model has ") and large.value is None
    assert large.label.endswith("too many for a web page") and "\n" not in large.label


PROCESS = """
import sys
from pathlib import Path
from textrnn.web import downloads
from textrnn.web.catalog import Catalog
print(downloads.copy(Path(sys.argv[1])), flush=True)
print(downloads.WebPages(Catalog(sys.argv[2])).get("tiny"), flush=True)
"""


@pytest.mark.slow  # a Python process of its own: about 7 s
def test_the_folder_goes_at_exit_and_a_dead_apps_at_start(checkpoints, tmp_path):
    (tmp_path / "web-x-0.zip").write_bytes(b"PK")
    served = subprocess.run([sys.executable, "-c", PROCESS, tmp_path / "web-x-0.zip",
                             checkpoints], capture_output=True, text=True, check=True,
                            timeout=120).stdout.split()
    assert Path(served[0]).parent.name.startswith("textrnn-zips-")
    assert Path(served[1]).name == "tiny-web-page.zip"
    assert Path(served[1]).parent.parent == Path(served[0]).parent
    assert not Path(served[0]).parent.exists()  # gone with its process, the page's zip too
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


@pytest.mark.slow  # a Python process of its own: about 7 s
def test_a_space_ships_the_web_pages_assets_and_its_page_offers_one(tmp_path):
    space = textrnn.build_space([str(ROOT / "checkpoints" / "shakespeare-char-lstm")],
                                tmp_path / "space")
    shipped = space.folder / "textrnn" / "webpage"
    for f in (ROOT / "textrnn" / "webpage").iterdir():
        if f.is_file():
            assert (shipped / f.name).read_bytes() == f.read_bytes(), f.name
    code = ("import textrnn; from textrnn.web.catalog import Catalog; "
            "from textrnn.web.downloads import WebPages; print(textrnn.__file__); "
            "print(WebPages(Catalog('checkpoints')).get('shakespeare-char-lstm'))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=space.folder, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    where, zipped = out.stdout.split()
    assert Path(where).is_relative_to(space.folder)  # the Space's own textrnn, not this one
    assert Path(zipped).name == "shakespeare-char-lstm-web-page.zip"
