"""The page's training jobs: a visitor's text becomes a run folder under the app's runs folder,
trained by the library's own `textrnn.train` in a child process at lower priority, one job at a
time, the others waiting in line. No training logic lives here.

    bench = Workbench(Path("runs/web"), max_minutes=10)
    job = bench.submit(text, minutes=2, tokenizer="char", label="my-poems",
                       address="192.0.2.7", session="...")   # one run at a time for each
    bench.get(job.secret) # the job, by what only its visitor's browser holds
    bench.position(job)   # 0 while it trains, 1.. while it waits
    bench.stop(job)       # ends it at a step's end; the checkpoint is kept

The child is trainer.py (`python -m textrnn.web.trainer CONFIG`): it lowers its priority, then
calls `textrnn.train` with a Reporter that writes each event (a line, the budget, a training or
validation record, the end) as one JSON line on stdout, which a thread here reads into the job.
A visitor never names a path: folders are named here, from a random id.
"""

from __future__ import annotations

import json
import math
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
STOP_GRACE_S = 20              # a child still running this long after Stop is killed (a step
                               # and a save take a second or two; a hung one never ends)
FRESH_S = 1800                 # a run finished this recently is not removed to make room: its
                               # visitor is likely still generating from it


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
    """The text of an upload (bytes) or a paste (str), or Refused with why it cannot be
    trained on."""
    if isinstance(data, str):
        _check_paste(data)
        data = data.encode("utf-8")
    if len(data) > MAX_CORPUS_BYTES:
        raise too_large("The text", len(data))
    if not data.strip():
        raise Refused("The text is empty.")
    if textrnn.looks_like_utf16(data[:4096]):  # as the command line says it
        raise Refused("That file looks like UTF-16 text; save it as UTF-8 and upload it again.")
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


def _check_paste(text: str) -> None:
    """Refused if a pasted text holds a lone surrogate (half of a character outside the Basic
    Multilingual Plane, e.g. an emoji cut in two), which no file can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise Refused(f"The pasted text has half of a character at character {e.start + 1:,} "
                      f"(U+{ord(text[e.start]):04X}, a lone surrogate); paste it again "
                      "whole.") from None


@dataclass
class Job:
    id: str
    name: str                  # the run folder's name, also the model's name on the page
    minutes: float
    tokenizer: str
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(16), repr=False)
    #                            what the visitor's browser holds to poll and stop it: the id
    #                            is in the public name, and a shared link carries that
    owner: tuple = (None, None)  # (client address, session) that queued it: one run each
    state: str = "waiting"     # waiting, preparing, training, done, stopped, failed
    lines: list[str] = field(default_factory=list)     # what the run said (its choices)
    losses: list = field(default_factory=list)  # its textrnn.TrainRecord and ValRecord
    samples: list[tuple[int, str]] = field(default_factory=list)  # (step, text) per validation
    budget_s: float = 0.0
    trained_s: float = 0.0
    error: str = ""
    zip: Path | None = None
    stop_asked: bool = False
    stop_at: float = 0.0       # when Stop was asked (time.time())
    killed: bool = False       # ended by the workbench, not by itself
    ending: str = ""           # "done" or "stopped", as the child said; final once zipped

    @property
    def finished(self) -> bool:
        return self.state in ("done", "stopped", "failed")


class Workbench:
    """Visitors' runs under `root`: a line of jobs, trained one at a time, one at a time per
    visitor, and a cap on their age and on the disk they use (the oldest finished runs go
    first)."""

    def __init__(self, root: str | Path, max_minutes: float = MAX_TRAIN_MINUTES,
                 keep_hours: float = 24, max_mb: float = 500, threads: int | None = None,
                 stop_grace_s: float = STOP_GRACE_S):
        self.root = Path(root)
        self.max_minutes, self.keep_s, self.max_bytes = max_minutes, keep_hours * 3600, \
            max_mb * 2**20
        self.threads = threads or max(1, (os.cpu_count() or 2) - 1)
        self.stop_grace_s = stop_grace_s
        self.jobs: dict[str, Job] = {}
        self._secrets: dict[str, Job] = {}  # a job by the secret its visitor's browser holds
        self.line: list[Job] = []           # waiting, in order
        self.running: Job | None = None
        self._child: subprocess.Popen | None = None
        self._lock = threading.Condition(threading.RLock())
        (self.root / JOBS).mkdir(parents=True, exist_ok=True)
        threading.Thread(target=self._serve, daemon=True, name="workbench").start()

    # -- what the page asks ------------------------------------------------------------------

    def submit(self, text: str, minutes: float, tokenizer: str, label: str = "text",
               address: str | None = None, session: str | None = None) -> Job:
        """Queue a run on `text` (already `check_text`ed) for `minutes` of training, for the
        visitor at `address` in `session` (each may be None: unknown), who may have one run
        in line or training at a time."""
        if tokenizer not in TOKENIZERS:
            raise Refused(f"Tokenizer must be one of {', '.join(TOKENIZERS)}; got {tokenizer!r}.")
        if not 0 < minutes <= self.max_minutes:
            raise Refused(f"Training time must be between 0 and {self.max_minutes:g} minutes.")
        stem = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:24] or "text"
        job = Job(secrets.token_hex(6), "", minutes, tokenizer, owner=(address, session))
        job.name = f"web-{stem}-{job.id}"
        work = self.root / JOBS / job.id
        with self._lock:  # one check and one append: two requests at once cannot both pass
            self._check_line(job.owner)
            self._make_room(RUN_BYTES + 4 * len(text.encode()))
            work.mkdir(parents=True)  # `clean` never sees the folder before the job is in line
            (work / "corpus.txt").write_text(text, encoding="utf-8")
            self.jobs[job.id], self._secrets[job.secret] = job, job
            self.line.append(job)
            self._lock.notify_all()
        return job

    def _check_line(self, owner: tuple) -> None:
        """Refused if the line is full, or if this visitor (the same address, or the same
        session) has a run in it or training already."""
        if len(self.line) >= MAX_WAITING:
            raise Refused(f"{len(self.line)} runs are waiting already; try again in about "
                          f"{_minutes_text(self.wait_s())}.")
        if any(a is not None and a == b for j in self.under_way()
               for a, b in zip(owner, j.owner)):
            raise Refused("A run of yours is in line or training already (one a visitor): "
                          "stop it, or let it finish.")

    def get(self, secret: str | None) -> Job | None:
        """The job whose secret (Job.secret, never its id or name) this is, if any."""
        return self._secrets.get(secret) if isinstance(secret, str) else None

    def under_way(self) -> list[Job]:
        """The jobs training or in line, the running one first."""
        with self._lock:
            return [j for j in [self.running, *self.line] if j is not None and not j.finished]

    def position(self, job: Job) -> int:
        """0 while the job trains (or has finished), else its place in the line."""
        with self._lock:
            return self.line.index(job) + 1 if job in self.line else 0

    def wait_s(self, job: Job | None = None) -> float:
        """About how long until `job` (waiting) starts, or a new run would: what the running
        run has left of its budget, and the budgets of those ahead in line."""
        with self._lock:
            ahead = self.line[:self.line.index(job)] if job in self.line else list(self.line)
            running = self.running
        left = _left_s(running) if running is not None and not running.finished else 0.0
        return left + sum(j.minutes * 60 for j in ahead)

    def stop(self, job: Job) -> None:
        """A waiting job leaves the line; a running one ends at a step's end and keeps its
        checkpoint, or is killed if it has not ended `stop_grace_s` later. The child hears
        Stop as the end of its stdin: a signal could be lost (a process started in the
        background ignores SIGINT, and so do its children until they set a handler), a
        closed pipe cannot."""
        with self._lock:
            if job.stop_asked:
                return
            job.stop_asked, job.stop_at = True, time.time()
            if job in self.line:
                self.line.remove(job)
                job.state, job.error = "stopped", "stopped before it started"
            elif self.running is job and self._child is not None:
                self._child.stdin.close()
                self._kill_later(job, self._child, self.stop_grace_s)

    def _kill_later(self, job: Job, child: subprocess.Popen, after_s: float) -> None:
        """Kill `child` (the job's) if it still runs `after_s` from now, unless it has said
        its end (it saved, and is exiting; the watchdog still bounds that)."""
        def kill():
            if child.poll() is None and not job.ending:
                job.killed = True
                child.kill()
        timer = threading.Timer(after_s, kill)
        timer.daemon = True
        timer.start()

    def run_folder(self, job: Job) -> Path:
        return self.root / job.name

    def clean(self, room: int = 0) -> int:
        """Remove finished runs older than the age limit, then the oldest finished ones until
        the runs folder, with `room` bytes more, is under its disk cap, but none finished
        within FRESH_S (its visitor is likely still using it). Running and waiting jobs are
        kept. Returns the bytes the runs folder holds after."""
        with self._lock:  # (reentrant: the line's thread calls this holding it)
            now, used = time.time(), self._used()
            fresh = min(FRESH_S, self.keep_s)
            for p in self._finished():
                age = now - _mtime(p)
                if age > self.keep_s or (used + room > self.max_bytes and age >= fresh):
                    used -= self._remove(p.name)
            return used

    def _finished(self) -> list[Path]:
        """The job folders of finished runs, oldest first (a folder's time is its run's last
        change: the end, when its zip is written)."""
        with self._lock:
            busy = {j.id for j in self.line} | ({self.running.id} if self.running else set())
            work = self.root / JOBS
            return sorted((p for p in work.iterdir() if p.is_dir() and p.name not in busy),
                          key=_mtime)

    def _make_room(self, size: int) -> None:
        """Make room for a new run of `size` bytes, counting besides the runs folder what the
        running run may still write (RUN_BYTES, less what it holds) and RUN_BYTES for each run
        in line: `clean` removes the oldest finished runs that are not fresh, or Refused says
        when that is not enough."""
        running = self.running
        room = size + RUN_BYTES * len(self.line) + (max(0, RUN_BYTES - sum(
            self._used(f) for f in self._folders(running))) if running else 0)
        if self.clean(room) + room <= self.max_bytes:
            return
        left = self._finished()  # all fresh now: the oldest frees up first
        if left:
            age = time.time() - _mtime(left[0])
            raise Refused("The page's disk for visitors' runs is full; try again in about "
                          f"{_minutes_text(min(FRESH_S, self.keep_s) - age)}.")
        raise Refused("The page's disk for visitors' runs is full; try again later.")

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
                self._command(config), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=errors, text=True, encoding="utf-8", env=_child_env())
        watchdog = threading.Timer(job.minutes * 60 + OVERTIME_S, child.kill)
        watchdog.start()
        with self._lock:
            self._child = child
            if job.stop_asked:
                child.stdin.close()
                self._kill_later(job, child, self.stop_grace_s)
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
        if job.killed and job.state != "failed":  # it hung: keep what it saved before
            job.error = (f"it had not ended {self.stop_grace_s:g} s after Stop, so it was "
                         "killed" + ("" if self._keep(job) else "; it had saved no checkpoint"))
            job.state = "stopped"
        elif job.stop_asked and not job.ending and job.state != "failed":
            job.state, job.error = "stopped", "stopped before its first step"
        elif job.ending and job.state != "failed":
            self._keep(job)
            job.state = job.ending
        elif job.state != "failed":
            job.state = "failed"
            said = (work / "stderr.txt").read_text(encoding="utf-8", errors="replace")
            job.error = (said.strip().splitlines() or ["the run ended"])[-1]

    def _keep(self, job: Job) -> Path | None:
        """A finished run's zip (set before its state says finished: the page offers it then),
        without its token files and, if it has a best checkpoint, its resume state: the page
        never resumes a run. Returns the zip, None if it saved no checkpoint."""
        job.zip = self._zip(job)
        shutil.rmtree(self.root / JOBS / job.id / "tokens", ignore_errors=True)
        if _has_best(self.run_folder(job)):  # else last/ is the only checkpoint there is
            shutil.rmtree(self.run_folder(job) / "last", ignore_errors=True)
        return job.zip

    def _command(self, config: dict) -> list[str]:
        """The child that trains a job: trainer.py, told its TrainConfig's fields."""
        return [sys.executable, "-m", "textrnn.web.trainer", json.dumps(config)]

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

    def _folders(self, job: Job | str) -> list[Path]:
        """A job's folders (its text, tokens and zip; its run), by the job or its id (a run
        from before a restart is found by its id)."""
        job_id = job if isinstance(job, str) else job.id
        job = self.jobs.get(job_id, job)
        name = job.name if isinstance(job, Job) else next(
            (p.name for p in self.root.glob(f"web-*-{job_id}")), None)
        return [self.root / JOBS / job_id] + ([self.root / name] if name else [])

    def _remove(self, job_id: str) -> int:
        """Remove a job's folders; the bytes freed."""
        folders = self._folders(job_id)
        job = self.jobs.pop(job_id, None)
        if job is not None:
            self._secrets.pop(job.secret, None)
        freed = sum(self._used(f) for f in folders)
        for f in folders:
            shutil.rmtree(f, ignore_errors=True)
        return freed


def _left_s(job: Job) -> float:
    """About how long a job under way has left: its budget less what it has trained (the
    budget asked for, before the run has said its own)."""
    budget = job.budget_s or job.minutes * 60
    return max(0.0, budget - job.trained_s)


def _minutes_text(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


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
