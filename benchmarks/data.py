"""Preparing a big corpus, timed: `python -m benchmarks data --size 1000` (MB).

Builds a synthetic corpus of SIZE MB in a temporary folder from the shipped corpora, each copy
with its lines shuffled and about a third of them given a numbered word, so that BPE meets new
words all the way through. Then, for each tokenizer, in a fresh process each: the time and MB/s
of preparing its token files (from an empty cache), the peak RSS, and the time from `train()` to
its first training step (the cache then full, as a second run finds it). With `--before DIR`, a
checkout of an older textrnn, it also times that code's preparation (read, split, learn,
encode, all in memory) on `--before-size` MB, side by side in the same run.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

HEADER = ("| code | tokenizer | corpus MB | prepare s | MB/s | peak RSS MB (preparing) | "
          "first step after s (cache full) |\n"
          "|---|---|---|---|---|---|---|")

CHILD = r"""
import json, resource, sys, time, tempfile
import textrnn
from textrnn.data import read_corpus, split
from textrnn.tokenizer import build
corpus, kind, cache, mode = sys.argv[1:5]
vocab = 1024 if kind == "bpe" else None
t0 = time.perf_counter()  # imports done: what follows is the work
if mode == "before":  # the older code: all in memory
    text = read_corpus(corpus)
    train, val = split(text, 0.1)
    tok = build(kind, train, vocab, log=lambda m: None)
    n = len(tok.encode(train)) + len(tok.encode(val))
    first = None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
else:
    from textrnn import corpus as tokens
    cfg = textrnn.TrainConfig(corpus=corpus, tokenizer=kind, vocab_size=vocab, data_cache=cache)
    c = tokens.prepare(cfg, log=lambda m: None)
    n = len(c.train_ids) + len(c.val_ids)
    prepared = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    class FirstStep(textrnn.Reporter):
        def stepped(self, state):
            raise KeyboardInterrupt  # timed: preparing, then the first step
    t1 = time.perf_counter()
    try:
        textrnn.train(textrnn.TrainConfig(corpus=corpus, tokenizer=kind, vocab_size=vocab,
                                          data_cache=cache, out=tempfile.mkdtemp(),
                                          max_steps=100, model={"hidden": 256, "layers": 2}),
                      reporter=FirstStep())
    except KeyboardInterrupt:
        pass
    first = time.perf_counter() - t1
print(json.dumps({"seconds": prepared if mode == "now" else time.perf_counter() - t0,
                  "tokens": n, "first_step": first, "rss_mb": rss}))
"""


def build_corpus(path: Path, megabytes: float, sources: list[Path]) -> None:
    """SIZE MB of varied text from `sources`, written a copy at a time."""
    lines = [line for p in sources for line in p.read_text(encoding="utf-8").splitlines()]
    rng, size, done, i = random.Random(0), int(megabytes * 2**20), 0, 0
    with open(path, "w", encoding="utf-8") as f:
        while done < size:
            rng.shuffle(lines)
            out = []
            for line in lines:
                words = line.split(" ")
                if rng.random() < 0.3:
                    j = rng.randrange(len(words))
                    words[j] += str(i % 89)
                out.append(" ".join(words))
            text = "\n".join(out)[:size - done] + "\n"
            f.write(text)
            done += len(text.encode("utf-8"))
            i += 1


def _run(corpus: Path, kind: str, mode: str, code_dir: str | None) -> dict:
    env = None
    if code_dir:
        import os
        env = {**os.environ, "PYTHONPATH": code_dir}
    with tempfile.TemporaryDirectory() as cache:
        out = subprocess.run([sys.executable, "-c", CHILD, str(corpus), kind, cache, mode],
                             capture_output=True, text=True, env=env, timeout=3600)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_data(size: float, sources: list[Path], before: str | None = None,
               before_size: float = 50, kinds=("char", "byte", "bpe")) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        print(HEADER, flush=True)
        plan = [("now", size)] + ([("before", before_size)] if before else [])
        if before:
            plan = [("now", before_size), ("before", before_size), ("now", size)]
        for mode, mb in plan:
            corpus = Path(tmp) / f"corpus{mb:g}.txt"
            if not corpus.exists():
                build_corpus(corpus, mb, sources)
            real_mb = corpus.stat().st_size / 2**20
            for kind in kinds:
                r = {"code": mode, "tokenizer": kind, "mb": real_mb,
                     **_run(corpus, kind, mode, before if mode == "before" else None)}
                rows.append(r)
                if "error" in r:
                    print(f"| {mode} | {kind} | {real_mb:,.0f} | failed: {r['error']} |||",
                          flush=True)
                    continue
                first = f"{r['first_step']:.1f}" if r.get("first_step") is not None else "-"
                print(f"| {mode} | {kind} | {real_mb:,.0f} | {r['seconds']:.1f} | "
                      f"{real_mb / r['seconds']:.1f} | {r['rss_mb']:,.0f} | {first} |",
                      flush=True)
    return rows


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="preparing a big corpus: MB/s, peak RSS, first step")
    p.add_argument("--size", type=float, default=1000, help="corpus size in MB (1000)")
    p.add_argument("--sources", default="corpora", help="folder of .txt files to build it from")
    p.add_argument("--before", metavar="DIR", help="a checkout of older textrnn code to time "
                   "beside this one")
    p.add_argument("--before-size", type=float, default=50, help="MB for that comparison (50)")
    p.add_argument("--tokenizers", default="char,byte,bpe")


def run(args) -> int:
    bench_data(args.size, sorted(Path(args.sources).glob("*.txt")), args.before,
               args.before_size, args.tokenizers.split(","))
    return 0
