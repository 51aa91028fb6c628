"""The metrics log, `metrics.jsonl` in a run folder: one JSON record a line, a `TrainRecord`
every `log_every` steps and a `ValRecord` at each validation. This module writes it and reads
it; everything else (the terminal, the page's curves, the sweep, the benchmarks) gets the typed
records.

Losses are in nats per character, whatever the tokenizer (nats per token divided by the
corpus's characters per token), so that any two runs compare; `*_bpc` is the same in bits.
Reading is forgiving: a line that is not a record (the torn end of a log whose writer was
killed, a hand-edited line) is left out, never an error.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .checkpoint import METRICS, write_text


class _Record:
    def to_dict(self) -> dict:
        """The record as its JSON line holds it (no "sample" key without a sample)."""
        d = asdict(self)
        if d.get("sample", "") is None:
            del d["sample"]
        return d


@dataclass(frozen=True)
class TrainRecord(_Record):
    step: int                      # optimizer steps done
    train_loss: float              # nats/char, the mean over the steps since the last record
    train_bpc: float = math.nan    # the same in bits/char
    train_nats_per_token: float = math.nan
    lr: float = math.nan           # the learning rate of the record's last step
    train_time: float = math.nan   # seconds of training so far
    tokens: int = 0                # tokens trained on so far, over all ranks
    chars_per_s: float = math.nan  # training speed over the steps since the last record


@dataclass(frozen=True)
class ValRecord(_Record):
    step: int
    val_loss: float                # nats/char over the validation text, read as one stream
    val_bpc: float = math.nan
    val_nats_per_token: float = math.nan
    train_time: float = math.nan
    sample: str | None = None      # what the model wrote at this validation, if asked


Record = TrainRecord | ValRecord


def parse_record(d) -> Record | None:
    """The record a JSON object holds, or None if it holds none: a whole-number step and a
    numeric loss of one kind, with every other field it has of the right type."""
    if not isinstance(d, dict) or type(d.get("step")) is not int:
        return None
    kind = ValRecord if "val_loss" in d else TrainRecord if "train_loss" in d else None
    if kind is None:
        return None
    known = {f.name: f for f in fields(kind)}
    values = {k: v for k, v in d.items() if k in known}
    numbers = [v for k, v in values.items() if k not in ("step", "sample")]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in numbers) or \
            not isinstance(values.get("sample", ""), (str, type(None))):
        return None
    return kind(**values)


def read_metrics(run: str | Path, strict: bool = False) -> list[Record]:
    """The records of a run's metrics log, oldest first; [] if it has none. An unreadable file
    reads as [] unless `strict`, when it raises OSError naming it."""
    path = Path(run) / METRICS
    try:
        lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    except OSError as e:
        if strict:
            raise OSError(f"cannot read {path}: {e.strerror or e}") from None
        return []
    records = []
    for line in lines:
        try:
            record = parse_record(json.loads(line))
        except ValueError:
            continue
        if record is not None:
            records.append(record)
    return records


class MetricsLog:
    """Appends records to a run's `metrics.jsonl`, one JSON object a line, flushed as written.
    `upto=step` first drops the records past `step`: a resumed run's log then reads as one run
    (they came from a run that did not reach its next save)."""

    def __init__(self, run: str | Path, upto: int | None = None):
        path = Path(run) / METRICS
        if upto is not None and path.exists():
            keep = [r for r in read_metrics(run, strict=True) if r.step <= upto]
            write_text(path, "".join(json.dumps(r.to_dict()) + "\n" for r in keep))
        self.file = open(path, "a", encoding="utf-8")

    def write(self, record: Record) -> None:
        self.file.write(json.dumps(record.to_dict()) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()
