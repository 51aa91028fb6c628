"""Benchmarks that print their figures: `python -m benchmarks COMMAND ...`, from the repository
root.

    python -m benchmarks tokenizers --corpus ../shared/data/tinyshakespeare.txt --budget 120
    python -m benchmarks train --corpus ../shared/data/tinyshakespeare.txt [--nproc 2]
    python -m benchmarks cells --corpus ../shared/data/tinyshakespeare.txt [--budget 110]
    python -m benchmarks ablation --corpus FILE [--variants default,ema,...] (issue 28's)
    python -m benchmarks cjk --out cjk.txt                (the large-alphabet text it runs on)
    python -m benchmarks comm [--nproc 2]              (data-parallel cost model)
    python -m benchmarks generate [--checkpoints checkpoints]
    python -m benchmarks app [--concurrent 16,48,200]     (see load.py)
    python -m benchmarks data [--size 1000]              (see data.py)
    python -m benchmarks share [--space]                 (push, load by name, a Space)
    python -m benchmarks gpu --corpus FILE [--device cpu] (the GPU check, see gpu.py)
    python -m benchmarks web [--checkpoints checkpoints] (the exported page in Chromium)

Each command is a module of this package, with its own flags (`add_parser`) and its own `run`.
"""

from __future__ import annotations

import argparse

from . import ablation, cells, comm, data, generate, gpu, load, share, tokenizers, train, web

COMMANDS = {"tokenizers": tokenizers, "train": train, "cells": cells, "ablation": ablation,
            "cjk": ablation, "comm": comm, "generate": generate, "data": data, "app": load,
            "share": share, "gpu": gpu, "web": web}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for module in dict.fromkeys(COMMANDS.values()):
        module.add_parser(sub)
    args = parser.parse_args(argv)
    return COMMANDS[args.command].run(args)


if __name__ == "__main__":
    raise SystemExit(main())
