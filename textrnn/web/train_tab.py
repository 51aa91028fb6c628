"""The page's Train tab: bring a text, pick a budget and a tokenizer, watch the run learn, then
generate from it and download it. The jobs themselves are workbench.py's; this file only draws
them."""

from __future__ import annotations

import math
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

import textrnn

from . import downloads
from .catalog import CAPTION, PLOT, Catalog, curve_table
from .messages import warn
from .request import number
from .workbench import (JOBS, MAX_CORPUS_BYTES, TOKENIZERS, Job, Refused, Workbench, check_text,
                        too_large)

POLL_S = 1.0  # how often a visitor's page asks how its run is going


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def describe(bench: Workbench, job: Job) -> str:
    """One line on where a job stands: its place in the line, its progress, or its end."""
    if job.state == "waiting":
        n, wait = bench.position(job), _clock(bench.wait_s(job))
        return (f"waiting: {n - 1} run{'s' if n != 2 else ''} ahead of yours (one trains at "
                f"a time); yours starts in about {wait}" if n > 1 else
                f"waiting: yours is next, in about {wait}")
    if job.stop_asked and not job.finished:
        left = job.stop_at + bench.stop_grace_s - time.time()
        return ("stopping: the run ends at its next step and keeps its checkpoint (if it has "
                f"not ended in {max(0, math.ceil(left))} s, it is killed)")
    if job.state == "preparing":
        return "preparing: reading the text, choosing the settings"
    if job.state == "training":
        left = max(0.0, job.budget_s - job.trained_s)
        return (f"training: {_clock(job.trained_s)} of {_clock(job.budget_s)} "
                f"({job.trained_s / max(job.budget_s, 1e-9):.0%}), about {_clock(left)} left")
    if job.state == "failed":
        return f"failed: {_private(bench, job, job.error)}"
    best = min((r.val_loss for r in job.losses if isinstance(r, textrnn.ValRecord)),
               default=math.nan)
    said = "done" if job.state == "done" else "stopped"
    return (f"{said}: {job.name} is in the model list" + (
        f", validation {best:.3f} nats/char ({best / math.log(2):.3f} bits/char)"
        if best == best else "") if job.zip else f"{said}: {job.error or 'no checkpoint yet'}")


def under_way(bench: Workbench) -> str:
    """What a visitor with no run of theirs is told: the runs training and waiting, and when a
    run queued now would start; "" when the workbench is idle."""
    going = bench.under_way()
    if not going:
        return ""
    waiting = len(going) - 1
    return (f"{len(going)} run{'s' if len(going) != 1 else ''} in line: 1 training"
            + (f", {waiting} waiting" if waiting else "")
            + f"; a run queued now starts in about {_clock(bench.wait_s())}")


def _curve(job: Job):
    """The run's losses so far; nothing before the first (see catalog.curve_table)."""
    table = curve_table(job.losses)
    return gr.skip() if table is None else table


def _private(bench: Workbench, job: Job, line: str) -> str:
    """A line the run wrote, without the server's paths."""
    work = str(bench.root / JOBS / job.id)
    return (line.replace(f"{work}/corpus.txt", "your text").replace(work, "")
            .replace(str(bench.run_folder(job)), job.name).replace(str(bench.root), "runs"))


def _said(bench: Workbench, job: Job) -> str:
    """What the run chose, without the server's paths (its child leaves out the command
    line's hints)."""
    return "\n".join(_private(bench, job, line) for line in job.lines
                     if not line.startswith("token files:"))


def _served(job: Job) -> str | None:
    """The job's zip, copied where Gradio serves downloads from (downloads.py); the runs
    folder itself is never served."""
    if job.zip is None or not job.zip.is_file():
        return None
    return downloads.copy(job.zip)


def _read_upload(path: str) -> tuple[bytes, str]:
    """An uploaded file's bytes (refused past the limit without reading it all) and a label
    from its name."""
    p = Path(path)
    if p.stat().st_size > MAX_CORPUS_BYTES:
        raise too_large("The file", p.stat().st_size)
    return p.read_bytes(), p.stem


def tab(demo: gr.Blocks, bench: Workbench | None, catalog: Catalog, model: gr.Dropdown,
        mine: gr.BrowserState, secret: gr.BrowserState) -> None:
    """The Train tab's components and events; `model` is the Generate tab's model list, which a
    finished run joins (for this visitor alone: `mine` holds their runs' names; `secret` the key
    to their run under way). Both live outside the tab: a tab's content mounts only when
    opened, too late for a page load to read what the browser kept."""
    if bench is None:
        gr.Markdown("Training in the page is turned off on this server (`--no-training`). "
                    "Train on your own machine with `textrnn train YOUR_TEXT`, then `textrnn "
                    "serve runs`.")
        return
    c = _layout(bench)
    h = Handlers(bench, catalog)
    c.start.click(lambda: gr.DownloadButton(visible=False), None, c.download,
                  api_visibility="private").then(
        h.submit, [c.upload, c.pasted, c.minutes, c.tokenizer, secret],
        [secret, c.status, c.timer, c.download], api_visibility="private", preprocess=False)
    shown = [c.status, c.sample, c.chosen, c.curve, c.download, c.timer, mine, model]  # poll's
    c.timer.tick(h.poll, [secret, mine], shown, api_visibility="private")
    c.stop.click(h.halt, secret, c.status, api_visibility="private")
    demo.load(h.poll, [secret, mine], shown,
              api_visibility="private")  # a reload picks up this visitor's run again


def _layout(bench: Workbench) -> SimpleNamespace:
    """The tab's components, by name."""
    gr.Markdown(f"Bring a text (a `.txt` file or a paste, at least a few pages, at most "
                f"{MAX_CORPUS_BYTES // 2**20} MB) and watch a network learn it. The settings "
                "are chosen for your text and budget, and shown as they are chosen. One run "
                "trains at a time; yours keeps for a day, and you can download it.")
    with gr.Row():
        with gr.Column(scale=3):
            upload = gr.File(label="Upload a .txt file", file_types=[".txt"],
                             type="filepath", elem_id="upload")
            pasted = gr.Textbox(label="Or paste text", lines=6, elem_id="paste",
                                max_length=MAX_CORPUS_BYTES)
        with gr.Column(scale=2):
            max_minutes = bench.max_minutes
            minutes = gr.Slider(0.5, max_minutes, value=min(2, max_minutes), step=0.5,
                                label="Training time", info="minutes", elem_id="minutes",
                                buttons=[])
            tokenizer = gr.Radio(list(TOKENIZERS), value="char", label="Tokenizer",
                                 info="char: one token a character; bpe: common pieces of "
                                 "words; byte: one token a UTF-8 byte", elem_id="tokenizer")
            with gr.Row():
                start = gr.Button("Train", variant="primary", elem_id="train")
                stop = gr.Button("Stop training", variant="stop", elem_id="stop-training")
            status = gr.Markdown("", elem_id="train-status")
            download = gr.DownloadButton("Download the model (.zip)", visible=False,
                                         elem_id="download")
    with gr.Row():
        with gr.Column(scale=3):
            sample = gr.Textbox(label="Sample at the last validation", lines=8, max_lines=12,
                                interactive=False, elem_id="train-sample")
            chosen = gr.Textbox(label="What the run chose", lines=4, max_lines=8,
                                interactive=False, elem_id="train-log")
        with gr.Column(scale=2):
            gr.Markdown(CAPTION, elem_id="train-curve-caption")
            curve = gr.LinePlot(None, label="Loss while training", elem_id="train-curve",
                                **PLOT)
    timer = gr.Timer(POLL_S, active=False)
    return SimpleNamespace(upload=upload, pasted=pasted, minutes=minutes, tokenizer=tokenizer,
                           start=start, stop=stop, status=status, download=download,
                           sample=sample, chosen=chosen, curve=curve, timer=timer)


NOTHING = ("There is nothing to train on: upload a .txt file (plain UTF-8 text, at most 1 MB) "
           "or paste some text.")


class Handlers:
    """The tab's events over one workbench: queue a run, report on it, stop it. A run is found
    by its secret (Job.secret), which only its visitor's browser holds."""

    def __init__(self, bench: Workbench, catalog: Catalog):
        self.bench, self.catalog = bench, catalog

    def submit(self, upload, text, minutes, tokenizer, current, request: gr.Request = None):
        """Queue a run. Its event is not preprocessed (a raw API call's minutes could be
        anything): `upload` is Gradio's file record ({"path": ...}, in its cache already)."""
        try:
            going = self.bench.get(current)
            if going is not None and not going.finished:
                raise Refused("Your run is still going: stop it first, or let it finish.")
            path = upload.get("path") if isinstance(upload, dict) else None
            if path:
                data, label = _read_upload(path)
                corpus = check_text(data)
            elif not isinstance(text, str) or not text.strip():  # an upload the browser
                raise Refused(NOTHING)                          # refused never arrives
            else:
                corpus, label = check_text(text), "pasted"
            if number(minutes) is None:
                raise Refused(f"Training time must be a number of minutes; got "
                              f"{str(minutes)[:40]!r}.")
            job = self.bench.submit(corpus, number(minutes), str(tokenizer), label,
                                    *_visitor(request))
        except OSError as e:
            print(f"textrnn app: a run could not be queued: {e}", flush=True)
            said = warn("The run could not be queued (the server's disk); try again later.")
            return gr.skip(), f"⚠ {said}", gr.skip(), gr.skip()  # a run under way keeps its poll
        except Refused as e:
            return gr.skip(), f"⚠ {warn(e)}", gr.skip(), gr.skip()
        return job.secret, describe(self.bench, job), gr.Timer(active=True), gr.DownloadButton(
            visible=False)

    def poll(self, secret, mine):
        job = self.bench.get(secret)
        if job is None:  # no run of theirs: what is under way, if anything
            return under_way(self.bench), *[gr.skip()] * 4, gr.Timer(active=False), \
                gr.skip(), gr.skip()
        last = job.samples[-1] if job.samples else None
        text = f"(step {last[0]:,})\n{last[1]}" if last else ""
        if not job.finished:
            return (describe(self.bench, job), text, _said(self.bench, job), _curve(job), gr.skip(),
                    gr.Timer(active=True), gr.skip(), gr.skip())
        served = _served(job)
        mine = list(mine or [])
        if served and job.name not in mine:
            mine.append(job.name)
        self.catalog.forget(job.name)  # a page load may have read it mid-run
        self.catalog.rescan()
        listed = gr.Dropdown(choices=self.catalog.choices(mine),
                             **({"value": job.name} if served else {}))
        return (describe(self.bench, job), text, _said(self.bench, job), _curve(job),
                gr.DownloadButton(value=served, visible=bool(served)), gr.Timer(active=False),
                mine, listed)

    def halt(self, secret):
        """Stop the visitor's run; the status says so at once (the poll goes on saying it)."""
        job = self.bench.get(secret)
        if job is None or job.finished:
            return gr.skip()
        self.bench.stop(job)
        return describe(self.bench, job)


def _visitor(request: gr.Request | None) -> tuple[str | None, str | None]:
    """Who asks: the client's address (as the server resolved it: X-Forwarded-For counts only
    from a trusted proxy, see server.py) and the page's session."""
    if request is None:
        return None, None
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or None, request.session_hash or None
