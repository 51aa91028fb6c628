"""Sampling: choosing the next token from logits, and a generator that streams new tokens.

`sample_next` is a pure function of the logits and a local `torch.Generator`: no global seed is
read or set, so concurrent callers with their own generators never disturb each other.
Temperature 0 means argmax and ignores the generator.

`generate` primes the recurrent state with the whole prompt in one forward pass, then feeds one
token per step, carrying the state: the prompt is never re-run. It yields the new token ids as
they are chosen, so the CLI prints and the web UI streams from the same code. Left out on
purpose: beam search (it makes dull text) and repetition penalties.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch


def check_settings(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise ValueError, with advice, for settings that mean nothing."""
    if not temperature >= 0:  # also catches NaN
        raise ValueError(f"temperature must be >= 0 (0 = always the likeliest), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top-k must be at least 1 (or unset), got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top-p must be in (0, 1] (or unset), got {top_p}")


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None
                ) -> torch.Tensor:
    """Pick one token per row of `logits` (B, V) -> ids (B,).

    top_k keeps the k likeliest tokens; top_p keeps the smallest set whose probability reaches p
    (nucleus sampling, Holtzman et al. 2020). Both may be given; the likeliest token always
    survives.
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]         # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        before = probs.cumsum(dim=-1) - probs        # mass of the tokens ranked above each one
        drop_sorted = before >= top_p                # those already past p are cut
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    probs = torch.softmax(logits, dim=-1)                              # (B, V)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.inference_mode()
def generate(model, prompt_ids: torch.Tensor, max_new_tokens: int | None,
             temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None,
             generator: torch.Generator | None = None, num_samples: int = 1,
             banned: Sequence[int] = ()) -> Iterator[torch.Tensor]:
    """Yield steps of new ids, each (num_samples,), continuing `prompt_ids`; `max_new_tokens`
    steps, or without end if it is None (the caller stops when it has enough text).

    `prompt_ids` (T,) must hold at least one token. `banned` ids are never emitted (the
    tokenizer's unknown id, for one).
    """
    assert prompt_ids.dim() == 1 and len(prompt_ids) > 0, "prompt needs at least one token"
    check_settings(temperature, top_k, top_p)
    device = next(model.parameters()).device
    idx = prompt_ids.to(device).long()[None]                           # (1, T)
    logits, _, state = _forward(model, idx)                            # prime in one pass
    logits = logits[:, -1].expand(num_samples, -1)                     # (B, V)
    state = _repeat_state(state, num_samples)
    banned = list(banned)
    for _ in range(max_new_tokens) if max_new_tokens is not None else itertools.count():
        if banned:
            logits = logits.clone()
            logits[:, banned] = float("-inf")
        nxt = sample_next(logits, temperature, top_k, top_p, generator)  # (B,)
        yield nxt
        logits, _, state = _forward(model, nxt[:, None], state)        # one step, state carried
        logits = logits[:, -1]


_onednn_lock = threading.Lock()
_onednn_users = 0
_onednn_was = True


@contextmanager
def _without_onednn():
    """Turn oneDNN off while any generation step runs, and back on when the last one ends.

    oneDNN's RNN kernel costs ~2 ms of set-up per call on CPU, four times PyTorch's own kernel
    for a one-token step of a 2x256 LSTM (measured: 1.9 ms vs 0.5 ms). Its switch is
    process-wide, so concurrent callers share one count under a lock; the switch is never held
    across a yield.
    """
    global _onednn_users, _onednn_was
    with _onednn_lock:
        if _onednn_users == 0:
            _onednn_was, torch.backends.mkldnn.enabled = torch.backends.mkldnn.enabled, False
        _onednn_users += 1
    try:
        yield
    finally:
        with _onednn_lock:
            _onednn_users -= 1
            if _onednn_users == 0:
                torch.backends.mkldnn.enabled = _onednn_was


def _forward(model, idx, state=None):
    with _without_onednn():
        return model(idx, state=state)


def _repeat_state(state, n: int):
    if n == 1:
        return state
    if isinstance(state, tuple):
        return tuple(s.repeat(1, n, 1) for s in state)
    return state.repeat(1, n, 1)
