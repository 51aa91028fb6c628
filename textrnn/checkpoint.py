"""The on-disk formats: checkpoints, resume state and the metrics log; no other module knows them.

A checkpoint is a folder that rebuilds itself, with nothing else needed (no corpus, no flags):

    config.json        format name and version, textrnn version, model config, tokenizer kind,
                       and a training summary (steps, chars seen, wall time, val loss, corpus, ...)
    model.safetensors  the weights, float32, stored from CPU so any machine loads them
    tokenizer.json     the tokenizer (see tokenizer.py)

A training run folder holds the best-validation checkpoint at its top level, a full checkpoint of
the latest step in `last/`, and `metrics.jsonl` (one JSON record a line: training loss every
`log_every` steps, validation loss at each validation). `last/` also holds what resuming needs:

    resume.safetensors optimizer moments, RNG state and the carried recurrent state (tensors)
    resume.json        step, epoch, position, time used, best validation, the training config

Nothing is ever unpickled: tensors go through safetensors, everything else through JSON. Every
file is written to a temporary name and renamed over the old one, so a crash mid-save leaves the
previous file whole. Files are written resume state first and `config.json` last.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .model import ModelConfig, RNNLM
from .tokenizer import tokenizer_from_json

FORMAT = "textrnn-checkpoint"
FORMAT_VERSION = 1
FILES = ("config.json", "model.safetensors", "tokenizer.json")
METRICS = "metrics.jsonl"


def _atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), then rename tmp_path over `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a checkpoint is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _write_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict | None = None):
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    _atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def is_checkpoint(path: str | Path) -> bool:
    return (Path(path) / "config.json").is_file()


def save(path: str | Path, model: RNNLM, tokenizer, training: dict) -> Path:
    """Write a checkpoint folder (created if needed). `training` is the summary for the card."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    from . import __version__
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "textrnn_version": __version__,
        "model": model.config.to_dict(),
        "tokenizer": {"kind": tokenizer.kind, "vocab_size": tokenizer.vocab_size},
        "training": training,
    }
    weights = {k: v for k, v in model.state_dict().items()}
    if model.config.tie_weights:
        weights.pop("head.weight")  # the same tensor as embed.weight; safetensors wants one
    _write_tensors(path / "model.safetensors", weights, {"format": "pt"})
    _write_text(path / "tokenizer.json", tokenizer.to_json())
    _write_text(path / "config.json", json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return path


def clear_run(run: str | Path) -> None:
    """Remove a run folder's checkpoints, resume state and metrics log (for --overwrite)."""
    run = Path(run)
    for name in (*FILES, METRICS):
        (run / name).unlink(missing_ok=True)
    shutil.rmtree(run / "last", ignore_errors=True)


def resolve(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder that has only `last/` so far (no validation yet)."""
    path = Path(path)
    if not is_checkpoint(path) and is_checkpoint(path / "last"):
        return path / "last"
    return path


def read_config(path: str | Path) -> dict:
    """The parsed `config.json` of a checkpoint folder, with its format checked."""
    path = resolve(path)
    if not path.exists():
        raise FileNotFoundError(f"no such checkpoint: {path}")
    if not path.is_dir() or not is_checkpoint(path):
        raise ValueError(f"{path} is not a textrnn checkpoint (no config.json in it)")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path / 'config.json'} is corrupt: {e}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{path / 'config.json'} is not a textrnn checkpoint config")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path} has checkpoint format version {version}, but this textrnn "
                         f"reads version {FORMAT_VERSION}")
    return config


def load(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild (model, tokenizer, config) from a checkpoint folder; the model is in eval mode."""
    path = resolve(path)
    config = read_config(path)
    tok_file = path / "tokenizer.json"
    if not tok_file.is_file():
        raise FileNotFoundError(f"checkpoint {path} lacks {tok_file.name}")
    try:
        tokenizer = tokenizer_from_json(tok_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{tok_file} is corrupt: {e}") from None
    try:
        model = RNNLM(ModelConfig(**config["model"]))
    except (TypeError, KeyError, ValueError) as e:
        raise ValueError(f"{path / 'config.json'} has a bad model section: {e}") from None
    if model.config.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"{path}: model vocabulary ({model.config.vocab_size}) does not match "
                         f"the tokenizer's ({tokenizer.vocab_size})")
    try:
        weights = load_file(path / "model.safetensors", device="cpu")
    except (FileNotFoundError, SafetensorError, OSError) as e:
        raise ValueError(f"cannot read {path / 'model.safetensors'}: {e}") from None
    if model.config.tie_weights:
        weights["head.weight"] = weights["embed.weight"]
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise ValueError(f"{path / 'model.safetensors'} does not fit its config: {first}") from None
    return model.to(device).eval(), tokenizer, config


# --- resume state (in `last/`) ---

def last_dir(run: str | Path) -> Path:
    """Where a run folder keeps its latest checkpoint and resume state."""
    run = Path(run)
    return run / "last" if (run / "last").is_dir() else run


def _state_tensors(state) -> dict[str, torch.Tensor]:
    if state is None:
        return {}
    if isinstance(state, tuple):
        return {"carry.h": state[0], "carry.c": state[1]}
    return {"carry.h": state}


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state_dict into tensors (for safetensors) and JSON."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for name, value in st.items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt.{pid}.{name}"] = value
            else:
                scalars[f"{pid}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def save_resume(path: str | Path, opt: torch.optim.Optimizer, carry, rng: torch.Tensor,
                info: dict) -> None:
    """Write what resuming needs beside a checkpoint: the optimizer, the carried recurrent
    state and the RNG state as tensors; `info` (the loop's position, JSON) with the optimizer's
    settings added."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    opt_tensors, opt_meta = _optimizer_tensors(opt)
    tensors = {**opt_tensors, **_state_tensors(carry), "rng": rng}
    _write_tensors(path / "resume.safetensors", tensors, {"step": str(info["step"])})
    _write_text(path / "resume.json",
                json.dumps({**info, "optimizer": opt_meta}, indent=2) + "\n")


class Resume:
    """A run's resume state, read back: `info` as saved, and the tensors to restore."""

    def __init__(self, tensors: dict[str, torch.Tensor], info: dict):
        self.tensors, self.info = tensors, info

    def restore_optimizer(self, opt: torch.optim.Optimizer, device) -> None:
        state: dict[int, dict] = {}
        for key, value in self.tensors.items():
            if key.startswith("opt."):
                _, pid, name = key.split(".", 2)
                state.setdefault(int(pid), {})[name] = (value.to(device) if name != "step"
                                                        else value)
        for key, value in self.info["optimizer"]["scalars"].items():
            pid, name = key.split(".", 1)
            state.setdefault(int(pid), {})[name] = value
        opt.load_state_dict({"state": state,
                             "param_groups": self.info["optimizer"]["param_groups"]})

    def carry(self, device):
        """The recurrent state carried into the next batch: None, h, or (h, c) for an LSTM."""
        if "carry.h" not in self.tensors:
            return None
        h = self.tensors["carry.h"].to(device)
        return (h, self.tensors["carry.c"].to(device)) if "carry.c" in self.tensors else h


def load_resume(run: str | Path) -> Resume:
    """The resume state of a run folder (or of its `last/` given directly)."""
    path = last_dir(run)
    if not (path / "resume.json").is_file():
        raise FileNotFoundError(f"{path} holds no resume state (resume.json); pass the run "
                                "folder that `textrnn train` wrote")
    try:
        info = json.loads((path / "resume.json").read_text(encoding="utf-8"))
        tensors = load_file(path / "resume.safetensors", device="cpu")
    except (json.JSONDecodeError, SafetensorError, OSError) as e:
        raise ValueError(f"resume state in {path} is unreadable: {e}") from None
    return Resume(tensors, info)


# --- the metrics log (`metrics.jsonl` in a run folder) ---


def read_metrics(run: str | Path) -> list[dict]:
    """The records of a run's metrics log, oldest first; [] if it has none. A line that does
    not parse (the torn end of a log whose writer was killed) is left out."""
    try:
        lines = (Path(run) / METRICS).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


class MetricsLog:
    """Appends records to a run's `metrics.jsonl`, one JSON object a line, flushed as written.
    `upto=step` first drops the records past `step`: a resumed run's log then reads as one run
    (they came from a run that did not reach its next save)."""

    def __init__(self, run: str | Path, upto: int | None = None):
        path = Path(run) / METRICS
        if upto is not None and path.exists():
            keep = [r for r in read_metrics(run) if r.get("step", 0) <= upto]
            path.write_text("".join(json.dumps(r) + "\n" for r in keep), encoding="utf-8")
        self.file = open(path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()
