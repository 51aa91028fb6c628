"""The plan of a run: `resolve()`, the one place that fills in what a `TrainConfig` (config.py)
leaves open, and everything it decides with.

What a person leaves unset (None, or "auto") is decided here, in this order, and nowhere else:
  1. a resumed run keeps its model and tokenizer (the checkpoint's) and the batch shape, lr and
     precision it was started with; flags given anew replace the rest (config.py, merged
     before the corpus is prepared, so this module sees the merged config);
  2. device and precision;
  3. the adaptive defaults, from the corpus and the budget (`choose`, below);
  4. the batch shape that fits a short corpus, and the budget: steps, seconds and warm-up.

The adaptive defaults. A run can afford a number of training tokens D: max_steps x batch x
seq_len for a step budget, and for a time budget the tokens per second this machine trains a
candidate model at (timed in a few steps at the start) times the seconds. Then, measured on the
sweep in docs/defaults-measured.md:

- width: the widest of `WIDTHS` (two layers) that still gets `TOKENS_PER_WEIGHT` training tokens
  per recurrent weight, and has at most `WEIGHTS_PER_TOKEN` of them per corpus token. The
  embedding and the softmax are not counted: each of their rows is trained by its own token's
  occurrences, and what they cost a step is in the timed speed. (Counting them, a Chinese text
  of 6,000 distinct characters got a 2x64 core for its 120 s, 0.10 nats/char behind 2x256.) A
  wider model that cannot see enough text in the budget is still learning when time runs out,
  and the narrower one that converged wins; a model much larger than its corpus memorises it.
- dropout: none while the run reads the corpus only a few times; more as the number of passes
  grows (the larger model a long run buys would otherwise overfit a small corpus).
- weight decay: `WEIGHT_DECAY` while the run reads the corpus up to `WEIGHT_DECAY_PASSES` times,
  more in proportion beyond, for the same reason.
- embedding: for the classic cells, tied to the output layer and as wide as the layers (it won
  on every corpus of issue 28's ablation); a width set by hand unties it. The min cells keep a
  separate `EMBED`-wide one. The rule for the width counts the first layer's input weights at
  the embedding's width, so a tied model may be one width narrower.
- learning rate: `BASE_LR` at width 256, times (256 / width) ** 0.75: wider layers sum more
  inputs per unit, so each weight must move less.
- batch: 64 streams of 50 tokens, fewer streams when a time budget would leave fewer than
  `MIN_STEPS` steps (a short budget is better spent on more, smaller steps), shrunk further for a
  short corpus.

Anything set by hand is kept, and the rest is chosen around it.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import torch

from .config import (BASE_LR, BASE_WIDTH, BATCH, DEFAULT_STEPS, LAYERS, MAX_DROPOUT,
                     MAX_WEIGHT_DECAY, MEMORY_SHARE, MIN_BATCH, MIN_STEPS, MIN_VAL_TOKENS, SEQ_LEN,
                     SINGLE_STREAM_TOKENS, TOKENS_PER_WEIGHT, VAL_SHARE, VAL_STREAMS, WEIGHT_DECAY,
                     WEIGHT_DECAY_PASSES, WEIGHTS_PER_TOKEN, WIDTHS, TrainConfig)
from .data import fit_batch_shape
from .evaluate import eval_speed
from .minrnn import MIN_CELLS
from .model import (EMBED, GATES, ModelConfig, RNNLM, autocast, core_params, num_params,
                    pick_device)


# --- 2. device and precision ---

def pick_precision(name: str, device: torch.device) -> str:
    """auto -> bf16 where the CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX), else fp32;
    on CUDA, bf16 where the GPU has it (Ampere on), else fp16 with loss scaling.

    bf16 autocast runs the RNN's and the head's matmuls in bfloat16 with fp32 accumulation; the
    weights, the optimizer and the loss stay fp32. A CPU without native bf16 is refused bf16:
    oneDNN has no bfloat16 LSTM there (it fails to build the primitive), and what it emulates is
    slower than fp32. fp16 is for CUDA alone: its narrow range needs a gradient scaler
    (train.py), which only CUDA's autocast pairs with.
    """
    native = device.type == "cpu" and torch.backends.mkldnn.is_available() and \
        torch.ops.mkldnn._is_mkldnn_bf16_supported()
    if name != "auto":
        if name == "bf16" and device.type == "mps":
            raise ValueError("bf16 training is not supported on mps; use --precision fp32")
        if name == "bf16" and device.type == "cpu" and not native:
            raise ValueError("bf16 training needs a CPU with native bfloat16 (AVX-512 BF16 or "
                             "AMX), and this one has none; use --precision fp32 (what auto "
                             "picks here)")
        if name == "fp16" and device.type != "cuda":
            raise ValueError(f"fp16 training needs a CUDA GPU (the device is {device.type}); "
                             "use --precision bf16 or fp32")
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if native else "fp32"


# --- 3. the adaptive defaults ---

def num_weights(cfg: ModelConfig) -> int:
    """Parameters of a model with this config (counted from its shapes: no memory, no time)."""
    return num_params(cfg)


def dropout_for(passes: float) -> float:
    """Dropout for a run that reads the corpus `passes` times: 0.1 at 10 passes, 0.1 more per
    doubling, up to `MAX_DROPOUT`; none below 0.05 (about 7 passes)."""
    p = round(min(MAX_DROPOUT, 0.1 * math.log2(max(passes, 1) / 5)), 2)
    return p if p >= 0.05 else 0.0


def weight_decay_for(passes: float) -> float:
    """AdamW weight decay for a run that reads the corpus `passes` times: `WEIGHT_DECAY` up to
    `WEIGHT_DECAY_PASSES` passes, in proportion to the passes beyond, up to `MAX_WEIGHT_DECAY`."""
    return round(min(MAX_WEIGHT_DECAY,
                     WEIGHT_DECAY * max(1.0, passes / WEIGHT_DECAY_PASSES)), 2)


def lr_for(width: int) -> float:
    """BASE_LR at BASE_WIDTH, times (BASE_WIDTH / width) ** 0.75, to two significant digits."""
    return float(f"{BASE_LR * (BASE_WIDTH / width) ** 0.75:.2g}")


def train_speed(cfg: ModelConfig, batch: int, seq_len: int, device: torch.device,
                precision: str, steps: int = 3) -> float:
    """Training tokens per second of a fresh model with `cfg`: the median of `steps` timed
    forward-backward-update steps, after one untimed step."""
    model = RNNLM(cfg).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(cfg.vocab_size, (batch, seq_len + 1), device=device)
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        with autocast(device, precision):
            _, loss, _ = model(x[:, :-1], x[:, 1:])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return batch * seq_len / statistics.median(times[1:])


@dataclass
class Affordable:
    """What the budget buys a run with `seq_len`-token windows: training tokens per model and
    batch. A time budget times each width and batch once (or asks `speed`)."""
    cfg: TrainConfig
    seq_len: int
    device: torch.device
    precision: str
    speed: Callable[[ModelConfig, int, int], float] | None = None
    ranks: int = 1
    timings: dict[tuple[int, int], float] = field(default_factory=dict)

    def __post_init__(self):
        self.steps = budget_steps(self.cfg)

    def rate(self, mc: ModelConfig, b: int) -> float:
        """Tokens/s for this width and batch, timed once (or asked of `speed`)."""
        key = (mc.hidden, b)
        if key not in self.timings:
            self.timings[key] = (
                self.speed(mc, b, self.seq_len) if self.speed is not None else self.ranks *
                train_speed(mc, max(1, b // self.ranks), self.seq_len, self.device,
                            self.precision))
        return self.timings[key]

    def tokens(self, mc: ModelConfig, b: int) -> float:
        """Training tokens the budget buys for this model at batch b."""
        d = [self.steps * b * self.seq_len] if self.steps else []
        if self.cfg.time_budget:
            d.append(self.rate(mc, b) * self.cfg.time_budget)
        return min(d)


def candidate(m: ModelConfig, width: int) -> ModelConfig:
    """m at this width (unless set), with LAYERS, no dropout and its embedding unless set."""
    return embedding(replace(m, hidden=width if m.hidden is None else m.hidden,
                             layers=LAYERS if m.layers is None else m.layers,
                             dropout=0.0 if m.dropout is None else m.dropout))


def embedding(m: ModelConfig) -> ModelConfig:
    """Tied input and output embeddings for the classic cells unless an embedding width is set:
    a tied one is as wide as the layers, an untied one `EMBED` wide unless set. Tying won on
    every corpus of the ablation (docs/benchmarks.md): prose, code and a 6,000-character
    alphabet. The min cells stay untied: their stack ends in an RMSNorm whose unit-scale output,
    read by an embedding matrix as the head, gave a 3x384 minGRU 5.46 nats/char at 110 s."""
    tie = m.cell not in MIN_CELLS if m.tie_weights is None else m.tie_weights  # (and an embed
    # width of its own unties: model.py)
    embed = m.embed if m.embed is not None else m.hidden if tie else EMBED
    return replace(m, tie_weights=tie, embed=embed)


def widest(m: ModelConfig, n_tokens: int, budget: Affordable, batch: int) -> int:
    """The widest of WIDTHS that the budget and the corpus both afford (the narrowest, if
    none)."""
    width = WIDTHS[0]
    for w in WIDTHS:
        p = core_params(candidate(m, w))
        if p > WEIGHTS_PER_TOKEN * n_tokens or budget.tokens(candidate(m, w), batch) < \
                TOKENS_PER_WEIGHT * p:
            break
        width = w
    return width


def batch_for(m: ModelConfig, n_tokens: int, budget: Affordable, batch: int
              ) -> tuple[int, str]:
    """At least MIN_STEPS steps when a short time budget is what ends the run (under a step
    budget, smaller batches would add no steps, only read less); fewer streams for a short
    corpus, a multiple of the ranks. Returns the batch and why it has fewer streams for the
    steps ("" if it does not)."""
    def steps_at(b: int) -> float:
        return budget.tokens(m, b) / (b * budget.seq_len)

    asked = batch
    while (batch > MIN_BATCH and steps_at(batch) < MIN_STEPS
           and (not budget.steps or steps_at(batch) < budget.steps)):
        batch //= 2
    why = (f"batch {batch} for {steps_at(batch):,.0f} steps, not {steps_at(asked):,.0f} at "
           f"{asked}: a short budget gains from more, smaller steps" if batch < asked else "")
    batch = fit_batch_shape(n_tokens, batch, budget.seq_len)[0]  # a short corpus: fewer streams
    return max(budget.ranks, batch - batch % budget.ranks), why  # ... that split across ranks


def chose_line(asked: TrainConfig, out: TrainConfig, why: list[str]) -> str:
    """"chose hidden 128, ... (why)" for what `asked` left open, or "" if it left nothing."""
    m, before = out.model, asked.model
    tied = before.tie_weights and before.embed is not None  # the width was the embedding's
    picked = [text for was, text in [
        (m.hidden if tied else before.hidden, f"hidden {m.hidden}"),
        (before.embed, f"embed {m.embed}"),
        (before.tie_weights, "tied embeddings" if m.tie_weights else "untied embeddings"),
        (before.layers, f"layers {m.layers}"), (before.dropout, f"dropout {m.dropout:g}"),
        (asked.weight_decay, f"weight-decay {out.weight_decay:g}"), (asked.lr, f"lr {out.lr:g}"),
        (asked.batch_size, f"batch-size {out.batch_size}"),
        (asked.seq_len, f"seq-len {out.seq_len}")] if was is None]
    return f"chose {', '.join(picked)} ({'; '.join(why)})" if picked else ""


def choose(cfg: TrainConfig, n_tokens: int, vocab_size: int, device: torch.device,
           precision: str,
           speed: Callable[[ModelConfig, int, int], float] | None = None, ranks: int = 1
           ) -> tuple[TrainConfig, str]:
    """Fill in what `cfg` leaves unset (None) for a corpus of `n_tokens` training tokens; return
    the filled-in config and a line saying what was chosen and why ("" if nothing was).

    `speed(model_config, batch, seq_len)` gives training tokens per second; by default each
    width and batch it is asked about is timed once on `device` (only with a time budget), at
    the rows one of `ranks` processes owns. A batch chosen here splits across the ranks. A
    width set by hand is checked against memory before (resolve), a chosen one after."""
    m = replace(cfg.model, vocab_size=vocab_size)
    if m.tie_weights and m.embed is not None and m.hidden is None:
        m = replace(m, hidden=m.embed)  # tying needs the two widths equal
    seq_len = cfg.seq_len or SEQ_LEN
    budget = Affordable(cfg, seq_len, device, precision, speed, ranks)
    batch = cfg.batch_size or BATCH
    # 1. width: the widest candidate that the budget and the corpus both afford
    m = candidate(m, m.hidden if m.hidden is not None else widest(m, n_tokens, budget, batch))
    # 2. batch: see batch_for
    fewer = ""
    if cfg.batch_size is None:
        batch, fewer = batch_for(m, n_tokens, budget, batch)
    d = budget.tokens(m, batch)
    timed = cfg.time_budget and (not budget.steps or d < budget.steps * batch * seq_len)
    passes = d / max(n_tokens, 1)
    why = [f"{d / 1e6:.3g}M tokens in the budget"
           + (f" at {d / cfg.time_budget:,.0f} tokens/s" if timed else ""),
           f"{d / core_params(m):.3g} per recurrent weight", f"{passes:.3g} passes over the corpus",
           *[fewer] * bool(fewer)]
    # 3. dropout from the passes over the corpus, lr from the width
    if cfg.model.dropout is None:
        m = replace(m, dropout=dropout_for(passes))
    wd = cfg.weight_decay if cfg.weight_decay is not None else weight_decay_for(passes)
    lr = cfg.lr if cfg.lr is not None else lr_for(m.hidden)
    out = replace(cfg, model=m, lr=lr, min_lr=min(cfg.min_lr, lr), batch_size=batch,
                  seq_len=seq_len, weight_decay=wd)
    return out, chose_line(cfg, out, why)


# --- 4. the batch shape and the budget ---

def budget_steps(cfg: TrainConfig) -> int | None:
    """The step budget: max_steps, or DEFAULT_STEPS when no budget at all is given."""
    if cfg.max_steps is None and cfg.time_budget is None:
        return DEFAULT_STEPS
    return cfg.max_steps


def device_memory(device: torch.device) -> int:
    """Bytes of memory on `device`: the GPU's, or the machine's RAM."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(m: ModelConfig, batch: int, seq_len: int, device: torch.device) -> None:
    """Refuse, before anything is allocated, a model and batch that cannot fit: fp32 weights,
    gradients and two AdamW moments, and the activations BPTT keeps for a batch (`seq_len`:
    the tokens of the longest step, --grow-bptt's windows included)."""
    per_token = m.layers * (GATES[m.cell] + 2) * m.hidden + m.embed + 3 * m.vocab_size
    acts = batch * seq_len * per_token
    need, have = 4 * (4 * num_weights(m) + acts), device_memory(device)
    if need > MEMORY_SHARE * have:
        raise ValueError(f"a {m.layers}x{m.hidden} {m.cell.upper()} trained at batch {batch} x "
                         f"{seq_len} needs about {need / 2**30:,.1f} GB (weights, gradients, "
                         f"AdamW moments, activations), more than {device}'s "
                         f"{have / 2**30:,.1f} GB allow; lower --hidden, --layers, --batch-size, "
                         "--seq-len or --grow-bptt")


@dataclass(frozen=True)
class Budget:
    steps: int | None        # optimizer steps, or None for a time budget alone
    seconds: float | None    # seconds of training, or None for a step budget alone
    warmup: int              # linear warm-up steps

    def progress(self, step: int, train_time: float) -> float:
        """The fraction of the budget used: whichever of steps and seconds runs out first."""
        p = [step / self.steps] if self.steps else []
        p += [train_time / self.seconds] if self.seconds else []
        return max(p)

    def __str__(self) -> str:
        return " or ".join(([f"{self.steps:,} steps"] if self.steps else []) +
                           ([f"{self.seconds:g} s"] if self.seconds else []))


def val_streams(n_tokens: int) -> int:
    """Slices a validation pass over `n_tokens` reads side by side, by default."""
    return 1 if n_tokens <= SINGLE_STREAM_TOKENS else VAL_STREAMS


@dataclass(frozen=True)
class Resolved:
    """A run's settings with nothing left open: what the training loop reads."""
    cfg: TrainConfig         # every choice filled in, as the checkpoint records it
    device: torch.device
    batch: int               # B and T as trained: the config's, shrunk for a short corpus
    seq_len: int
    budget: Budget
    val_streams: int         # slices a validation pass reads side by side
    val_tokens: int          # validation tokens a pass reads (a prefix, for a short budget)
    notes: list[str]         # what was adjusted, to say before the run
    why: str                 # what `choose` chose and why ("" on resume or when all was set)


def resolve(cfg: TrainConfig, n_tokens: int, vocab_size: int, resume: dict | None = None,
            n_val: int = 0, ranks: int = 1) -> Resolved:
    """Fill in everything `cfg` leaves open for a corpus of `n_tokens` training tokens (and
    `n_val` validation tokens), in the order of the module docstring. `resume` is a resumed
    run's saved train config (`cfg` is already merged with it: config.resumed); `ranks`,
    the processes of a distributed run, over which the batch and each validation pass are
    split."""
    device = pick_device(cfg.device)
    cfg = replace(cfg, precision=pick_precision(cfg.precision, device))
    notes, why = [], ""
    by_hand = cfg.model.hidden is not None or (  # the width is known before choosing
        cfg.model.tie_weights and cfg.model.embed is not None)
    if resume is None and by_hand:  # refused before the timing of the budget builds it
        m = replace(cfg.model, vocab_size=vocab_size)
        check_memory(candidate(replace(m, hidden=m.hidden or m.embed), 0),
                     max(1, (cfg.batch_size or BATCH) // ranks),
                     (cfg.seq_len or SEQ_LEN) * cfg.grow_bptt, device)  # the longest step's
    if resume is None:
        asked = cfg.min_lr
        cfg, why = choose(cfg, n_tokens, vocab_size, device, cfg.precision, ranks=ranks)
        if cfg.min_lr < asked:  # choose() caps it at the lr it chose
            notes.append(f"note: min-lr {asked:g} is above the chosen lr {cfg.lr:g}; using "
                         f"{cfg.lr:g} for both (a flat schedule)")
    B, T = fit_batch_shape(n_tokens, cfg.batch_size, cfg.seq_len)
    if (B, T) != (cfg.batch_size, cfg.seq_len):
        notes.append(f"corpus is short ({n_tokens:,} training tokens): using batch-size {B}, "
                     f"seq-len {T}")
    if resume is None and not by_hand:
        check_memory(replace(cfg.model, vocab_size=vocab_size), max(1, B // ranks),
                     T * cfg.grow_bptt, device)
    steps = budget_steps(cfg)
    warmup = min(cfg.warmup_steps, steps // 10) if steps else cfg.warmup_steps
    streams = cfg.val_streams or val_streams(n_val)
    val_tokens = n_val
    if resume is not None and resume.get("val_tokens"):  # the run's own, so passes compare
        val_tokens = min(n_val, resume["val_tokens"])
    elif streams > 1 and cfg.time_budget:  # validation: a known, small share of the budget
        model = replace(cfg.model, vocab_size=vocab_size)
        rate = ranks * eval_speed(model, -(-streams // ranks), device, cfg.precision)
        affordable = VAL_SHARE * cfg.time_budget * rate / cfg.evals
        val_tokens = min(n_val, max(MIN_VAL_TOKENS, 2 ** int(math.log2(affordable))))
        notes.append(f"validating on {val_tokens:,} of the {n_val:,} validation tokens in "
                     f"{streams} streams: about {val_tokens / rate:.0f} s a pass, "
                     f"{cfg.evals} passes, {cfg.evals * val_tokens / rate / cfg.time_budget:.0%}"
                     " of the budget")
    return Resolved(cfg, device, B, T, Budget(steps, cfg.time_budget, warmup), streams,
                    val_tokens, notes, why)
