"""The page's Compare tab: one prompt, seed and settings, two models, their texts side by side as
they are written, by the Generate tab's own generation."""

from __future__ import annotations

from dataclasses import replace

import gradio as gr

from .catalog import Catalog
from .generate import refused, shown, stream
from .messages import refuse, warn
from .request import BadSeed, Request


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
                length = gr.Number(400, label="Characters", precision=0, minimum=1,
                                   maximum=3000, elem_id="compare-length")
                temperature = gr.Number(0.8, label="Temperature for both", minimum=0,
                                        maximum=2, step=0.05, elem_id="compare-temperature")
            run = gr.Button("Compare", variant="primary", elem_id="compare")
            used = gr.Markdown("", elem_id="compare-used")
    with gr.Row():
        left, out_a = _side(catalog, "A", names[0] if names else None)
        right, out_b = _side(catalog, "B", names[1 if len(names) > 1 else 0] if names else None)

    def both(a, b, prompt, seed, length, temperature):
        """Both texts, a piece of each in turn, so they grow together; one request (one seed,
        drawn here if blank) for both."""
        try:
            req = Request.parse(a, prompt, length, temperature, seed=seed)
        except BadSeed as e:
            yield gr.skip(), gr.skip(), f"⚠ {warn(e.message)}"
            return
        except gr.Error as e:
            raise refuse(e.message) from None
        for note in req.cut:
            warn(note)
        streams = [stream(catalog, req), stream(catalog, replace(req, model=b))]
        texts = [None, None]
        with refused():
            while streams[0] or streams[1]:
                for i, texts_i in enumerate(streams):
                    if texts_i is None:
                        continue
                    try:
                        texts[i] = next(texts_i)
                    except StopIteration:
                        streams[i] = None
                yield (*(shown(req.prompt, t) if t is not None else gr.skip() for t in texts),
                       f"seed used: {req.seed}")

    run.click(both, [left, right, prompt, seed, length, temperature], [out_a, out_b, used],
              api_visibility="private", concurrency_id="generate")
    return left, right


def _side(catalog: Catalog, which: str, name: str | None) -> tuple[gr.Dropdown, gr.HTML]:
    """One model's column: its list and its text."""
    with gr.Column():
        model = gr.Dropdown(catalog.choices(), value=name, label=f"Model {which}",
                            elem_id=f"model-{which.lower()}")
        out = gr.HTML(shown("", ""), label=f"Model {which}'s text", show_label=True,
                      container=True, min_height=240, max_height=560, autoscroll=True,
                      elem_id=f"out-{which.lower()}", elem_classes=["sample"])
    return model, out
