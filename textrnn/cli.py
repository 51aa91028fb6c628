"""The command line: `textrnn train | sample | eval | info | sweep | push | space | export |
serve`. A
thin door over the library (`serve` hands its flags to the page, textrnn/web/server.py).

Every flag maps onto one field of `TrainConfig` or `ModelConfig`; a flag left out keeps the
dataclass default (or, with --resume, the value the run was started with); the model's width,
layers and dropout, the batch shape and the learning rate default to a choice made from the corpus
and the budget at the start of the run (plan.py), which is printed. Mistakes a person can
make become one line on stderr and exit status 1 (a usage mistake names the command, guesses
the flag meant, and adds the command's short usage: `_Parser`); Ctrl-C exits with 130, after
training has saved its state.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shlex
import sys
from dataclasses import fields, replace
from pathlib import Path

import torch
from tqdm import tqdm

from . import __version__, checkpoint, config
from .config import TrainConfig
from .dist import Stopped, World
from .data import corpus_name
from .hub import locate, origin
from .lm import load, model_card, new_seed, training_summary
from .model import CELLS, EMBED, ModelConfig, num_params
from .tokenizer import KINDS as TOKENIZERS
from .report import Terminal
from .train import train

MODEL_FLAGS = {f.name for f in fields(ModelConfig)} - {"vocab_size"}
CHECKPOINT = "a checkpoint or run folder, or a Hub model: user/name[@revision]"


def _train_parser(sub) -> None:
    d = TrainConfig()
    p = sub.add_parser("train", help="train a model on a text file or folder",
                       description="Train a recurrent language model; the best checkpoint goes "
                       "to --out (default checkpoints/<corpus name>), the latest to its last/.")
    p.add_argument("corpus", help="a UTF-8 text file, or a folder of .txt files")
    _data_flags(p.add_argument_group("data"), d)
    _model_flags(p.add_argument_group("model"), d.model)
    _optimisation_flags(p.add_argument_group("optimisation"), d)
    _run_flags(p.add_argument_group("run"), d)


def _data_flags(g, d: TrainConfig) -> None:
    """The validation split, the token files, the tokenizer and the batch shape."""
    x = g.add_mutually_exclusive_group()
    x.add_argument("--val-file", help="validation text (default: the end of the corpus)")
    x.add_argument("--val-fraction", type=float,
                   help=f"share of the corpus, from its end, kept for validation "
                   f"({d.val_fraction})")
    g.add_argument("--max-val-chars", type=int, help="the validation split, taken from the end, "
                   "holds at most this many characters (4 Mi: enough to measure a run to "
                   "~0.001 nats/char on any corpus)")
    g.add_argument("--val-streams", type=int, help="read validation as this many slices side "
                   "by side; 1 reads it as one stream, exactly (auto: 1 up to 32k tokens, "
                   f"else {config.VAL_STREAMS}, within ~0.001 nats/char of one stream)")
    g.add_argument("--data-cache", metavar="DIR", help="where the token files of a prepared "
                   "corpus are kept, so a second run and --resume skip the work "
                   "(default $TEXTRNN_CACHE/corpora, else ~/.cache/textrnn/corpora)")
    g.add_argument("--encoding", help=f"text encoding of the files ({d.encoding})")
    g.add_argument("--tokenizer", choices=TOKENIZERS, help=f"char: one token per character; "
                   "bpe: byte-level BPE learnt from the training text; byte: the 256 UTF-8 byte "
                   f"values ({d.tokenizer})")
    g.add_argument("--vocab-size", type=int, help="BPE vocabulary size (1024); bigger tokens "
                   "mean fewer steps per character but a larger softmax")
    g.add_argument("--seq-len", type=int, help=f"tokens per BPTT window (auto: {config.SEQ_LEN}); "
                   "longer lets gradients reach further back, at the same cost per token")
    g.add_argument("--grow-bptt", type=int, metavar="K", help="BPTT grows over the run from "
                   "seq-len to K x seq-len tokens (K = 1, 2, 4, 8, 16): short windows while the "
                   "model learns local structure, then gradients reaching further back, at "
                   f"fewer steps per token ({d.grow_bptt}: off)")
    g.add_argument("--batch-size", type=int,
                   help=f"parallel streams (auto: {config.BATCH}, fewer for a short budget or "
                   "corpus)")


def _model_flags(g, m: ModelConfig) -> None:
    """The network: its cell, sizes and regularisation."""
    g.add_argument("--cell", choices=CELLS, help=f"recurrent cell ({m.cell})")
    g.add_argument("--hidden", type=int, help="units per layer (auto: the widest of "
                   f"{', '.join(map(str, config.WIDTHS))} that the budget and corpus afford)")
    g.add_argument("--layers", type=int, help=f"stacked layers (auto: {config.LAYERS})")
    g.add_argument("--embed", type=int, help="embedding width (auto: the hidden width, tied to "
                   f"the output layer; {EMBED} with --no-tie-weights; setting it unties them "
                   "unless --tie-weights)")
    g.add_argument("--dropout", type=float, help="dropout (auto: 0, rising to "
                   f"{config.MAX_DROPOUT} as a run reads the corpus more times); raise it if "
                   "validation loss rises while training loss falls")
    g.add_argument("--tie-weights", action=argparse.BooleanOptionalAction, default=None,
                   help="share the embedding and output weights, the embedding as wide as the "
                   "layers (auto: tied for lstm, gru and rnn_* unless --embed is set; the min "
                   "cells untied)")
    g.add_argument("--weight-drop", type=float, metavar="P", help="AWD-LSTM's DropConnect on "
                   "each layer's recurrent weights W_hh, one mask per step (lstm, gru, rnn_tanh, "
                   "rnn_relu; 0 = off); slower: the layers run one at a time in training")
    g.add_argument("--embed-drop", type=float, metavar="P", help="drop whole embedding rows, "
                   "every occurrence of a token at once (AWD-LSTM; 0 = off)")
    g.add_argument("--locked-dropout", action="store_true", default=None,
                   help="--dropout draws one mask per sequence, shared by its steps "
                   "(variational dropout, as in AWD-LSTM), not one per token")


def _optimisation_flags(g, d: TrainConfig) -> None:
    """The optimiser, its schedule, the precision and the budget."""
    g.add_argument("--lr", type=float, help=f"peak learning rate (auto: {config.BASE_LR:g} at "
                   f"width {config.BASE_WIDTH}, less for wider models); lower it if the loss jumps "
                   "or turns NaN")
    g.add_argument("--min-lr", type=float, help=f"learning rate at the end ({d.min_lr})")
    g.add_argument("--warmup-steps", type=int, help=f"linear warm-up steps ({d.warmup_steps})")
    g.add_argument("--weight-decay", type=float, help="AdamW weight decay on weight matrices "
                   f"(auto: {config.WEIGHT_DECAY:g}, more in proportion past "
                   f"{config.WEIGHT_DECAY_PASSES} passes over the corpus, at most "
                   f"{config.MAX_WEIGHT_DECAY:g})")
    g.add_argument("--grad-clip", type=float, help=f"max gradient norm, 0 = off ({d.grad_clip})")
    g.add_argument("--ema", type=float, metavar="DECAY", help="validate and save an exponential "
                   "moving average of the weights with this decay, e.g. 0.999 (about the last "
                   f"1,000 steps); for runs of several thousand steps; 0 = off ({d.ema:g})")
    g.add_argument("--precision", choices=config.PRECISIONS, help="fp32; bf16 or fp16 (CUDA, "
                   "loss-scaled) matmuls with fp32 weights; auto: bf16 where the CPU or GPU has "
                   f"it, else fp32 on a CPU, fp16 on a GPU ({d.precision})")
    g.add_argument("--max-steps", type=int, help="stop after this many steps")
    g.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="stop after this much training time; the learning-rate schedule fits "
                   "whichever budget ends first (with neither: "
                   f"{config.DEFAULT_STEPS} steps)")


def _run_flags(g, d: TrainConfig) -> None:
    """Where the run goes and what it shows along the way."""
    g.add_argument("--out", help="run folder (default checkpoints/<corpus name>)")
    g.add_argument("--resume", metavar="DIR", help="continue the run in DIR where it stopped")
    g.add_argument("--overwrite", action="store_true", default=None,
                   help="replace an existing run in the output folder")
    g.add_argument("--evals", type=int, help=f"validation passes over the run ({d.evals})")
    g.add_argument("--sample-chars", type=int, help="characters of the sample shown and logged "
                   f"at each validation, temperature 0.8, seed 1; 0: none ({d.sample_chars})")
    g.add_argument("--seed", type=int, help=f"random seed ({d.seed})")
    g.add_argument("--device", help=f"auto, cpu, cuda, cuda:N, mps ({d.device})")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


class UsageError(Exception):
    """A mistake on the command line, said in one line (with a hint) by `_Parser.error`."""


class _Parser(argparse.ArgumentParser):
    """argparse that says a mistake in one line, with the command's short usage and a guess at
    what was meant, and exits with status 1 like every other mistake (argparse's own way is
    the whole usage block and status 2)."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: error: {message}{_guess(message, self._names())}\n"
                         f"usage: {self.short_usage()} ({self.prog} -h lists the options)")

    def short_usage(self) -> str:
        named = [a for a in self._actions if a.option_strings]
        plain = [a.metavar or a.dest for a in self._actions
                 if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]
        sub = [a.metavar for a in self._actions if isinstance(a, argparse._SubParsersAction)]
        return " ".join([self.prog, *(["[options]"] if named else []), *plain, *sub])

    def _names(self) -> list[str]:
        """What may be typed here: the options and the subcommands."""
        return [*self._option_string_actions,
                *(c for a in self._actions if isinstance(a, argparse._SubParsersAction)
                  for c in a.choices)]

    def unknown(self, extras: list[str]):
        flags = [x for x in extras if x.startswith("-")]
        self.error(f"unrecognized argument{'s' * (len(extras) > 1)}: {' '.join(extras)}"
                   + (_guess_for(flags[0].split("=")[0], self._names()) if flags else ""))


def _guess_for(word: str, names: list[str]) -> str:
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _guess(message: str, names: list[str]) -> str:
    """A guess at what an invalid choice meant (argparse 3.11 names the choices, no guess)."""
    m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
    return "" if m is None else _guess_for(m[1], re.findall(r"'([^']*)'", m[2]))


def parse(parser: _Parser, argv: list[str]) -> argparse.Namespace:
    """`argv` parsed; an argument the command does not know is blamed on that command."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        subs.choices[args.command].unknown(extras)
    return args


def _build_parser() -> _Parser:
    parser = _Parser(
        prog="textrnn", description="Character- and token-level recurrent language models: "
        "train, sample, evaluate. Run `textrnn COMMAND -h` for each command's options.")
    parser.add_argument("--version", action="version", version=f"textrnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _train_parser(sub)

    p = sub.add_parser("sample", help="generate text from a checkpoint")
    p.add_argument("checkpoint", help=CHECKPOINT)
    p.add_argument("--prompt", default="", help="text to start from (default: none)")
    p.add_argument("--length", type=int, default=500, help="characters to generate (500)")
    p.add_argument("--temperature", type=float, default=0.8,
                   help="randomness: 0 = always the likeliest, 1 = the model's own odds (0.8)")
    p.add_argument("--top-k", type=int, help="sample only from the k likeliest characters")
    p.add_argument("--top-p", type=float, help="sample only from the likeliest characters "
                   "whose probability adds up to p (e.g. 0.9)")
    p.add_argument("--seed", type=int, help="same seed, same text (default: random, printed)")
    p.add_argument("--num-samples", type=int, default=1, help="samples drawn side by side (1)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, ... (cpu)")

    p = sub.add_parser("eval", help="validation loss of a checkpoint on a text file")
    p.add_argument("checkpoint", help=CHECKPOINT)
    p.add_argument("file", help="a text file or folder of .txt files")
    p.add_argument("--encoding", default="utf-8", help="text encoding of the file (utf-8)")
    p.add_argument("--streams", type=int, help="read the text as this many slices side by "
                   f"side (default: 1 up to {config.SINGLE_STREAM_TOKENS:,} tokens, else "
                   f"{config.VAL_STREAMS}, within ~0.001 nats/char of one stream)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--device", default="cpu", help="cpu, cuda, ... (cpu)")

    _sweep_parser(sub)
    _share_parsers(sub)
    sub.add_parser("serve", add_help=False, help="serve checkpoints in a web page "
                   "(`textrnn serve [CHECKPOINTS] -h` lists its flags; needs the app extra)")
    p = sub.add_parser("info", help="print a checkpoint's model card")
    p.add_argument("checkpoint", help=CHECKPOINT)
    p.add_argument("--json", action="store_true", help="print config.json as it is")
    return parser


def _share_parsers(sub) -> None:
    p = sub.add_parser("push", help="publish a run on the Hugging Face Hub, with a model card",
                       description="Upload a finished run (its best checkpoint, metrics and a "
                       "generated model card) to a Hub model repo, in one commit. Log in first "
                       "with `hf auth login`, or set HF_TOKEN.")
    p.add_argument("run", help="a run folder that `textrnn train` wrote")
    p.add_argument("repo_id", help="user/name (or org/name) of the model repo; made if new")
    p.add_argument("--private", action="store_true", help="make a new repo private")
    p.add_argument("--revision", metavar="BRANCH", help="push to this branch (made if new)")
    p.add_argument("--message", help="the commit message")
    p.add_argument("--license", help="the card's license field, e.g. mit, cc-by-4.0 (other)")
    p.add_argument("--language", help="the text's language for the card, e.g. en")
    p = sub.add_parser("space", help="build a Hugging Face Space that serves some runs",
                       description="Write a folder that runs as a Gradio Space serving the "
                       "given runs (folders or Hub models), and push it if asked.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders or Hub models")
    p.add_argument("--out", required=True, help="the Space's folder (must not exist)")
    p.add_argument("--push", metavar="SPACE_ID", help="also create and upload the Space "
                   "user/name")
    p.add_argument("--title", default="textrnn", help="the Space's title (textrnn)")
    p.add_argument("--emoji", default="📜", help="the Space's emoji (📜)")
    p.add_argument("--training", action="store_true", help="turn the page's Train tab on (off: "
                   "a Space's visitors would share its CPU)")
    p.add_argument("--private", action="store_true", help="make a new Space private")
    _export_parser(sub)


def _export_parser(sub) -> None:
    p = sub.add_parser("export", help="export a model to run without textrnn (ONNX, a web "
                       "page)", description="Write a finished run's best checkpoint (or a "
                       "checkpoint folder, or a Hub model) in a form other runtimes load: an "
                       "ONNX graph, checked against PyTorch where onnxruntime is installed, or "
                       "a static web page that writes text in the visitor's browser.")
    p.add_argument("run", help=CHECKPOINT)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--onnx", metavar="OUT.onnx", help="an ONNX graph of one step, (token, "
                      "state) -> (logits, state), with OUT.tokenizer.json and OUT.config.json "
                      "beside it (needs the onnx extra: pip install \"textrnn[onnx]\")")
    what.add_argument("--web", metavar="DIR", help="a folder of static files (index.html, "
                      "the engine, the weights) that writes text in the browser, opened from "
                      "the disk or any static host, with no request to another host")
    p.add_argument("--dtype", choices=("fp32", "fp16"), default="fp32", help="with --web: "
                   "the weights' precision in the page; fp16 halves the download (fp32)")
    p.add_argument("--sequence", action="store_true", help="with --onnx: a graph of a whole "
                   "sequence of tokens (B, T) -> logits (B, T, V) instead, for scoring text")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that exist")


def _cmd_export(args) -> int:
    from .export import export_onnx, export_web
    if args.web is not None:
        if args.sequence:
            raise ValueError("--sequence is for --onnx; a web page generates one step at a time")
        done = export_web(args.run, args.web, dtype=args.dtype, overwrite=args.overwrite)
        print(f"wrote {done.files[0]} ({done.bytes / 1e6:,.1f} MB, {args.dtype} weights): open "
              f"{done.files[0] / 'index.html'} in a browser, or put the folder on any static "
              "host", file=sys.stderr)
        return 0
    if args.dtype != "fp32":
        raise ValueError("--dtype is for --web; an ONNX export keeps the fp32 weights")
    done = export_onnx(args.run, args.onnx, sequence=args.sequence, overwrite=args.overwrite)
    print(f"wrote {done.files[0]} ({done.bytes / 1e6:,.1f} MB) and beside it "
          f"{', '.join(f.name for f in done.files[1:])}\n{done.checked}", file=sys.stderr)
    return 0


def _cmd_push(args) -> int:
    from .share import push
    pushed = push(args.run, args.repo_id, private=args.private, revision=args.revision,
                  message=args.message, license=args.license, language=args.language)
    print(f"pushed {len(pushed.files)} files ({pushed.bytes / 1e6:,.1f} MB) to {args.repo_id}: "
          f"{pushed.url}\nload it with: textrnn sample {args.repo_id}", file=sys.stderr)
    return 0


def _cmd_space(args) -> int:
    from .share import build_space, push_space
    space = build_space(args.runs, args.out, title=args.title, emoji=args.emoji,
                        training=args.training)
    print(f"built {space.folder} ({space.bytes / 1e6:,.1f} MB) serving "
          f"{', '.join(space.models)}; try it: cd {shlex.quote(str(space.folder))} && "
          "python app.py", file=sys.stderr)
    if args.push:
        space = push_space(space, args.push, private=args.private)
        print(f"pushed to the Space {args.push}: {space.pushed.url}", file=sys.stderr)
    return 0


def _sweep_parser(sub) -> None:
    from .sweep import DEFAULT_SEARCH, PRUNE_MARGIN, SPACE
    p = sub.add_parser("sweep", help="try settings of `train` on a corpus and report which win",
                       description="Trials of `textrnn train` on one corpus and split, each with "
                       "the same budget; trial 0 is the defaults. Needs Optuna: pip install optuna "
                       "matplotlib, or pip install -e '.[sweep]' in the repository.")
    p.add_argument("corpus", help="a UTF-8 text file, or a folder of .txt files")
    p.add_argument("--out", help="the sweep's folder (default sweeps/<corpus name>)")
    b = p.add_mutually_exclusive_group()
    b.add_argument("--budget-per-trial", type=float, metavar="S",
                   help="seconds of training per trial (60)")
    b.add_argument("--steps-per-trial", type=int, metavar="N",
                   help="optimizer steps per trial instead: same seed, same trials")
    p.add_argument("--trials", type=int, default=12, help="trials, the defaults included (12)")
    p.add_argument("--search", default=",".join(DEFAULT_SEARCH),
                   help=f"settings to search, from {', '.join(SPACE)} "
                   f"({','.join(DEFAULT_SEARCH)})")
    p.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="instead of searching, try these values (all combinations of every "
                   "--grid given), e.g. --grid hidden=128,256,384")
    p.add_argument("--prune-margin", type=float, default=PRUNE_MARGIN,
                   help="stop a trial this many nats/char behind the median of the finished "
                   f"ones at the same validation ({PRUNE_MARGIN})")
    p.add_argument("--no-prune", action="store_true", help="let every trial run its budget")
    p.add_argument("--seed", type=int, default=1337, help="the sampler's seed (1337)")
    p.add_argument("--resume", action="store_true", help="run the trials still missing")
    p.add_argument("--overwrite", action="store_true", help="replace a sweep in --out")
    p.add_argument("--tokenizer", choices=TOKENIZERS, help="for every trial (char)")
    p.add_argument("--val-fraction", type=float, help="for every trial (0.1)")
    p.add_argument("--evals", type=int, help="validations per trial, where pruning looks (5)")
    p.add_argument("--device", help="for every trial (auto)")


def _cmd_sweep(args) -> int:
    from .sweep import SweepConfig, sweep
    grid = {}
    for g in args.grid:
        name, _, values = g.partition("=")
        if not values:
            raise ValueError(f"--grid takes NAME=V1,V2,...; got {g!r}")
        grid[name.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    base = {k: getattr(args, k) for k in ("tokenizer", "val_fraction", "evals", "device")
            if getattr(args, k) is not None}
    steps = args.steps_per_trial
    cfg = SweepConfig(corpus=args.corpus, trials=args.trials,
                      out=args.out or str(Path("sweeps") / corpus_name(args.corpus)),
                      trial_seconds=None if steps is not None else
                      60.0 if args.budget_per_trial is None else args.budget_per_trial,
                      trial_steps=steps, grid=grid,
                      search=tuple(s.strip() for s in args.search.split(",") if s.strip()),
                      prune_margin=None if args.no_prune else args.prune_margin,
                      seed=args.seed, resume=args.resume, overwrite=args.overwrite, base=base)
    sweep(cfg, say=lambda msg: print(msg, file=sys.stderr))
    return 0


def _train_config(args) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)} | MODEL_FLAGS
    cfg = config.from_flags({k: v for k, v in vars(args).items()
                             if v is not None and k in known})
    if cfg.out is None:  # (a resumed run writes where it is)
        cfg = replace(cfg, out=cfg.resume or str(Path("checkpoints") / corpus_name(cfg.corpus)))
    return cfg


def _cmd_train(args, argv) -> int:
    cfg = _train_config(args)
    told = [False]  # whether the run has said where it was interrupted

    def log(message: str) -> None:
        told[0] = told[0] or message.startswith("interrupted at step")
        print(message, file=sys.stderr)

    try:
        train(cfg, Terminal(log=log, progress=not args.no_progress),
              command=shlex.join(["textrnn", *argv]))
    except KeyboardInterrupt:
        if not told[0]:  # (stopped before the loop: say it once here)
            print("interrupted", file=sys.stderr)
        return 130
    return 0


def _cmd_sample(args) -> int:
    lm = load(args.checkpoint, device=args.device)
    seed = new_seed() if args.seed is None else args.seed
    settings = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=seed)
    steps = lm.stream_many(args.prompt, args.length, num_samples=args.num_samples, **settings)
    first = next(steps, None)  # settings are checked here, before anything is printed
    if args.seed is None:
        print(f"seed {seed}", file=sys.stderr)  # so a sample worth keeping can be drawn again
    if args.num_samples == 1:
        print(args.prompt + (first[0] if first else ""), end="", flush=True)
        for pieces in steps:
            print(pieces[0], end="", flush=True)
        print()
        return 0
    rows = [first, *steps] if first else [[""] * args.num_samples]  # (steps, samples)
    texts = ["".join(column) for column in zip(*rows)]
    for i, text in enumerate(texts, 1):
        print(f"--- sample {i} of {len(texts)} ---\n{args.prompt}{text}")
    return 0


def _cmd_eval(args) -> int:
    lm = load(args.checkpoint, device=args.device)
    bar, phase = None, None

    def progress(what, done, total):
        nonlocal bar, phase
        if args.no_progress:
            return
        if what != phase:
            if bar is not None:
                bar.close()
            bar = tqdm(total=total, desc=what, unit="B" if what == "encoding" else "tok",
                       unit_scale=True, leave=False, file=sys.stderr, disable=None)
            phase = what
        bar.update(done - bar.n)

    try:
        result = lm.evaluate_file(args.file, args.encoding, args.streams, progress)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.file}: {result['chars']:,} chars predicted, {result['loss']:.4f} nats/char, "
          f"{result['bpc']:.4f} bits/char, perplexity {result['perplexity']:.3f}"
          + (f" (read as {result['streams']} slices side by side)" if result["streams"] > 1
             else ""))
    if result["unknown"]:
        print(f"note: {result['unknown']:,} characters were never seen in training "
              "(counted as <unk>)", file=sys.stderr)
    return 0


def _cmd_info(args) -> int:
    folder = locate(args.checkpoint)
    if args.json:
        print(json.dumps(checkpoint.read_config(folder), indent=2, ensure_ascii=False))
        return 0
    config, cfg, _, _ = checkpoint.check(folder)  # every part checked; no weights read
    where = origin(folder)
    print(f"{checkpoint.resolve(folder) if where == str(folder) else where}: {_which(folder)}\n"
          f"{model_card(config, num_params(cfg))}")
    return 0


def _which(path: Path) -> str:
    """Which checkpoint of a run `path` names: its best, or its latest."""
    def step(p: Path) -> str:
        steps = training_summary(checkpoint.read_config(p)).get("steps")
        return f"{steps:,}" if isinstance(steps, int) else str(steps)
    where = checkpoint.resolve(path)
    last = checkpoint.last_dir(path)
    if where != path:
        return f"the run's latest checkpoint, step {step(where)} (no validation yet)"
    if last != path:
        return (f"the run's best checkpoint, by validation, at step {step(path)}; its latest, "
                f"step {step(last)}, is in {last}")
    return f"a checkpoint trained {step(path)} steps"


def main(argv: list[str] | None = None) -> int:
    code = _main(argv)
    if World.from_env().distributed:
        # One rank of a torchrun run, its work done and its files closed: leave without the
        # C++ teardown, where gloo's threads can abort the process ("terminate called without
        # an active exception") after a clean run.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _cmd_serve(argv: list[str]) -> int:
    try:
        from .web.server import main as serve
    except ImportError as e:  # gradio is the app extra
        raise ValueError(f"the web page needs Gradio ({e.name or e}): pip install -r "
                         "requirements.txt, or pip install 'textrnn[app]'") from None
    serve(argv, prog="textrnn serve")
    return 0


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    serving = argv[:1] == ["serve"]  # the page parses its own flags (and -h)
    try:
        args = None if serving else parse(_build_parser(), argv)
    except UsageError as e:
        print(e, file=sys.stderr)
        return 1
    try:
        if serving:
            return _cmd_serve(argv[1:])
        if args.command == "train":
            return _cmd_train(args, argv)
        return {"sample": _cmd_sample, "eval": _cmd_eval, "info": _cmd_info,
                "sweep": _cmd_sweep, "push": _cmd_push, "space": _cmd_space,
                "export": _cmd_export}[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Stopped:  # another process of a distributed run failed, and has said why
        return 1
    except BrokenPipeError:  # `textrnn sample ... | head`: the reader left; so do we, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (OSError, ValueError, FloatingPointError) as e:
        if isinstance(e, OSError) and e.filename and e.strerror:  # the system's, not ours
            e = f"{e.filename}: {e.strerror.lower()}"
        print(f"textrnn: error: {e}", file=sys.stderr)
        return 1
    except (MemoryError, torch.OutOfMemoryError, RuntimeError) as e:
        if isinstance(e, RuntimeError) and not isinstance(e, torch.OutOfMemoryError) and \
                "allocate" not in str(e):
            raise  # a bug, not a size: the traceback is for whoever fixes it
        detail = (str(e).splitlines() or ["no detail"])[0]
        print(f"textrnn: error: out of memory ({detail}); try a smaller model, batch or prompt",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
