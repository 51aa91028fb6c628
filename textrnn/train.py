"""Training: `train()`, the loop that turns a corpus into a checkpoint.

The loop, step by step: read and encode the corpus; split off validation text; resolve what the
config leaves open (plan.py); build the model and AdamW; then repeat (batch -> forward -> loss
-> backward -> clip -> step) with the recurrent state carried between batches (truncated BPTT,
see data.py; with `grow_bptt` a step reads more windows as the run goes on: `windows_at`),
validating on the whole validation text at evenly spaced points of the run and keeping the
best and the latest checkpoint. With `ema`, validation, its sample and both checkpoints use an
exponential moving average of the weights (average.py); resuming goes on from the raw weights,
saved beside.

The budget is `max_steps` or `time_budget` (seconds of training; validation passes are not
counted), or both, whichever ends first. The learning rate warms up linearly, then follows a
cosine to `min_lr` over the fraction of the budget used, so a 5-minute run is a complete run,
not the start of a long one. Gradient-norm clipping (Pascanu et al. 2013) keeps the exploding
gradients of plain RNNs from wrecking a step.

Same seed and config give the same run on CPU (with a step budget; a time budget ends at a
step that depends on the machine's speed). Resuming restores weights, optimizer moments, RNG,
data position and the carried state, so a run stopped at step N and resumed gives the weights a
run that never stopped gives. Ctrl-C or SIGTERM saves `last/` and raises KeyboardInterrupt. A
loss that turns NaN or infinite stops the run with FloatingPointError, keeping the last good
checkpoint. Where the CPU or GPU multiplies bfloat16 natively, the forward pass runs under bf16
autocast (`precision`; fp16 with a gradient scaler on older GPUs); weights, optimizer and loss
stay fp32.

Under `torchrun` each process is one rank of a data-parallel run over the same batch (dist.py):
the steps are those of one process, so a run may resume on another number of processes.

What the run shows goes through a `Reporter` (report.py): `Terminal` prints lines and a
progress bar; another front end (a web page) passes its own; ranks other than 0 show nothing.
Left out on purpose: gradient accumulation (a bigger batch is more streams, and the streams are
what is split).
"""

from __future__ import annotations

import contextlib
import math
import shlex
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import checkpoint
from .average import Average, put_raw, raw_weights
from .config import SAMPLE_SEED, SAMPLE_TEMPERATURE, TrainConfig, resumed
from .plan import Resolved, resolve
from .corpus import Corpus
from .corpus import prepare as prepare_corpus
from .data import Batches, corpus_name
from .dist import PeerLost, StopRequested, World
from .evaluate import evaluate_ids
from .lm import LM
from .metrics import MetricsLog, Record, TrainRecord, ValRecord
from .model import RNNLM, autocast, detach_state
from .tokenizer import predicted_chars
from .report import LoopState, Reporter, Terminal


@dataclass
class Run:
    """What a run works with, fixed once it starts."""
    cfg: TrainConfig          # resolved: nothing left open
    settings: Resolved
    out: Path
    corpus: Corpus
    tokenizer: object
    batches: Batches
    model: RNNLM
    opt: torch.optim.AdamW
    metrics: MetricsLog
    summary: dict             # the card's training section, less what changes as it trains
    val_ids: object           # what a validation pass reads: the text, or its first tokens
    val_chars: int            # ... and the characters it predicts
    world: World              # this process's place in the run (a world of one, alone)
    net: torch.nn.Module      # what a step runs: the model, or its DistributedDataParallel
    scaler: torch.amp.GradScaler  # fp16's loss scaling (on CUDA); a no-op otherwise
    average: Average | None   # the weights' moving average (--ema), or None

    def progress(self, state: LoopState) -> float:
        """The fraction of the budget used."""
        return self.settings.budget.progress(state.step, state.train_time)


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


def _prepare_out(cfg: TrainConfig) -> Path:
    if not cfg.out:
        raise ValueError("no output folder given (TrainConfig.out)")
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output {out} exists and is not a folder")
    resuming_here = cfg.resume is not None and Path(cfg.resume).resolve() == out.resolve()
    if out.exists() and not resuming_here and not cfg.overwrite:
        if checkpoint.holds_run(out):
            raise FileExistsError(f"{out} already holds a run; continue it with --resume {out}, "
                                  "replace it with --overwrite, or pick another --out")
        if not checkpoint.leftovers_only(out):
            raise FileExistsError(f"{out} holds files that are not a textrnn run; pick another "
                                  "--out")
        checkpoint.clear_run(out)  # what a run that never saved left behind
    return out


def prepare(cfg: TrainConfig, reporter: Reporter, command: str | None = None,
            world: World | None = None) -> tuple[Run, LoopState, object]:
    """Everything a run needs before its first step, fresh or resumed: (run, state, carry).
    In a distributed run (dist.py) rank 0 decides and writes; every rank reads."""
    world = world or World()
    # 1. what we continue from (merged with the config before the split), and where to write
    cfg, model, tokenizer, resume = _continued(cfg, world)
    out = world.on_main(lambda: _prepare_out(cfg))
    # 2. the data (split as the run was), then everything the config leaves open
    corpus = world.leaders_first(
        lambda: prepare_corpus(cfg, tokenizer, reporter.log, reporter.preparing))
    tokenizer = corpus.tokenizer
    settings = _settled(cfg, corpus, resume, world, reporter)
    cfg, device = settings.cfg, settings.device
    rows = world.rows(settings.batch)
    batches = Batches(corpus.train_ids, settings.batch, settings.seq_len, cfg.seed, rows)
    # 3. model and optimizer, fresh or restored, and where the loop stands
    torch.manual_seed(cfg.seed)
    if model is None:
        model = RNNLM(replace(cfg.model, vocab_size=tokenizer.vocab_size))
    model.to(device).train()
    average = _average(cfg, model, resume)
    opt = _optimizer(model, cfg)
    state, carry, own_rng = LoopState(), None, False
    if resume is not None:
        state, carry = _restored(resume, opt, settings, rows)
        own_rng = _restore_rng(resume.tensors, world, device)
        if resume.info.corpus_sha256 != corpus.sha256:
            reporter.log("note: this corpus differs from the one the run was trained on; "
                         "continuing on it")
        if not own_rng and cfg.model.draws_masks():
            reporter.log(f"note: the run was saved on {_ranks_saved(resume):,} processes and "
                         f"goes on with {world.size:,}: its dropout masks differ from here on "
                         "from the ones an unbroken run would draw")
    elif cfg.overwrite and world.main:
        checkpoint.clear_run(out)
    if world.rank and not own_rng:  # dropout: each rank its own masks (rank 0's a lone run's)
        torch.manual_seed(int(torch.randint(2**62, (1,))) + world.rank)
    net = _distributed(model, world, device)
    # 4. the logs, and what the run's checkpoints will say of it
    if world.main:
        out.mkdir(parents=True, exist_ok=True)
        metrics = MetricsLog(out, upto=state.step if resume is not None else None)
    else:
        metrics = _NoMetrics()
    val_ids, val_chars, read_chars = _validation_text(corpus, tokenizer, settings.val_tokens)
    summary = {**_summary(cfg, corpus, tokenizer, command, device), "val_chars": read_chars}
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
    if resume is not None and resume.info.scaler:
        scaler.load_state_dict(resume.info.scaler)
    run = Run(cfg, settings, out, corpus, tokenizer, batches, model, opt, metrics, summary,
              val_ids, val_chars, world, net, scaler, average)
    _say_what_was_decided(run, state, resumed=resume is not None, log=reporter.log)
    return run, state, carry


def _continued(cfg: TrainConfig, world: World):
    """(cfg, model, tokenizer, resume): for a resumed run, its last checkpoint and resume
    state, and `cfg` merged with what it was started with (the one merge); else Nones."""
    if not cfg.resume:
        return cfg, None, None, None

    def load():
        resume = checkpoint.load_resume(cfg.resume)  # (says what a folder lacks, first)
        model, tokenizer, _ = checkpoint.load(checkpoint.last_dir(cfg.resume))
        return model, tokenizer, resume
    model, tokenizer, resume = world.together(load)
    return resumed(cfg, resume.info.train_config, model.config), model, tokenizer, resume


def _average(cfg: TrainConfig, model: RNNLM, resume) -> Average | None:
    """The moving average of the weights (--ema), if asked for. A resumed run's checkpoint
    holds the average where its resume state holds the raw weights: the model goes on from
    those."""
    average = Average(model, cfg.ema) if cfg.ema else None  # from the weights loaded
    raw = resume.raw_weights() if resume is not None else None
    if raw is not None:
        put_raw(model, raw)
    return average


def averaged(run: Run):
    """A block inside which the model holds the average of its weights (without --ema, its
    weights)."""
    return run.average.swapped_in(run.model) if run.average else contextlib.nullcontext()


def _settled(cfg: TrainConfig, corpus: Corpus, resume, world: World,
             reporter: Reporter) -> Resolved:
    """Everything the config leaves open, decided by rank 0 and said."""
    settings = world.on_main(lambda: resolve(
        cfg, len(corpus.train_ids), corpus.tokenizer.vocab_size,
        None if resume is None else resume.info.train_config,
        n_val=len(corpus.val_ids), ranks=world.size))
    if world.distributed and settings.device.type == "cuda":  # each rank its own GPU
        settings = replace(settings, device=world.device)
    for note in settings.notes:
        reporter.log(note)
    world.on_main(lambda: world.rows(settings.batch))  # a batch that does not split: said once
    if settings.device.type == "cuda":  # TF32 matmuls: fp32 weights, 10-bit mantissa products
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    return settings


def _restored(resume: checkpoint.Resume, opt, settings: Resolved, rows: slice):
    """A resumed run's loop state and carried state, with the optimizer restored; a new
    budget re-spreads the validation passes that remain."""
    state = LoopState(**{k: v for k, v in resume.info.loop.items()
                         if k in LoopState.__dataclass_fields__})
    resume.restore_optimizer(opt, settings.device)
    carry = _rows_of(resume.carry(settings.device), rows)
    state.evals_done = evals_due(settings.budget.progress(state.step, state.train_time),
                                 settings.cfg.evals)
    return state, carry


def rng_states(device: torch.device) -> dict[str, torch.Tensor]:
    """What dropout draws from in this process, as resume.safetensors names it: the CPU
    generator's state, and on CUDA the GPU's too."""
    states = {"rng": torch.get_rng_state()}
    if device.type == "cuda":
        states["rng.cuda"] = torch.cuda.get_rng_state(device)
    return states


def _restore_rng(tensors: dict[str, torch.Tensor], world: World, device: torch.device) -> bool:
    """Put back the RNG states this rank saved, and whether they were its own: a run saved
    on another number of processes gets rank 0's, and its other ranks draw afresh."""
    saved = tensors.get("rng.ranks", tensors["rng"].unsqueeze(0))  # one row per rank
    own = len(saved) == world.size
    # clone: set_rng_state reads a row's storage from its start, not from the row's offset
    torch.set_rng_state(saved[world.rank if own else 0].clone())
    cuda = tensors.get("rng.cuda.ranks", tensors.get("rng.cuda", torch.empty(0)).unsqueeze(0))
    if (own or world.main) and cuda.numel() and device.type == "cuda":
        torch.cuda.set_rng_state(cuda[world.rank if own else 0].clone(), device)
    return own


def _distributed(model: RNNLM, world: World, device: torch.device) -> torch.nn.Module:
    """What a step runs: the model, or (under torchrun) its DistributedDataParallel."""
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel
    with world.talking():  # DDP hands rank 0's weights to all
        return DistributedDataParallel(model, device_ids=[torch.cuda.current_device()]
                                       if device.type == "cuda" else None)


def _validation_text(corpus: Corpus, tokenizer, val_tokens: int):
    """What a validation pass reads (the validation tokens, or a prefix of them for a short
    budget), the characters it predicts, and the characters it reads."""
    val_ids, val_chars = corpus.val_ids, corpus.val_chars
    if val_tokens < len(val_ids):  # a prefix: count the characters it predicts
        val_ids = val_ids[:val_tokens]
        val_chars = predicted_chars(tokenizer, len(tokenizer.decode(val_ids.tolist())), val_ids)
    return val_ids, val_chars, val_chars + len(tokenizer.decode(val_ids[:1].tolist()))


def _summary(cfg: TrainConfig, corpus: Corpus, tokenizer, command: str | None,
             device: torch.device) -> dict:
    """The checkpoint card's training section, less what changes as the run trains."""
    return {
        "corpus_name": corpus_name(cfg.corpus), "corpus_chars": corpus.chars,
        "corpus_sha256": corpus.sha256,
        "val_source": cfg.val_file or f"last {cfg.val_fraction:g} of the corpus",
        "tokenizer": tokenizer.kind, "vocab_size": tokenizer.vocab_size,
        "chars_per_token": round(corpus.chars_per_token, 4),
        "val_chars": corpus.val_text_chars, "command": command, "device": str(device),
        "precision": cfg.precision, "torch_version": torch.__version__,
        "train_config": cfg.record(),
    }


class _NoMetrics:
    """The metrics log of a rank other than 0: rank 0 writes it."""

    def write(self, record: Record) -> None:
        pass

    def close(self) -> None:
        pass


def _rows_of(state, rows: slice):
    """The rows (dim 1) of a carried recurrent state that this process owns."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s[:, rows].contiguous() for s in state)  # cuDNN wants it so
    return state[:, rows].contiguous()


def _say_what_was_decided(run: Run, state: LoopState, resumed: bool, log) -> None:
    c, cm, tok = run.corpus, run.model.config, run.tokenizer
    log(f"corpus {run.cfg.corpus}: {c.chars:,} chars; {tok.kind} tokenizer, vocabulary "
        f"{tok.vocab_size:,}, {c.chars_per_token:.2f} chars/token; train {len(c.train_ids):,} "
        f"tokens, validate {len(c.val_ids):,}")
    if run.settings.why:
        log(run.settings.why)
    log(f"model {cm.layers}x{cm.hidden} {cm.cell.upper()}, embedding {cm.embed}"
        f"{' (tied to the output layer)' if cm.tie_weights else ''}, dropout "
        f"{cm.dropout:g}{cm.regularizers()}: {run.model.num_params():,} parameters on "
        f"{run.settings.device}")
    s = run.settings
    w = run.world
    log(f"batch {s.batch} x {s.seq_len} tokens"
        + (f", BPTT growing to {run.cfg.grow_bptt} x {s.seq_len}" if run.cfg.grow_bptt > 1
           else "")
        + (f" over {w.size} processes ({s.batch // w.size} streams each)" if w.distributed
           else "") + f", {run.cfg.precision}, lr {run.cfg.lr:g} (cosine "
        f"to {run.cfg.min_lr:g}), budget {s.budget}"
        f"{f', from step {state.step:,}' if resumed else ''}; writing {run.out}")
    if run.average:
        log(f"validating and saving a moving average of the weights (--ema {run.cfg.ema:g})")


def windows_at(grow_bptt: int, progress: float) -> int:
    """How many consecutive seq-len windows a step reads at `progress` (the fraction of the
    budget used) when BPTT grows to `grow_bptt` windows: the budget in log2(grow_bptt) + 1
    equal parts, part j reading 2**j. Progress is the same on every rank (a time budget runs
    on rank 0's clock: dist.World.after_step), so all ranks read alike."""
    parts = grow_bptt.bit_length()  # log2 + 1 of a power of two
    return 2 ** min(int(progress * parts), parts - 1)


def train_step(run: Run, state: LoopState, carry):
    """One optimizer step on the next batch: its next window of each stream, or with
    --grow-bptt the next k (`windows_at`), read as one. Returns (loss in nats/token, tokens,
    seconds, lr, the carried state)."""
    device = run.settings.device
    k = min(windows_at(run.cfg.grow_bptt, run.progress(state)),
            run.batches.steps_in_epoch(state.epoch) - state.pos)  # an epoch ends: what is left
    x, y = run.batches.get(state.epoch, state.pos, windows=k)  # one stretch: the state is
    # carried across the k windows undetached, so the loss backpropagates through all of them
    x, y = x.to(device), y.to(device)
    t0 = time.perf_counter()
    lr = lr_at(run.cfg, state.step, run.progress(state), run.settings.budget.warmup)
    for group in run.opt.param_groups:
        group["lr"] = lr
    with autocast(device, run.cfg.precision):
        _, loss, new_carry = run.net(x, y, carry)
    run.scaler.scale(loss).backward()    # DDP averages the gradients over the ranks here
    run.scaler.unscale_(run.opt)
    norm = (torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.grad_clip)
            if run.cfg.grad_clip else torch.tensor(0.0))
    loss_value = loss.item()
    scaled = run.scaler.is_enabled()  # fp16: an overflow skips the step and lowers the scale
    bad = not (math.isfinite(loss_value) and (scaled or math.isfinite(float(norm))))
    if run.world.sum(float(bad)):  # every rank, or none
        last = checkpoint.last_dir(run.out)
        where = last if last != run.out else None
        raise FloatingPointError(
            f"loss became {loss_value} at step {state.step + 1}; training stopped. "
            + (f"The last good checkpoint is kept in {where}. " if where else
               "No checkpoint was written yet. ")
            + f"Try a lower --lr (now {run.cfg.lr:g}) or --grad-clip.")
    run.scaler.step(run.opt)
    run.scaler.update()
    run.opt.zero_grad(set_to_none=True)
    if run.average:
        run.average.update(run.model, state.step)
    dt = time.perf_counter() - t0
    tokens = x.numel() * run.world.size  # the whole batch's, over all ranks
    state.step, state.pos = state.step + 1, state.pos + k
    state.tokens += tokens
    state.train_time += dt
    return loss_value, tokens, dt, lr, detach_state(new_carry, torch.float32)


class Window:
    """Training loss and speed summed since the last metrics record."""

    def __init__(self):
        self.loss, self.steps, self.tokens, self.seconds = 0.0, 0, 0, 0.0

    def add(self, loss: float, tokens: int, seconds: float) -> None:
        self.loss, self.steps = self.loss + loss, self.steps + 1
        self.tokens, self.seconds = self.tokens + tokens, self.seconds + seconds

    def record(self, run: Run, state: LoopState, lr: float) -> TrainRecord:
        per_token = self.loss / self.steps
        per_char = per_token / run.corpus.chars_per_token  # the scale every tokenizer shares
        return TrainRecord(
            step=state.step, train_loss=round(per_char, 5),
            train_bpc=round(per_char / math.log(2), 5), train_nats_per_token=round(per_token, 5),
            lr=lr, train_time=round(state.train_time, 3), tokens=state.tokens,
            chars_per_s=round(self.tokens * run.corpus.chars_per_token / self.seconds))


def summary(run: Run, state: LoopState, val_loss: float | None, at_step: int | None) -> dict:
    """The card's training section for a checkpoint saved now."""
    return {**run.summary, "steps": state.step, "tokens_seen": state.tokens,
            "chars_seen": round(state.tokens * run.corpus.chars_per_token),
            "train_time_s": round(state.train_time, 2),
            "wall_time_s": round(state.wall_time, 2), "val_loss": val_loss,
            "val_bpc": None if val_loss is None else val_loss / math.log(2),
            "best_step": at_step,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _ranks_saved(resume: checkpoint.Resume) -> int:
    """How many processes the run's resume state was saved from."""
    return len(resume.tensors["rng.ranks"]) if "rng.ranks" in resume.tensors else 1


def save_last(run: Run, state: LoopState, carry, rng: dict[str, torch.Tensor]) -> None:
    """The latest step, with what resuming needs, to `last/`: the whole batch's carried state
    and every rank's RNG states, gathered from every rank (all take part), written by rank 0."""
    carry = run.world.gather_rows(carry)
    if run.world.distributed:  # "rng" stays rank 0's, as a run of one process saves it
        rng = {**rng, **{f"{k}.ranks": run.world.gather(v) for k, v in rng.items()}}
    if not run.world.main:
        return
    info = checkpoint.ResumeInfo(
        step=state.step, loop=asdict(state), corpus_sha256=run.corpus.sha256,
        scaler=run.scaler.state_dict() if run.scaler.is_enabled() else None,
        train_config={**run.summary["train_config"], "val_tokens": run.settings.val_tokens})
    raw = raw_weights(run.model) if run.average else None
    with averaged(run):  # what a user loads from last/ is the average; raw goes on training
        checkpoint.save_last(run.out, run.model, run.tokenizer,
                             summary(run, state, state.last_val, state.last_val_step),
                             run.opt, carry, rng, info, raw)


def evals_due(progress: float, evals: int) -> int:
    """How many of a run's `evals` evenly spaced validation points it has passed at `progress`
    (the last at its end)."""
    return math.floor(progress * evals + 1e-9) if progress < 1 else evals


def validate(run: Run, state: LoopState) -> ValRecord:
    """A pass over the validation text: as one stream (see LM.evaluate), or, for a big one, in
    slices side by side (`evaluate_ids`) under the run's precision."""
    s, ids, w = run.settings, run.val_ids, run.world
    with autocast(s.device, run.cfg.precision if s.val_streams > 1 else "fp32"):
        nats = w.sum(evaluate_ids(run.model, ids, streams=s.val_streams,
                                  part=(w.rank, w.size))[0])
    val = nats / run.val_chars  # nats per character
    state.last_val, state.last_val_step = val, state.step
    return ValRecord(step=state.step, val_loss=round(val, 5),
                     val_bpc=round(val / math.log(2), 5),
                     val_nats_per_token=round(nats / (len(ids) - 1), 5),
                     train_time=round(state.train_time, 3))


def sample(run: Run) -> str:
    """`sample_chars` characters from the model as it is now, from a fixed seed (the global
    RNG, which dropout draws from, is left alone)."""
    try:
        return LM(run.model, run.tokenizer).generate(
            "", run.cfg.sample_chars, temperature=SAMPLE_TEMPERATURE, seed=SAMPLE_SEED)
    finally:
        run.model.train()


def save_best(run: Run, state: LoopState) -> None:
    """The run's top holds the checkpoint of its best validation: this one, if it beats it."""
    if state.best_val is None or state.last_val < state.best_val:
        state.best_val, state.best_step = state.last_val, state.step
        if run.world.main:
            checkpoint.save(run.out, run.model, run.tokenizer,
                            summary(run, state, state.last_val, state.step))


def _forget_failed_start(run: Run) -> None:
    """A new run that fails before its first checkpoint (NaN, a full disk) leaves nothing
    behind that would block its rerun: no metrics log, no half-written files."""
    if not run.world.main or run.cfg.resume is not None or \
            checkpoint.resolve(run.out) != run.out or checkpoint.is_checkpoint(run.out):
        return
    run.metrics.close()
    checkpoint.clear_run(run.out)
    with contextlib.suppress(OSError):
        run.out.rmdir()  # only if nothing else is there


def train(cfg: TrainConfig, reporter: Reporter | None = None, command: str | None = None
          ) -> Path:
    """Train as `cfg` says and return the run folder. What the run shows goes to `reporter`:
    by default a `Terminal` (lines on stdout and a progress bar); `Reporter()` shows nothing.
    `command` is recorded in the checkpoint (the CLI's own command line). Under `torchrun` this
    process is one rank of a data-parallel run (dist.py); only rank 0 shows anything."""
    world = World.from_env()
    world.join(cfg.device)
    if not world.main:
        reporter = Reporter()
    together = False
    try:
        out = _train(cfg, world, command, reporter or Terminal())
        together = True
        return out
    except StopRequested:
        together = True  # every rank stops at the same step
        raise
    finally:
        world.leave(together)


def _train(cfg: TrainConfig, world: World, command: str | None, reporter: Reporter) -> Path:
    t_start = time.time()
    run, state, carry = prepare(cfg, reporter, command, world)              # 1. prepare
    cfg, window = run.cfg, Window()
    rng = rng_states(run.settings.device)
    t_wall = time.time() - state.wall_time
    try:
        reporter.begin(run.settings.budget, state)
        with world.signals():
            while run.progress(state) < 1.0:
                if state.pos >= run.batches.steps_in_epoch(state.epoch):  # a new epoch
                    state.epoch, state.pos, carry = state.epoch + 1, 0, None  # restarts streams
                with world.talking():
                    loss, tokens, dt, lr, carry = train_step(run, state, carry)  # 2. one step
                loss, state.train_time, stop = world.after_step(loss, state.train_time)
                state.wall_time = time.time() - t_wall
                window.add(loss, tokens, dt)
                if state.step % cfg.log_every == 0 or run.progress(state) >= 1.0:
                    record = window.record(run, state, lr)                   # 3. report
                    run.metrics.write(record)
                    reporter.trained(state, record)
                    window = Window()
                rng = rng_states(run.settings.device)  # what a resume from here restores
                try:
                    reporter.stepped(state)
                except KeyboardInterrupt:
                    if not world.distributed:
                        raise
                    world.stop = True  # the others hear it after the next step
                if evals_due(run.progress(state), cfg.evals) > state.evals_done:  # 4. validate
                    validate_and_save(run, state, carry, rng, reporter, t_wall)
                if stop:  # a signal reached some rank: all stop here, after this step's work
                    raise StopRequested
    except KeyboardInterrupt as e:
        reporter.end()  # before the last lines, so they do not land inside a progress bar
        if world.distributed and not isinstance(e, StopRequested):  # asked twice: gone at once
            reporter.log(f"stopped at once at step {state.step:,}; the last checkpoint saved "
                         f"is in {run.out}")
            raise
        state.wall_time = time.time() - t_wall
        save_last(run, state, carry, rng)
        reporter.log(f"interrupted at step {state.step:,}")
        reporter.hint(f"saved {run.out / 'last'}; resume with: textrnn train {cfg.corpus} "
                      f"--resume {run.out}")
        raise
    except PeerLost as e:
        reporter.end()
        raise PeerLost(f"{e}. Resume from the last checkpoint saved: --resume {run.out}") \
            from None
    except BaseException:
        reporter.end()
        _forget_failed_start(run)
        raise
    else:
        reporter.end()
    finally:
        run.metrics.close()
    say_done(run, state, reporter, time.time() - t_start)                    # 5. done
    return run.out


def validate_and_save(run: Run, state: LoopState, carry, rng: dict[str, torch.Tensor],
                      reporter: Reporter, t_wall: float) -> None:
    """A validation point: the pass (and a sample to watch it learn), its record, the best
    checkpoint if it is the best, and last/ with what resuming from this step needs."""
    state.evals_done = evals_due(run.progress(state), run.cfg.evals)
    with averaged(run):  # (every rank: each validates a part)
        record = validate(run, state)
        if run.cfg.sample_chars and run.world.main:
            record = replace(record, sample=sample(run))
        run.metrics.write(record)
        save_best(run, state)
    state.wall_time = time.time() - t_wall
    save_last(run, state, carry, rng)
    reporter.validated(state, record)


def say_done(run: Run, state: LoopState, reporter: Reporter, seconds: float) -> None:
    """The end of a finished run: its figures, a note if it learned its text by heart, and
    the commands to type next."""
    best = state.best_val
    reporter.log(
        f"done: {state.step:,} steps, {state.tokens:,} tokens in {state.train_time:.0f} s of "
        f"training ({state.tokens * run.corpus.chars_per_token / max(state.train_time, 1e-9):,.0f}"
        f" chars/s), {seconds:.0f} s in all; best validation {best:.4f} nats/char "
        f"= {best / math.log(2):.4f} bits/char at step {state.best_step:,}; checkpoint {run.out}")
    if state.best_step and state.best_step <= state.step // 2:
        reporter.log(f"note: validation stopped improving at step {state.best_step:,} of "
                     f"{state.step:,}; past it the model learned the training text by heart. "
                     "The best checkpoint is kept; more text would help more than more time")
    out, folder = shlex.quote(str(run.out)), shlex.quote(str(run.out.parent))
    reporter.hint(f"next: textrnn sample {out} --length 500    (text from the best checkpoint)\n"
                  f"      textrnn serve {folder}    (the web page, with every run in "
                  f"{folder})")
