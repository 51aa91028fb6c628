"""The page: the Generate, Train, Look inside and Compare tabs laid out, its style and scripts,
and what a page load fills in (the models a visitor may see, a shared link's settings) or a
visitor's new run changes (Compare's lists). No model logic lives here."""

from __future__ import annotations

import gradio as gr

from . import compare, downloads, generate, inside, train_tab
from .catalog import PLOT_CSS, PLOT_JS, Catalog
from .generate import CONCURRENCY, SHARE_JS, SHARED
from .messages import warn
from .request import SEED_RULE, shared_settings
from .workbench import Workbench

CSS = (".gradio-container textarea {font-family: ui-monospace, monospace}"  # reads as typed
       "#card pre, #card code {white-space: pre-wrap; overflow-wrap: anywhere}"  # no cut lines
       "#card pre {padding-right: 2.5rem}"  # clear of the copy button
       # a text box's label floats over its top left: the text scrolls below it, not under it
       ".block.sample > .html-container, #inside-view > .html-container {margin-top: 2.4rem;"
       " padding-top: 0}"
       ".sample pre {white-space: pre-wrap; overflow-wrap: anywhere; margin: 0;"
       " padding: 0 8px 8px; font-family: ui-monospace, monospace; font-size: var(--text-md)}"
       ".sample .prompt {font-weight: 700; color: var(--primary-700)}"  # the visitor's part
       ".dark .sample .prompt {color: var(--primary-300)}" + PLOT_CSS)


def build(catalog: Catalog, bench: Workbench | None = None) -> gr.Blocks:
    """The page. `bench` trains visitors' texts; None turns the Train tab off."""
    # Gradio's copies of uploads and downloads are removed after a day
    with gr.Blocks(title="textrnn", delete_cache=(3600, 24 * 3600)) as demo:
        gr.Markdown("# textrnn\nCharacter- and token-level recurrent language models, sampled "
                    "live. Pick a model, give it a start, and watch it write; or train one on "
                    "your own text.")
        mine = gr.BrowserState([], storage_key="textrnn-my-runs")  # this visitor's runs
        job_id = gr.BrowserState(None, storage_key="textrnn-my-job")  # and their run under way
        downloads.clear()  # the download folders of app processes that died
        pages = downloads.WebPages(catalog)
        with gr.Tabs(overflow_behavior="wrap"):  # every tab in sight on a phone, not a menu
            with gr.Tab("Generate", id="generate-tab"):
                gen = generate.tab(catalog, pages)
            with gr.Tab("Train", id="train-tab"):
                train_tab.tab(demo, bench, catalog, gen.model, mine, job_id)
            looker = inside.Looker(catalog)
            with gr.Tab("Look inside", id="inside-tab"):
                inside.tab(looker, gen.model)
            with gr.Tab("Compare", id="compare-tab"):
                model_a, model_b = compare.tab(catalog)
        inside.api(looker)
        demo.load(None, js=f"() => {{ {PLOT_JS} {inside.JS} }}")  # the page's own scripts
        shared = gr.State(False)  # the page was opened from a shared link: draw its sample
        lists = [gen.model, model_a, model_b]
        # a run finished on the Train tab joins `mine` (and the Generate list): Compare's too
        mine.change(relist(catalog), [model_a, model_b, mine], [model_a, model_b],
                    api_visibility="private")
        loaded = demo.load(loader(catalog), [*lists, mine], [*lists, *gen.settings, shared],
                           api_visibility="private")
        loaded.then(generate.offer(pages), gen.model, gen.webpage, api_visibility="private",
                    concurrency_id="webpage")  # the card's download, for the model chosen
        loaded.then(
            generate.from_link(catalog), [shared, gen.model, *gen.settings],
            gen.outputs, api_visibility="private", concurrency_id="link",
            concurrency_limit=CONCURRENCY).then(
            None, [gen.model, *gen.settings[:-1], gen.used], None, js=SHARE_JS,
            api_visibility="private")
    return demo


def loader(catalog: Catalog):
    """What a page load fills in: each model list (with runs trained since the app started,
    and this visitor's own), and a shared link's settings in the Generate tab."""
    def on_load(name, a, b, mine, request: gr.Request):
        catalog.rescan()
        choices, keep = _kept(catalog, (name, a, b), mine)
        listed = [n for _, n in choices]
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

    return on_load


def relist(catalog: Catalog):
    """What a change to a visitor's runs (`mine`) redraws: the two model lists of Compare."""
    def on_change(a, b, mine):
        choices, keep = _kept(catalog, (a, b), mine)
        return tuple(gr.Dropdown(choices=choices, value=k) for k in keep)
    return on_change


def _kept(catalog: Catalog, names, mine) -> tuple[list[tuple[str, str]], list[str | None]]:
    """The models this visitor may see, and `names` each kept if still listed (else the
    default)."""
    choices = catalog.choices(mine or [])
    listed = [n for _, n in choices]
    return choices, [n if n in listed else catalog.default() for n in names]
