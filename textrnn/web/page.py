"""The page: the Generate, Train, Look inside and Compare tabs laid out, and what a page load
fills in (the models a visitor may see, a shared link's settings). No model logic lives here."""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr

from . import compare, inside, train_tab
from .catalog import CAPTION, PLOT, Catalog
from .generate import (CONCURRENCY, SHARE_JS, SHARED, Stops, make_generate, make_page_generate,
                       shown)
from .messages import warn
from .request import MAX_NEW_CHARS, MAX_PROMPT_CHARS, MAX_TEMPERATURE, SEED_INFO, SEED_RULE, \
    shared_settings
from .workbench import Workbench

CSS = (".gradio-container textarea {font-family: ui-monospace, monospace}"  # reads as typed
       "#card pre, #card code {white-space: pre-wrap; overflow-wrap: anywhere}"  # no cut lines
       "#card pre {padding-right: 2.5rem}"  # clear of the copy button
       ".sample pre {white-space: pre-wrap; overflow-wrap: anywhere; margin: 0;"
       " padding: 2.2rem 8px 8px; font-family: ui-monospace, monospace; font-size: var(--text-md)}"
       ".sample .prompt {font-weight: 700; color: var(--primary-700)}"  # the visitor's part
       ".dark .sample .prompt {color: var(--primary-300)}")


def build(catalog: Catalog, bench: Workbench | None = None) -> gr.Blocks:
    """The page. `bench` trains visitors' texts; None turns the Train tab off."""
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
            train_tab.tab(demo, bench, catalog, model, mine, job_id)
        looker = inside.Looker(catalog)
        with gr.Tab("Look inside", id="inside-tab"):
            inside.tab(looker, model)

        with gr.Tab("Compare", id="compare-tab"):
            model_a, model_b = compare.tab(catalog)
        inside.api(looker)
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
