"""The page's Compare tab: one prompt, seed and settings, two models, their texts side by side as
they are written, by the Generate tab's own generation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import gradio as gr

from .catalog import Catalog
from .generate import refused, shown, stream
from .messages import warn
from .request import MAX_NEW_CHARS, MAX_TEMPERATURE, Request


def tab(catalog: Catalog):
    """The tab's components. Returns the two model lists, for the page's rescan."""
    gr.Markdown("The same prompt, seed and settings on two models, side by side: what one "
                "learned that the other did not.")
    names = [n for _, n in catalog.choices()]
    with gr.Row():
        prompt = gr.Textbox(label="Prompt to compare on", lines=2, scale=3,
                            elem_id="compare-prompt")
        with gr.Column(scale=2):
            with gr.Row():
                seed = gr.Textbox("1", label="Seed for both", placeholder="random",
                                  elem_id="compare-seed")
                # no minimum or maximum: Gradio would refuse a value past them with error
                # badges before the handler runs; Request.parse clamps it and says so
                length = gr.Number(400, label="Characters", precision=0,
                                   info=f"1 to {MAX_NEW_CHARS:,}", elem_id="compare-length")
                temperature = gr.Number(0.8, label="Temperature for both", step=0.05,
                                        info=f"0 to {MAX_TEMPERATURE}",
                                        elem_id="compare-temperature")
            run = gr.Button("Compare", variant="primary", elem_id="compare")
            used = gr.Markdown("", elem_id="compare-used")
    with gr.Row():
        left, out_a = _side(catalog, "A", names[0] if names else None)
        right, out_b = _side(catalog, "B", names[1 if len(names) > 1 else 0] if names else None)

    run.click(make_compare(catalog), [left, right, prompt, seed, length, temperature],
              [out_a, out_b, used], api_visibility="private", concurrency_id="generate")
    return left, right


def make_compare(catalog: Catalog):
    """The tab's handler: (model A, model B, prompt, seed, length, temperature) -> a stream of
    (A's text, B's text, the status line)."""
    def both(a, b, prompt, seed, length, temperature):
        """Both texts, a piece of each in turn, so they grow together; one request (one seed,
        drawn here if blank, the numbers clamped and what was clamped said) for both. What
        cannot be done leaves the texts as they are and says why on the status line."""
        try:
            with refused():  # whatever it refuses, it logs in one line and escapes
                req = Request.parse(a, prompt, length, temperature, seed=seed)
                notes = "".join(f" · ⚠ {warn(note)}" for note in req.cut)
                for texts in _together(catalog, req, b):
                    yield *texts, f"seed used: {req.seed}{notes}"
        except gr.Error as e:
            gr.Warning(e.message)
            yield gr.skip(), gr.skip(), f"⚠ {e.message}"

    return both


def _together(catalog: Catalog, req: Request, b: str) -> Iterator[list]:
    """The two sides' texts as shown, each time either grows (gr.skip for one not begun)."""
    streams = [stream(catalog, req), stream(catalog, replace(req, model=b))]
    texts = [None, None]
    while streams[0] or streams[1]:
        for i, texts_i in enumerate(streams):
            if texts_i is None:
                continue
            try:
                texts[i] = next(texts_i)
            except StopIteration:
                streams[i] = None
        yield [shown(req.prompt, t) if t is not None else gr.skip() for t in texts]


def _side(catalog: Catalog, which: str, name: str | None) -> tuple[gr.Dropdown, gr.HTML]:
    """One model's column: its list and its text."""
    with gr.Column():
        model = gr.Dropdown(catalog.choices(), value=name, label=f"Model {which}",
                            elem_id=f"model-{which.lower()}")
        out = gr.HTML(shown("", ""), label=f"Model {which}'s text", show_label=True,
                      container=True, min_height=240, max_height=560, autoscroll=True,
                      elem_id=f"out-{which.lower()}", elem_classes=["sample"])
    return model, out
