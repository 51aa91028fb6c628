"""Training: `TrainConfig` and `train()`, the loop that turns a corpus into a checkpoint.

The loop, step by step: read and encode the corpus; split off validation text; build the model
and AdamW; then repeat (batch -> forward -> loss -> backward -> clip -> step) with the recurrent
state carried between batches (truncated BPTT, see data.py), validating on the whole validation
text at evenly spaced points of the run and keeping the best and the latest checkpoint.

The budget is `max_steps` or `time_budget` (seconds of training; validation passes are not
counted), or both, whichever ends first. The learning rate warms up linearly, then follows a
cosine to `min_lr` over the fraction of the budget used, so a 5-minute run is a complete run,
not the start of a long one. Gradient-norm clipping (Pascanu et al. 2013) keeps the exploding
gradients of plain RNNs from wrecking a step.

Same seed and config give the same run on CPU (with a step budget; a time budget ends at a
step that depends on the machine's speed). Resuming restores weights, optimizer moments, RNG,
data position and the carried state, so a run stopped at step N and resumed gives the weights a
run that never stopped gives. Ctrl-C saves `last/` and re-raises KeyboardInterrupt. A loss that
turns NaN or infinite stops the run with FloatingPointError, keeping the last good checkpoint.
Where the CPU multiplies bfloat16 natively, the forward pass runs under bf16 autocast
(`precision`); weights, optimizer and loss stay fp32. Left out on purpose: fp16 with loss
scaling, gradient accumulation and multi-GPU.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from . import auto, checkpoint
from .data import Batches, corpus_name, fit_batch_shape, read_corpus, split
from .lm import evaluate_ids, predicted_chars
from .model import ModelConfig, RNNLM, autocast, detach_state
from .tokenizer import KINDS as TOKENIZERS
from .tokenizer import build as build_tokenizer

DEFAULT_STEPS = 2000  # the budget when neither max_steps nor time_budget is given
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class TrainConfig:
    corpus: str = ""               # a UTF-8 text file, or a folder of .txt files
    out: str | None = None         # run folder; the CLI defaults it to checkpoints/<corpus name>
    val_file: str | None = None    # validation text; if unset, the end of the corpus is used
    val_fraction: float = 0.1      # share of the corpus kept for validation (taken from the end)
    encoding: str = "utf-8"        # text encoding of the corpus and validation files
    tokenizer: str = "char"        # char (one token per character), bpe or byte
    vocab_size: int | None = None  # BPE vocabulary (default 1024); char and byte fix their own
    model: ModelConfig = field(default_factory=ModelConfig)
    seq_len: int | None = None     # BPTT length: gradients flow back this many tokens
    batch_size: int | None = None  # parallel streams; more uses the cores better, to a point
    lr: float | None = None        # peak AdamW learning rate (warm-up, then a cosine to min_lr)
    # None (the default for these three and for the model's hidden, layers and dropout): chosen
    # when the run starts (auto.py): width, dropout and lr from the corpus size and the budget,
    # batch 64 (fewer for a short time budget) and seq-len 50
    min_lr: float = 0.0            # where the cosine ends; 0 spends the whole budget annealing
    warmup_steps: int = 50         # linear warm-up (capped at a tenth of max_steps)
    weight_decay: float | None = None  # AdamW decay on weight matrices (not biases); None:
                                   # 0.1, more for a run that reads the corpus many times
    grad_clip: float = 1.0         # clip the global gradient norm to this; 0 turns it off
    precision: str = "auto"        # fp32, or bf16 (bfloat16 matmuls, fp32 weights and loss);
                                   # auto takes bf16 on a CPU with native bf16, else fp32
    max_steps: int | None = None   # optimizer steps; with no budget at all, DEFAULT_STEPS
    time_budget: float | None = None  # seconds of training (validation time not counted)
    evals: int = 5                 # validation passes spread evenly over the run, the last at end
    log_every: int = 10            # steps between lines in metrics.jsonl
    seed: int = 1337               # drives init, dropout and data offsets
    device: str = "auto"           # auto (cuda if present, else cpu), cpu, cuda, cuda:1, mps
    resume: str | None = None      # a run folder to continue (its last/ checkpoint)
    overwrite: bool = False        # replace an existing run in `out`

    def __post_init__(self):
        if isinstance(self.model, dict):
            self.model = ModelConfig(**self.model)
        checks = [
            (self.tokenizer in TOKENIZERS,
             f"unknown tokenizer {self.tokenizer!r}; choose one of {', '.join(TOKENIZERS)}"),
            (self.seq_len is None or self.seq_len >= 1,
             f"seq-len must be at least 1, got {self.seq_len}"),
            (self.batch_size is None or self.batch_size >= 1,
             f"batch-size must be at least 1, got {self.batch_size}"),
            (self.lr is None or (self.lr > 0 and math.isfinite(self.lr)),
             f"lr must be a positive number, got {self.lr}"),
            (0 <= self.min_lr <= (math.inf if self.lr is None else self.lr),
             f"min-lr must be in [0, lr], got {self.min_lr}"),
            (self.warmup_steps >= 0, f"warmup-steps must be >= 0, got {self.warmup_steps}"),
            (self.weight_decay is None or self.weight_decay >= 0,
             f"weight-decay must be >= 0, got {self.weight_decay}"),
            (self.grad_clip >= 0, f"grad-clip must be >= 0, got {self.grad_clip}"),
            (self.precision in PRECISIONS,
             f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}"),
            (self.max_steps is None or self.max_steps >= 1,
             f"max-steps must be at least 1, got {self.max_steps}"),
            (self.time_budget is None or self.time_budget > 0,
             f"time-budget must be positive, got {self.time_budget}"),
            (self.evals >= 1, f"evals must be at least 1, got {self.evals}"),
            (self.log_every >= 1, f"log-every must be at least 1, got {self.log_every}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; try cpu, cuda or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda asked for, but this PyTorch sees no CUDA GPU")
    return device


def pick_precision(name: str, device: torch.device) -> str:
    """auto -> bf16 where the CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX), else fp32.

    bf16 autocast runs the RNN's and the head's matmuls in bfloat16 with fp32 accumulation; the
    weights, the optimizer and the loss stay fp32. On a CPU without native bf16 it is emulated
    and slower than fp32, so auto keeps fp32 there (and on GPUs, which this was not measured on).
    """
    if name != "auto":
        if name == "bf16" and device.type == "mps":
            raise ValueError("bf16 training is not supported on mps; use --precision fp32")
        return name
    native = device.type == "cpu" and torch.backends.mkldnn.is_available() and \
        torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return "bf16" if native else "fp32"


def lr_at(cfg: TrainConfig, step: int, progress: float, warmup: int) -> float:
    """Linear warm-up over `warmup` steps times a cosine from lr to min_lr over the budget."""
    warm = min(1.0, (step + 1) / warmup) if warmup else 1.0
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return warm * (cfg.min_lr + (cfg.lr - cfg.min_lr) * cosine)


def _optimizer(model: RNNLM, cfg: TrainConfig) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99))


def _state_tensors(state) -> dict[str, torch.Tensor]:
    if state is None:
        return {}
    if isinstance(state, tuple):
        return {"carry.h": state[0], "carry.c": state[1]}
    return {"carry.h": state}


def _optimizer_tensors(opt) -> tuple[dict[str, torch.Tensor], dict]:
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


def _restore_optimizer(opt, tensors: dict[str, torch.Tensor], meta: dict, device) -> None:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value.to(device) if name != "step" else value
    for key, value in meta["scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _trim_metrics(path: Path, step: int) -> None:
    """Drop log lines past `step`: they came from a run that did not reach its next save."""
    if not path.exists():
        return
    keep = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in keep), encoding="utf-8")


def _prepare_out(cfg: TrainConfig) -> Path:
    if not cfg.out:
        raise ValueError("no output folder given (TrainConfig.out)")
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output {out} exists and is not a folder")
    resuming_here = cfg.resume is not None and Path(cfg.resume).resolve() == out.resolve()
    if out.exists() and any(out.iterdir()) and not resuming_here and not cfg.overwrite:
        raise FileExistsError(f"{out} already holds a run; continue it with --resume {out}, "
                              "replace it with --overwrite, or pick another --out")
    return out


def _clear_run(out: Path) -> None:
    for name in (*checkpoint.FILES, "metrics.jsonl"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "last", ignore_errors=True)


def train(cfg: TrainConfig, command: str | None = None,
          log: Callable[[str], None] = print, progress: bool = True,
          on_step: Callable[[int], None] | None = None) -> Path:
    """Train as `cfg` says and return the run folder. `on_step(step)` is called after each step."""
    # 1. Where to write, and what we continue from.
    t_start = time.time()
    out = _prepare_out(cfg)
    device = pick_device(cfg.device)
    resume = None
    if cfg.resume:
        last = checkpoint.last_dir(cfg.resume)
        model, tokenizer, _ = checkpoint.load(last)
        resume = checkpoint.load_resume(last)
        saved = resume[1]["train_config"]
        keep = {k: saved[k] for k in ("seq_len", "batch_size", "lr") if getattr(cfg, k) is None}
        if cfg.precision == "auto":  # the run's own; runs from before --precision were fp32
            keep["precision"] = saved.get("precision", "fp32")
        cfg = replace(cfg, model=model.config, **keep)
    precision = pick_precision(cfg.precision, device)
    cfg = replace(cfg, precision=precision)  # recorded as run, so a resume keeps it

    # 2. Data: text -> train/val text -> ids; the tokenizer learns from the training text only.
    text = read_corpus(cfg.corpus, cfg.encoding)
    if cfg.val_file:
        train_text, val_text = text, read_corpus(cfg.val_file, cfg.encoding)
    else:
        train_text, val_text = split(text, cfg.val_fraction)
    if resume is None:
        tokenizer = build_tokenizer(cfg.tokenizer, train_text, cfg.vocab_size, log)
    train_ids, val_ids = tokenizer.encode(train_text), tokenizer.encode(val_text)
    if len(val_ids) < 2:
        raise ValueError(f"validation text too short ({len(val_text)} characters)")
    chars_per_token = len(train_text) / max(len(train_ids), 1)  # to report per character
    val_chars = predicted_chars(tokenizer, val_text, val_ids)
    if resume is None:  # fill in what was left to choose (a resumed run has it all)
        asked = cfg.min_lr
        cfg, why = auto.choose(cfg, len(train_ids), tokenizer.vocab_size, device,
                               precision == "bf16")
        if cfg.min_lr < asked:  # choose() caps it at the lr it chose
            log(f"note: min-lr {asked:g} is above the chosen lr {cfg.lr:g}; using "
                f"{cfg.lr:g} for both (a flat schedule)")
    B, T = fit_batch_shape(len(train_ids), cfg.batch_size, cfg.seq_len)
    if (B, T) != (cfg.batch_size, cfg.seq_len):
        log(f"corpus is short ({len(train_ids):,} training tokens): using batch-size {B}, "
            f"seq-len {T}")
    batches = Batches(train_ids, B, T, cfg.seed)
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()

    # 3. Model and optimizer, fresh or restored.
    torch.manual_seed(cfg.seed)
    if resume is None:
        model = RNNLM(replace(cfg.model, vocab_size=tokenizer.vocab_size))
    model.to(device).train()
    opt = _optimizer(model, cfg)
    s = {"step": 0, "epoch": 0, "pos": 0, "train_time": 0.0, "wall_time": 0.0, "tokens": 0,
         "best_val": None, "best_step": None, "evals_done": 0}
    carry = None
    if resume is not None:
        tensors, info = resume
        s.update(info["loop"])
        _restore_optimizer(opt, tensors, info["optimizer"], device)
        torch.set_rng_state(tensors["rng"])
        if "carry.h" in tensors:
            h = tensors["carry.h"].to(device)
            carry = (h, tensors["carry.c"].to(device)) if "carry.c" in tensors else h
        if info.get("corpus_sha256") != sha:
            log("note: this corpus differs from the one the run was trained on; continuing on it")
        _trim_metrics(out / "metrics.jsonl", s["step"])
    elif cfg.overwrite:
        _clear_run(out)
    out.mkdir(parents=True, exist_ok=True)

    max_steps, budget = cfg.max_steps, cfg.time_budget
    if max_steps is None and budget is None:
        max_steps = DEFAULT_STEPS
    warmup = min(cfg.warmup_steps, max_steps // 10) if max_steps else cfg.warmup_steps

    def progress_now() -> float:
        p = [s["step"] / max_steps] if max_steps else []
        p += [s["train_time"] / budget] if budget else []
        return max(p)

    if resume is not None:  # a new budget re-spreads the validation passes that remain
        s["evals_done"] = math.floor(progress_now() * cfg.evals + 1e-9)

    # 4. Say what was decided.
    cm = model.config
    log(f"corpus {cfg.corpus}: {len(text):,} chars; {tokenizer.kind} tokenizer, vocabulary "
        f"{tokenizer.vocab_size:,}, {chars_per_token:.2f} chars/token; train {len(train_ids):,} "
        f"tokens, validate {len(val_ids):,}")
    if resume is None and why:
        log(why)
    log(f"model {cm.layers}x{cm.hidden} {cm.cell.upper()}, embedding {cm.embed}, dropout "
        f"{cm.dropout:g}: "
        f"{model.num_params():,} parameters on {device}")
    resumed = f", from step {s['step']:,}" if resume else ""
    budget_text = " or ".join(([f"{max_steps:,} steps"] if max_steps else []) +
                              ([f"{budget:g} s"] if budget else []))
    log(f"batch {B} x {T} tokens, {precision}, lr {cfg.lr:g} (cosine to {cfg.min_lr:g}), budget "
        f"{budget_text}{resumed}; writing {out}")

    summary_base = {
        "corpus_name": corpus_name(cfg.corpus),
        "corpus_chars": len(text), "corpus_sha256": sha,
        "val_source": cfg.val_file or f"last {cfg.val_fraction:g} of the corpus",
        "tokenizer": tokenizer.kind, "vocab_size": tokenizer.vocab_size,
        "chars_per_token": round(chars_per_token, 4), "val_chars": len(val_text),
        "command": command, "device": str(device), "precision": precision,
        "torch_version": torch.__version__,
        "train_config": {k: v for k, v in cfg.to_dict().items() if k != "model"},
    }

    def summary(val_loss: float | None, at_step: int | None) -> dict:
        return {**summary_base, "steps": s["step"], "tokens_seen": s["tokens"],
                "chars_seen": round(s["tokens"] * chars_per_token),
                "train_time_s": round(s["train_time"], 2),
                "wall_time_s": round(s["wall_time"], 2), "val_loss": val_loss,
                "val_bpc": None if val_loss is None else val_loss / math.log(2),
                "best_step": at_step,
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    def save_last(rng_state: torch.Tensor) -> None:
        opt_tensors, opt_meta = _optimizer_tensors(opt)
        tensors = {**opt_tensors, **_state_tensors(carry), "rng": rng_state}
        info = {"step": s["step"], "loop": s, "optimizer": opt_meta, "corpus_sha256": sha,
                "train_config": summary_base["train_config"]}
        checkpoint.save_resume(out / "last", tensors, info)
        checkpoint.save(out / "last", model, tokenizer,
                        summary(s.get("last_val"), s.get("last_val_step")))

    metrics = open(out / "metrics.jsonl", "a", encoding="utf-8")

    def write_metrics(record: dict) -> None:
        metrics.write(json.dumps(record) + "\n")
        metrics.flush()

    def validate() -> float:
        """Total nats over the whole validation text, read as one stream (see LM.evaluate)."""
        return evaluate_ids(model, val_ids)[0]

    # 5. The loop.
    bar = tqdm(total=max_steps if max_steps else budget, initial=s["step"] if max_steps else 0,
               unit="step" if max_steps else "s", disable=not progress, dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"
               if max_steps else "{l_bar}{bar}| {n:.0f}/{total:.0f}s [{elapsed}{postfix}]")
    loss_sum, loss_n, window_tokens, window_time = 0.0, 0, 0, 0.0
    rng_state = torch.get_rng_state()
    t_wall = time.time() - s["wall_time"]
    try:
        while progress_now() < 1.0:
            # a. the next batch; a new epoch restarts the streams, so the state resets
            if s["pos"] >= batches.steps_in_epoch(s["epoch"]):
                s["epoch"], s["pos"], carry = s["epoch"] + 1, 0, None
            x, y = batches.get(s["epoch"], s["pos"])
            x, y = x.to(device), y.to(device)
            t0 = time.perf_counter()
            lr = lr_at(cfg, s["step"], progress_now(), warmup)
            for group in opt.param_groups:
                group["lr"] = lr
            # b. forward, backward, clip, step
            with autocast(device, precision == "bf16"):
                _, loss, new_carry = model(x, y, carry)
            loss.backward()
            norm = (torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    if cfg.grad_clip else torch.tensor(0.0))
            loss_value = loss.item()
            if not (math.isfinite(loss_value) and math.isfinite(float(norm))):
                where = out / "last" if (out / "last").is_dir() else None
                raise FloatingPointError(
                    f"loss became {loss_value} at step {s['step'] + 1}; training stopped. "
                    + (f"The last good checkpoint is kept in {where}. " if where else
                       "No checkpoint was written yet. ")
                    + f"Try a lower --lr (now {cfg.lr:g}) or --grad-clip.")
            opt.step()
            opt.zero_grad(set_to_none=True)
            carry = detach_state(new_carry, torch.float32)
            dt = time.perf_counter() - t0
            s["step"] += 1
            s["pos"] += 1
            s["tokens"] += x.numel()
            s["train_time"] += dt
            s["wall_time"] = time.time() - t_wall
            loss_sum, loss_n = loss_sum + loss_value, loss_n + 1
            window_tokens, window_time = window_tokens + x.numel(), window_time + dt
            # c. progress bar and metrics log
            if s["step"] % cfg.log_every == 0 or progress_now() >= 1.0:
                per_token = loss_sum / loss_n
                per_char = per_token / chars_per_token  # the scale every tokenizer shares
                chars_per_s = window_tokens * chars_per_token / window_time
                write_metrics({"step": s["step"], "train_loss": round(per_char, 5),
                               "train_bpc": round(per_char / math.log(2), 5),
                               "train_nats_per_token": round(per_token, 5), "lr": lr,
                               "train_time": round(s["train_time"], 3), "tokens": s["tokens"],
                               "chars_per_s": round(chars_per_s)})
                bar.set_postfix_str(f"loss {per_char:.3f}, {per_char / math.log(2):.3f} bpc, "
                                    f"{chars_per_s:,.0f} chars/s"
                                    + (f", val {s['last_val']:.3f}" if s.get("last_val") else ""),
                                    refresh=False)
                loss_sum, loss_n, window_tokens, window_time = 0.0, 0, 0, 0.0
            rng_state = torch.get_rng_state()  # what a resume from this step must restore
            bar.update(1 if max_steps else min(s["train_time"], budget) - bar.n)
            if on_step is not None:
                on_step(s["step"])
            # d. validation at evenly spaced points; the best goes to the top, the latest to last/
            due = math.floor(progress_now() * cfg.evals + 1e-9) if progress_now() < 1 else cfg.evals
            if due > s["evals_done"]:
                s["evals_done"] = due
                nats = validate()
                val = nats / val_chars  # nats per character
                s["last_val"], s["last_val_step"] = val, s["step"]
                write_metrics({"step": s["step"], "val_loss": round(val, 5),
                               "val_bpc": round(val / math.log(2), 5),
                               "val_nats_per_token": round(nats / (len(val_ids) - 1), 5),
                               "train_time": round(s["train_time"], 3)})
                if s["best_val"] is None or val < s["best_val"]:
                    s["best_val"], s["best_step"] = val, s["step"]
                    checkpoint.save(out, model, tokenizer, summary(val, s["step"]))
                s["wall_time"] = time.time() - t_wall
                save_last(rng_state)
                bar.set_postfix_str(f"val {val:.3f} nats/char, {val / math.log(2):.3f} bpc")
    except KeyboardInterrupt:
        bar.close()
        s["wall_time"] = time.time() - t_wall
        save_last(rng_state)
        log(f"interrupted at step {s['step']:,}; saved {out / 'last'}. Resume with: "
            f"textrnn train {cfg.corpus} --resume {out}")
        raise
    finally:
        bar.close()
        metrics.close()

    # 6. Report.
    best = s["best_val"]
    log(f"done: {s['step']:,} steps, {s['tokens']:,} tokens in {s['train_time']:.0f} s of training "
        f"({s['tokens'] * chars_per_token / max(s['train_time'], 1e-9):,.0f} chars/s), "
        f"{time.time() - t_start:.0f} s "
        f"in all; best validation {best:.4f} nats/char = {best / math.log(2):.4f} bits/char "
        f"at step {s['best_step']:,}; checkpoint {out}")
    return out
