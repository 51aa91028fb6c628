"""Sampling speed: `python -m benchmarks generate [--checkpoints checkpoints] [--under-load]`.

It times sampling for each shipped checkpoint and for random 2x256 GRU and vanilla RNN and
2x512 and 3x512 LSTM models: the naive baseline (`nn.LSTM` called once per character, batch 1), the
plain path textrnn falls back to without its kernel (oneDNN off, the state carried, one PyTorch
forward per token: the best plain-PyTorch step, so "over plain" says what the kernel itself adds),
textrnn's `LM.generate` at batch 1 and `LM.samples` with 64 streams. Beside them it prints what the
hardware allows, measured in the same run: the rate at which batch 1 reads the weights (and the
rate `torch.sum` reads as many bytes), the share of the fp32 matmul rate that 64 streams reach
(FLOPs from the model's shapes), and the time and memory the kernel's weight packing costs.

With `--under-load` it instead times batch 1 on the shipped checkpoints with a busy process on
every core, against idle, for each of the kernel's thread choices.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import textrnn
from textrnn import LM, CharTokenizer, ModelConfig, RNNLM, generate, is_checkpoint
from textrnn import fast  # the kernel: its packing and its thread choice are timed here

from .measure import matmul_rate, matmul_weights, median_time, read_bandwidth


def _naive_per_step(model, n: int) -> None:
    """What a first version does: nn.LSTM on one character at a time, full softmax, batch 1."""
    g = torch.Generator().manual_seed(0)
    idx, state = torch.tensor([[1]]), None
    with torch.inference_mode():
        for _ in range(n):
            logits, _, state = model(idx, state=state)
            probs = torch.softmax(logits[0, -1] / 0.8, -1)
            idx = torch.multinomial(probs, 1, generator=g)[None]


def _step_cost(model) -> tuple[int, int]:
    """(bytes of weights read, FLOPs) per step of one stream, from the model's shapes. Layer 0's
    input weights are left out of the bytes: the kernel reads a table row instead."""
    weights = matmul_weights(model)
    return 4 * (weights - model.rnn.weight_ih_l0.numel()), 2 * weights


GENERATE_HEADER = (
    "| model | naive `nn.LSTM` per step, batch 1 | plain path (oneDNN off), batch 1 | textrnn, "
    "batch 1 | over naive | over plain | batch 1 reads the weights at (share of `torch.sum`'s "
    "rate) | textrnn, 64 streams | 64 streams' GFLOP/s (share of torch's matmul rate) | "
    "packing: time, memory |\n"
    "|---|---|---|---|---|---|---|---|---|---|")


def _plain_path(lm, n: int) -> None:
    """The best plain-PyTorch step there is, the kernel's own fallback: textrnn's generation
    with the kernel turned off (oneDNN off, state carried, one forward per token), batch 1."""
    tok = lm.tokenizer
    steps = generate(lm.model, tok.encode("A"), n, generator=torch.Generator().manual_seed(0),
                     fast=False, temperature=0.8, guard=tok.utf8_guard(),
                     banned=[] if tok.unk_id is None else [tok.unk_id])
    for _ in steps:
        pass


def bench_generate(names_and_lms, n1: int = 2000, n64: int = 200, n_naive: int = 300
                   ) -> list[dict]:
    """Time each model's generation four ways and print a table row per model. Every rate is
    in characters per second (a BPE step writes `chars_per_token` of them)."""
    flops = matmul_rate()
    print(f"machine: {flops / 1e9:.0f} GFLOP/s fp32 matmul (1024x1024), measured now\n")
    print(GENERATE_HEADER, flush=True)
    rows = []
    for name, lm in names_and_lms:
        model = lm.model
        byte_cost, flop_cost = _step_cost(model)
        cpt = lm.config.get("training", {}).get("chars_per_token", 1.0)  # BPE: >1 char a step
        pack_s = median_time(lambda: fast.Weights(model))
        extra = fast.Weights(model).nbytes
        naive = n_naive * cpt / median_time(lambda: _naive_per_step(model, n_naive))
        plain = n_naive * cpt / median_time(lambda: _plain_path(lm, n_naive))
        one = n1 / median_time(lambda: lm.generate("A", n1, seed=0), 5)
        many = 64 * n64 / median_time(lambda: lm.samples("A", n64, num_samples=64, seed=0))
        read, achieved = one / cpt * byte_cost, many / cpt * flop_cost
        row = {"model": name, "naive": naive, "plain": plain, "batch1": one,
               "ratio": one / naive, "over_plain": one / plain,
               "read_GBps": read / 1e9, "read_share": read / read_bandwidth(byte_cost),
               "batch64": many, "GFLOPs": achieved / 1e9, "flop_share": achieved / flops,
               "pack_ms": pack_s * 1e3, "extra_MB": extra / 1e6}
        rows.append(row)
        print(f"| {name} | {naive:,.0f} | {plain:,.0f} | {one:,.0f} | {one / naive:.1f}x | "
              f"{one / plain:.1f}x | "
              f"{row['read_GBps']:.0f} GB/s ({row['read_share']:.0%}) | {many:,.0f} | "
              f"{row['GFLOPs']:.0f} ({row['flop_share']:.0%}) | "
              f"{row['pack_ms']:.1f} ms, {row['extra_MB']:.1f} MB |", flush=True)
    return rows


LOAD_HEADER = ("| model | threads | idle, s | under load, s | load / idle | load / idle of "
               "all threads |\n|---|---|---|---|---|---|")


def _hogs() -> list:
    """One busy process per core this process may use, at normal priority: other work on the
    machine, as on a shared Space."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def bench_under_load(names_and_lms, chars: int = 3000, repeats: int = 9) -> list[dict]:
    """Batch-1 generation of `chars` characters, idle and with a hog on every core, for the
    kernel's thread choices: all intra-op threads, one, and the adaptive `fast.Team`. Medians
    of `repeats`; the idle figure of all threads is the baseline."""
    most = torch.get_num_threads()
    print(LOAD_HEADER, flush=True)
    rows = []
    for name, lm in names_and_lms:
        lm.generate("A", 200, seed=0)  # the kernel built and the weights packed
        times = {}
        for load in ("idle", "load"):
            hogs = _hogs() if load == "load" else []
            try:
                time.sleep(0.5 if hogs else 0)
                for team in (most, 1, None):
                    fast.team_size = team
                    lm.generate("A", chars, seed=0)  # warm: a Team learns its costs
                    ts = []
                    for i in range(repeats):
                        t = time.perf_counter()
                        lm.generate("A", chars, seed=i)
                        ts.append(time.perf_counter() - t)
                    times[load, team] = (statistics.median(ts), max(ts))
            finally:
                fast.team_size = None
                for h in hogs:
                    h.kill()
                    h.wait()
        base = times["idle", most][0]
        for team in (most, 1, None):
            (idle, _), (loaded, worst) = times["idle", team], times["load", team]
            label = "adaptive" if team is None else str(team)
            rows.append({"model": name, "threads": label, "idle_s": idle, "load_s": loaded,
                         "load_max_s": worst, "ratio": loaded / idle, "over_base": loaded / base})
            print(f"| {name} | {label} | {idle:.3f} | {loaded:.3f} (max {worst:.2f}) | "
                  f"{loaded / idle:.2f}x | {loaded / base:.2f}x |", flush=True)
    return rows


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="sampling speed against the naive per-step baseline")
    p.add_argument("--checkpoints", default="checkpoints", help="folder of checkpoints to time")
    p.add_argument("--chars", type=int, default=2000,
                   help="characters per batch-1 run (2000)")
    p.add_argument("--under-load", action="store_true", help="instead, batch 1 on the shipped "
                   "checkpoints with a CPU hog on every core, against idle, per thread choice")


def run(args) -> int:
    lms = [(p.name, textrnn.load(p)) for p in sorted(Path(args.checkpoints).iterdir())
           if is_checkpoint(p)]
    if args.under_load:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, generation path: "
              f"{fast.status()}\nbatch 1, {args.chars} characters, median of 9 (max in "
              "brackets); under load: a busy process on every core\n")
        bench_under_load(lms, args.chars)
        return 0
    chars = CharTokenizer([chr(32 + i) for i in range(65)])  # 66 ids with <unk>, as a char model
    for cell, layers, hidden in [("gru", 2, 256), ("rnn_tanh", 2, 256), ("lstm", 2, 512),
                                 ("lstm", 3, 512)]:
        torch.manual_seed(0)
        model = RNNLM(ModelConfig(vocab_size=chars.vocab_size, cell=cell, hidden=hidden,
                                  layers=layers, dropout=0.0, embed=64)).eval()
        lms.append((f"random {layers}x{hidden} {cell.upper().replace('_', '-')}",
                    LM(model, chars)))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, generation path: "
          f"{fast.status()}\nchars/s: batch 1 over {args.chars} chars (median of 5); 64 streams "
          "over 200 steps, naive over 300 chars (medians of 3)")
    bench_generate(lms, n1=args.chars)
    return 0
