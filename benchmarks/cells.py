"""Cells side by side: `python -m benchmarks cells --corpus FILE [--budget 110] [--runs 3]
[--cells lstm,mingru,minlstm] [-- FLAGS]`.

Each run trains, one after another on the benchmark protocol's split (benchmarks/train.py):
1. the baseline, a plain 2x256 `nn.LSTM` char model in a loop of its own (seq 100, batch 32,
   AdamW 4e-3 with a cosine to zero over the budget, gradients clipped at 1): what a user gets
   from the textbook recipe, measured in the same minutes as what it is compared with;
2. `textrnn train ... --cell CELL [FLAGS]` for each cell, at the defaults otherwise.
Then, per cell: the medians of val nats/char and of training chars/s, the parameters, and each
median's difference from the baseline's. Runs interleave, so a change in the machine's load
falls on every row alike.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .train import TRAIN_HEADER, bench_train, protocol_split

BASELINE = dict(hidden=256, layers=2, embed=64, seq=100, batch=32, lr=4e-3)


class _Plain(nn.Module):
    def __init__(self, vocab: int, embed: int, hidden: int, layers: int):
        super().__init__()
        self.embed, self.head = nn.Embedding(vocab, embed), nn.Linear(hidden, vocab)
        self.rnn = nn.LSTM(embed, hidden, layers, batch_first=True)

    def forward(self, x, state=None):
        out, state = self.rnn(self.embed(x), state)
        return self.head(out), state


def plain_lstm(train_path: Path, val_path: Path, budget: float, seed: int) -> dict:
    """The baseline: trained for `budget` seconds of steps, then read over the whole
    validation text as one stream. Returns its figures."""
    torch.manual_seed(seed)
    train, val = (p.read_text(encoding="utf-8") for p in (train_path, val_path))
    chars = sorted(set(train) | set(val))
    ids = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([ids[c] for c in train])
    b = BASELINE
    model = _Plain(len(chars), b["embed"], b["hidden"], b["layers"])
    opt = torch.optim.AdamW(model.parameters(), lr=b["lr"])
    span = (len(data) - 1) // b["batch"]  # contiguous streams, the state carried between steps
    starts, seq = torch.arange(b["batch"]) * span, min(b["seq"], span - 1)
    pos, state, steps, tokens, spent = 0, None, 0, 0, 0.0
    while spent < budget:
        t0 = time.perf_counter()
        for group in opt.param_groups:  # cosine to zero over the budget
            group["lr"] = b["lr"] * 0.5 * (1 + math.cos(math.pi * spent / budget))
        if pos + seq + 1 > span:
            pos, state = 0, None
        at = starts[:, None] + pos + torch.arange(seq + 1)
        window = data[at]                                          # (B, seq + 1)
        logits, state = model(window[:, :-1], state)
        state = tuple(s.detach() for s in state)
        loss = F.cross_entropy(logits.flatten(0, 1), window[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        pos, steps, tokens = pos + seq, steps + 1, tokens + window[:, 1:].numel()
        spent += time.perf_counter() - t0
    return {"cell": "baseline", "params": sum(p.numel() for p in model.parameters()),
            "steps": steps, "chars_per_s": tokens / spent,
            "val_nats_per_char": _val_loss(model, [ids[c] for c in val])}


@torch.no_grad()
def _val_loss(model: nn.Module, val: list[int]) -> float:
    x, state, nats = torch.tensor(val)[None], None, 0.0
    for s in range(0, x.size(1) - 1, 4096):
        chunk = x[:, s:s + 4097]
        logits, state = model(chunk[:, :-1], state)
        nats += F.cross_entropy(logits[0], chunk[0, 1:], reduction="sum").item()
    return nats / (x.size(1) - 1)


def add_parser(sub) -> None:
    p = sub.add_parser("cells", help="cells against a plain nn.LSTM baseline, same minutes")
    p.add_argument("--corpus", required=True, help="the benchmark text, e.g. tinyshakespeare.txt")
    p.add_argument("--budget", type=float, default=110, help="seconds of training per run (110)")
    p.add_argument("--runs", type=int, default=3, help="runs of each, for medians (3)")
    p.add_argument("--cells", default="lstm,mingru,minlstm", help="textrnn cells to train")
    p.add_argument("--no-baseline", action="store_true", help="skip the plain nn.LSTM")
    p.add_argument("flags", nargs="*", help="after --: more `textrnn train` flags for each")


def run(args) -> int:
    cells = args.cells.split(",")
    print(f"cells {', '.join(cells)} on {args.corpus}, {args.budget:g} s each, {args.runs} "
          f"runs; torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print(TRAIN_HEADER, flush=True)
    rows: dict[str, list[dict]] = {c: [] for c in (["baseline"] * (not args.no_baseline)
                                                     + cells)}
    for i in range(args.runs):
        if not args.no_baseline:
            with tempfile.TemporaryDirectory() as tmp:
                r = plain_lstm(*protocol_split(args.corpus, Path(tmp)), args.budget, 1337 + i)
            print(f"| {i + 1} | baseline: plain 2x256 nn.LSTM, cosine | | | | 32 x 100 | 0.004 "
                  f"| fp32 | {r['steps']:,} | {r['val_nats_per_char']:.4f} | "
                  f"{r['val_nats_per_char'] / math.log(2):.4f} | {r['chars_per_s']:,.0f} | |",
                  flush=True)
            rows["baseline"].append(r)
        for cell in cells:
            r = bench_train(args.corpus, args.budget, 1, ["--seed", str(1337 + i), "--cell",
                                                         cell, *args.flags])[0]
            rows[cell].append(r)
    _summary(rows)
    return 0


def _summary(rows: dict[str, list[dict]], label: str = "cell") -> None:
    med = statistics.median
    base = rows.get("baseline")
    print(f"\n| {label} | model | parameters | runs | val nats/char (median) | vs baseline | "
          "training chars/s (median) | vs baseline |\n" + "|---" * 8 + "|")
    for cell, rs in rows.items():
        loss, speed = med(r["val_nats_per_char"] for r in rs), med(r["chars_per_s"] for r in rs)
        vs_loss = f"{loss - med(r['val_nats_per_char'] for r in base):+.4f}" if base else ""
        vs_speed = f"{speed / med(r['chars_per_s'] for r in base):.2f}x" if base else ""
        model = rs[-1].get("model", "2x256 nn.LSTM")
        print(f"| {cell} | {model} | {rs[-1]['params']:,} | {len(rs)} | {loss:.4f} | {vs_loss} "
              f"| {speed:,.0f} | {vs_speed} |")
