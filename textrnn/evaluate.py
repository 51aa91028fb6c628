"""Cross-entropy over a token sequence, with the state carried: the one measure behind
validation, `textrnn eval` and `LM.evaluate`.

    nats, n = evaluate_ids(model, ids)              # one stream, exactly
    nats, n = evaluate_ids(model, ids, streams=16)  # 16 slices side by side: faster, ~same

Memory does not grow with the text: the ids (a tensor or a memmap) are read a chunk at a time,
and the head's logits are made at most EVAL_LOGITS at a time, whatever the vocabulary.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .data import as_ids
from .model import RNNLM, ModelConfig, autocast

EVAL_CHUNK = 1024  # tokens per forward pass in evaluation; the state is carried across chunks
EVAL_WARMUP = 256  # tokens each later slice of a batched validation pass reads before scoring
EVAL_LOGITS = 2**23  # logits made at once, at most: over 6,305 characters, 16 slices of 1024
                     # tokens made 1.1 GB of them and their softmax in one piece



@torch.inference_mode()
def evaluate_ids(model, ids, chunk: int = EVAL_CHUNK, streams: int = 1,
                 warmup: int = EVAL_WARMUP,
                 progress: Callable[[int, int], None] | None = None,
                 part: tuple[int, int] = (0, 1)) -> tuple[float, int]:
    """Total nats and number of predictions over `ids` read as one stream, state carried.

    Token i + 1 is predicted from tokens 0..i, so len(ids) - 1 predictions are scored. With
    `streams` > 1 the text is read as that many contiguous slices side by side, in one batch:
    slice s starts `warmup` tokens before the first token it scores, so that its state has
    read some of the text before it (the first slice starts at the beginning, as one stream
    would). Every prediction is scored once; only the first `warmup` predictions of each later
    slice see less context than in one stream. `progress(done, total)` hears how far the pass
    has come, in predictions.

    `part=(k, m)`: the share of the pass process k of m reads (the slices s with s % m == k;
    one stream is process 0's alone), so that the m processes' nats add up to the whole's.
    """
    n = len(ids) - 1
    k, m = part
    if streams <= 1 or n < 4 * streams * (warmup + 1):
        return _evaluate_one(model, ids, chunk, progress) if k == 0 else (0.0, max(n, 0))
    L = -(-(n - warmup) // streams)                          # predictions per later slice
    starts = torch.arange(streams)[k::m, None] * L           # slice s reads from s * L
    if len(starts) == 0:
        return 0.0, n
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, state = 0.0, None
    for t in range(0, warmup + L, chunk):                    # positions built a chunk at a time
        steps = torch.arange(t, min(t + chunk, warmup + L) + 1)
        pos = starts + steps                                                # (S, T+1)
        scored = (pos[:, 1:] <= n) & ((starts == 0) | (steps[None, :-1] >= warmup))
        pos = pos.clamp(max=n)
        window = as_ids(ids[pos.numpy()] if isinstance(ids, np.ndarray) else ids[pos])
        window = window.to(device)                                         # (S, T+1)
        out, state = model.features(window[:, :-1], state)                # (S, T, H)
        keep = scored.flatten().to(device)
        total += _nats(model, out.flatten(0, 1)[keep], window[:, 1:].flatten()[keep])
        if progress:
            progress(n * min(t + chunk, warmup + L) // (warmup + L), n)
    model.train(was_training)
    return total, n


def _evaluate_one(model, ids, chunk: int, progress=None) -> tuple[float, int]:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, state = 0.0, None
    for i in range(0, len(ids) - 1, chunk):
        piece = as_ids(ids[i:i + chunk + 1]).to(device)[None]         # (1, T+1)
        out, state = model.features(piece[:, :-1], state)              # (1, T, H)
        total += _nats(model, out[0], piece[0, 1:])
        if progress:
            progress(min(i + chunk, len(ids) - 1), len(ids) - 1)
    model.train(was_training)
    return total, max(len(ids) - 1, 0)


def _nats(model, out: torch.Tensor, targets: torch.Tensor) -> float:
    """Total nats of `targets` (N,) after the top layer's outputs `out` (N, H), the head's
    logits made EVAL_LOGITS at a time."""
    rows, total = max(1, EVAL_LOGITS // model.config.vocab_size), 0.0
    for i in range(0, len(targets), rows):
        logits = model.head(out[i:i + rows])                            # (rows, V)
        total += F.cross_entropy(logits.float(), targets[i:i + rows].long(),
                                 reduction="sum").item()
    return total


def eval_speed(cfg: ModelConfig, streams: int, device: torch.device, precision: str) -> float:
    """Tokens per second a validation pass of `streams` slices reads with a fresh model of
    `cfg`: one pass over the least text that many slices read side by side, timed after an
    untimed pass."""
    model = RNNLM(cfg).to(device)
    ids = torch.randint(cfg.vocab_size, (4 * streams * (EVAL_WARMUP + 1) + 1,), device=device)
    with autocast(device, precision):
        evaluate_ids(model, ids[:EVAL_CHUNK])
        t0 = time.perf_counter()
        evaluate_ids(model, ids, streams=streams)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return len(ids) / (time.perf_counter() - t0)
