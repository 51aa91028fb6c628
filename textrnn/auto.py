"""Defaults that adapt: width, dropout, weight decay, learning rate and batch from the corpus and
budget.

A run can afford a number of training tokens D: max_steps x batch x seq_len for a step budget,
and for a time budget the tokens per second this machine trains a candidate model at (timed in a
few steps at the start) times the seconds. Then, measured on the sweep in docs/training.md:

- width: the widest of `WIDTHS` (two layers) that still gets `TOKENS_PER_WEIGHT` training tokens
  per weight, and has at most `WEIGHTS_PER_TOKEN` weights per corpus token. A wider model that
  cannot see enough text in the budget is still learning when time runs out, and the narrower one
  that converged wins; a model much larger than its corpus memorises it.
- dropout: none while the run reads the corpus only a few times; more as the number of passes
  grows (the larger model a long run buys would otherwise overfit a small corpus).
- weight decay: `WEIGHT_DECAY` while the run reads the corpus up to `WEIGHT_DECAY_PASSES` times,
  more in proportion beyond, for the same reason.
- learning rate: `BASE_LR` at width 256, times (256 / width) ** 0.75: wider layers sum more
  inputs per unit, so each weight must move less.
- batch: 64 streams of 50 tokens, fewer streams when a time budget would leave fewer than
  `MIN_STEPS` steps (a short budget is better spent on more, smaller steps), shrunk further for a
  short corpus.

Anything set by hand is kept, and the rest is chosen around it. `choose` returns the filled-in
config and a line saying what it chose and why.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Callable

import torch

from .model import FALLBACK, ModelConfig, RNNLM, autocast

if TYPE_CHECKING:
    from .train import TrainConfig

WIDTHS = (64, 96, 128, 192, 256, 384, 512, 768, 1024)
LAYERS = FALLBACK["layers"]  # two; a third lost at 300 s (docs/training.md)
TOKENS_PER_WEIGHT = 2.0   # training tokens each weight needs before a wider model pays
WEIGHTS_PER_TOKEN = 4.0   # at most this many weights per training token of corpus
BASE_LR, BASE_WIDTH = 1e-2, 256
BATCH, SEQ_LEN, MIN_STEPS, MIN_BATCH = 64, 50, 500, 8
MAX_DROPOUT = 0.3
WEIGHT_DECAY, WEIGHT_DECAY_PASSES, MAX_WEIGHT_DECAY = 0.1, 7, 0.3


def num_weights(cfg: ModelConfig) -> int:
    """Parameters of a model with this config (built on the meta device: no memory, no time)."""
    with torch.device("meta"):
        return RNNLM(cfg).num_params()


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
                bf16: bool, steps: int = 3) -> float:
    """Training tokens per second of a fresh model with `cfg`: the median of `steps` timed
    forward-backward-update steps, after one untimed step."""
    model = RNNLM(cfg).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(cfg.vocab_size, (batch, seq_len + 1), device=device)
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        with autocast(device, bf16):
            _, loss, _ = model(x[:, :-1], x[:, 1:])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return batch * seq_len / statistics.median(times[1:])


def choose(cfg: TrainConfig, n_tokens: int, vocab_size: int, device: torch.device, bf16: bool,
           speed: Callable[[ModelConfig, int, int], float] | None = None
           ) -> tuple[TrainConfig, str]:
    """Fill in what `cfg` leaves unset (None) for a corpus of `n_tokens` training tokens.

    `speed(model_config, batch, seq_len)` gives training tokens per second; by default each
    width and batch it is asked about is timed once on `device` (only with a time budget)."""
    m = replace(cfg.model, vocab_size=vocab_size)
    if m.tie_weights and m.hidden is None:
        m = replace(m, hidden=m.embed)  # tying needs the two widths equal
    seq_len = cfg.seq_len or SEQ_LEN
    batch = cfg.batch_size or BATCH
    timings: dict[tuple[int, int], float] = {}

    def timed_speed(mc: ModelConfig, b: int) -> float:
        """Tokens/s for this width and batch, timed once (or asked of `speed`)."""
        key = (mc.hidden, b)
        if key not in timings:
            timings[key] = (speed(mc, b, seq_len) if speed is not None else
                            train_speed(mc, b, seq_len, device, bf16))
        return timings[key]
    steps = cfg.max_steps
    if steps is None and cfg.time_budget is None:
        from .train import DEFAULT_STEPS
        steps = DEFAULT_STEPS

    def tokens(mc: ModelConfig, b: int) -> float:
        """Training tokens the budget buys for this model at batch b."""
        d = [steps * b * seq_len] if steps else []
        if cfg.time_budget:
            d.append(timed_speed(mc, b) * cfg.time_budget)
        return min(d)

    def filled(width: int) -> ModelConfig:
        """m at this width (unless set), layers and dropout as a directly built model has them."""
        return replace(m, hidden=width if m.hidden is None else m.hidden).filled()

    # 1. width: the widest candidate that the budget and the corpus both afford
    if m.hidden is None:
        width = WIDTHS[0]
        for w in WIDTHS:
            mc = filled(w)
            p = num_weights(mc)
            if p > WEIGHTS_PER_TOKEN * n_tokens or tokens(mc, batch) < TOKENS_PER_WEIGHT * p:
                break
            width = w
        m = replace(m, hidden=width)
    m = filled(m.hidden)

    # 2. batch: keep at least MIN_STEPS steps when a short time budget is what ends the run
    # (under a step budget, smaller batches would add no steps, only read less)
    def steps_at(b: int) -> float:
        return tokens(m, b) / (b * seq_len)

    if cfg.batch_size is None:
        while (batch > MIN_BATCH and steps_at(batch) < MIN_STEPS
               and (not steps or steps_at(batch) < steps)):
            batch //= 2
    d = tokens(m, batch)
    timed = cfg.time_budget and (not steps or d < steps * batch * seq_len)
    why = [f"{d / 1e6:.3g}M tokens in the budget"
           + (f" at {d / cfg.time_budget:,.0f} tokens/s" if timed else ""),
           f"{d / num_weights(m):.3g} per weight"]

    # 3. dropout from the passes over the corpus, lr from the width
    passes = d / max(n_tokens, 1)
    why.append(f"{passes:.3g} passes over the corpus")
    if cfg.model.dropout is None:
        m = replace(m, dropout=dropout_for(passes))
    wd = cfg.weight_decay if cfg.weight_decay is not None else weight_decay_for(passes)
    lr = cfg.lr if cfg.lr is not None else lr_for(m.hidden)
    out = replace(cfg, model=m, lr=lr, min_lr=min(cfg.min_lr, lr), batch_size=batch,
                  seq_len=seq_len, weight_decay=wd)
    picked = [f"{name} {value:g}" for name, before, value in [
        ("hidden", m.hidden if m.tie_weights else cfg.model.hidden, m.hidden),
        ("layers", cfg.model.layers, m.layers),
        ("dropout", cfg.model.dropout, m.dropout), ("weight-decay", cfg.weight_decay, wd),
        ("lr", cfg.lr, lr),
        ("batch-size", cfg.batch_size, batch), ("seq-len", cfg.seq_len, seq_len)]
        if before is None]
    if not picked:
        return out, ""
    return out, f"chose {', '.join(picked)} ({'; '.join(why)})"

