"""The ablation of issue 28: `python -m benchmarks ablation --corpus FILE [--budget 110]
[--runs 1] [--variants default,tied,...] [--no-baseline] [-- FLAGS]`, and `python -m benchmarks cjk
--out FILE`, the large-alphabet text it is also run on.

Each run trains, one after another on the benchmark protocol's split, the plain 2x256
`nn.LSTM` baseline of cells.py, then `textrnn train` with each variant's flags (VARIANTS):
every lever alone, at the defaults otherwise, and the levers together. Runs interleave, so a
change in the machine's load falls on every row alike; the summary gives each variant's median
validation loss and training chars/s beside the baseline's.
"""

from __future__ import annotations

import collections
import re
import tempfile
from pathlib import Path

import torch

from .cells import _summary, plain_lstm
from .train import TRAIN_HEADER, bench_train, protocol_split, val_curve

VARIANTS = {  # name: (what it is, `textrnn train` flags)
    "default": ("textrnn's defaults", []),
    "tied": ("tied input and output embeddings (embed = hidden = 256)",
             ["--tie-weights", "--embed", "256"]),
    "untied": ("a separate 64-wide input embedding, the default before tying",
               ["--no-tie-weights"]),
    "ema": ("weights' moving average, decay 0.99, for validation and the checkpoint",
            ["--ema", "0.99"]),
    "ema999": ("weights' moving average, decay 0.999", ["--ema", "0.999"]),
    "awd": ("AWD-LSTM: locked dropout 0.1, embedding dropout 0.1, DropConnect 0.2 on W_hh",
            ["--locked-dropout", "--dropout", "0.1", "--embed-drop", "0.1",
             "--weight-drop", "0.2"]),
    "dropconnect": ("DropConnect 0.2 on W_hh alone", ["--weight-drop", "0.2"]),
    "grow": ("BPTT growing from 50 to 200 tokens over the run", ["--grow-bptt", "4"]),
    "seq100": ("BPTT 100 throughout", ["--seq-len", "100"]),
    "b16": ("16 streams: more, smaller steps", ["--batch-size", "16"]),
    "b32": ("32 streams", ["--batch-size", "32"]),
    "b64": ("64 streams", ["--batch-size", "64"]),
    "w192": ("2x192, the lr the width rule gives it", ["--hidden", "192"]),
    "w256": ("2x256, the lr the width rule gives it", ["--hidden", "256"]),
    "w384": ("2x384, the lr the width rule gives it", ["--hidden", "384"]),
    "drop10": ("dropout 0.1, whatever the passes", ["--dropout", "0.1"]),
    "wd10": ("weight decay 0.1, whatever the passes", ["--weight-decay", "0.1"]),
    "mingru": ("minGRU 3x384, lr 0.01 (the best of the cells' trials)",
               ["--cell", "mingru", "--layers", "3", "--hidden", "384", "--lr", "0.01"]),
    "minlstm": ("minLSTM 3x384, lr 0.01", ["--cell", "minlstm", "--layers", "3", "--hidden",
                                           "384", "--lr", "0.01"]),
}


def add_parser(sub) -> None:
    p = sub.add_parser("ablation", help="training levers one at a time, beside the baseline")
    p.add_argument("--corpus", required=True, help="the benchmark text, e.g. tinyshakespeare.txt")
    p.add_argument("--budget", type=float, default=110, help="seconds of training per run (110)")
    p.add_argument("--runs", type=int, default=1, help="runs of each, for medians (1)")
    p.add_argument("--seed", type=int, default=1337, help="run i (from 0) is seeded SEED + i: "
                   "give a second command the next seeds, to add runs to a median (1337)")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help=f"which to train, of: {', '.join(VARIANTS)}; "
                        "A+B trains both levers' flags together")
    p.add_argument("--no-baseline", action="store_true", help="skip the plain nn.LSTM")
    p.add_argument("flags", nargs="*", help="after --: `textrnn train` flags for every run "
                   "(a variant's own flags come after them, and win)")
    c = sub.add_parser("cjk", help="write the large-alphabet text the ablation also runs on")
    c.add_argument("--source", default="corpora/shakespeare.txt", help="an English text")
    c.add_argument("--out", required=True, help="where to write it")
    c.add_argument("--words", type=int, default=6000, help="distinct words kept (6000)")


def flags_of(variant: str) -> list[str]:
    """The flags of a variant, or of several joined by '+' (their flags together)."""
    unknown = [v for v in variant.split("+") if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    return [f for v in variant.split("+") for f in VARIANTS[v][1]]


def run(args) -> int:
    if args.command == "cjk":
        return cjk(args)
    variants = args.variants.split(",")
    flags = {v: [*args.flags, *flags_of(v)] for v in variants}
    print(f"ablation on {args.corpus}, {args.budget:g} s each, {args.runs} run(s) from seed "
          f"{args.seed}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    for v in variants:
        print(f"- {v}: {' '.join(flags[v]) or '(no flags)'}")
    print("\n" + TRAIN_HEADER, flush=True)
    rows: dict[str, list[dict]] = {v: [] for v in ["baseline"] * (not args.no_baseline)
                                   + variants}
    for i in range(args.runs):
        if not args.no_baseline:
            with tempfile.TemporaryDirectory() as tmp:
                r = plain_lstm(*protocol_split(args.corpus, Path(tmp)), args.budget,
                               args.seed + i)
            print(f"| {i + 1} | baseline | plain 2x256 nn.LSTM | | | 32 x 100 | 0.004 | fp32 | "
                  f"{r['steps']:,} | {r['val_nats_per_char']:.4f} | | "
                  f"{r['chars_per_s']:,.0f} | |", flush=True)
            rows["baseline"].append(r)
        for v in variants:
            rows[v] += bench_train(args.corpus, args.budget, 1,
                                   ["--seed", str(args.seed + i), *flags[v]], first=i + 1)
            print(f"  ({v}{': ' + rows[v][-1]['chose'] if rows[v][-1]['chose'] else ''})\n"
                  f"  ({v}: val nats/char {val_curve(rows[v][-1])})", flush=True)
    _summary(rows, "variant")
    return 0


def cjk(args) -> int:
    """A text with a large alphabet, made from an English one: each of the `words` most common
    words is written as one CJK ideograph (U+4E00 on, by frequency), any other word as U+3007,
    punctuation and line breaks as they are, spaces dropped. Word order, and so what a model
    can learn, is the English text's; only the alphabet grows."""
    text = Path(args.source).read_text(encoding="utf-8")
    pieces = re.findall(r"[A-Za-z']+|[^\sA-Za-z']|\n", text)
    counts = collections.Counter(p.lower() for p in pieces if p[0].isalpha() or p[0] == "'")
    glyph = {w: chr(0x4E00 + i) for i, (w, _) in enumerate(counts.most_common(args.words))}
    out = "".join(glyph.get(p.lower(), "\u3007") if p[0].isalpha() or p[0] == "'" else p
                  for p in pieces)
    Path(args.out).write_text(out, encoding="utf-8")
    print(f"{args.out}: {len(out):,} characters, {len(set(out)):,} distinct")
    return 0
