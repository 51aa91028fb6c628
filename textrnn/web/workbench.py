"""The page's training jobs: a visitor's text becomes a run folder under the app's runs folder,
trained by the library's own `textrnn.train` in a child process at lower priority, one job at a
time, the others waiting in line. No training logic lives here.

    bench = Workbench(Path("runs/web"), max_minutes=10)
    job = bench.submit(text, minutes=2, tokenizer="char", label="my-poems")
    bench.position(job)   # 0 while it trains, 1.. while it waits
    bench.stop(job)       # ends it at a step's end; the checkpoint is kept

The child is trainer.py (`python -m textrnn.web.trainer CONFIG`): it lowers its priority, then
calls `textrnn.train` with a Reporter that writes each event (a line, the budget, a training or
validation record, the end) as one JSON line on stdout, which a thread here reads into the job.
A visitor never names a path: folders are named here, from a random id.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import textrnn

MAX_TRAIN_MINUTES = 10         # the most a visitor's run may train; --max-train-minutes lowers it
MAX_CORPUS_BYTES = 2**20       # an upload or a paste; Gradio's own upload limit is the same
MIN_CORPUS_CHARS = 500         # less is learned by heart in seconds; there is nothing to watch
TOKENIZERS = ("char", "bpe", "byte")
JOBS = ".jobs"                 # beside the runs: each job's corpus, token files and zip
CLEAN_EVERY_S = 600            # how often an idle workbench looks for runs past their age
MAX_WAITING = 8                # runs in line at most; past it a visitor is told to come back
RUN_BYTES = 40 * 2**20         # a finished run's checkpoint, zip and log, counted ahead of time
OVERTIME_S = 600               # a child still running this long past its budget is killed


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


class Refused(ValueError):
    """A request the workbench turns away, with a one-line reason for the visitor."""


def too_large(what: str, size: int) -> Refused:
    """The refusal of a text (or a file) of `size` bytes, past MAX_CORPUS_BYTES."""
    return Refused(f"{what} is {size:,} bytes; the page trains on at most {MAX_CORPUS_BYTES:,} "
                   "(1 MB); train bigger corpora with `textrnn train`.")


def check_text(data: bytes | str) -> str:
    """The text of an upload or a paste, or Refused with why it cannot be trained on."""
    if isinstance(data, str):
        data = data.encode("utf-8", errors="surrogatepass")
    if len(data) > MAX_CORPUS_BYTES:
        raise too_large("The text", len(data))
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
    losses: list = field(default_factory=list)  # its textrnn.TrainRecord and ValRecord
    samples: list[tuple[int, str]] = field(default_factory=list)  # (step, text) per validation
    budget_s: float = 0.0
    trained_s: float = 0.0
    error: str = ""
    zip: Path | None = None
    stop_asked: bool = False
    ending: str = ""           # "done" or "stopped", as the child said; final once zipped

    @property
    def finished(self) -> bool:
        return self.state in ("done", "stopped", "failed")


class Workbench:
    """Visitors' runs under `root`: a line of jobs, trained one at a time, and a cap on their
    age and on the disk they use (the oldest finished runs go first)."""

    def __init__(self, root: str | Path, max_minutes: float = MAX_TRAIN_MINUTES,
                 keep_hours: float = 24,
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
        if len(self.line) >= MAX_WAITING:
            raise Refused(f"{len(self.line)} runs are waiting already; try again in a few "
                          "minutes.")
        used = self.clean()
        ahead = (len(self.line) + 1) * RUN_BYTES + 4 * len(text.encode())
        if used + ahead > self.max_bytes:
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
        checkpoint. The child hears it as the end of its stdin: a signal could be lost (a
        process started in the background ignores SIGINT, and so do its children until they
        set a handler), a closed pipe cannot."""
        with self._lock:
            if job.stop_asked:
                return
            job.stop_asked = True
            if job in self.line:
                self.line.remove(job)
                job.state, job.error = "stopped", "stopped before it started"
            elif self.running is job and self._child is not None:
                self._child.stdin.close()

    def run_folder(self, job: Job) -> Path:
        return self.root / job.name

    def clean(self) -> int:
        """Remove finished runs older than the age limit, then the oldest finished ones until
        the runs folder is under its disk cap. Running and waiting jobs are kept. Returns the
        bytes the runs folder holds after."""
        with self._lock:  # (reentrant: the line's thread calls this holding it)
            busy = {j.id for j in self.line} | ({self.running.id} if self.running else set())
            work = self.root / JOBS
            folders = sorted((p for p in work.iterdir() if p.is_dir() and p.name not in busy),
                             key=_mtime)
            now, used = time.time(), self._used()
            for p in folders:
                if now - _mtime(p) > self.keep_s or used > self.max_bytes:
                    used -= self._remove(p.name)
            return used

    # -- the line ----------------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            with self._lock:
                while not self.line:
                    if not self._lock.wait(timeout=CLEAN_EVERY_S):
                        try:  # an idle while: old runs go even if no one comes
                            self.clean()
                        except OSError as e:
                            print(f"textrnn app: cleaning runs: {e}", file=sys.stderr)
                job = self.running = self.line.pop(0)
            try:
                self._train(job)
            except Exception as e:  # the line goes on whatever one job does
                job.state, job.error = "failed", f"the run failed: {type(e).__name__}"
                print(f"textrnn app: run {job.name} failed: {e!r}", file=sys.stderr)
            finally:
                with self._lock:
                    if self._child is not None and self._child.poll() is None:
                        self._child.kill()  # never two trainings at once
                    self.running, self._child = None, None

    def _train(self, job: Job) -> None:
        work = self.root / JOBS / job.id
        config = {"corpus": str(work / "corpus.txt"), "out": str(self.run_folder(job)),
                  "tokenizer": job.tokenizer, "time_budget": job.minutes * 60,
                  "data_cache": str(work / "tokens"), "threads": self.threads}
        with self._lock:
            if job.stop_asked:  # between leaving the line and here
                job.state, job.error = "stopped", "stopped before it started"
                return
            job.state = "preparing"
        with open(work / "stderr.txt", "w", encoding="utf-8") as errors:  # never a full pipe
            child = subprocess.Popen(
                [sys.executable, "-m", "textrnn.web.trainer", json.dumps(config)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True,
                encoding="utf-8", env=_child_env())
        watchdog = threading.Timer(job.minutes * 60 + OVERTIME_S, child.kill)
        watchdog.start()
        with self._lock:
            self._child = child
            if job.stop_asked:
                child.stdin.close()
        try:
            for line in child.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and len(event) == 1:
                    self._hear(job, event)
            child.wait()
        finally:
            watchdog.cancel()
            with self._lock:
                child.stdin.close()
        if job.stop_asked and not job.ending and job.state != "failed":
            job.state, job.error = "stopped", "stopped before its first step"
        elif job.ending and job.state != "failed":
            job.zip = self._zip(job)  # before the state says finished: the page offers it then
            shutil.rmtree(work / "tokens", ignore_errors=True)  # the page never resumes a run
            if _has_best(self.run_folder(job)):  # else last/ is the only checkpoint there is
                shutil.rmtree(self.run_folder(job) / "last", ignore_errors=True)
            job.state = job.ending
        elif job.state != "failed":
            job.state = "failed"
            said = (work / "stderr.txt").read_text(encoding="utf-8", errors="replace")
            job.error = (said.strip().splitlines() or ["the run ended"])[-1]

    def _hear(self, job: Job, event: dict) -> None:
        kind, value = next(iter(event.items()))
        if kind == "log":
            job.lines.append(value)
        elif kind == "begin":
            job.state, job.budget_s = "training", value
        elif kind in ("trained", "validated"):
            record = textrnn.parse_record(value)
            if record is None:
                return
            job.losses.append(replace(record, sample=None) if kind == "validated" else record)
            if kind == "trained":
                job.trained_s = record.train_time
            elif record.sample:
                job.samples.append((record.step, record.sample))
        elif kind == "end":
            job.ending = value
        elif kind == "error":
            job.state, job.error = "failed", value

    def _zip(self, job: Job) -> Path | None:
        """The run as `<name>.zip` (textrnn.export_zip), or None if it saved no checkpoint."""
        try:
            return textrnn.export_zip(self.run_folder(job),
                                      self.root / JOBS / job.id / f"{job.name}.zip", job.name)
        except (OSError, ValueError):
            return None

    # -- disk --------------------------------------------------------------------------------

    def _used(self, under: Path | None = None) -> int:
        """Bytes of files under `under` (the runs folder); files that vanish meanwhile (a run
        renaming its checkpoint) count as nothing."""
        total = 0
        for f in (under or self.root).rglob("*"):
            try:
                total += f.stat().st_size if f.is_file() else 0
            except OSError:
                pass
        return total

    def _remove(self, job_id: str) -> int:
        """Remove a job's folders; the bytes freed."""
        job = self.jobs.pop(job_id, None)
        name = job.name if job else None
        if name is None:  # a run from before a restart: find it by its id
            name = next((p.name for p in self.root.glob(f"web-*-{job_id}")), None)
        folders = [self.root / JOBS / job_id] + ([self.root / name] if name else [])
        freed = sum(self._used(f) for f in folders)
        for f in folders:
            shutil.rmtree(f, ignore_errors=True)
        return freed


def _has_best(run: Path) -> bool:
    """Whether a run folder holds a best checkpoint (a run stopped before its first
    validation has only last/)."""
    return textrnn.is_checkpoint(run)


def _child_env() -> dict:
    """The environment of a job's child: this one, with the folder that holds the textrnn
    package first on its path, so that `-m textrnn.web.trainer` finds this very copy (installed
    or not, whatever the working folder)."""
    home = str(Path(textrnn.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": home + (os.pathsep + path if path else "")}
