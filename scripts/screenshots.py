"""The README's pictures: the web page mid-use, and its loss curve.

    python scripts/screenshots.py [--out docs/images]

Starts `python app.py` on a free port with the shipped checkpoints, drives Debian's Chromium
with Playwright (a prompt, Generate, the text streamed to its end) and saves `page.png` (the page
at 1280 x 900) and `loss.png` (the loss plot alone). Needs the dev extra and a system Chromium.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
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
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)],
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
            page.wait_for_selector("#prompt textarea")
            page.fill("#prompt textarea", "Rom.\nO, she doth teach the torches to burn")
            page.fill("#length input[type=number]", "600")
            page.press("#length input[type=number]", "Enter")
            page.click("#generate")
            page.wait_for_function("document.querySelector('#output pre').innerText.length "
                                   "> 600")
            time.sleep(1.0)  # the last updates, and the plot drawn
            page.screenshot(path=str(out / "page.png"), full_page=True)
            page.locator("#curve").screenshot(path=str(out / "loss.png"))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote {out / 'page.png'} and {out / 'loss.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
