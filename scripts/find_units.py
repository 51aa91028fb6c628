"""Which units of a trained model follow quotes, brackets, the position in a line...?

    python scripts/find_units.py [CHECKPOINT ...] [--start 100000] [--chars 10000] [--top 1]

For each checkpoint (default: the shipped shakespeare-char-lstm and werkzeug-char-lstm), reads
characters [start, start + chars) of its training corpus (corpora/<corpus name>.txt, or
--text FILE), runs `LM.inspect` and `textrnn.find_units` on them, and prints a Markdown table:
the best `--top` units per feature, with the best score a model of the same shape with random
weights reaches for that feature on the same text (what chance alone gives).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import textrnn

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = [ROOT / "checkpoints" / name for name in ("shakespeare-char-lstm", "werkzeug-char-lstm")]


def untrained(lm: textrnn.LM) -> textrnn.LM:
    torch.manual_seed(0)
    return textrnn.LM(textrnn.RNNLM(textrnn.ModelConfig(**lm.config["model"])), lm.tokenizer)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="*", type=Path, default=DEFAULT)
    ap.add_argument("--text", type=Path, help="read this file instead of the training corpus")
    ap.add_argument("--start", type=int, default=100_000, help="first character of the slice")
    ap.add_argument("--chars", type=int, default=10_000, help="characters in the slice")
    ap.add_argument("--top", type=int, default=1, help="units shown per feature")
    args = ap.parse_args()
    print("| checkpoint | feature | layer | state | unit | score | sign | untrained best |")
    print("|---|---|---|---|---|---|---|---|")
    for path in args.checkpoints:
        lm = textrnn.load(path)
        source = args.text or ROOT / "corpora" / f"{lm.config['training']['corpus_name']}.txt"
        text = source.read_text(encoding="utf-8")[args.start:args.start + args.chars]
        found = textrnn.find_units(lm.inspect(text), top=args.top)
        chance = textrnn.find_units(untrained(lm).inspect(text), top=1).by_feature
        for feature in textrnn.FEATURES:
            for u in found.by_feature.get(feature, []):
                base = chance[feature][0].score
                print(f"| {path.name} | {feature} | {u.layer} | {u.state} | {u.unit} | "
                      f"{u.score:.2f} | {'+' if u.sign > 0 else '-'} | {base:.2f} |")
            if feature in found.constant:
                print(f"| {path.name} | {feature} | - | - | - | (constant in this text) | | |")


if __name__ == "__main__":
    main()
