"""The web app: pick a checkpoint, type a prompt, watch the text stream in. `python app.py`.

A thin door over the library (`textrnn.load`, `LM.stream`): it lists the checkpoint folders
(catalog.py), loads each lazily once, and streams generation to the page. No model logic lives
here; the tabs past the first are app_train.py, app_inside.py and app_compare.py. Runs as a
Hugging Face Space (Gradio SDK) unchanged; see the README's front matter.

Limits (named here, documented in docs/web-app.md): MAX_NEW_CHARS characters per request, prompts
cut to their last MAX_PROMPT_CHARS characters, settings clamped to the slider ranges. A broken
checkpoint folder is listed as unavailable with the reason; the app stays up.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a demo

import gradio as gr  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

import app_compare  # noqa: E402
import app_inside  # noqa: E402
import app_train  # noqa: E402
import textrnn  # noqa: E402
import workbench  # noqa: E402
from catalog import CAPTION, PLOT, Catalog  # noqa: E402

MAX_NEW_CHARS = 3000      # per request; a 2x256 LSTM makes ~1-2k chars/s per CPU core
MAX_PROMPT_CHARS = 2000   # longer prompts keep their end: the state only needs the recent past
CONCURRENCY = 4           # generations run at once; more only share the same cores
QUEUE_SIZE = 64           # requests waiting beyond those; past it a visitor is told "busy"
MAX_REQUEST_BYTES = 5 * 2**20  # any HTTP request body: an upload (4 MB) and its framing; a
                               # prompt is at most ~8 KB of JSON
MAX_FILE_SIZE = "4mb"     # Gradio's upload route; the Train tab refuses past 1 MB itself, saying so
MAX_TRAIN_MINUTES = 10    # the most a visitor's run may train; --max-train-minutes lowers it
MAX_TEMPERATURE = 2.0
STREAM_EVERY_S = 0.03     # send the page at most ~30 updates a second; the first one at once
HERE = Path(__file__).resolve().parent
CSS = (".gradio-container textarea {font-family: ui-monospace, monospace}"  # reads as typed
       "#card pre, #card code {white-space: pre-wrap; overflow-wrap: anywhere}"  # no cut lines
       "#card pre {padding-right: 2.5rem}"  # clear of the copy button
       ".sample pre {white-space: pre-wrap; overflow-wrap: anywhere; margin: 0;"
       " padding: 2.2rem 8px 8px; font-family: ui-monospace, monospace; font-size: var(--text-md)}"
       ".sample .prompt {font-weight: 700; color: var(--primary-700)}"  # the visitor's part
       ".dark .sample .prompt {color: var(--primary-300)}")


def _clamp(value, low, high, default):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(value) else min(max(value, low), high)


MAX_SEED = textrnn.MAX_SEED  # seeds are used as given, within what a browser keeps exact
SEED_INFO = "blank = random; keep it to draw the same text again"
SEED_RULE = f"a whole number from -{MAX_SEED:,} to {MAX_SEED:,}, or blank for a random one"
MAX_MESSAGE_CHARS = 300  # a message may quote what a visitor sent, which may be of any size


def _seed(value) -> int:
    """Blank means a fresh random seed; anything else must be a whole number, used as is."""
    if value is None or str(value).strip() == "":
        return textrnn.new_seed()
    try:
        seed = int(str(value).strip())
    except ValueError:
        raise gr.Error(f"Seed must be a whole number, or blank for a random one; got {value!r}.")
    if abs(seed) > MAX_SEED:
        raise gr.Error(f"Seed must be between -{MAX_SEED:,} and {MAX_SEED:,}; got {seed}.")
    return seed


def shown(prompt: str, text: str) -> str:
    """The sample as the page shows it: the prompt (as used) in bold colour, then what the
    model wrote, both escaped."""
    start = (f'<span class="prompt" title="your prompt">{html.escape(prompt)}</span>'
             if prompt else "")
    return (f'<div role="region" aria-label="Generated text"><pre>{start}{html.escape(text)}'
            "</pre></div>")


SHARED = ("model", "prompt", "length", "temperature", "top_k", "top_p", "seed")  # in the URL
# after a sample: the address bar gets what reproduces it (the seed used, not a blank one)
SHARE_JS = ("(model, prompt, length, temperature, top_k, top_p, seed) => { if (seed === '' || "
            "seed == null) return []; const q = new URLSearchParams({model, prompt, length, "
            "temperature, top_k, top_p, seed}); history.replaceState(null, '', '?' + q); "
            "return []; }")


def shared_settings(query, models: list[str]) -> dict:
    """The Generate tab's settings from a shared link's query (?model=..&prompt=..&seed=..),
    each checked and clamped as a request's would be; what is missing or unusable is left out."""
    out = {}
    if query.get("model") in models:
        out["model"] = query["model"]
    if "prompt" in query:
        out["prompt"] = str(query["prompt"])[-MAX_PROMPT_CHARS:]
    for key, low, high, whole in (("length", 1, MAX_NEW_CHARS, True),
                                  ("temperature", 0, MAX_TEMPERATURE, False),
                                  ("top_k", 0, 100, True), ("top_p", 0.05, 1.0, False)):
        value = _clamp(query.get(key), low, high, None)
        if value is not None:
            out[key] = int(value) if whole else value
    try:
        if str(query.get("seed", "")).strip():  # blank would draw a random one
            out["seed"] = str(_seed(query["seed"]))  # whole numbers within MAX_SEED only
    except gr.Error:
        pass
    return out


def said(message) -> str:
    """A message as the page and the log get it: cut to MAX_MESSAGE_CHARS, and HTML-escaped,
    since Gradio's toasts render HTML and a message may quote what a visitor sent."""
    message = " ".join(str(message).split())  # one line
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS - 1] + "…"
    return html.escape(message, quote=False)


def refuse(message) -> gr.Error:
    """A request turned away: one line in the server's log (no traceback), the message on the
    page."""
    message = said(message)
    print(f"textrnn app: refused: {message}", file=sys.stderr, flush=True)
    return gr.Error(message, print_exception=False)


def warn(message) -> str:
    """A warning on the page (a toast); returns it as shown, for a status line to repeat."""
    message = said(message)
    gr.Warning(message)
    return message


def make_generate(catalog: Catalog):
    def generate(name, prompt, length, temperature, top_k, top_p, seed):
        """Stream (prompt + text so far, seed used); the seed reproduces the sample."""
        try:
            yield from _generate(catalog, name, prompt, length, temperature, top_k, top_p, seed)
        except gr.Error as e:
            raise refuse(e.message) from None
        except (ValueError, OSError, MemoryError) as e:
            raise refuse(f"Could not generate: {e}") from None

    return generate


class Stops:
    """The page's Stop button: each visitor's generation under way, told to end after its
    next update. (Gradio's own `cancels` can leave a cancelled event's outputs marked as
    failed.) A generation still waiting in the queue when Stop is pressed runs."""

    def __init__(self):
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def watch(self, request: gr.Request | None) -> Iterator[threading.Event]:
        """A flag that Stop sets, for the generation of `request`'s page while it runs."""
        key, flag = getattr(request, "session_hash", None), threading.Event()
        with self._lock:
            if key:
                self._flags[key] = flag
        try:
            yield flag
        finally:
            with self._lock:
                if key and self._flags.get(key) is flag:
                    del self._flags[key]

    def stop(self, request: gr.Request) -> None:
        with self._lock:
            flag = self._flags.get(getattr(request, "session_hash", None))
        if flag is not None:
            flag.set()


def make_page_generate(catalog: Catalog, stops: Stops):
    """The page's own handler: `generate`, except that a seed it cannot use keeps the text
    on screen and flags the seed field, instead of turning the outputs into errors, and that
    `stops` can end it early."""
    generate = make_generate(catalog)

    def page_generate(name, prompt, length, temperature, top_k, top_p, seed,
                      request: gr.Request = None):
        try:
            _seed(seed)
        except gr.Error as e:
            warn(e.message)
            yield gr.skip(), gr.skip(), gr.Textbox(info=f"⚠ {SEED_RULE}"), gr.skip()
            return
        want, start, n = int(_clamp(length, 0, MAX_NEW_CHARS, 300)), None, 0
        stream = generate(name, prompt, length, temperature, top_k, top_p, seed)
        with stops.watch(request) as stop, contextlib.closing(stream):
            for text, seed_used in stream:
                if start is None:  # the first update is the prompt (as used: maybe cut)
                    start = len(text)
                    yield (shown(text, ""), seed_used, gr.Textbox(info=SEED_INFO),
                           f"0 / {want:,} characters")
                    continue
                n = len(text) - start
                yield shown(text[:start], text[start:]), seed_used, gr.skip(), \
                    f"{n:,} / {want:,} characters"
                if stop.is_set():
                    yield gr.skip(), gr.skip(), gr.skip(), f"stopped at {n:,} / {want:,} characters"
                    return
        yield gr.skip(), gr.skip(), gr.skip(), f"done: {n:,} characters"

    return page_generate


def _generate(catalog: Catalog, name, prompt, length, temperature, top_k, top_p, seed):
    """The generation behind `make_generate`: checks and clamps, then streams."""
    lm = catalog.get(name)
    prompt = str(prompt or "")
    if len(prompt) > MAX_PROMPT_CHARS:
        warn(f"Prompt cut to its last {MAX_PROMPT_CHARS} characters.")
        prompt = prompt[-MAX_PROMPT_CHARS:]
    if _clamp(length, 0, math.inf, 0) > MAX_NEW_CHARS:
        warn(f"Length cut to {MAX_NEW_CHARS:,} characters.")
    length = int(_clamp(length, 0, MAX_NEW_CHARS, 300))
    temperature = _clamp(temperature, 0, MAX_TEMPERATURE, 0.8)
    temperature = 0.0 if temperature < textrnn.MIN_TEMPERATURE else temperature
    top_k = int(_clamp(top_k, 0, 10**6, 0)) or None          # 0 = off
    top_p = _clamp(top_p, 0.01, 1.0, 1.0)
    top_p = None if top_p >= 1 else top_p                   # 1 = off
    seed = _seed(seed)
    text, last = prompt, 0.0
    yield text, seed
    for piece in lm.stream(prompt, length, temperature=temperature, top_k=top_k,
                           top_p=top_p, seed=seed):
        text += piece
        now = time.perf_counter()
        if now - last >= STREAM_EVERY_S:
            last = now
            yield text, seed
    yield text, seed


def build(catalog: Catalog, bench=None, max_train_minutes: float = MAX_TRAIN_MINUTES
          ) -> gr.Blocks:
    """The page. `bench` (a workbench.Workbench) trains visitors' texts; None turns the Train
    tab off."""
    first = catalog.default()
    # Gradio's copies of uploads and downloads are removed after a day
    with gr.Blocks(title="textrnn", delete_cache=(3600, 24 * 3600)) as demo:
        gr.Markdown("# textrnn\nCharacter- and token-level recurrent language models, sampled "
                    "live. Pick a model, give it a start, and watch it write; or train one on "
                    "your own text.")
        mine = gr.BrowserState([], storage_key="textrnn-my-runs")  # this visitor's runs
        job_id = gr.BrowserState(None, storage_key="textrnn-my-job")  # and their run under way
        with gr.Tab("Generate", id="generate-tab"), gr.Row():
            with gr.Column(scale=3):
                model = gr.Dropdown(catalog.choices(), value=first, label="Model", elem_id="model")
                prompt = gr.Textbox(label="Prompt", lines=3, elem_id="prompt",
                                    max_length=MAX_PROMPT_CHARS,
                                    placeholder="Start the text here, or leave it empty")
                examples = gr.Dataset(components=[prompt], label="Examples",
                                      samples=[[p] for p in catalog.examples(first)],
                                      visible=bool(catalog.examples(first)))
                with gr.Row():
                    run = gr.Button("Generate", variant="primary", elem_id="generate")
                    stop = gr.Button("Stop", variant="stop")
                output = gr.HTML(shown("", ""), label="Text", show_label=True, container=True,
                                 min_height=320, max_height=640, autoscroll=True,
                                 elem_id="output", elem_classes=["sample"])
                with gr.Row():
                    status = gr.Markdown("", elem_id="status")
                    copy = gr.Button("Copy text", size="sm", scale=0, elem_id="copy")
            with gr.Column(scale=2):
                length = gr.Slider(1, MAX_NEW_CHARS, value=400, step=1, label="Length",
                                   info="characters to generate", elem_id="length",
                                   buttons=[])
                temperature = gr.Slider(0, MAX_TEMPERATURE, value=0.8, step=0.05,
                                        label="Temperature", info="0 = always the likeliest",
                                        buttons=[])
                top_k = gr.Slider(0, 100, value=0, step=1, label="Top-k",
                                  info="sample from the k likeliest; 0 = off", buttons=[])
                top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p",
                                  info="sample from the likeliest whose odds reach p; 1 = off",
                                  buttons=[])
                seed = gr.Textbox(label="Seed", placeholder="random", info=SEED_INFO,
                                  elem_id="seed")
                used = gr.Textbox(label="Seed used", interactive=False, elem_id="used",
                                  placeholder="none yet")
                card = gr.Markdown(catalog.card(first) if first else catalog.card(""),
                                   elem_id="card")
                gr.Markdown(CAPTION, elem_id="curve-caption")
                curve = gr.LinePlot(catalog.curve(first) if first else None,
                                    label="Loss while training", elem_id="curve", **PLOT)

        def select(name):
            prompts = catalog.examples(name)
            return (catalog.card(name), catalog.curve(name),
                    gr.Dataset(samples=[[p] for p in prompts], visible=bool(prompts)))

        with gr.Tab("Train", id="train-tab"):
            app_train.tab(demo, bench, catalog, model, mine, job_id, max_train_minutes, warn)
        looker = app_inside.Looker(catalog, refuse)
        with gr.Tab("Look inside", id="inside-tab"):
            app_inside.tab(looker, model)

        with gr.Tab("Compare", id="compare-tab"):
            model_a, model_b = app_compare.tab(catalog, make_generate(catalog), shown, _seed,
                                               warn)
        app_inside.api(looker)
        shared = gr.State(False)  # the page was opened from a shared link: draw its sample

        def on_load(name, a, b, mine, request: gr.Request):
            """Each page load sees runs trained since the app started; a shared link's
            settings fill the Generate tab."""
            catalog.rescan()
            choices = catalog.choices(mine or [])
            listed = [n for _, n in choices]
            keep = [n if n in listed else catalog.default() for n in (name, a, b)]
            query = request.query_params if request else {}
            link = shared_settings(query, listed)
            if link.get("model"):
                keep[0] = link["model"]
            elif query.get("model"):  # unknown here, or a visitor's own: do not draw another's
                warn(f"The link's model {str(query['model'])[:80]!r} is not on this page.")
                link.pop("seed", None)
            if str(query.get("seed", "")).strip() and "seed" not in link and link.get("model"):
                warn(f"The link's seed {str(query['seed'])[:40]!r} cannot be used: "
                     f"{SEED_RULE}.")
            lists = [gr.Dropdown(choices=choices, value=k) for k in keep]
            fields = [link.get(k, gr.skip()) for k in SHARED[1:]]
            return *lists, *fields, "seed" in link

        model.change(select, model, [card, curve, examples], api_visibility="private")
        settings = [prompt, length, temperature, top_k, top_p, seed]
        stops = Stops()
        page_generate = make_page_generate(catalog, stops)

        def from_link(go, name, prompt, length, temperature, top_k, top_p, seed,
                      request: gr.Request = None):
            if go:
                yield from page_generate(name, prompt, length, temperature, top_k, top_p, seed,
                                         request)
            else:
                yield gr.skip(), gr.skip(), gr.skip(), gr.skip()

        demo.load(on_load, [model, model_a, model_b, mine],
                  [model, model_a, model_b, *settings, shared], api_visibility="private").then(
            from_link, [shared, model, *settings], [output, used, seed, status],
            api_visibility="private", concurrency_id="link", concurrency_limit=CONCURRENCY).then(
            None, [model, *settings[:-1], used], None, js=SHARE_JS, api_visibility="private")
        examples.click(lambda sample: sample[0], examples, prompt, api_visibility="private")
        event = run.click(page_generate, [model, *settings], [output, used, seed, status],
                          api_visibility="private", concurrency_id="generate")
        event.then(None, [model, *settings[:-1], used], None, js=SHARE_JS,
                   api_visibility="private")
        copy.click(None, js="() => navigator.clipboard.writeText("
                   "document.querySelector('#output pre')?.innerText ?? '')",
                   api_visibility="private")
        stop.click(stops.stop, None, None, api_visibility="private", queue=False)
        generate = make_generate(catalog)

        def api_generate(name: str, prompt: str, length: float, temperature: float,
                         top_k: float, top_p: float, seed: str) -> Iterator[tuple[str, int]]:
            """Stream (prompt + text so far, seed used); see docs/web-app.md."""
            yield from generate(name, prompt, length, temperature, top_k, top_p, seed)

        gr.api(api_generate, api_name="generate", concurrency_id="generate")
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve textrnn checkpoints in the browser.")
    parser.add_argument("--checkpoints", default=str(HERE / "checkpoints"),
                        help="folder whose sub-folders are checkpoints (default: checkpoints/)")
    parser.add_argument("--host", default=None, help="address to listen on "
                        "(default 127.0.0.1, or $GRADIO_SERVER_NAME)")
    parser.add_argument("--port", type=int, default=None,
                        help="port (default 7860 or the next free one, or $GRADIO_SERVER_PORT)")
    parser.add_argument("--share", action="store_true", help="also open a public share link")
    parser.add_argument("--queue-size", type=int, default=QUEUE_SIZE,
                        help=f"requests that may wait while {CONCURRENCY} generate; past it a "
                        f"visitor is told the app is busy ({QUEUE_SIZE})")
    parser.add_argument("--runs", default=str(HERE / "runs" / "web"),
                        help="folder for visitors' runs (default: runs/web/)")
    parser.add_argument("--no-training", action="store_true",
                        help="turn the Train tab off")
    parser.add_argument("--max-train-minutes", type=float, default=MAX_TRAIN_MINUTES,
                        help=f"the most a visitor's run may train ({MAX_TRAIN_MINUTES:g}; at "
                        "least 1)")
    parser.add_argument("--keep-runs-hours", type=float, default=24,
                        help="visitors' runs older than this are removed (24)")
    parser.add_argument("--max-runs-mb", type=float, default=500,
                        help="disk visitors' runs may use; the oldest go first (500)")
    args = parser.parse_args(argv)
    if args.queue_size < 1:
        parser.error(f"--queue-size must be at least 1, got {args.queue_size}")
    if not 1 <= args.max_train_minutes <= 24 * 60:
        parser.error(f"--max-train-minutes must be between 1 and 1440, got "
                     f"{args.max_train_minutes:g}")
    if args.keep_runs_hours <= 0 or args.max_runs_mb <= 0:
        parser.error("--keep-runs-hours and --max-runs-mb must be positive")
    # Compile the generation kernel (once per machine, about a second; cached after) while the
    # page starts, rather than on the first click.
    threading.Thread(target=textrnn.kernel_status, daemon=True).start()
    bench = None if args.no_training else workbench.Workbench(
        args.runs, args.max_train_minutes, args.keep_runs_hours, args.max_runs_mb)
    catalog = Catalog(args.checkpoints, private=None if bench is None else args.runs)
    serve(build(catalog, bench, args.max_train_minutes), args.host, args.port, args.share,
          queue_size=args.queue_size)


class BodyLimit:
    """ASGI middleware: a request whose body passes `limit` bytes gets one log line and 413,
    before the app parses any of it (or, for a body sent in chunks with no declared length, the
    app's own error if it has answered already)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        seen, started = 0, False

        def refused():
            print(f"textrnn app: refused: a {scope.get('path')} request over {self.limit:,} "
                  "bytes", file=sys.stderr, flush=True)
            return _TooLarge()

        async def counted():  # a body sent in chunks, with no length declared
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise refused()
            return message

        async def tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            if not declared.isdigit() or int(declared) > self.limit:
                raise refused()
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if started:  # the app has answered already (it caught the error itself)
                return
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": json.dumps(
                {"detail": f"request too large: at most {self.limit:,} bytes"}).encode()})


class _TooLarge(Exception):
    pass


def serve(demo: gr.Blocks, host=None, port=None, share=False, queue_size: int = QUEUE_SIZE,
          concurrency: int = CONCURRENCY, block: bool = True) -> gr.Blocks:
    """Launch the page with its limits: `concurrency` generations at once, `queue_size` more
    waiting (past that Gradio answers 503 and the page says the app is busy), request bodies
    and uploads capped."""
    demo.queue(default_concurrency_limit=concurrency, max_size=queue_size).launch(
        server_name=host, server_port=port, share=share or None, theme=gr.themes.Soft(),
        css=CSS + app_inside.CSS, max_file_size=MAX_FILE_SIZE, prevent_thread_lock=True,
        quiet=True,
        app_kwargs={"middleware": [Middleware(BodyLimit, limit=MAX_REQUEST_BYTES)]})
    if block:  # our own lines: Gradio's would advise `share=True` in code, not our --share
        print(f"textrnn app: serving on {demo.local_url}"
              + (f" and {demo.share_url}" if demo.share_url else
                 " (python app.py --share for a public link too)"), flush=True)
        demo.block_thread()
    return demo


if __name__ == "__main__":
    main()
