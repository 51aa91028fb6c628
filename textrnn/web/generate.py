"""The Generate tab's generation: a request's text streamed to the page and to the /generate
API, and the page's Stop."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
import html
import sys
import threading
import time
from collections.abc import Iterator

import gradio as gr


from .catalog import CAPTION, PLOT, Catalog
from .downloads import WebPages
from .messages import refuse, warn
from .request import (MAX_NEW_CHARS, MAX_PROMPT_CHARS, MAX_TEMPERATURE, SEED_INFO, SEED_RULE,
                      BadSeed, Request)

CONCURRENCY = 4           # generations run at once; more only share the same cores
STREAM_EVERY_S = 0.03     # send the page at most ~30 updates a second; the first one at once


def shown(prompt: str, text: str) -> str:
    """The sample as the page shows it: the prompt (as used) in bold colour, then what the
    model wrote, both escaped."""
    start = (f'<span class="prompt" title="your prompt">{html.escape(prompt)}</span>'
             if prompt else "")
    return (f'<div role="region" aria-label="Generated text"><pre>{start}{html.escape(text)}'
            "</pre></div>")


def characters(n: int) -> str:
    return f"{n:,} character{'' if n == 1 else 's'}"


SHARED = ("model", "prompt", "length", "temperature", "top_k", "top_p", "seed")  # in the URL
# after a sample: the address bar gets what reproduces it (the seed used, not a blank one)
SHARE_JS = ("(model, prompt, length, temperature, top_k, top_p, seed) => { if (seed === '' || "
            "seed == null) return []; const q = new URLSearchParams({model, prompt, length, "
            "temperature, top_k, top_p, seed}); history.replaceState(null, '', '?' + q); "
            "return []; }")


def make_generate(catalog: Catalog):
    """The /generate API's handler: a stream of (prompt + text so far, seed used); the seed
    reproduces the sample."""
    def generate(name, prompt, length, temperature, top_k, top_p, seed):
        with refused():
            req = Request.parse(name, prompt, length, temperature, top_k, top_p, seed)
            for note in req.cut:
                warn(note)
            for text in stream(catalog, req):
                yield req.prompt + text, req.seed

    return generate


@contextlib.contextmanager
def refused():
    """What a generation raises, as the page says it: one line, logged, no traceback."""
    try:
        yield
    except gr.Error as e:
        raise refuse(e.message) from None
    except (ValueError, OSError, MemoryError) as e:
        raise refuse(f"Could not generate: {e}") from None


def stream(catalog: Catalog, req: Request) -> Iterator[str]:
    """The text written so far, after the prompt: "" at once, then at most every
    STREAM_EVERY_S seconds, then the whole of it."""
    lm = catalog.get(req.model)
    text, last = "", 0.0
    yield text
    for piece in lm.stream(req.prompt, req.length, **req.settings()):
        text += piece
        now = time.perf_counter()
        if now - last >= STREAM_EVERY_S:
            last = now
            yield text
    yield text


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
    """The page's own handler: the stream of `make_generate`, except that a seed it cannot use
    keeps the text on screen and flags the seed field, instead of turning the outputs into
    errors, and that `stops` can end it early."""

    def page_generate(name, prompt, length, temperature, top_k, top_p, seed,
                      request: gr.Request = None):
        try:
            req = Request.parse(name, prompt, length, temperature, top_k, top_p, seed)
        except BadSeed as e:
            warn(e.message)
            yield gr.skip(), gr.skip(), gr.Textbox(info=f"⚠ {SEED_RULE}"), gr.skip()
            return
        except gr.Error as e:
            raise refuse(e.message) from None
        notes = "".join(f" · ⚠ {warn(note)}" for note in req.cut)
        want, n, info = req.length, 0, gr.Textbox(info=SEED_INFO)  # the first update: the prompt
        texts = stream(catalog, req)
        with refused(), stops.watch(request) as stop, contextlib.closing(texts):
            for text in texts:
                n = len(text)
                yield shown(req.prompt, text), req.seed, info, f"{n:,} / {characters(want)}"
                info = gr.skip()
                if stop.is_set():
                    said = f"stopped at {n:,} / {characters(want)}"
                    yield gr.skip(), gr.skip(), gr.skip(), said
                    return
        yield gr.skip(), gr.skip(), gr.skip(), f"done: {characters(n)}{notes}"

    return page_generate


@dataclass
class Tab:
    """The Generate tab's components."""
    model: gr.Dropdown
    prompt: gr.Textbox
    examples: gr.Dataset
    run: gr.Button
    stop: gr.Button
    output: gr.HTML
    status: gr.Markdown
    copy: gr.Button
    length: gr.Slider
    temperature: gr.Slider
    top_k: gr.Slider
    top_p: gr.Slider
    seed: gr.Textbox
    used: gr.Textbox
    card: gr.Markdown
    webpage: gr.DownloadButton
    curve: gr.LinePlot

    @property
    def settings(self) -> list:
        """A request's fields, in the order of its handlers' parameters (the model's first)."""
        return [self.prompt, self.length, self.temperature, self.top_k, self.top_p, self.seed]

    @property
    def outputs(self) -> list:
        """What a generation updates: the text, the seed used, the seed field, the status."""
        return [self.output, self.used, self.seed, self.status]


def tab(catalog: Catalog, pages: WebPages) -> Tab:
    """The tab's components and events (the /generate API among them); `pages` zips the
    models' web pages (a page load asks for its model's: page.py)."""
    t = _layout(catalog)
    t.model.change(_select(catalog), t.model, [t.card, t.curve, t.examples],
                   api_visibility="private")
    t.model.change(offer(pages), t.model, t.webpage, api_visibility="private",
                   concurrency_id="webpage")
    stops = Stops()
    event = t.run.click(make_page_generate(catalog, stops), [t.model, *t.settings], t.outputs,
                        api_visibility="private", concurrency_id="generate")
    event.then(None, [t.model, *t.settings[:-1], t.used], None, js=SHARE_JS,
               api_visibility="private")
    t.examples.click(lambda sample: sample[0], t.examples, t.prompt, api_visibility="private")
    t.copy.click(None, js="() => navigator.clipboard.writeText("
                 "document.querySelector('#output pre')?.innerText ?? '')",
                 api_visibility="private")
    t.stop.click(stops.stop, None, None, api_visibility="private", queue=False)
    generate = make_generate(catalog)

    def api_generate(name: str, prompt: str, length: float, temperature: float,
                     top_k: float, top_p: float, seed: str) -> Iterator[tuple[str, int]]:
        """Stream (prompt + text so far, seed used); see docs/web-app.md."""
        yield from generate(name, prompt, length, temperature, top_k, top_p, seed)

    gr.api(api_generate, api_name="generate", concurrency_id="generate")
    return t


def _select(catalog: Catalog):
    def select(name):
        """A model picked: its card, its loss curve and its example prompts."""
        prompts = catalog.examples(name)
        return (catalog.card(name), catalog.curve(name),
                gr.Dataset(samples=[[p] for p in prompts], visible=bool(prompts)))
    return select


WEBPAGE = "Download as a web page (.zip)"


def offer(pages: WebPages):
    """The handler that offers a model's web page (the card's download): at once if it is
    built, else "Preparing" while it is, since a click on a button without a file downloads
    nothing; no button for a model that cannot be had, and the reason for one a page cannot
    carry."""
    def offered(name) -> Iterator[gr.DownloadButton]:
        if not pages.ready(name):
            yield gr.DownloadButton("Preparing the web page…", value=None, interactive=False,
                                    visible=pages.offers(name))
        try:
            zipped = pages.get(name)
        except ValueError as e:
            yield gr.DownloadButton(f"No web page: {e}", value=None, interactive=False,
                                    visible=True)
            return
        except OSError as e:
            print(f"textrnn app: {name}'s web page: {e}", file=sys.stderr, flush=True)
            zipped = None
        yield gr.DownloadButton(WEBPAGE, value=zipped and str(zipped), interactive=True,
                                visible=zipped is not None)
    return offered


def _layout(catalog: Catalog) -> Tab:
    first = catalog.default()
    with gr.Row():
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
            # from 0, not 1: the browser would raise a 0 to the minimum without a word;
            # Request.parse raises it and says so
            length = gr.Slider(0, MAX_NEW_CHARS, value=400, step=1, label="Length",
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
            webpage = gr.DownloadButton(WEBPAGE, visible=False, size="sm", elem_id="webpage")
            gr.Markdown(CAPTION, elem_id="curve-caption")
            curve = gr.LinePlot(catalog.curve(first) if first else None,
                                label="Loss while training", elem_id="curve", **PLOT)

    return Tab(model, prompt, examples, run, stop, output, status, copy, length, temperature,
               top_k, top_p, seed, used, card, webpage, curve)


def from_link(catalog: Catalog):
    """The handler that, after a page load whose link held a model and a seed (its first
    input), draws that sample: the Generate tab's own handler."""
    page_generate = make_page_generate(catalog, Stops())

    def draw(go, name, prompt, length, temperature, top_k, top_p, seed,
             request: gr.Request = None):  # (one parameter per field: Gradio's way)
        if go:
            yield from page_generate(name, prompt, length, temperature, top_k, top_p, seed,
                                     request)
        else:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()

    return draw
