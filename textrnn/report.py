"""What a training run shows, and where: a `Reporter` hears the loop's events; `Terminal` prints
them as lines and a tqdm progress bar. The loop (train.py) knows no front end; a web page or
rank 0 of a distributed run passes its own reporter. `LoopState`, where the loop is, lives here
because every reporter hears it; the loop (train.py) owns its changes.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Callable

from tqdm import tqdm

from .config import SAMPLE_TEMPERATURE
from .metrics import TrainRecord, ValRecord
from .plan import Budget


@dataclass
class LoopState:
    """Where the loop is: saved in `last/resume.json`, so a resumed run carries on from here."""
    step: int = 0
    epoch: int = 0                  # passes over the training streams
    pos: int = 0                    # batches read in this epoch
    train_time: float = 0.0         # seconds of training steps (the time budget counts these)
    wall_time: float = 0.0          # seconds of the run, validation and saving included
    tokens: int = 0
    best_val: float | None = None   # nats/char of the best validation so far, and its step
    best_step: int | None = None
    evals_done: int = 0             # validation passes done
    last_val: float | None = None   # nats/char of the latest validation, and its step
    last_val_step: int | None = None


class Reporter:
    """What a training run shows, and where. Every method may be left as it is (silent)."""

    def log(self, message: str) -> None:
        """A line for a person: what was decided, a note, the end of the run."""

    def hint(self, message: str) -> None:
        """What to type next at a command line (resume a stopped run, sample a finished one);
        a front end with its own buttons leaves it unsaid."""

    def preparing(self, what: str, done: int, total: int) -> None:
        """How far a pass over the corpus has come ("reading", "encoding"), in bytes."""

    def begin(self, budget: Budget, state: LoopState) -> None:
        """The loop starts (at step `state.step` when resumed)."""

    def trained(self, state: LoopState, record: TrainRecord) -> None:
        """A training record (every `log_every` steps), as written to metrics.jsonl."""

    def stepped(self, state: LoopState) -> None:
        """A step is done; raising KeyboardInterrupt here stops the run as Ctrl-C does."""

    def validated(self, state: LoopState, record: ValRecord) -> None:
        """A validation record, as written to metrics.jsonl."""

    def end(self) -> None:
        """The loop is over, finished or not."""


class Terminal(Reporter):
    """Lines through `log` and a tqdm progress bar (none with `progress=False`)."""

    def __init__(self, log: Callable[[str], None] = print, progress: bool = True,
                 ):
        self.log, self.progress = log, progress
        self.bar, self.budget = None, None

    def hint(self, message: str) -> None:
        self.log(message)

    def preparing(self, what: str, done: int, total: int) -> None:
        """A bar in MB/s for each pass over a corpus of more than a few MB."""
        if total < 16 * 2**20 or not self.progress:
            return
        if self.bar is None or self.bar.desc != what:
            self.end()
            self.bar = tqdm(total=total, desc=what, unit="B", unit_scale=True,
                            dynamic_ncols=True)
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.end()

    def begin(self, budget: Budget, state: LoopState) -> None:
        self.end()  # a preparation bar, if one is still open
        by_steps = budget.steps is not None
        self.budget = budget
        self.bar = tqdm(
            total=budget.steps if by_steps else budget.seconds,
            initial=state.step if by_steps else 0, unit="step" if by_steps else "s",
            disable=not self.progress, dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"
            if by_steps else "{l_bar}{bar}| {n:.0f}/{total:.0f}s [{elapsed}{postfix}]")

    def trained(self, state: LoopState, record: TrainRecord) -> None:
        loss = record.train_loss
        self.bar.set_postfix_str(f"loss {loss:.3f}, {loss / math.log(2):.3f} bpc, "
                                 f"{record.chars_per_s:,.0f} chars/s"
                                 + (f", val {state.last_val:.3f}" if state.last_val else ""),
                                 refresh=False)

    def stepped(self, state: LoopState) -> None:
        b = self.budget
        self.bar.update(1 if b.steps else min(state.train_time, b.seconds) - self.bar.n)

    def validated(self, state: LoopState, record: ValRecord) -> None:
        val = state.last_val
        self.bar.set_postfix_str(f"val {val:.3f} nats/char, {val / math.log(2):.3f} bpc")
        if record.sample is not None:
            self._say(f"--- step {state.step:,}, validation {val:.4f} nats/char; sampled at "
                      f"temperature {SAMPLE_TEMPERATURE} ---\n{record.sample}\n---")

    def _say(self, text: str) -> None:
        """A line above the progress bar (or just a line, without one)."""
        if self.bar is not None and not self.bar.disable:
            tqdm.write(text, file=sys.stderr)
        else:
            self.log(text)

    def end(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
