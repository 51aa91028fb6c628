"""The models the page offers: the checkpoint folders under one directory, models on the Hugging
Face Hub named by repo id, and (if given) the visitors' own runs under another directory, each
read on first sight and loaded on first use."""

from __future__ import annotations

import json
import math
import re
import sys
import threading
from pathlib import Path

import gradio as gr
import pandas as pd

import textrnn

MAX_MODEL_BYTES = 2**30  # a model's weights the page serves, at most (1 GiB, 268M weights: the
# page keeps every model it has loaded in memory, and the shipped ones are 2-8 MB each)


def _read(path: Path) -> dict:
    """A checkpoint's config, after its weights' size is checked against the page's limit."""
    textrnn.check_weight_size(path, MAX_MODEL_BYTES)  # (a run's last/ if its top has none)
    return textrnn.read_config(path)


class Catalog:
    """The checkpoint folders under one directory, each loaded on first use and kept."""

    def __init__(self, root: str | Path | None, private: str | Path | None = None,
                 hub: tuple[str, ...] = ()):
        """`root` holds the models everyone sees, and so do the Hub models `hub` names
        (user/name[@revision], fetched now into the Hub's cache, or said unavailable);
        `private`, if given, holds visitors' runs, each listed only to the visitor who trained
        it (see `choices`)."""
        self.root = Path(root) if root is not None else None
        self.private = Path(private) if private else None
        self.entries: dict[str, dict] = {}  # name -> {"path", "manifest", "config" | "error"}
        self._models: dict[str, textrnn.LM] = {}
        self._lock = threading.Lock()
        for name in hub:
            self._fetch(name)
        self.rescan()

    def _fetch(self, name: str) -> None:
        """A Hub model's entry: its folder in the Hub's cache, or why it cannot be had."""
        try:
            path = textrnn.locate(name)
            self.entries[name] = {"path": path, "manifest": _manifest(path),
                                  "config": _read(path)}
        except (OSError, ValueError) as e:
            self.entries[name] = {"path": None, "manifest": {}, "error": unavailable(e, name),
                                  "hub": True}

    def rescan(self) -> None:
        """Take in folders that are new, or that were unavailable (a run still writing its
        first checkpoint, say), since the last look; loaded models are kept, and those whose
        folder is gone (a visitor's run cleaned away) are dropped."""
        private = self.private.resolve() if self.private else None
        folders = [p for root in (self.root, self.private) if root is not None and root.is_dir()
                   for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")
                   and (root == self.private or p.resolve() != private)]  # runs/web in runs/
        with self._lock:
            for name in [n for n, e in self.entries.items()
                         if e["path"] is not None and not e["path"].is_dir()]:
                del self.entries[name]
                self._models.pop(name, None)
            for path in folders:
                if path.name in self.entries and "error" not in self.entries[path.name]:
                    continue
                entry = {"path": path, "manifest": _manifest(path)}
                try:
                    entry["config"] = _read(path)
                except (OSError, ValueError) as e:
                    said = self.entries.get(path.name, {}).get("error")  # logged once
                    entry["error"] = unavailable(e, path.name, path, log=said is None)
                self.entries[path.name] = entry
                self._models.pop(path.name, None)
            self.entries = dict(sorted(self.entries.items()))

    def forget(self, name: str) -> None:
        """Drop what is known of `name` (a run that has just finished): the next rescan reads
        it afresh."""
        with self._lock:
            self.entries.pop(name, None)
            self._models.pop(name, None)

    def choices(self, mine=()) -> list[tuple[str, str]]:
        """(label, name) of every model to list: the shared ones, and of the private ones
        those named in `mine` (a visitor's own runs)."""
        return [(name if "error" not in e else f"{name} (unavailable)", name)
                for name, e in self.entries.items() if not self.is_private(name) or name in mine]

    def default(self) -> str | None:
        return next((n for n, e in self.entries.items()
                     if "error" not in e and not self.is_private(n)), None)

    def is_private(self, name: str) -> bool:
        entry = self.entries.get(name)
        return bool(entry and self.private and entry["path"] is not None
                    and entry["path"].parent == self.private)

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
                    textrnn.check_weight_size(entry["path"], MAX_MODEL_BYTES)  # (it may grow)
                    self._models[name] = textrnn.load(entry["path"])
                except (OSError, ValueError) as e:
                    entry["error"] = unavailable(e, name, entry["path"])
                    raise gr.Error(f"{name} is unavailable: {entry['error']}") from None
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
        return (f"**{name}**{': ' + about if about else ''}\n\n```\n{card}\n"
                f"from       {self.origin(name)}\n```")

    def origin(self, name: str) -> str:
        """Where a model came from, as its card says: the Hub (repo and commit), a visitor's
        run on this page, or the server's folder (its name only: no server paths)."""
        source = textrnn.origin(self.entries[name]["path"])
        if source.startswith("hub:"):
            repo, _, commit = source.removeprefix("hub:").partition("@")
            return f"the Hugging Face Hub: {repo}, commit {commit[:12]}"
        if self.is_private(name):
            return "a run trained on this page"
        return f"this server's {self.root.name}/ folder" if self.root else "this server"

    def curve(self, name: str) -> pd.DataFrame | None:
        """Training and validation loss by step, from the run's metrics.jsonl."""
        path = self.entries.get(name, {}).get("path")
        return curve_table(textrnn.read_metrics(path) if path is not None else [])


COLOURS = {"train": "#6366f1", "validation": "#f59e0b"}
# A loss plot, as both tabs draw one. Its caption is a Markdown above it, not its label: a
# label inside the plot's box pushes the x axis out of it (Gradio sizes the chart to the box),
# and Gradio's own legend is cut off below.
PLOT = dict(x="step", y="nats/char", color="split", height=240, color_map=COLOURS,
            colors_in_legend=[], show_label=False,
            x_axis_format="~s")  # 1.6k, 2k: "1,600" and "2,000" ran together on a phone
# Gradio's line plot draws a series' line only, so a series of one point (a run's first
# validation) showed nothing: validation points get a dot (an SVG marker, which PLOT_JS puts in
# the page), and lines get round ends, which draw a lone training point as a dot too.
PLOT_CSS = (f".plot_marks path[stroke='{COLOURS['validation']}'] {{marker: url(#textrnn-dot)}}"
            ".plot_marks path {stroke-linecap: round; stroke-linejoin: round}")
PLOT_JS = ("document.body.insertAdjacentHTML('beforeend', `<svg width='0' height='0' "
           "style='position:absolute' aria-hidden='true'><defs><marker id='textrnn-dot' "
           "viewBox='0 0 10 10' refX='5' refY='5' markerWidth='9' markerHeight='9' "
           f"markerUnits='userSpaceOnUse'><circle cx='5' cy='5' r='4' "
           f"fill='{COLOURS['validation']}'/></marker></defs></svg>`);")
CAPTION = "**Loss while training**: " + ", ".join(
    f'<span style="color:{colour}">━ {split}</span>' for split, colour in COLOURS.items())


def curve_table(records) -> pd.DataFrame | None:
    """Loss by step and split from metrics records, as the page's plots take it; None when
    there is nothing to draw (a Gradio plot stays blank for good once sent an empty table).
    Both splits are always there, a split with no point yet as one blank point: a plot keeps
    the colours of the splits in the first table it was sent."""
    rows = [(r.step, r.train_loss, "train") if isinstance(r, textrnn.TrainRecord) else
            (r.step, r.val_loss, "validation") for r in records]
    if not rows:
        return None
    rows += [(rows[0][0], math.nan, split) for split in COLOURS
             if all(row[2] != split for row in rows)]
    return pd.DataFrame(rows, columns=["step", "nats/char", "split"])


ABSOLUTE = re.compile(r"(?<![\w.~:/])(?:/[^\s/'\"`:]+)+/([^\s/'\"`:]+)")  # /a/b/c -> c


def unavailable(error: Exception, name: str, path: Path | None = None, log: bool = True
                ) -> str:
    """Why a model cannot be had, as the page says it: the model's name for its folder, and no
    other path of the server's either (a file's own name is kept), nor backticks. The whole of it
    goes to the log, unless `log` is False (said before)."""
    message = str(error)
    if log:
        print(f"textrnn app: {name} is unavailable: {message}", file=sys.stderr, flush=True)
    if path is not None:
        for folder in sorted({str(path), str(path.resolve())}, key=len, reverse=True):
            message = message.replace(folder, name)
    message = message.replace("`", "")  # Markdown in the library's words: a toast shows it raw
    return ABSOLUTE.sub(r"\1", message)


def _manifest(path: Path) -> dict:
    """A checkpoint's examples.json ({"about", "prompts"}), or {} if none is readable."""
    try:
        doc = json.loads((path / "examples.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}
