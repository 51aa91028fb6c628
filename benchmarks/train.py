"""The training protocol: `python -m benchmarks train --corpus FILE [--runs 3] [--nproc 2]`.

`textrnn train train.txt --val-file val.txt --time-budget BUDGET [flags]` on the first 90% and
the last 10% of a text, a row of figures per run (val loss, chars/s, the share of the matmul
rate reached) and the medians; with `--nproc N` each run again under torchrun on N processes.
Flags after `--` go to every run, as `textrnn train` takes them, for sweeps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

import torch

import textrnn
from textrnn import ModelConfig, TrainConfig, checkpoint
from textrnn.config import from_flags
from textrnn.data import read_corpus

from .measure import matmul_rate, matmul_weights

# `textrnn train`'s flags are the fields of these two dataclasses, spelt with dashes
TYPES = {"str": str, "int": int, "float": float, "bool": bool}
FLAG_TYPES = {f.name: TYPES[f.type.split(" |")[0]]  # "int | None": int
              for f in [*fields(ModelConfig), *fields(TrainConfig)] if f.name != "model"}


def train_config(argv: list[str]) -> TrainConfig:
    """The TrainConfig that `textrnn train ARGV` runs with: the corpus, then `--name value` (or
    `--name=value`) for a field of TrainConfig or ModelConfig, `--name` alone for a switch."""
    corpus, *rest = argv
    given = {"corpus": corpus}
    while rest:
        flag = rest.pop(0)
        name, eq, value = flag.removeprefix("--").partition("=")
        name = name.replace("-", "_")
        if flag == "--no-progress":
            continue  # the runs here show no progress anyway
        negated = name.startswith("no_") and FLAG_TYPES.get(name[3:]) is bool  # --no-tie-weights
        if negated:
            given[name[3:]] = False
            continue
        if not flag.startswith("--") or name not in FLAG_TYPES:
            raise ValueError(f"{flag}: not a `textrnn train` flag this benchmark knows")
        kind = FLAG_TYPES[name]
        given[name] = True if kind is bool else kind(value if eq else rest.pop(0))
    return from_flags(given)


def protocol_split(corpus: str, folder: Path) -> tuple[Path, Path]:
    """The benchmark protocol's files: the first 90% of the text to train, the last 10% to
    validate (by characters, as nanoGPT's shakespeare_char splits it)."""
    text = read_corpus(corpus)
    cut = int(len(text) * 0.9)
    train_path, val_path = folder / "train.txt", folder / "val.txt"
    train_path.write_text(text[:cut], encoding="utf-8")
    val_path.write_text(text[cut:], encoding="utf-8")
    return train_path, val_path


def train_flops_per_token(model) -> int:
    """FLOPs one training token costs: each weight matrix's multiply-adds, twice forward (a
    multiply and an add) and four times backward (the gradients of inputs and of weights)."""
    return 6 * matmul_weights(model)


TRAIN_HEADER = ("| run | processes x threads | model | dropout | weight decay | batch x seq | lr "
                "| precision | steps | val nats/char | val bits/char | training chars/s | "
                "GFLOP/s (share of fp32 matmul rate) |\n" + "|---" * 13 + "|")


def bench_train(corpus: str, budget: float, runs: int = 1, flags: list[str] = (),
                nproc: int = 1, first: int = 1) -> list[dict]:
    """`textrnn train train.txt --val-file val.txt --time-budget BUDGET [flags]` on the
    protocol split, `runs` times; prints a row per run (numbered from `first`) and the
    medians. With `nproc` > 1, each run is followed by the same run under `torchrun` on
    `nproc` processes of one thread each, with the model, batch and lr the first one chose
    (rank 0 would time models on one thread)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        train_path, val_path = protocol_split(corpus, Path(tmp))
        for i in range(runs):
            flops = matmul_rate()
            seed = [] if "--seed" in flags else ["--seed", str(1337 + i)]  # a new draw per run
            argv = [str(train_path), "--val-file", str(val_path), "--time-budget",
                    f"{budget:g}", "--no-progress", *seed, *flags]
            said = []
            out = textrnn.train(train_config([*argv, "--out", str(Path(tmp) / f"run{i}")]),
                                reporter=textrnn.Terminal(log=said.append, progress=False))
            rows.append(_train_row(out, first + i, flops, said, f"1 x {torch.get_num_threads()}"))
            if nproc > 1:
                out = Path(tmp) / f"run{i}-ddp"
                _torchrun(nproc, [*argv, *_chosen(rows[-1]), "--out", str(out)])
                rows.append(_train_row(out, first + i, flops, [], f"{nproc} x 1"))
    return rows


def val_curve(row: dict) -> str:
    """A run's validation passes, `1.4937 at 1,296, 1.4403 at 2,605, ...`."""
    return ", ".join(f"{v:.4f} at {step:,}" for step, v in row["val_curve"])


def _chosen(row: dict) -> list[str]:
    """Flags that fix what a run's adaptive defaults chose, so another run trains the same."""
    return ["--hidden", str(row["hidden"]), "--layers", str(row["layers"]), "--dropout",
            f"{row['dropout']:g}", "--weight-decay", f"{row['weight_decay']:g}", "--batch-size",
            str(row["batch"]), "--seq-len", str(row["seq_len"]), "--lr", f"{row['lr']:g}",
            "--precision", row["precision"]]


def _torchrun(nproc: int, argv: list[str]) -> None:
    """`torchrun --standalone --nproc-per-node N -m textrnn train ARGV`, one thread a process."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           str(nproc), "-m", "textrnn", "train", *argv]
    done = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True)
    if done.returncode:
        raise RuntimeError(f"torchrun failed ({done.returncode}): {done.stderr[-2000:]}")


def _train_row(out: Path, run: int, flops: float, said: list[str], layout: str) -> dict:
    """A finished run's figures, as a table row (printed)."""
    model, _, config = checkpoint.load(out / "last")
    summary = config["training"]
    vals = [m for m in textrnn.read_metrics(out) if isinstance(m, textrnn.ValRecord)]
    val = vals[-1]  # at the end of the budget
    tokens_per_s = summary["tokens_seen"] / summary["train_time_s"]
    achieved = train_flops_per_token(model) * tokens_per_s
    m, tc = model.config, summary["train_config"]
    row = {"run": run, "layout": layout, "model": f"{m.layers}x{m.hidden} {m.cell.upper()}",
           "hidden": m.hidden, "layers": m.layers, "params": model.num_params(),
           "dropout": m.dropout, "weight_decay": tc["weight_decay"],
           "precision": summary["precision"],
           "batch": tc["batch_size"], "seq_len": tc["seq_len"], "lr": tc["lr"],
           "steps": summary["steps"], "val_nats_per_char": val.val_loss,
           "val_bpc": val.val_bpc,
           "chars_per_s": summary["chars_seen"] / summary["train_time_s"],
           "GFLOPs": achieved / 1e9, "matmul_GFLOPs": flops / 1e9,
           "chose": next((m for m in said if m.startswith("chose")), ""),
           "val_curve": [(m.step, m.val_loss) for m in vals]}
    print(f"| {run} | {layout} | {row['model']} | {row['dropout']:g} | "
          f"{row['weight_decay']:g} | {row['batch']} x "
          f"{row['seq_len']} | {row['lr']:g} | {row['precision']} | {row['steps']:,} | "
          f"{row['val_nats_per_char']:.4f} | "
          f"{row['val_bpc']:.4f} | {row['chars_per_s']:,.0f} | {row['GFLOPs']:.0f} "
          f"({row['GFLOPs'] / row['matmul_GFLOPs']:.0%} of {row['matmul_GFLOPs']:.0f}) |",
          flush=True)
    return row


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="the training protocol: val loss after a time budget")
    p.add_argument("--corpus", required=True, help="the benchmark text, e.g. tinyshakespeare.txt")
    p.add_argument("--budget", type=float, default=300, help="seconds of training per run (300)")
    p.add_argument("--runs", type=int, default=1, help="runs, for a median (1)")
    p.add_argument("--nproc", type=int, default=1, help="also run each on this many processes "
                   "of one thread under torchrun, with what the first run chose (1: no)")
    p.add_argument("flags", nargs=argparse.REMAINDER,
                   help="after --: more `textrnn train` flags, for sweeps")


def run(args) -> int:
    flags = args.flags[1:] if args.flags[:1] == ["--"] else args.flags
    print(f"textrnn train train.txt --val-file val.txt --time-budget {args.budget:g} "
          f"{' '.join(flags)}\n(train.txt, val.txt: the first 90% and last 10% of {args.corpus}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads)\n")
    print(TRAIN_HEADER, flush=True)
    rows = bench_train(args.corpus, args.budget, args.runs, flags, args.nproc)
    for r in rows:
        if r["chose"]:
            print(f"\nrun {r['run']}: {r['chose']}", end="")
    for r in rows:  # over- or underfitting shows here: a rise, or a fall still steep at the end
        print(f"\nrun {r['run']} ({r['layout']}): val nats/char {val_curve(r)}", end="")
    print()
    med = statistics.median
    for layout in dict.fromkeys(r["layout"] for r in rows):
        rs = [r for r in rows if r["layout"] == layout]
        if len(rs) > 1 or len(rows) > len(rs):
            print(f"\n{layout}, median of {len(rs)}: val "
                  f"{med(r['val_nats_per_char'] for r in rs):.4f} nats/char = "
                  f"{med(r['val_bpc'] for r in rs):.4f} bits/char, "
                  f"{med(r['chars_per_s'] for r in rs):,.0f} chars/s, "
                  f"{med(r['GFLOPs'] / r['matmul_GFLOPs'] for r in rs):.0%} of the matmul rate")
    return 0

