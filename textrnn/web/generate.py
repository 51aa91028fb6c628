"""The Generate tab's generation: a request's text streamed to the page and to the /generate
API, and the page's Stop."""

from __future__ import annotations

import contextlib
import math
import html
import threading
import time
from collections.abc import Iterator

import gradio as gr

import textrnn

from .catalog import Catalog
from .messages import refuse, warn
from .request import (MAX_NEW_CHARS, MAX_PROMPT_CHARS, MAX_TEMPERATURE, SEED_INFO, SEED_RULE,
                      clamp, seed_from)

CONCURRENCY = 4           # generations run at once; more only share the same cores
STREAM_EVERY_S = 0.03     # send the page at most ~30 updates a second; the first one at once


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


def make_generate(catalog: Catalog):
    def generate(name, prompt, length, temperature, top_k, top_p, seed):
        """Stream (prompt + text so far, seed used); the seed reproduces the sample."""
        try:
            yield from stream_text(catalog, name, prompt, length, temperature, top_k, top_p, seed)
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
            seed_from(seed)
        except gr.Error as e:
            warn(e.message)
            yield gr.skip(), gr.skip(), gr.Textbox(info=f"⚠ {SEED_RULE}"), gr.skip()
            return
        want, start, n = int(clamp(length, 0, MAX_NEW_CHARS, 300)), None, 0
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


def stream_text(catalog: Catalog, name, prompt, length, temperature, top_k, top_p, seed):
    """The generation behind `make_generate`: checks and clamps, then streams."""
    lm = catalog.get(name)
    prompt = str(prompt or "")
    if len(prompt) > MAX_PROMPT_CHARS:
        warn(f"Prompt cut to its last {MAX_PROMPT_CHARS} characters.")
        prompt = prompt[-MAX_PROMPT_CHARS:]
    if clamp(length, 0, math.inf, 0) > MAX_NEW_CHARS:
        warn(f"Length cut to {MAX_NEW_CHARS:,} characters.")
    length = int(clamp(length, 0, MAX_NEW_CHARS, 300))
    temperature = clamp(temperature, 0, MAX_TEMPERATURE, 0.8)
    temperature = 0.0 if temperature < textrnn.MIN_TEMPERATURE else temperature
    top_k = int(clamp(top_k, 0, 10**6, 0)) or None          # 0 = off
    top_p = clamp(top_p, 0.01, 1.0, 1.0)
    top_p = None if top_p >= 1 else top_p                   # 1 = off
    seed = seed_from(seed)
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
