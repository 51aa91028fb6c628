"""The README's pictures: each tab of the web page mid-use, and a loss curve.

    python scripts/screenshots.py [--out docs/images]

Starts `python app.py` on a free port with the shipped checkpoints, drives Debian's Chromium
with Playwright and saves, at 1280 px wide: `page.png` (a prompt, Generate, the text streamed
to its end), `loss.png` (the loss plot alone), `inside.png` (that text coloured by surprise,
and the units found), `compare.png` (the char and BPE Shakespeare models on one prompt and
seed) and `train.png` (a run on 300 kB of corpora/shakespeare.txt, stopped after its second
validation, about a minute). Needs the dev extra and a system Chromium.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runs = Path(tempfile.mkdtemp(prefix="screenshots-runs-"))
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port),
                               "--runs", str(runs)],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            generate(page, out)
            inside(page, out)
            compare(page, out)
            train(page, out, runs)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote page.png, loss.png, inside.png, compare.png and train.png in {out}")
    return 0


def generate(page, out: Path) -> None:
    """A prompt, Generate, the text streamed to its end; then the loss plot alone."""
    page.wait_for_selector("#prompt textarea")
    page.fill("#prompt textarea", "Rom.\nO, she doth teach the torches to burn")
    page.fill("#length input[type=number]", "600")
    page.press("#length input[type=number]", "Enter")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#output pre').innerText.length "
                           "> 600")
    time.sleep(1.0)  # the last updates, and the plot drawn
    page.screenshot(path=str(out / "page.png"), full_page=True)
    top = page.locator("#curve-caption").bounding_box()  # the plot, its caption above
    box = page.locator("#curve").bounding_box()
    page.screenshot(path=str(out / "loss.png"), full_page=True, clip={
        "x": box["x"], "y": top["y"] - 8, "width": box["width"],
        "height": box["y"] + box["height"] - top["y"] + 8})


def inside(page, out: Path) -> None:
    page.get_by_role("tab", name="Look inside").click()
    page.get_by_role("button", name="Take the generated text").click()
    page.get_by_role("button", name="Show surprise").click()
    page.wait_for_selector("#inside-view span[title]")
    page.get_by_role("button", name="Find units").click()
    page.wait_for_function("document.querySelector('#inside-totals').innerText"
                           ".includes('ranked')")
    page.locator("#inside-view pre > span").nth(60).hover()  # a tooltip of top-5 guesses
    time.sleep(1.0)
    page.screenshot(path=str(out / "inside.png"), full_page=True)


def compare(page, out: Path) -> None:
    page.get_by_role("tab", name="Compare").click()
    page.fill("#compare-prompt textarea", "Enter KING HENRY")
    page.get_by_role("button", name="Compare").click()
    page.wait_for_function("['#out-a', '#out-b'].every(i => document.querySelector(i + ' pre')"
                           ".innerText.length > 400)")
    time.sleep(1.0)
    page.screenshot(path=str(out / "compare.png"), full_page=True)


def train(page, out: Path, runs: Path) -> None:
    text = runs / "shakespeare-300k.txt"
    text.write_text((ROOT / "corpora" / "shakespeare.txt").read_text(encoding="utf-8")[:300_000],
                    encoding="utf-8")
    page.get_by_role("tab", name="Train").click()
    page.locator("#upload input[type=file]").set_input_files(str(text))
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_function("(document.querySelector('#train-sample textarea')?.value ?? '')"
                           ".length > 0", timeout=300_000)
    first = page.locator("#train-sample textarea").input_value()
    page.wait_for_function("v => document.querySelector('#train-sample textarea').value != v",
                           arg=first, timeout=300_000)
    time.sleep(1.5)
    page.screenshot(path=str(out / "train.png"), full_page=True)
    page.get_by_role("button", name="Stop training").click()


if __name__ == "__main__":
    raise SystemExit(main())
