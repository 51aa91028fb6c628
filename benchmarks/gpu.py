"""The GPU check: `python -m benchmarks gpu --corpus FILE [--budget 8] [--device cuda]`.

On a CUDA machine, in about 5 minutes, one check after another:
1. every cell trains `--budget` seconds in bf16 (where the GPU has it) and in fp16 with a
   GradScaler: training tokens/s and the validation loss reached;
2. minGRU's two scans on the GPU, forward and backward over 64 x 256 x 512: the log-space
   parallel scan against the step-by-step loop;
3. `torchrun` with NCCL on every GPU present, a short run that must end cleanly;
4. generation: textrnn's C kernel on the CPU at batch 1, against cuDNN steps on the GPU at
   batch 1 and 64 streams (chars/s);
5. a checkpoint saved from the GPU, loaded on the CPU: the largest difference in logits.
Then one table. `--device cpu` runs what a CPU can (no fp16, gloo for torchrun), to check the
script itself on a machine without a GPU.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import textrnn
from textrnn import checkpoint
from textrnn.model import CELLS
from textrnn.minrnn import MinStack

from .train import protocol_split, train_config

ROWS: list[tuple[str, str]] = []


def say(check: str, figure: str) -> None:
    ROWS.append((check, figure))
    print(f"{check}: {figure}", flush=True)


def _train(split, out: Path, cell: str, precision: str, device: str, budget: float) -> Path:
    argv = [str(split[0]), "--val-file", str(split[1]), "--time-budget", f"{budget:g}",
            "--cell", cell, "--precision", precision, "--device", device, "--evals", "1",
            "--max-val-chars", "100000", "--sample-chars", "0", "--out", str(out)]
    return textrnn.train(train_config(argv), reporter=textrnn.Reporter())


def check_training(split, tmp: Path, device: str, budget: float) -> Path | None:
    """1: every cell in each precision the device takes; returns an LSTM run's folder."""
    precisions = ["bf16", "fp16"] if device == "cuda" else ["fp32"]
    if device == "cuda" and not torch.cuda.is_bf16_supported():
        precisions = ["fp16"]
    lstm = None
    for cell in CELLS:
        for precision in precisions:
            out = tmp / f"{cell}-{precision}"
            try:
                _train(split, out, cell, precision, device, budget)
            except Exception as e:  # a check that fails is a row, not the end of the script
                say(f"train {cell} {precision}", f"FAILED: {str(e).splitlines()[0][:150]}")
                continue
            s = checkpoint.read_config(out)["training"]
            say(f"train {cell} {precision}",
                f"{s['tokens_seen'] / s['train_time_s']:,.0f} tokens/s, val "
                f"{s['val_loss']:.4f} nats/char, {s['steps']:,} steps, model "
                f"{checkpoint.read_config(out)['model']['hidden']} wide")
            lstm = lstm or (out if cell == "lstm" else None)
    return lstm


def check_scans(device: str) -> None:
    """2: the two scans of a 2-layer 512-wide minGRU stack, forward and backward."""
    B, T, H = (64, 256, 512) if device == "cuda" else (8, 64, 128)
    stack = MinStack("mingru", H, H, 2).to(device)
    x = torch.randn(B, T, H, device=device)
    for log_space in (True, False):
        stack.log_space = log_space
        times = []
        for _ in range(6):
            _sync(device)
            t0 = time.perf_counter()
            stack(x.requires_grad_())[0].sum().backward()
            _sync(device)
            times.append(time.perf_counter() - t0)
        say(f"scan {'log space' if log_space else 'step loop'} {B}x{T}x{H}",
            f"{B * T / statistics.median(times[1:]):,.0f} tokens/s (forward and backward)")


def check_torchrun(split, tmp: Path, device: str, budget: float) -> None:
    """3: a short run on every GPU (or two CPU processes), through torchrun."""
    n = torch.cuda.device_count() if device == "cuda" else 2
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           str(n), "-m", "textrnn", "train", str(split[0]), "--val-file", str(split[1]),
           "--time-budget", f"{budget:g}", "--device", device, "--evals", "1",
           "--max-val-chars", "100000", "--no-progress", "--out", str(tmp / "ddp")]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    backend = "NCCL" if device == "cuda" else "gloo"
    said = [line for line in done.stderr.splitlines() if line.startswith("done:")]
    say(f"torchrun {backend}, {n} processes",
        f"exit {done.returncode} in {time.perf_counter() - t0:.0f} s; " +
        (said[0][:160] if said else done.stderr.strip()[-300:]))


def check_generation(run: Path, device: str) -> None:
    """4 and 5: chars/s of the kernel on the CPU and of the GPU's steps; and the logits of the
    GPU-trained checkpoint, loaded on the CPU, against the GPU's."""
    cpu = textrnn.load(run)
    say("generate, CPU, batch 1", f"{_chars_per_s(lambda: cpu.generate('', 2000, seed=0)):,.0f} "
        f"chars/s ({textrnn.kernel_status()})")
    gpu = textrnn.load(run, device=device)
    say(f"generate, {device}, batch 1",
        f"{_chars_per_s(lambda: gpu.generate('', 500, seed=0), 500):,.0f} chars/s")
    many = _chars_per_s(lambda: gpu.samples("", 200, num_samples=64, seed=0), 64 * 200)
    say(f"generate, {device}, 64 streams", f"{many:,.0f} chars/s")
    ids = torch.randint(1, cpu.model.config.vocab_size, (1, 200))
    with torch.no_grad():
        a = cpu.model.eval()(ids)[0]
        b = gpu.model.eval()(ids.to(device))[0].float().cpu()
    say(f"saved on {device}, loaded on the CPU",
        f"largest logit difference {(a - b).abs().max():.2e}")


def _chars_per_s(fn, chars: int = 2000) -> float:
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return chars / statistics.median(times)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def add_parser(sub) -> None:
    p = sub.add_parser("gpu", help="the GPU check: cells in bf16/fp16, scans, NCCL, generation")
    p.add_argument("--corpus", required=True, help="the benchmark text, e.g. tinyshakespeare.txt")
    p.add_argument("--budget", type=float, default=8, help="seconds of training per run (8)")
    p.add_argument("--device", default="cuda", help="cuda, or cpu to check the script (cuda)")


def run(args) -> int:
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU here: the GPU check has nothing to run (--device cpu checks the "
              "script itself)")
        return 1
    where = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"GPU check on {where}, torch {torch.__version__}\n", flush=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        split = protocol_split(args.corpus, tmp)
        run_folder = check_training(split, tmp, args.device, args.budget)
        check_scans(args.device)
        check_torchrun(split, tmp, args.device, args.budget)
        if run_folder is not None:
            check_generation(run_folder, args.device)
    print("\n| check | figure |\n|---|---|")
    for check, figure in ROWS:
        print(f"| {check} | {figure} |")
    print(f"\n{time.perf_counter() - t0:.0f} s in all")
    return 0
