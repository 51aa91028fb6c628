"""The page's training jobs: a visitor's text becomes a run folder under the app's runs folder,
trained by the library's own `textrnn.train` in a child process at lower priority, one job at a
time, the others waiting in line. No training logic lives here.

    bench = Workbench(Path("runs/web"), max_minutes=10)
    job = bench.submit(text, minutes=2, tokenizer="char", label="my-poems")
    bench.position(job)   # 0 while it trains, 1.. while it waits
    bench.stop(job)       # ends it at a step's end; the checkpoint is kept

The child is this file run as a script (`python workbench.py --child CONFIG`): it lowers its
priority, then calls `textrnn.train` with a Reporter that writes each event (a line, the budget,
a training or validation record, the end) as one JSON line on stdout, which a thread here reads
into the job. A visitor never names a path: folders are named here, from a random id.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

MAX_CORPUS_BYTES = 2**20       # an upload or a paste; Gradio's own upload limit is the same
MIN_CORPUS_CHARS = 500         # less is learned by heart in seconds; there is nothing to watch
TOKENIZERS = ("char", "bpe", "byte")
NICE = 10                      # the child's priority below the page's: generation stays quick
JOBS = ".jobs"                 # beside the runs: each job's corpus, token files and zip
CLEAN_EVERY_S = 600            # how often an idle workbench looks for runs past their age


class Refused(ValueError):
    """A request the workbench turns away, with a one-line reason for the visitor."""


def check_text(data: bytes | str) -> str:
    """The text of an upload or a paste, or Refused with why it cannot be trained on."""
    if isinstance(data, str):
        data = data.encode("utf-8", errors="surrogatepass")
    if len(data) > MAX_CORPUS_BYTES:
        raise Refused(f"The text is {len(data):,} bytes; the page trains on at most "
                      f"{MAX_CORPUS_BYTES:,} (1 MB); train bigger corpora with `textrnn train`.")
    if not data.strip():
        raise Refused("The text is empty.")
    if b"\0" in data:
        raise Refused("That looks like a binary file (it has NUL bytes); upload plain text.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Refused(f"The file is not UTF-8 text (byte {e.start:,} cannot be read); save it "
                      "as UTF-8 and try again.") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    controls = sum(1 for c in text if ord(c) < 32 and c not in "\n\r\t\f")
    if controls > len(text) // 100:
        raise Refused("That looks like a binary file (many control characters); upload plain "
                      "text.")
    if len(text) < MIN_CORPUS_CHARS:
        raise Refused(f"The text has {len(text):,} characters; give at least "
                      f"{MIN_CORPUS_CHARS:,} (a few pages train best).")
    return text


@dataclass
class Job:
    id: str
    name: str                  # the run folder's name, also the model's name on the page
    minutes: float
    tokenizer: str
    state: str = "waiting"     # waiting, preparing, training, done, stopped, failed
    lines: list[str] = field(default_factory=list)     # what the run said (its choices)
    curve: list[dict] = field(default_factory=list)    # {"step", "nats/char", "split"}
    samples: list[tuple[int, str]] = field(default_factory=list)  # (step, text) per validation
    budget_s: float = 0.0
    trained_s: float = 0.0
    error: str = ""
    zip: Path | None = None
    stop_asked: bool = False
    ending: str = ""           # "done" or "stopped", as the child said; final once zipped
    submitted: float = field(default_factory=time.time)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "stopped", "failed")


class Workbench:
    """Visitors' runs under `root`: a line of jobs, trained one at a time, and a cap on their
    age and on the disk they use (the oldest finished runs go first)."""

    def __init__(self, root: str | Path, max_minutes: float = 10, keep_hours: float = 24,
                 max_mb: float = 500, threads: int | None = None):
        self.root = Path(root)
        self.max_minutes, self.keep_s, self.max_bytes = max_minutes, keep_hours * 3600, \
            max_mb * 2**20
        self.threads = threads or max(1, (os.cpu_count() or 2) - 1)
        self.jobs: dict[str, Job] = {}
        self.line: list[Job] = []           # waiting, in order
        self.running: Job | None = None
        self._child: subprocess.Popen | None = None
        self._lock = threading.Condition(threading.RLock())
        (self.root / JOBS).mkdir(parents=True, exist_ok=True)
        threading.Thread(target=self._serve, daemon=True, name="workbench").start()

    # -- what the page asks ------------------------------------------------------------------

    def submit(self, text: str, minutes: float, tokenizer: str, label: str = "text") -> Job:
        """Queue a run on `text` (already `check_text`ed) for `minutes` of training."""
        if tokenizer not in TOKENIZERS:
            raise Refused(f"Tokenizer must be one of {', '.join(TOKENIZERS)}; got {tokenizer!r}.")
        if not 0 < minutes <= self.max_minutes:
            raise Refused(f"Training time must be between 0 and {self.max_minutes:g} minutes.")
        self.clean()
        if self._used() + 4 * len(text.encode()) > self.max_bytes:
            raise Refused("The page's disk for visitors' runs is full; try again later.")
        stem = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:24] or "text"
        job = Job(secrets.token_hex(6), "", minutes, tokenizer)
        job.name = f"web-{stem}-{job.id}"
        work = self.root / JOBS / job.id
        with self._lock:  # `clean` never sees the folder before the job is in line
            work.mkdir(parents=True)
            (work / "corpus.txt").write_text(text, encoding="utf-8")
            self.jobs[job.id] = job
            self.line.append(job)
            self._lock.notify_all()
        return job

    def get(self, job_id: str | None) -> Job | None:
        return self.jobs.get(job_id) if job_id else None

    def position(self, job: Job) -> int:
        """0 while the job trains (or has finished), else its place in the line."""
        with self._lock:
            return self.line.index(job) + 1 if job in self.line else 0

    def stop(self, job: Job) -> None:
        """A waiting job leaves the line; a running one ends at a step's end and keeps its
        checkpoint (the child gets SIGINT, as from Ctrl-C)."""
        with self._lock:
            job.stop_asked = True
            if job in self.line:
                self.line.remove(job)
                job.state, job.error = "stopped", "stopped before it started"
                return
            child = self._child if self.running is job else None
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGINT)

    def run_folder(self, job: Job) -> Path:
        return self.root / job.name

    def clean(self) -> None:
        """Remove finished runs older than the age limit, then the oldest finished ones until
        the runs folder is under its disk cap. Running and waiting jobs are kept."""
        with self._lock:  # (reentrant: the line's thread calls this holding it)
            busy = {j.id for j in self.line} | ({self.running.id} if self.running else set())
            work = self.root / JOBS
            folders = sorted((p for p in work.iterdir() if p.is_dir() and p.name not in busy),
                             key=lambda p: p.stat().st_mtime)
            now = time.time()
            for p in folders:
                if now - p.stat().st_mtime > self.keep_s or self._used() > self.max_bytes:
                    self._remove(p.name)

    # -- the line ----------------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            with self._lock:
                while not self.line:
                    if not self._lock.wait(timeout=CLEAN_EVERY_S):
                        self.clean()  # an idle while: old runs go even if no one comes
                job = self.running = self.line.pop(0)
            try:
                self._train(job)
            except Exception as e:  # the line goes on whatever one job does
                job.state, job.error = "failed", f"the run failed: {e}"
            finally:
                with self._lock:
                    self.running, self._child = None, None

    def _train(self, job: Job) -> None:
        work = self.root / JOBS / job.id
        config = {"corpus": str(work / "corpus.txt"), "out": str(self.run_folder(job)),
                  "tokenizer": job.tokenizer, "time_budget": job.minutes * 60,
                  "data_cache": str(work / "tokens"), "threads": self.threads}
        job.state = "preparing"
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(config)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
        with self._lock:
            self._child = child
            if job.stop_asked:
                child.send_signal(signal.SIGINT)
        for line in child.stdout:
            try:
                self._hear(job, json.loads(line))
            except ValueError:
                continue
        errors = child.stderr.read()
        child.wait()
        if job.ending and job.state != "failed":
            job.zip = self._zip(job)  # before the state says finished: the page offers it then
            job.state = job.ending
        elif job.state != "failed":
            job.state = "failed"
            job.error = (errors.strip().splitlines() or ["the run ended"])[-1]

    def _hear(self, job: Job, event: dict) -> None:
        kind, value = next(iter(event.items()))
        if kind == "log":
            job.lines.append(value)
        elif kind == "begin":
            job.state, job.budget_s = "training", value
        elif kind == "trained":
            job.trained_s = value.get("train_time", job.trained_s)
            job.curve.append({"step": value["step"], "nats/char": value["train_loss"],
                              "split": "train"})
        elif kind == "validated":
            job.curve.append({"step": value["step"], "nats/char": value["val_loss"],
                              "split": "validation"})
            if value.get("sample"):
                job.samples.append((value["step"], value["sample"]))
        elif kind == "end":
            job.ending = value
        elif kind == "error":
            job.state, job.error = "failed", value

    def _zip(self, job: Job) -> Path | None:
        """The run's checkpoint as `<name>.zip`, a folder that `textrnn.load` takes once
        unpacked (its best checkpoint; `last/` if it was stopped before its first validation)."""
        import textrnn
        run = self.run_folder(job)
        source = run if (run / "config.json").is_file() else run / "last"
        try:
            textrnn.read_config(source)
        except (OSError, ValueError):
            return None
        path = self.root / JOBS / job.id / f"{job.name}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(source.iterdir()):
                if f.is_file() and not f.name.startswith("resume"):
                    z.write(f, f"{job.name}/{f.name}")
        return path

    # -- disk --------------------------------------------------------------------------------

    def _used(self) -> int:
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())

    def _remove(self, job_id: str) -> None:
        job = self.jobs.pop(job_id, None)
        name = job.name if job else None
        if name is None:  # a run from before a restart: find it by its id
            name = next((p.name for p in self.root.glob(f"web-*-{job_id}")), None)
        shutil.rmtree(self.root / JOBS / job_id, ignore_errors=True)
        if name:
            shutil.rmtree(self.root / name, ignore_errors=True)


# -- the child ---------------------------------------------------------------------------------

def _child(config: dict) -> int:
    """Train as `config` says, telling the parent on stdout (one JSON event a line)."""
    try:
        os.nice(NICE)
    except (AttributeError, OSError):
        pass
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    sys.stdout = sys.stderr  # nothing else may write to the parent's line
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def say(kind, value):
        out.write(json.dumps({kind: value}) + "\n")

    import torch

    import textrnn

    torch.set_num_threads(config.pop("threads"))

    class Events(textrnn.Reporter):
        def log(self, message):
            say("log", message)

        def begin(self, budget, state):
            say("begin", budget.seconds or 0)

        def trained(self, state, record):
            say("trained", record)

        def validated(self, state, record):
            say("validated", record)

    try:
        textrnn.train(textrnn.TrainConfig(**config), reporter=Events())
    except KeyboardInterrupt:
        say("end", "stopped")
        return 0
    except (ValueError, OSError, MemoryError) as e:
        say("error", str(e).splitlines()[0] if str(e) else type(e).__name__)
        return 1
    say("end", "done")
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    raise SystemExit(_child(json.loads(sys.argv[2])))
