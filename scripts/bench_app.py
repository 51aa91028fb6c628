"""Measure the web app as a person meets it: start-up time, click-to-first-character, chars/s.

    python scripts/bench_app.py [--model shakespeare-char-lstm] [--length 500] [--runs 5]
                                [--while-training CORPUS]

Starts `python app.py` on a free port, times how long until the page is served, then drives
Debian's Chromium with Playwright: fills the prompt, clicks Generate `--runs` times and reads the
timings from inside the page (performance.now() at the click, when the output first grows
and when it is complete). Prints medians. `TEXTRNN_KERNEL=0 python scripts/bench_app.py` times
the plain PyTorch generation path instead of the compiled kernel. `--while-training CORPUS`
first starts a visitor's run on the Train tab (CORPUS's first 1 MB, the longest budget) and
times the clicks while it trains. Needs the dev extra and a system Chromium.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent

INSTRUMENT = """() => {
  window.runs = [];
  document.querySelector('#generate').addEventListener('click', () => {
    const text = () => document.querySelector('#output pre')?.innerText ?? '';
    const run = {click: performance.now(), first: null, done: null};
    window.runs.push(run);
    const before = text(), start = document.querySelector('#prompt textarea').value.length;
    let replaced = false;  // the last run's text is gone (seeds differ, so the text does)
    const id = setInterval(() => {
      const v = text();
      replaced = replaced || v !== before;
      if (!replaced) return;
      if (run.first === null && v.length > start) run.first = performance.now();
      if (v.length >= start + window.target) { run.done = performance.now(); clearInterval(id); }
    }, 1);
  }, true);
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    args = parse_args()
    port = free_port()
    t0 = time.perf_counter()
    runs_dir = tempfile.mkdtemp(prefix="bench-app-runs-")
    server = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--runs",
                               runs_dir], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        startup = wait_for_page(server, url, t0)
        cold, length, runs = drive(args, url, runs_dir)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(runs_dir, ignore_errors=True)
        Path(f"{runs_dir}-upload.txt").unlink(missing_ok=True)
    report(args, startup, cold, length, runs)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="shakespeare-char-lstm")
    p.add_argument("--prompt", default="Ham.\n")
    p.add_argument("--length", type=int, default=500)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--while-training", metavar="CORPUS",
                   help="time the clicks while a run on this text trains in the page")
    return p.parse_args()


def wait_for_page(server, url: str, t0: float) -> float:
    """Seconds from `t0` until the app serves its page; exits if it dies or takes 2 minutes."""
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except OSError:
            if server.poll() is not None or time.perf_counter() - t0 > 120:
                sys.exit("app.py did not start")
            time.sleep(0.05)
    return time.perf_counter() - t0


def drive(args, url: str, runs_dir: str) -> tuple[float, int, list[dict]]:
    """Click Generate in Chromium: (ms from the first click to its first character, the length
    of a text, the timings of the next `args.runs` clicks)."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=shutil.which("chromium") or shutil.which("chromium-browser"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page()
        page.goto(url)
        if args.while_training:
            start_training(page, Path(args.while_training), Path(runs_dir))
        page.locator("#model input").fill(args.model)
        page.get_by_role("option", name=args.model, exact=True).click()
        page.locator("#length input[type=number]").fill(str(args.length))
        page.locator("#length input[type=number]").press("Tab")
        page.locator("#prompt textarea").fill(args.prompt)
        cold, length = first_click(page, args.prompt)
        runs = timed_clicks(page, length, args.runs)
        if args.while_training:
            stop_training(page)
        browser.close()
    return cold, length, runs


def first_click(page, prompt: str) -> tuple[float, int]:
    """A first run loads the model (timed on its own) and tells how long a text is: (ms to its
    first character, the length of its text)."""
    t_click = time.perf_counter()
    page.locator("#generate").click()
    page.wait_for_function("n => document.querySelector('#output pre').innerText.length"
                           " > n", arg=len(prompt), timeout=120_000)
    cold = (time.perf_counter() - t_click) * 1000
    return cold, wait_until_still(page) - len(prompt)


def timed_clicks(page, length: int, n: int) -> list[dict]:
    """Click Generate `n` times, each after the last text is whole; the page's own timings."""
    page.evaluate(f"window.target = {length}")
    page.evaluate(INSTRUMENT)
    for i in range(n):
        page.locator("#generate").click()
        page.wait_for_function(f"() => window.runs[{i}].done !== null", timeout=120_000)
    return page.evaluate("window.runs")


def stop_training(page) -> None:
    """Check that the run on the Train tab trained through all the clicks, say so, and stop it."""
    page.get_by_role("tab", name="Train").click()
    status = page.locator("#train-status").inner_text()
    if not status.startswith("training:"):
        sys.exit(f"the run was not training through all the clicks: {status}")
    print(f"while a run trained in the page: {status}")
    page.get_by_role("button", name="Stop training").click()


def report(args, startup: float, cold: float, length: int, runs: list[dict]) -> None:
    first = [r["first"] - r["click"] for r in runs]
    whole = [r["done"] - r["click"] for r in runs]
    print(f"python app.py -> page served: {startup:.2f} s")
    print(f"first click (loads {args.model}): first character after {cold:.0f} ms")
    print(f"next {args.runs} clicks: first character after median "
          f"{statistics.median(first):.0f} ms "
          f"(min {min(first):.0f}, max {max(first):.0f}); the whole {length} chars after median "
          f"{statistics.median(whole):.0f} ms: {length / statistics.median(whole) * 1000:,.0f} "
          "chars/s from the click")


def start_training(page, corpus: Path, runs_dir: Path) -> None:
    """Start a visitor's run of the longest budget on the Train tab, and wait until it trains."""
    text = runs_dir.parent / f"{runs_dir.name}-upload.txt"  # outside the runs: not counted
    text.write_bytes(corpus.read_bytes()[:1_000_000].decode("utf-8", "ignore").encode())
    page.get_by_role("tab", name="Train").click()
    page.locator("#upload input[type=file]").set_input_files(str(text))
    page.locator("#minutes input[type=number]").fill("10")
    page.locator("#minutes input[type=number]").press("Tab")
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_function("() => document.querySelector('#train-status').innerText"
                           ".startsWith('training:')", timeout=120_000)
    page.get_by_role("tab", name="Generate").click()


def wait_until_still(page, quiet_s: float = 1.5) -> int:
    """Wait until the output stops growing; return its length."""
    last, since = -1, time.perf_counter()
    while time.perf_counter() - since < quiet_s:
        n = page.evaluate("document.querySelector('#output pre').innerText.length")
        if n != last:
            last, since = n, time.perf_counter()
        time.sleep(0.05)
    return last


if __name__ == "__main__":
    main()
