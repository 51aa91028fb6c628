"""The on-disk formats of a run folder: checkpoints and resume state; no other module knows them
(the metrics log is metrics.py's).

A checkpoint is a folder that rebuilds itself, with nothing else needed (no corpus, no flags):

    config.json        format name and version, textrnn version, model config, tokenizer kind,
                       and a training summary (steps, chars seen, wall time, val loss, corpus, ...)
    model.safetensors  the weights, float32, stored from CPU so any machine loads them
    tokenizer.json     the tokenizer (see tokenizer.py)

A training run folder holds the best-validation checkpoint at its top level, a full checkpoint of
the latest step in `last/`, and `metrics.jsonl` (one JSON record a line: training loss every
`log_every` steps, validation loss at each validation). `last/` changes as one unit: it is
written whole to `.last.new/`, then swapped in by two renames (`save_last`). It also holds what
resuming needs:

    resume.safetensors optimizer moments, RNG state and the carried recurrent state (tensors);
                       where model.safetensors holds an average of the weights (--ema), the
                       weights themselves too, as "raw.<parameter name>"
    resume.json        step, epoch, position, time used, best validation, the training config

Nothing is ever unpickled: tensors go through safetensors, everything else through JSON. Every
file is written to a temporary name and renamed over the old one, so a crash mid-save leaves the
previous file whole. Files are written resume state first and `config.json` last, and the files
of one save carry one `save_id`: a folder mixing two saves is refused, not loaded. Loading checks
every tensor's shape from the safetensors header before it allocates anything.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .model import ModelConfig, RNNLM, param_shapes
from .tokenizer import tokenizer_from_json

FORMAT = "textrnn-checkpoint"
FORMAT_VERSION = 1
FILES = ("config.json", "model.safetensors", "tokenizer.json")
METRICS = "metrics.jsonl"


def _atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), then rename tmp_path over `path`. A full disk is said in one line
    that names the file; the file it would have replaced stays whole."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a checkpoint is meant to be shared
        os.replace(tmp, path)
    except (OSError, SafetensorError) as e:
        Path(tmp).unlink(missing_ok=True)
        if getattr(e, "errno", None) == errno.ENOSPC or "No space left" in str(e):
            raise OSError(f"no space left on the device while writing {path}; nothing there "
                          "was replaced") from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """`text` to `path` (UTF-8), whole or not at all (see _atomic_write)."""
    _atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _write_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict | None = None):
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    _atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def is_checkpoint(path: str | Path) -> bool:
    return (Path(path) / "config.json").is_file()


def new_save_id() -> str:
    return secrets.token_hex(8)


def save(path: str | Path, model: RNNLM, tokenizer, training: dict,
         save_id: str | None = None) -> Path:
    """Write a checkpoint folder (created if needed). `training` is the summary for the card.
    The weights and config.json carry one `save_id`, so that a reader can tell a folder whose
    save was cut short (new weights beside an old config) from a whole one."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_id = save_id or new_save_id()
    from . import __version__
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "textrnn_version": __version__,
        "save_id": save_id,
        "model": model.config.to_dict(),
        "tokenizer": {"kind": tokenizer.kind, "vocab_size": tokenizer.vocab_size},
        "training": training,
    }
    weights = {k: v for k, v in model.state_dict().items()}
    if model.config.tie_weights:
        weights.pop("head.weight")  # the same tensor as embed.weight; safetensors wants one
    _write_tensors(path / "model.safetensors", weights, {"format": "pt", "save_id": save_id})
    write_text(path / "tokenizer.json", tokenizer.to_json())
    write_text(path / "config.json", json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return path


def clear_run(run: str | Path) -> None:
    """Remove a run folder's checkpoints, resume state and metrics log (for --overwrite)."""
    run = Path(run)
    for name in (*FILES, METRICS):
        (run / name).unlink(missing_ok=True)
    for name in (LAST, LAST_NEW, LAST_OLD):
        shutil.rmtree(run / name, ignore_errors=True)
    for tmp in run.glob(".*.tmp"):  # a write cut short (see _atomic_write)
        tmp.unlink(missing_ok=True)


def holds_run(path: str | Path) -> bool:
    """Whether a folder holds a run worth keeping: a checkpoint at its top or in its last/."""
    path = Path(path)
    return is_checkpoint(path) or last_dir(path) != path


def leftovers_only(path: str | Path) -> bool:
    """Whether every entry of a folder is one a run writes (a run that never saved leaves
    these: a metrics log, files of a first save cut short)."""
    ours = {*FILES, METRICS, LAST, LAST_NEW, LAST_OLD}
    return all(p.name in ours or (p.name.startswith(".") and p.name.endswith(".tmp"))
               for p in Path(path).iterdir())


def resolve(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder that has only `last/` so far (no validation yet):
    its `last_dir`."""
    path = Path(path)
    return path if is_checkpoint(path) else last_dir(path)


def export_zip(run: str | Path, path: str | Path, name: str) -> Path:
    """Write a run's checkpoint (its best, or `last/` before any validation) and metrics log to
    the zip `path`, as a folder `name` that `load` takes once unpacked; nothing else (no resume
    state, no stray files). Written beside `path` and renamed into place."""
    run, path = Path(run), Path(path)
    source = resolve(run)
    read_config(source)  # a checkpoint, or OSError/ValueError saying why not
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for f in [source / n for n in FILES] + [run / METRICS]:
            if f.is_file():
                z.write(f, f"{name}/{f.name}")
    os.replace(tmp, path)
    return path


MAX_JSON_BYTES = {"config.json": 2**20, "tokenizer.json": 64 * 2**20,  # (far above ours, the
                  "resume.json": 16 * 2**20}                          # biggest BPE's included)
MAX_JSON_DEPTH = 32  # ours nest 4 deep; a file nested past Python's recursion limit breaks json
MAX_WEIGHT_BYTES = 4 * 2**30  # model.safetensors past this (a billion weights) is refused at
# load: no textrnn run trains near it, and a web page serving several would run out of memory


def read_json(file: Path):
    """A checkpoint's JSON file, parsed: at most MAX_JSON_BYTES of it (a bigger one is not ours),
    and a document nested too deep to parse (a 2 KB file of 1,000 brackets) refused in one
    line, like any other broken file, rather than raising RecursionError."""
    limit = MAX_JSON_BYTES[file.name]
    with open(file, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{file} is over {limit // 2**20} MiB: not a textrnn {file.name}")
    try:
        doc = json.loads(data.decode("utf-8"))
        deep = file.name != "tokenizer.json" and _depth(doc) > MAX_JSON_DEPTH  # (tokenizers
    except (json.JSONDecodeError, UnicodeDecodeError) as e:  # are big, and read by HF's parser)
        raise ValueError(f"{file} is corrupt: {e}") from None
    except RecursionError:
        deep = True
    if deep:
        raise ValueError(f"{file} is not a valid textrnn {file.name}: it is nested too "
                         "deep") from None
    return doc


def _depth(doc) -> int:
    """How deeply lists and objects nest in a parsed JSON document (walked without recursion,
    so that what uses the document later cannot hit Python's recursion limit either)."""
    deepest, todo = 0, [(doc, 1)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, depth)
            todo += [(v, depth + 1) for v in (value.values() if isinstance(value, dict)
                                              else value)]
    return deepest


def read_config(path: str | Path) -> dict:
    """The parsed `config.json` of a checkpoint folder, with its format checked."""
    path = resolve(path)
    if not path.exists():
        raise FileNotFoundError(f"no such checkpoint: {path}")
    if not path.is_dir() or not is_checkpoint(path):
        raise ValueError(f"{path} is not a textrnn checkpoint (no config.json in it)")
    config = read_json(path / "config.json")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{path / 'config.json'} is not a textrnn checkpoint config")
    version = config.get("format_version")
    if type(version) is not int:
        raise ValueError(f"{path / 'config.json'} has format_version {json.dumps(version)}, a "
                         f"{_json_type(version)}; this textrnn reads the whole number "
                         f"{FORMAT_VERSION}")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path} has checkpoint format version {version}, but this textrnn "
                         f"reads version {FORMAT_VERSION}")
    return config


def _json_type(value) -> str:
    """What a JSON value is, in JSON's words."""
    kinds = {bool: "boolean", int: "number", float: "number", str: "string", list: "list",
             dict: "object", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


MODEL_TYPES = {"vocab_size": (int,), "cell": (str,), "embed": (int,), "hidden": (int,),
               "layers": (int,), "dropout": (int, float), "tie_weights": (bool,)}
OPTIONAL_TYPES = {"weight_drop": (int, float), "embed_drop": (int, float),  # written only when
                  "locked_dropout": (bool,)}                             # set (AWD-LSTM's)
TYPE_NAMES = {(int,): "whole number", (str,): "string", (int, float): "number",
              (bool,): "boolean"}


def model_config(config: dict, file: Path) -> ModelConfig:
    """The model section of a config.json as a ModelConfig: every field there and of its type
    (`"hidden": 384.0` is refused by name: sizes are whole numbers)."""
    m = config.get("model")
    try:
        if not isinstance(m, dict):
            raise ValueError("it is not an object")
        for name, kind in {**MODEL_TYPES, **OPTIONAL_TYPES}.items():
            value, absent = m.get(name), name not in m
            if (absent and name in MODEL_TYPES) or (not absent and type(value) not in kind):
                raise ValueError(f"{name} is {json.dumps(value) if name in m else 'missing'}, "
                                 f"not a {TYPE_NAMES[kind]}")
        cfg = ModelConfig(**m)
        if cfg.open_fields():
            raise ValueError(f"it leaves {', '.join(cfg.open_fields())} unset")
    except (TypeError, ValueError) as e:
        raise ValueError(f"{file} has a bad model section: {e}") from None
    return cfg


def _header(file: Path) -> tuple[dict[str, tuple[int, ...]], dict, dict[str, str]]:
    """The tensor shapes, the metadata and the tensor types ("F32", ...) of a safetensors file,
    read from its header alone."""
    try:
        with safe_open(file, framework="pt") as f:
            slices = {k: f.get_slice(k) for k in f.keys()}
            return ({k: tuple(v.get_shape()) for k, v in slices.items()}, f.metadata() or {},
                    {k: v.get_dtype() for k, v in slices.items()})
    except (FileNotFoundError, SafetensorError, OSError) as e:
        raise ValueError(f"cannot read {file}: {e}") from None


def _check_same_save(path: Path, config: dict, meta: dict, file: str) -> None:
    """Refuse a folder whose `file` and config.json come from two saves (one cut short)."""
    ours, theirs = config.get("save_id"), meta.get("save_id")
    if ours is not None and theirs is not None and ours != theirs:  # (older saves have none)
        raise ValueError(f"{path} holds parts of two saves ({file} does not match config.json): "
                         "a save was cut short. Use the run's last/ checkpoint, or retrain")


def check_weight_size(file: str | Path, limit: int | None = MAX_WEIGHT_BYTES) -> int:
    """The size of a weights file in bytes, or ValueError in one line where it is over `limit`
    (None: no limit). `file` may be a checkpoint or run folder: the weights that loading it
    would read (`resolve`: last/ when its top has none). A web page's catalog can call it with
    its own, lower limit."""
    file = Path(file)
    if file.is_dir():
        file = resolve(file) / "model.safetensors"
    size = file.stat().st_size if file.is_file() else 0
    if limit is not None and size > limit:
        raise ValueError(f"{file} is {size / 1e6:,.1f} MB of weights; the limit is "
                         f"{limit / 1e6:,.1f} MB")
    return size


def check(path: str | Path, max_weight_bytes: int | None = MAX_WEIGHT_BYTES):
    """(config, ModelConfig, tokenizer, weights file) of a checkpoint folder, every part
    checked against the others (the weights by their header alone: no tensor is read). What
    `load` and `textrnn info` rest on."""
    path = resolve(path)
    config = read_config(path)
    tok_file = path / "tokenizer.json"
    if not tok_file.is_file():
        raise FileNotFoundError(f"checkpoint {path} lacks {tok_file.name}")
    try:
        tokenizer = tokenizer_from_json(read_json(tok_file))
    except ValueError as e:
        raise ValueError(f"{tok_file} is corrupt: {e}" if str(tok_file) not in str(e)
                         else str(e)) from None
    weights_file = path / "model.safetensors"
    check_weight_size(weights_file, max_weight_bytes)
    shapes, meta, dtypes = _header(weights_file)
    _check_same_save(path, config, meta, weights_file.name)
    cfg = model_config(config, path / "config.json")
    expected = param_shapes(cfg)  # sizes only: nothing allocated yet
    if cfg.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"{path}: model vocabulary ({cfg.vocab_size}) does not match "
                         f"the tokenizer's ({tokenizer.vocab_size})")
    if cfg.tie_weights:
        expected.pop("head.weight")
    for name in [*expected, *(k for k in shapes if k not in expected)]:
        if expected.get(name) != shapes.get(name):
            raise ValueError(f"{weights_file} does not fit its config: {name} is "
                             f"{shapes.get(name, 'missing')} there, and "
                             f"{expected.get(name, 'not part of the model')} by config.json")
    odd = next((k for k, t in dtypes.items() if t != "F32"), None)
    if odd is not None:  # (loading would convert it: a second copy of the weights)
        raise ValueError(f"{weights_file} holds {odd} as {dtypes[odd]}; a textrnn checkpoint "
                         "stores float32 (F32)")
    return config, cfg, tokenizer, weights_file


def _finite(t: torch.Tensor) -> bool:
    """Whether every value is finite: its least and greatest are (NaN spreads to both). No
    temporary the tensor's size is made, as torch.isfinite(t).all() would."""
    low, high = torch.aminmax(t)
    return bool(torch.isfinite(low) and torch.isfinite(high))


def _read_into(file: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Fill `tensors` (float32, contiguous, on the CPU) with their values from a safetensors
    file that `check` passed, read straight from the file into them: no buffer in between, no
    conversion. (Parameters mapped from the file instead would sit at unaligned addresses,
    where matmuls round differently from the model that was saved: a resumed run would no
    longer match an unbroken one.)"""
    with open(file, "rb") as f:
        start = 8 + int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(start - 8))
        for name, t in tensors.items():
            begin, end = header[name]["data_offsets"]
            f.seek(start + begin)
            if f.readinto(memoryview(t.numpy()).cast("B")) != end - begin:
                raise ValueError(f"{file} is cut short (in {name})")


def load(path: str | Path, device: str | torch.device = "cpu",
         max_weight_bytes: int | None = MAX_WEIGHT_BYTES):
    """Rebuild (model, tokenizer, config) from a checkpoint folder; the model is in eval mode.

    Every size is checked against the weights' header before anything is allocated (`check`),
    and the weights must be finite: a broken or hostile folder is refused in one line. The
    weights are read from the file straight into the model's parameters: a model takes its
    file's size in memory, once."""
    config, cfg, tokenizer, weights_file = check(path, max_weight_bytes)
    model = RNNLM(cfg)
    weights = model.state_dict()  # (tensors that share the parameters' memory)
    if cfg.tie_weights:
        weights.pop("head.weight")  # the same tensor as embed.weight; the file holds it once
    _read_into(weights_file, weights)
    bad = next((k for k, v in weights.items() if not _finite(v)), None)
    if bad is not None:
        raise ValueError(f"{weights_file} holds NaN or infinite values (in {bad}): the run "
                         "that wrote it diverged; use an earlier checkpoint")
    return model.to(device).eval(), tokenizer, config


# --- resume state (in `last/`) ---

LAST, LAST_NEW, LAST_OLD = "last", ".last.new", ".last.old"


def last_dir(run: str | Path) -> Path:
    """Where a run folder keeps its latest checkpoint and resume state: `last/`; or, where a
    save was cut short between its two renames (see `save_last`), the whole new or old copy."""
    run = Path(run)
    for name in (LAST, LAST_NEW, LAST_OLD):
        if is_checkpoint(run / name):
            return run / name
    return run


def save_last(run: str | Path, model: RNNLM, tokenizer, training: dict, opt, carry,
              rng: dict[str, torch.Tensor], info: dict,
              raw: dict[str, torch.Tensor] | None = None) -> Path:
    """A run's latest step and its resume state, changed as one unit: written whole to
    `.last.new/` (config.json last), then swapped in for `last/` by two renames. A kill at any
    point leaves a whole `last/`, or a whole `.last.new/` or `.last.old/` that `last_dir` finds.
    `raw`: the weights training goes on from, by parameter name, where `model` holds their
    average (see save_resume)."""
    run = Path(run)
    last, new, old = run / LAST, run / LAST_NEW, run / LAST_OLD
    if not last.is_dir():  # the last save was cut between its renames: keep its newest copy
        for name in (new, old):
            if is_checkpoint(name):
                os.rename(name, last)
                break
    for stale in (new, old):
        shutil.rmtree(stale, ignore_errors=True)
    save_id = new_save_id()
    save_resume(new, opt, carry, rng, info, save_id, raw)
    save(new, model, tokenizer, training, save_id)
    if last.exists():
        os.rename(last, old)
    os.rename(new, last)
    shutil.rmtree(old, ignore_errors=True)
    return last


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


@dataclass
class ResumeInfo:
    """What resume.json holds besides the optimizer's settings: where the loop was, and what
    the run was started with (its keys, in this order, are the file's)."""
    step: int
    loop: dict                 # the training loop's state: report.LoopState's fields
    corpus_sha256: str | None  # of the corpus it trained on (a resume on another one says so)
    scaler: dict | None        # fp16's GradScaler state; None for bf16 and fp32
    train_config: dict         # the run's TrainConfig record, with the val_tokens it read

    @classmethod
    def from_dict(cls, d) -> ResumeInfo:
        """The info a resume.json object holds, or ValueError if it holds none."""
        ok = isinstance(d, dict) and type(d.get("step")) is int and \
            isinstance(d.get("loop"), dict) and isinstance(d.get("train_config"), dict) and \
            isinstance(d.get("scaler"), (dict, type(None))) and \
            isinstance(d.get("corpus_sha256"), (str, type(None)))
        if not ok:
            raise ValueError("not textrnn resume state")
        return cls(d["step"], d["loop"], d.get("corpus_sha256"), d.get("scaler"),
                   d["train_config"])


def save_resume(path: str | Path, opt: torch.optim.Optimizer, carry,
                rng: dict[str, torch.Tensor], info: ResumeInfo, save_id: str,
                raw: dict[str, torch.Tensor] | None = None) -> None:
    """Write what resuming needs beside a checkpoint: the optimizer, the carried recurrent
    state, the RNG states (`rng`, by name: see train.rng_states) and the `raw` weights where
    the checkpoint holds their average (as "raw.<name>") as tensors; `info` (the loop's
    position, JSON) with the optimizer's settings added. Both files carry the checkpoint's
    `save_id`."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    opt_tensors, opt_meta = _optimizer_tensors(opt)
    raw_tensors = {f"raw.{k}": v for k, v in (raw or {}).items()}
    tensors = {**opt_tensors, **_state_tensors(carry), **rng, **raw_tensors}
    _write_tensors(path / "resume.safetensors", tensors,
                   {"step": str(info.step), "save_id": save_id})
    write_text(path / "resume.json", json.dumps(
        {**asdict(info), "save_id": save_id, "optimizer": opt_meta}, indent=2) + "\n")


class Resume:
    """A run's resume state, read back: `info`, the optimizer's settings and the tensors to
    restore."""

    def __init__(self, tensors: dict[str, torch.Tensor], info: ResumeInfo, optimizer: dict):
        self.tensors, self.info, self.optimizer = tensors, info, optimizer

    def restore_optimizer(self, opt: torch.optim.Optimizer, device) -> None:
        state: dict[int, dict] = {}
        for key, value in self.tensors.items():
            if key.startswith("opt."):
                _, pid, name = key.split(".", 2)
                state.setdefault(int(pid), {})[name] = (value.to(device) if name != "step"
                                                        else value)
        for key, value in self.optimizer["scalars"].items():
            pid, name = key.split(".", 1)
            state.setdefault(int(pid), {})[name] = value
        opt.load_state_dict({"state": state,
                             "param_groups": self.optimizer["param_groups"]})

    def carry(self, device):
        """The recurrent state carried into the next batch: None, h, or (h, c) for an LSTM."""
        if "carry.h" not in self.tensors:
            return None
        h = self.tensors["carry.h"].to(device)
        return (h, self.tensors["carry.c"].to(device)) if "carry.c" in self.tensors else h

    def raw_weights(self) -> dict[str, torch.Tensor] | None:
        """The weights training goes on from, by parameter name, where the checkpoint beside
        holds their average (--ema); None where it holds the weights themselves."""
        raw = {k[len("raw."):]: v for k, v in self.tensors.items() if k.startswith("raw.")}
        return raw or None


def _cut_short(run: Path) -> bool:
    """Whether a run folder shows a save cut short: a half-written `.last.new/` or a temporary
    file (see _atomic_write). A folder that was shipped carries neither."""
    return (run / LAST_NEW).is_dir() or any(run.glob(".*.tmp"))


def load_resume(run: str | Path) -> Resume:
    """The resume state of a run folder (or of its `last/` given directly)."""
    path = last_dir(run)
    if not Path(run).is_dir():
        raise FileNotFoundError(f"no such run folder: {run}")
    if not (path / "resume.json").is_file():
        if is_checkpoint(path) and _cut_short(path):  # a best checkpoint, its last/ unwritten
            raise FileNotFoundError(f"{path} holds a checkpoint but no resume state: its "
                                    "first save was cut short. `textrnn sample` can use it; to "
                                    "train, start the run again with --overwrite")
        if is_checkpoint(path):  # shipped: a zip, a Hub download, a Space's, a copied folder
            raise FileNotFoundError(f"{path} is a finished checkpoint with no resume state (no "
                                    "last/): it can be sampled and evaluated, not resumed. To "
                                    "train, start a new run (another --out), or replace this "
                                    "one with --overwrite")
        raise FileNotFoundError(f"{path} holds no resume state (resume.json); pass the run "
                                "folder that `textrnn train` wrote")
    try:
        info = read_json(path / "resume.json")
        tensors = load_file(path / "resume.safetensors", device="cpu")
        _, meta, _ = _header(path / "resume.safetensors")
    except (json.JSONDecodeError, UnicodeDecodeError, SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"resume state in {path} is unreadable: {e}") from None
    try:
        parsed = ResumeInfo.from_dict(info)
        optimizer = info["optimizer"]
        if not isinstance(optimizer, dict):
            raise ValueError
    except (ValueError, KeyError):
        raise ValueError(f"{path / 'resume.json'} is not textrnn resume state") from None
    config = read_config(path)
    for file, sid in (("resume.json", info.get("save_id")),
                      ("resume.safetensors", meta.get("save_id"))):
        _check_same_save(path, config, {"save_id": sid}, file)
    return Resume(tensors, parsed, optimizer)
