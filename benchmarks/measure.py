"""What the benchmarks share: a median of timed calls, and what this machine and a model allow
(the rate it reads memory, its fp32 matmul rate, the multiply-adds a token costs)."""

from __future__ import annotations

import socket
import statistics
import time

import torch


def median_time(fn, repeats: int = 3) -> float:
    """Median seconds of `repeats` calls of `fn`."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def read_bandwidth(n_bytes: int) -> float:
    """Bytes/s at which this machine reads a buffer of `n_bytes` that stays in cache: the rate
    a batch-1 step, which reads every weight once, cannot beat."""
    buf = torch.ones(max(n_bytes // 4, 1))
    buf.sum()
    return 50 * n_bytes / median_time(lambda: [buf.sum() for _ in range(50)], 5)


def matmul_rate() -> float:
    """fp32 FLOP/s of a 1024x1024 matrix product, measured now."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    return 2 * 1024**3 / (median_time(lambda: [a @ b for _ in range(10)], 3) / 10)


def matmul_weights(model) -> int:
    """Multiply-adds one token costs in a forward pass: every weight matrix of the recurrent
    layers and the head (the embedding is a lookup)."""
    matrices = [p for p in model.rnn.parameters() if p.dim() == 2]  # not biases or norms
    return sum(p.numel() for p in matrices) + model.head.weight.numel()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server a benchmark starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
