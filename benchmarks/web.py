"""The exported web page in headless Chromium: `python -m benchmarks web [--checkpoints DIR]
[--ort-web DIST]`.

For each checkpoint it exports the page (fp32 and fp16) and prints the folder's size, then,
served from 127.0.0.1, the time from opening the page to its first character (navigation start
to the first piece of text, the weights' decoding and the prompt's priming included; generation
starts as soon as the page has loaded), the page's chars/s at batch 1 (sampling at temperature
0.8; the median of three runs), and its engine's bare steps/s (textrnn.stepRate: one step and an
argmax fed back) with the products in WebAssembly and in JavaScript, beside textrnn's own
kernel and plain paths timed in the same run on the same machine.

With `--ort-web DIST` (the dist/ folder of onnxruntime-web, e.g. unpacked from `npm pack
onnxruntime-web`: not shipped, fetched by hand) it also exports the ONNX graph (export.py)
and times onnxruntime-web's WebAssembly backend on one thread running it the same way, one
step and an argmax fed back, in the same browser: its steps/s, and the time to its first step
(the runtime's and the graph's loading included).
"""

from __future__ import annotations

import functools
import http.server
import shutil
import statistics
import tempfile
import threading
from pathlib import Path

import textrnn
from textrnn import is_checkpoint
from textrnn.export import export_onnx
from textrnn.webpage import export_web

from .generate import _plain_path
from .measure import median_time

PROMPT = "ROMEO:"
HEADER = ("| model | page fp32 | page fp16 | open to first char | page chars/s | steps/s: "
          "page, WebAssembly | page, JavaScript | onnxruntime-web (first step) | textrnn kernel "
          "chars/s | textrnn plain chars/s |\n|---|---|---|---|---|---|---|---|---|---|")
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


ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs")
ORT_PAGE = """<!doctype html><meta charset="utf-8"><script src="ort/ort.wasm.min.js"></script>
<script>
window.ortRate = async (steps, cfg) => {
  ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
  ort.env.wasm.numThreads = 1;
  const t0 = performance.now();
  const session = await ort.InferenceSession.create("model.onnx");
  const L = cfg.layers, H = cfg.hidden, zeros = () => new Float32Array(L * H);
  let state = {h: new ort.Tensor("float32", zeros(), [L, 1, H])};
  if (cfg.cell === "lstm") state.c = new ort.Tensor("float32", zeros(), [L, 1, H]);
  let token = 1n;
  const step = async () => {
    const out = await session.run({token: new ort.Tensor("int64", [token], [1]), ...state});
    const logits = out.logits.data;
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    token = BigInt(best);
    state = {h: out.h_out, ...(out.c_out ? {c: out.c_out} : {})};
  };
  await step();
  const first = performance.now() - t0, rates = [];
  for (let run = 0; run < 3; run++) {
    const t = performance.now();
    for (let i = 0; i < steps; i++) await step();
    rates.push(steps / ((performance.now() - t) / 1000));
  }
  return [first, rates.sort((a, b) => a - b)[1]];  // (the median)
};
</script>"""


def launch(p):
    return p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                             args=["--no-sandbox", "--disable-gpu",
                                   "--disable-background-networking"])


def in_browser(url: str, chars: int) -> tuple[float, float, float, float]:
    """(ms from navigation start to the first character; the page's chars/s, sampling at
    temperature 0.8; its bare steps/s with the products in WebAssembly, and in JavaScript:
    medians of three runs)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser, steps = launch(p), []
        for engine in ("wasm", "js"):
            page = browser.new_page()
            page.goto(url + ("?engine=js" if engine == "js" else ""))
            assert page.evaluate("() => textrnn.engine()") == engine
            if engine == "wasm":
                first = page.evaluate(FIRST % PROMPT)
                rate = statistics.median(page.evaluate(RATE % PROMPT, chars) for _ in range(3))
            steps.append(statistics.median(page.evaluate("n => textrnn.stepRate(n)", chars)
                                           for _ in range(3)))
            page.close()
        browser.close()
    return first, rate, *steps


def ort_web(root: Path, url: str, ckpt: Path, dist: Path, steps: int) -> tuple[float, float]:
    """onnxruntime-web over the exported one-step graph: (ms to the first step, steps/s)."""
    from playwright.sync_api import sync_playwright
    folder = root / f"{ckpt.name}-ort"
    folder.mkdir()
    (folder / "ort").mkdir()
    for name in ORT_FILES:  # the WebAssembly backend alone, of the package's many builds
        shutil.copyfile(dist / name, folder / "ort" / name)
    (folder / "index.html").write_text(ORT_PAGE, encoding="utf-8")
    export_onnx(ckpt, folder / "model.onnx")
    cfg = textrnn.read_config(ckpt)["model"]
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        page.goto(f"{url}/{folder.name}/index.html")
        first, rate = page.evaluate("([n, cfg]) => ortRate(n, cfg)", [steps, cfg])
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
    p.add_argument("--ort-web", metavar="DIST", help="also time onnxruntime-web from this dist/ "
                   "folder (ort.wasm.min.js and its .wasm/.mjs), e.g. from npm pack")


def run(args) -> int:
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server, url = serve(root)
        for ckpt in sorted(p for p in Path(args.checkpoints).iterdir() if is_checkpoint(p)):
            sizes = [folder_mb(export_web(ckpt, root / f"{ckpt.name}-{d}", dtype=d))
                     for d in ("fp32", "fp16")]
            page = in_browser(f"{url}/{ckpt.name}-fp32/index.html", args.chars)
            ort = "not timed"
            if args.ort_web:
                ort_first, steps = ort_web(root, url, ckpt, Path(args.ort_web), args.chars)
                ort = f"{steps:,.0f} ({ort_first:,.0f} ms)"
            kernel, plain = python_rates(ckpt, args.chars)
            print(f"| {ckpt.name} | {sizes[0]:.1f} MB | {sizes[1]:.1f} MB | {page[0]:,.0f} ms | "
                  f"{page[1]:,.0f} | {page[2]:,.0f} | {page[3]:,.0f} | {ort} | {kernel:,.0f} | "
                  f"{plain:,.0f} |", flush=True)
        server.shutdown()
    return 0
