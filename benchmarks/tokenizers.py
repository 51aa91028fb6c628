"""Tokenizers at equal training time: `python -m benchmarks tokenizers --corpus FILE`.

It trains a char, a byte and BPE models of a few vocabulary sizes for the same
training time on the benchmark protocol (first 90% of the text to train, the last 10% read as
one stream to validate), every other setting at its default, one after another, and prints
validation nats and bits per character beside training throughput. Run it on an otherwise idle
machine: the runs share its cores with nothing else.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import textrnn
from textrnn import ModelConfig, TrainConfig

HEADER = ("| tokenizer | vocabulary | chars/token | steps | training chars/s | val nats/char "
          "| val bits/char | val nats/token |\n|---|---|---|---|---|---|---|---|")


def _row(r: dict) -> str:
    return (f"| {r['tokenizer']} | {r['vocab']:,} | {r['chars_per_token']:.2f} | {r['steps']:,} "
            f"| {r['chars_per_s']:,.0f} | {r['val_nats_per_char']:.4f} | {r['val_bpc']:.4f} "
            f"| {r['val_nats_per_token']:.4f} |")


def bench_tokenizers(corpus: str, budget: float, vocab_sizes: list[int], seed: int) -> list[dict]:
    runs = [("char", None), ("byte", None), *[("bpe", v) for v in vocab_sizes]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, vocab in runs:
            out = Path(tmp) / f"{kind}{vocab or ''}"
            # one fixed model for every tokenizer, so that only the tokens differ
            cfg = TrainConfig(corpus=corpus, out=str(out), tokenizer=kind, vocab_size=vocab,
                              time_budget=budget, seed=seed, lr=1e-2, batch_size=64, seq_len=50,
                              model=ModelConfig(hidden=256, layers=2, dropout=0.0, embed=64))
            textrnn.train(cfg, reporter=textrnn.Reporter())
            summary = textrnn.read_config(out)["training"]
            val = [m for m in textrnn.read_metrics(out) if isinstance(m, textrnn.ValRecord)][-1]
            rows.append({
                "tokenizer": kind, "vocab": summary["vocab_size"],
                "chars_per_token": summary["chars_per_token"], "steps": summary["steps"],
                "chars_per_s": summary["chars_seen"] / summary["train_time_s"],
                "val_nats_per_char": val.val_loss, "val_bpc": val.val_bpc,
                "val_nats_per_token": val.val_nats_per_token,
            })
            print(_row(rows[-1]), flush=True)
    return rows


def add_parser(sub) -> None:
    p = sub.add_parser("tokenizers", help="char vs byte vs BPE at equal training time")
    p.add_argument("--corpus", required=True, help="the benchmark text, e.g. tinyshakespeare.txt")
    p.add_argument("--budget", type=float, default=120, help="seconds of training per run (120)")
    p.add_argument("--vocab-sizes", default="512,1024,4096", help="BPE sizes (512,1024,4096)")
    p.add_argument("--seed", type=int, default=1337)


def run(args) -> int:
    sizes = [int(v) for v in args.vocab_sizes.split(",") if v]
    print(f"corpus {args.corpus}, {args.budget:g} s of training per run, defaults otherwise\n")
    print(HEADER, flush=True)
    rows = bench_tokenizers(args.corpus, args.budget, sizes, args.seed)
    best = min(rows, key=lambda r: r["val_bpc"])
    print(f"\nbest: {best['tokenizer']} {best['vocab']:,} at {best['val_bpc']:.4f} bits/char "
          f"({best['val_nats_per_char']:.4f} nats/char, {math.exp(best['val_nats_per_char']):.3f} "
          "perplexity per char)")
    return 0
