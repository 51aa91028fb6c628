"""The page's Look inside tab: a text coloured by how surprised the model was at each character
(tap or hover for its top 5 guesses), or by one hidden unit's activation, and the units that follow
simple features of the text. The library does the looking (`LM.inspect`, `find_units`); this
file only draws."""

from __future__ import annotations

import html
import math
import re
import threading
from collections import OrderedDict

import gradio as gr
import pandas as pd

import textrnn

from .catalog import Catalog
from .messages import refuse
from .request import whole

MAX_INSIDE_CHARS = 3000    # a page's text: ~3,000 coloured spans stay quick to draw
SURPRISE_TOP_BITS = 8.0    # bits at which the red is full
CACHED = 4                 # inspections kept, so that switching views does not read again
                           # (a 3x1024 LSTM's states over 3,000 characters are ~74 MB)
UNITS_HEADER = ["feature", "layer", "state", "unit", "score", "follows it"]
CSS = ("#inside-view pre {white-space: pre-wrap; overflow-wrap: anywhere; margin: 0;"
       " padding: 0 8px 8px; font-family: ui-monospace, monospace; line-height: 1.5}"
       "#inside-view pre span {border-radius: 2px; cursor: pointer}"
       "#inside-view pre span.picked {outline: 2px solid var(--primary-500)}"
       "#inside-view .legend {display: flex; align-items: center; gap: 6px; margin: 0 8px 6px;"
       " font-size: var(--text-sm)}"
       "#inside-view .ramp {width: 96px; height: 10px;"
       " border: 1px solid var(--border-color-primary)}"
       "#inside-detail-text {white-space: pre-wrap; font-family: ui-monospace, monospace}"
       "@media (max-width: 600px) {#units th, #units td {padding-left: 2px; padding-right: 2px}"
       " #units table {font-size: var(--text-sm)}}")
# A tap (or a click) on a character shows what hovering shows, under the text: a touch screen
# has no hover. Installed once, on the page's load.
JS = ("document.addEventListener('click', (event) => {"
      " const span = event.target.closest?.('#inside-view pre > span[title]');"
      " const box = document.querySelector('#inside-detail-text'); if (!span || !box) return;"
      " document.querySelectorAll('#inside-view span.picked')"
      ".forEach((e) => e.classList.remove('picked'));"
      " span.classList.add('picked'); box.textContent = span.title; });")
TAP = "Tap or click a character (or hover it) for what the model made of it."
RED, BLUE = "239,68,68", "59,130,246"  # the colour scales' ends, as rgb


class Looker:
    """`LM.inspect` over a page's text, with the last few kept; a request it cannot serve
    raises `messages.refuse`'s gr.Error (one log line, no traceback)."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._kept: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def inspect(self, name: str, text: str) -> textrnn.Inspection:
        text = str(text or "")
        if len(text) > MAX_INSIDE_CHARS:
            raise refuse(f"The page looks at up to {MAX_INSIDE_CHARS:,} characters; this "
                              f"text has {len(text):,}. Use LM.inspect for longer ones.")
        key = (name, text)
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        try:
            lm = self.catalog.get(name)
        except gr.Error as e:
            raise refuse(e.message) from None
        try:
            found = lm.inspect(text)
        except ValueError as e:
            raise refuse(f"Cannot look inside with this text: {e}.") from None
        with self._lock:
            self._kept[key] = found
            while len(self._kept) > CACHED:
                self._kept.popitem(last=False)
        return found

    def look(self, name, text):
        """A text coloured by surprise, and its totals."""
        ins = self.inspect(name, text)
        return surprise_html(ins), f"{name}: {totals(ins)}"

    def colour(self, name, text, layer, state, unit):
        """A text coloured by one unit, checked to be one this model has."""
        ins = self.inspect(name, text)
        layers, width = ins.activations["h"].shape[0], ins.activations["h"].shape[2]
        if state not in ins.activations:
            raise refuse(f"{name} has no cell state c (only an LSTM has one); pick h.")
        layer, unit = whole(layer or 0), whole(unit or 0)  # None: a NaN, a word, 1.5
        if layer is None or unit is None or not (0 <= layer < layers and 0 <= unit < width):
            raise refuse(f"{name} has layers 0-{layers - 1} and units 0-{width - 1}; "
                         f"give whole numbers in those ranges.")
        return unit_html(ins, int(layer), state, int(unit)), (
            f"{name}: red, the unit above zero; blue, below; tap or hover for its value")

    def rank(self, name, text):
        """The units that follow a feature best, as a table."""
        ins = self.inspect(name, text)
        found = textrnn.find_units(ins, top=5)
        note = ("; constant here, so not scored: " + ", ".join(found.constant)
                if found.constant else "")
        return units_table(found), f"{name}: units ranked over {len(ins.pieces):,} tokens{note}"


def kept(handler):
    """`handler` (its outputs: a drawing, then the line under the text) as the page runs
    it: refused, it leaves the drawing as it was and says why (a toast, and that line)
    instead of Gradio's error badges."""
    def run(*args):
        try:
            return handler(*args)
        except gr.Error as e:  # refuse's: logged, and escaped for the page already
            gr.Warning(e.message)
            return gr.skip(), f"⚠ {e.message}"
    return run

def pick(rows: pd.DataFrame, evt: gr.SelectData):
    row = rows.iloc[evt.index[0]]
    return int(row["layer"]), str(row["state"]), int(row["unit"])


def _span(piece: str, colour: str, title: str) -> str:
    return (f'<span style="background:{colour}" title="{html.escape(title, quote=True)}">'
            f"{html.escape(piece)}</span>")


def characters(ins: textrnn.Inspection) -> list[tuple[int, int]]:
    """The text's characters as token ranges [s, e): a token that ends inside a character
    (piece "", as a byte model's first bytes of "é") joins the token that completes it."""
    spans, s = [], 0
    for t, piece in enumerate(ins.pieces):
        if piece:
            spans.append((s, t + 1))
            s = t + 1
    return spans


def surprise_html(ins: textrnn.Inspection) -> str:
    """Each character on a white-to-red scale of the bits the model spent on it (the sum over
    its tokens); its title holds the model's top guesses for its first token."""
    out = []
    for s, e in characters(ins):
        piece, nats = ins.pieces[e - 1], ins.loss[s:e].tolist()
        if s == 0:
            out.append(_span(piece, "transparent", "the first token: nothing predicts it"))
            continue
        bits = sum(nats) / math.log(2)
        parts = (f" ({e - s} tokens: {' + '.join(f'{n / math.log(2):.2f}' for n in nats)})"
                 if e - s > 1 else "")
        guesses = "\n".join(f"{_shown(g)}  {p:.1%}" for g, p in ins.top[s])
        out.append(_span(piece, f"rgba({RED},{min(bits / SURPRISE_TOP_BITS, 1.0):.2f})",
                         f"{bits:.2f} bits for {_shown(piece)}{parts}; the model's top "
                         f"guesses{' for its first token' if parts else ''}:\n{guesses}"))
    legend = _legend("white: 0 bits", f"rgba({RED},0), rgba({RED},1)",
                     f"red: {SURPRISE_TOP_BITS:g} bits or more")
    return _frame("Text coloured by surprise", "".join(out), legend)


def unit_html(ins: textrnn.Inspection, layer: int, state: str, unit: int) -> str:
    """Each character coloured by one unit's activation once it is read: blue below zero, red
    above, scaled by the unit's largest magnitude over the text."""
    values = ins.activations[state][layer, :, unit]
    scale = max(values.abs().max().item(), 1e-9)
    out = []
    for _, e in characters(ins):
        v = values[e - 1].item()
        a = min(abs(v) / scale, 1.0)
        colour = f"rgba({RED if v >= 0 else BLUE},{a:.2f})"
        out.append(_span(ins.pieces[e - 1], colour, f"layer {layer} {state}[{unit}] = {v:+.3f}"))
    legend = _legend("blue: below zero", f"rgba({BLUE},1), rgba({BLUE},0) 50%, rgba({RED},0) 50%,"
                     f" rgba({RED},1)", f"red: above zero (full at {scale:.3g})")
    return _frame(f"Text coloured by layer {layer}, {state}, unit {unit}", "".join(out), legend)


def _shown(piece: str) -> str:
    """A piece as a tooltip can show it: whitespace named; a lone byte of a character (spelt
    "0xE2" by the library) with the characters it can begin."""
    named = {"\n": "⏎", " ": "␣", "\t": "⇥"}
    if re.fullmatch("0x[0-9A-F]{2}", piece):
        return f"{piece} ({_begins(int(piece, 16))})"
    return named.get(piece, repr(piece)[1:-1])


def _begins(byte: int) -> str:
    """What a UTF-8 byte that is not a character of its own starts (RFC 3629)."""
    for low, high, bits, more, least in ((0xC2, 0xDF, 0x1F, 1, 0x80),
                                         (0xE0, 0xEF, 0x0F, 2, 0x800),
                                         (0xF0, 0xF4, 0x07, 3, 0x10000)):
        if low <= byte <= high:
            first = (byte & bits) << (6 * more)
            last = min(first + (1 << 6 * more) - 1, 0x10FFFF)
            return f"begins U+{max(first, least):04X}–U+{last:04X}"
    return "continues a character" if 0x80 <= byte <= 0xBF else "never in UTF-8"


def _frame(label: str, body: str, legend: str) -> str:
    return f'<div role="region" aria-label="{label}">{legend}<pre>{body}</pre></div>'


def _legend(low: str, ramp: str, high: str) -> str:
    """What the colours mean: a ramp between its two ends, named."""
    return (f'<div class="legend" role="note"><span>{low}</span><span class="ramp" '
            f'style="background: linear-gradient(to right, {ramp})"></span><span>{high}</span>'
            "</div>")


def totals(ins: textrnn.Inspection) -> str:
    return (f"{ins.bits_per_char:.3f} bits/char over {ins.chars:,} characters "
            f"({ins.nats / max(ins.chars, 1):.3f} nats/char); tap, click or hover a "
            "character for the model's top 5 guesses for it")


def units_table(found: textrnn.Findings) -> pd.DataFrame:
    rows = [[u.feature, u.layer, u.state, u.unit, round(u.score, 2),
             "rises" if u.sign > 0 else "falls"]
            for units in found.by_feature.values() for u in units[:3]]
    return pd.DataFrame(rows, columns=UNITS_HEADER)


def api(looker: Looker):
    """The tab's looking as API endpoints: /inspect and /find_units (see docs/web-app.md)."""

    def inspect(name: str, text: str) -> dict:
        """Each token's piece, bits spent on it and the model's top 5 guesses; the totals."""
        ins = looker.inspect(name, text)
        bits = [None if math.isnan(x) else round(x / math.log(2), 4) for x in ins.loss.tolist()]
        return {"pieces": ins.pieces, "bits": bits,
                "top": [[[g, round(p, 5)] for g, p in guesses] for guesses in ins.top],
                "bits_per_char": ins.bits_per_char, "chars": ins.chars}

    def find_units(name: str, text: str) -> list[dict]:
        """The units that follow a feature of the text best, each once, best first."""
        found = textrnn.find_units(looker.inspect(name, text), top=5)
        return [{"layer": u.layer, "state": u.state, "unit": u.unit, "feature": u.feature,
                 "score": round(u.score, 4), "sign": u.sign} for u in found.best]

    gr.api(inspect, api_name="inspect", concurrency_id="generate")
    gr.api(find_units, api_name="find_units", concurrency_id="generate")


def tab(looker: Looker, model: gr.Dropdown) -> None:
    """The tab's components and events; `model` is the Generate tab's model list."""
    gr.Markdown("Paste a text, or take the one on the Generate tab, and see what the model "
                "chosen on the Generate tab made of it: how surprised it was at each character, "
                "or what one hidden unit did. **Find units** ranks the units that follow simple "
                "features of the text (quotes, brackets, position in the line, words).")
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Text to look inside", lines=6, max_length=MAX_INSIDE_CHARS,
                              elem_id="inside-text",
                              placeholder="Paste a text, or take the generated one")
            with gr.Row():
                take = gr.Button("Take the generated text", elem_id="take")
                surprise = gr.Button("Show surprise", variant="primary", elem_id="surprise")
            view = gr.HTML("", label="What the model saw", show_label=True, container=True,
                           min_height=200, max_height=640, elem_id="inside-view")
            gr.HTML(f'<div id="inside-detail-text" aria-live="polite">{TAP}</div>',
                    elem_id="inside-detail")
            summary = gr.Markdown("", elem_id="inside-totals")
        with gr.Column(scale=2):
            layer = gr.Number(0, label="Layer", elem_id="layer")  # checked by `whole`
            state = gr.Radio(["h", "c"], value="c", label="State",
                             info="h: the layer's output; c: an LSTM's cell", elem_id="state")
            unit = gr.Number(0, label="Unit", elem_id="unit")
            show_unit = gr.Button("Colour by this unit", elem_id="show-unit")
            find = gr.Button("Find units", elem_id="find-units")
            table = gr.Dataframe(headers=UNITS_HEADER, label="Units that follow a feature "
                                 "(|Pearson r| over this text; select a row to see it)",
                                 interactive=False, elem_id="units", wrap=True,
                                 # shares of the table's width: all six in sight on a phone
                                 column_widths=["29%", "11%", "11%", "13%", "16%", "20%"])

    take.click(None, None, text, js="() => document.querySelector('#output pre')?.innerText "
               "?? ''", api_visibility="private")
    same = dict(api_visibility="private", concurrency_id="generate")  # shares the CPU limit
    surprise.click(kept(looker.look), [model, text], [view, summary], **same)
    show_unit.click(kept(looker.colour), [model, text, layer, state, unit], [view, summary], **same)
    find.click(kept(looker.rank), [model, text], [table, summary], **same)
    table.select(pick, table, [layer, state, unit], api_visibility="private").then(
        kept(looker.colour), [model, text, layer, state, unit], [view, summary], **same)
