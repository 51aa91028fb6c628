"""The exported web page in headless Chromium: `python -m benchmarks web [--checkpoints DIR]`.

For each checkpoint it exports the page (fp32 and fp16) and prints the folder's size, then,
served from 127.0.0.1, the time from opening the page to its first character (navigation start
to the first piece of text, the weights' decoding and the prompt's priming included; generation
starts as soon as the page has loaded), and the page's chars/s at batch 1, beside textrnn's own
kernel and plain paths timed in the same run on the same machine.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import tempfile
import threading
from pathlib import Path

import textrnn
from textrnn import is_checkpoint
from textrnn.webpage import export_web

from .generate import _plain_path
from .measure import median_time

PROMPT = "ROMEO:"
HEADER = ("| model | page fp32 | page fp16 | open to first char | page chars/s | textrnn kernel "
          "chars/s | textrnn plain chars/s |\n|---|---|---|---|---|---|---|")
FIRST = """async () => { let first = null;
    await textrnn.generate({prompt: %r, length: 20, temperature: 0.8, seed: 1,
                            onText: () => { first ??= performance.now(); }});
    return first; }"""
RATE = """async (n) => { const t0 = performance.now();
    await textrnn.generate({prompt: %r, length: n, temperature: 0.8, seed: 1});
    return n / ((performance.now() - t0) / 1000); }"""


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.iterdir()) / 1e6


def serve(root: Path) -> tuple[http.server.HTTPServer, str]:
    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def in_browser(url: str, chars: int) -> tuple[float, float]:
    """(ms from navigation start to the first character, chars/s: the best of three runs)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or
                                    "/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu",
                                                               "--disable-background-networking"])
        page = browser.new_page()
        page.goto(url)
        first = page.evaluate(FIRST % PROMPT)
        rate = max(page.evaluate(RATE % PROMPT, chars) for _ in range(3))
        browser.close()
    return first, rate


def python_rates(folder: Path, chars: int) -> tuple[float, float]:
    """textrnn's chars/s at batch 1: the kernel (LM.generate) and the plain path."""
    lm = textrnn.load(folder)
    cpt = lm.config.get("training", {}).get("chars_per_token", 1.0)  # BPE: >1 char a step
    kernel = chars / median_time(lambda: lm.generate(PROMPT, chars, seed=1), 3)
    steps = max(chars // 10, 50)
    plain = steps * cpt / median_time(lambda: _plain_path(lm, steps), 3)
    return kernel, plain


def add_parser(sub) -> None:
    p = sub.add_parser("web", help="the exported web page: size, first character, chars/s")
    p.add_argument("--checkpoints", default="checkpoints", help="folder of checkpoints to time")
    p.add_argument("--chars", type=int, default=2000, help="characters per timed run (2000)")


def run(args) -> int:
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server, url = serve(root)
        for ckpt in sorted(p for p in Path(args.checkpoints).iterdir() if is_checkpoint(p)):
            sizes = [folder_mb(export_web(ckpt, root / f"{ckpt.name}-{d}", dtype=d))
                     for d in ("fp32", "fp16")]
            first, rate = in_browser(f"{url}/{ckpt.name}-fp32/index.html", args.chars)
            kernel, plain = python_rates(ckpt, args.chars)
            print(f"| {ckpt.name} | {sizes[0]:.1f} MB | {sizes[1]:.1f} MB | {first:,.0f} ms | "
                  f"{rate:,.0f} | {kernel:,.0f} | {plain:,.0f} |", flush=True)
        server.shutdown()
    return 0
