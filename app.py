"""The web app: pick a checkpoint, type a prompt, watch the text stream in. `python app.py`.

A thin door over the library (`textrnn.load`, `LM.stream`): it finds checkpoint folders, loads
each lazily once, and streams generation to the page. No model logic lives here. Runs as a
Hugging Face Space (Gradio SDK) unchanged; see the README's front matter.

Limits (named here, documented in the README): MAX_NEW_CHARS characters per request, prompts
cut to their last MAX_PROMPT_CHARS characters, settings clamped to the slider ranges. A broken
checkpoint folder is listed as unavailable with the reason; the app stays up.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import threading
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a demo

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402

import textrnn  # noqa: E402

MAX_NEW_CHARS = 3000      # per request; a 2x256 LSTM makes ~1-2k chars/s per CPU core
MAX_PROMPT_CHARS = 2000   # longer prompts keep their end: the state only needs the recent past
MAX_TEMPERATURE = 2.0
STREAM_EVERY_S = 0.03     # send the page at most ~30 updates a second; the first one at once
HERE = Path(__file__).resolve().parent
CSS = ".gradio-container textarea {font-family: ui-monospace, monospace}"  # text reads as typed


class Catalog:
    """The checkpoint folders under one directory, each loaded on first use and kept."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.entries: dict[str, dict] = {}  # name -> {"path", "manifest", "config" | "error"}
        folders = sorted(p for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []
        for path in folders:
            entry = self.entries[path.name] = {"path": path, "manifest": _manifest(path)}
            try:
                entry["config"] = textrnn.read_config(path)
            except (OSError, ValueError) as e:
                entry["error"] = str(e)
        self._models: dict[str, textrnn.LM] = {}
        self._lock = threading.Lock()

    def choices(self) -> list[tuple[str, str]]:
        return [(name if "error" not in e else f"{name} (unavailable)", name)
                for name, e in self.entries.items()]

    def default(self) -> str | None:
        return next((n for n, e in self.entries.items() if "error" not in e), None)

    def get(self, name: str) -> textrnn.LM:
        """The loaded model, or gr.Error with the reason it cannot be had."""
        entry = self.entries.get(name)
        if entry is None:
            raise gr.Error(f"No checkpoint named {name!r}.")
        if "error" in entry:
            raise gr.Error(f"{name} is unavailable: {entry['error']}")
        with self._lock:  # one load per checkpoint, however many requests arrive at once
            if name not in self._models:
                try:
                    self._models[name] = textrnn.load(entry["path"])
                except (OSError, ValueError) as e:
                    entry["error"] = str(e)
                    raise gr.Error(f"{name} is unavailable: {e}") from None
            return self._models[name]

    def examples(self, name: str) -> list[str]:
        prompts = self.entries.get(name, {}).get("manifest", {}).get("prompts", [])
        return [str(p) for p in prompts] if isinstance(prompts, list) else []

    def card(self, name: str) -> str:
        entry = self.entries.get(name)
        if entry is None:
            return "No checkpoints found. Train one with `textrnn train CORPUS`."
        if "error" in entry:
            return f"**{name}** is unavailable:\n\n```\n{entry['error']}\n```"
        about = entry["manifest"].get("about", "")
        card = textrnn.model_card(entry["config"])
        return f"**{name}**{': ' + about if about else ''}\n\n```\n{card}\n```"

    def curve(self, name: str) -> pd.DataFrame:
        """Training and validation loss by step, from the run's metrics.jsonl."""
        rows = []
        path = self.entries.get(name, {}).get("path")
        for r in textrnn.read_metrics(path) if path is not None else []:
            for key, split in (("train_loss", "train"), ("val_loss", "validation")):
                if isinstance(r.get(key), (int, float)):
                    rows.append({"step": r["step"], "nats/char": r[key], "split": split})
        return pd.DataFrame(rows, columns=["step", "nats/char", "split"])


def _manifest(path: Path) -> dict:
    """A checkpoint's examples.json ({"about", "prompts"}), or {} if none is readable."""
    try:
        doc = json.loads((path / "examples.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _clamp(value, low, high, default):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(value) else min(max(value, low), high)


def _seed(value) -> int:
    """Blank means a fresh random seed; anything else must be a whole number."""
    if value is None or str(value).strip() == "":
        return textrnn.new_seed()
    try:
        return int(str(value).strip()) % 2**31
    except ValueError:
        raise gr.Error(f"Seed must be a whole number, or blank for a random one; got {value!r}.")


def make_generate(catalog: Catalog):
    def generate(name, prompt, length, temperature, top_k, top_p, seed):
        """Stream (prompt + text so far, seed used); the seed reproduces the sample."""
        lm = catalog.get(name)
        prompt = str(prompt or "")
        if len(prompt) > MAX_PROMPT_CHARS:
            gr.Warning(f"Prompt cut to its last {MAX_PROMPT_CHARS} characters.")
            prompt = prompt[-MAX_PROMPT_CHARS:]
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

    return generate


def build(catalog: Catalog) -> gr.Blocks:
    first = catalog.default()
    with gr.Blocks(title="textrnn") as demo:
        gr.Markdown("# textrnn\nCharacter- and token-level recurrent language models, sampled "
                    "live. Pick a model, give it a start, and watch it write.")
        with gr.Row():
            with gr.Column(scale=3):
                model = gr.Dropdown(catalog.choices(), value=first, label="Model", elem_id="model")
                prompt = gr.Textbox(label="Prompt", lines=3, elem_id="prompt",
                                    placeholder="Start the text here, or leave it empty")
                examples = gr.Dataset(components=[prompt], label="Examples",
                                      samples=[[p] for p in catalog.examples(first)])
                with gr.Row():
                    run = gr.Button("Generate", variant="primary", elem_id="generate")
                    stop = gr.Button("Stop", variant="stop")
                output = gr.Textbox(label="Text", lines=14, max_lines=30, autoscroll=True,
                                    buttons=["copy"], interactive=False, elem_id="output")
            with gr.Column(scale=2):
                length = gr.Slider(1, MAX_NEW_CHARS, value=400, step=1, label="Length",
                                   info="characters to generate", elem_id="length")
                temperature = gr.Slider(0, MAX_TEMPERATURE, value=0.8, step=0.05,
                                        label="Temperature", info="0 = always the likeliest")
                top_k = gr.Slider(0, 100, value=0, step=1, label="Top-k",
                                  info="sample from the k likeliest; 0 = off")
                top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p",
                                  info="sample from the likeliest whose odds reach p; 1 = off")
                seed = gr.Textbox(label="Seed", placeholder="random",
                                  info="blank = random; keep it to draw the same text again")
                used = gr.Number(label="Seed used", precision=0, interactive=False)
                card = gr.Markdown(catalog.card(first) if first else catalog.card(""))
                curve = gr.LinePlot(catalog.curve(first) if first else None, x="step",
                                    y="nats/char", color="split", height=240,
                                    color_map={"train": "#6366f1", "validation": "#f59e0b"},
                                    label="Loss while training", title="Loss while training")

        def select(name):
            return (catalog.card(name), catalog.curve(name),
                    gr.Dataset(samples=[[p] for p in catalog.examples(name)]))

        model.change(select, model, [card, curve, examples], api_visibility="private")
        examples.click(lambda sample: sample[0], examples, prompt, api_visibility="private")
        event = run.click(make_generate(catalog),
                          [model, prompt, length, temperature, top_k, top_p, seed],
                          [output, used], api_name="generate")
        stop.click(None, None, None, cancels=[event], api_visibility="private")
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
    args = parser.parse_args(argv)
    # Compile the generation kernel (once per machine, about a second; cached after) while the
    # page starts, rather than on the first click.
    threading.Thread(target=textrnn.kernel_status, daemon=True).start()
    demo = build(Catalog(args.checkpoints))
    demo.queue(default_concurrency_limit=4).launch(
        server_name=args.host, server_port=args.port, share=args.share or None,
        theme=gr.themes.Soft(), css=CSS)


if __name__ == "__main__":
    main()
