"""Sampling: choosing the next token from logits, and a generator that streams new tokens.

`sample_next` is a pure function of the logits and a local `torch.Generator`: no global seed is
read or set, so concurrent callers with their own generators never disturb each other.
Temperature 0 means argmax.

`generate` primes the recurrent state with the whole prompt in one forward pass, then feeds one
token per step, carrying the state: the prompt is never re-run. It yields the new token ids as
they are chosen, so the CLI prints and the web UI streams from the same code. The steps run in
the compiled kernel of fast.py where it can (same text, many times faster), else in PyTorch.
Left out on purpose: beam search (it makes dull text) and repetition penalties.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch

from . import fast as fastpath


MIN_TEMPERATURE = 1e-3  # below it, use 0: the likeliest token


def check_settings(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise ValueError, with advice, for settings that mean nothing."""
    if not temperature >= 0:  # also catches NaN
        raise ValueError(f"temperature must be >= 0 (0 = always the likeliest), got {temperature}")
    if 0 < temperature < MIN_TEMPERATURE:  # logits / t would overflow to inf
        raise ValueError(f"temperature must be 0 or at least {MIN_TEMPERATURE:g}, "
                         f"got {temperature:g}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top-k must be at least 1 (or unset), got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top-p must be in (0, 1] (or unset), got {top_p}")


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None,
                uniforms: torch.Tensor | None = None) -> torch.Tensor:
    """Pick one token per row of `logits` (B, V) -> ids (B,).

    top_k keeps the k likeliest tokens; top_p keeps the smallest set whose probability reaches p
    (nucleus sampling, Holtzman et al. 2020). Both may be given; the likeliest token always
    survives. The draw is by inverse CDF: one uniform per row (`uniforms`, float64 in [0, 1),
    else drawn from `generator`; drawn even at temperature 0, so every step uses the same
    randomness whatever the settings) picks the first token whose cumulative weight exceeds it.
    The fast kernel (fast.py) applies this same rule to the same uniforms.
    """
    if uniforms is None:
        uniforms = torch.rand(logits.size(0), dtype=torch.float64, generator=generator,
                              device=logits.device)
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]         # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)
        probs = torch.softmax(sorted_logits.double(), dim=-1)
        cum = probs.cumsum(dim=-1)
        drop_sorted = cum - probs >= top_p           # the mass ranked above it already reaches p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    top = logits.max(dim=-1, keepdim=True).values
    weights = torch.exp(logits.double() - top.double())                # (B, V), 0 where cut
    cdf = weights.cumsum(dim=-1)
    picked = torch.searchsorted(cdf, uniforms[:, None] * cdf[:, -1:], right=True).squeeze(-1)
    last_kept = (weights > 0).cumsum(dim=-1).argmax(dim=-1)            # guards rounding at u~1
    return torch.minimum(picked, last_kept)


MAX_CHUNK = 32  # most steps the fast kernel runs per call; the first call runs 1, then doubling


def generate(model, prompt_ids: torch.Tensor, max_new_tokens: int | None,
             temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None,
             generator: torch.Generator | None = None, num_samples: int = 1,
             banned: Sequence[int] = (), fast: bool = True) -> Iterator[torch.Tensor]:
    """Yield steps of new ids, each (num_samples,), continuing `prompt_ids`; `max_new_tokens`
    steps, or without end if it is None (the caller stops when it has enough text).

    `prompt_ids` (T,) must hold at least one token. `banned` ids are never emitted (the
    tokenizer's unknown id, for one). Steps run in the fast kernel where it is available
    (fast.py), else (or with fast=False) one PyTorch forward per step; both give the same text.
    """
    for chunk in generate_chunks(model, prompt_ids, max_new_tokens, temperature, top_k, top_p,
                                 generator, num_samples, banned, fast):
        yield from chunk


@torch.inference_mode()
def generate_chunks(model, prompt_ids: torch.Tensor, max_new_tokens: int | None,
                    temperature: float = 1.0, top_k: int | None = None,
                    top_p: float | None = None, generator: torch.Generator | None = None,
                    num_samples: int = 1, banned: Sequence[int] = (), fast: bool = True,
                    wanted: Callable[[], int] | None = None) -> Iterator[torch.Tensor]:
    """`generate`, a run of steps at a time: yields (steps, num_samples) tensors. The fast
    kernel's first run is one step, so the first token comes at once; then runs double, up
    to MAX_CHUNK steps, and never past `wanted()` (if given: how many more steps the caller
    can use, asked before each run), so little is computed only to be thrown away. The plain
    path yields one step at a time."""
    assert prompt_ids.dim() == 1 and len(prompt_ids) > 0, "prompt needs at least one token"
    check_settings(temperature, top_k, top_p)
    device = next(model.parameters()).device
    idx = prompt_ids.to(device).long()[None]                           # (1, T)
    logits, _, state = _forward(model, idx)                            # prime in one pass
    logits = logits[:, -1].expand(num_samples, -1).contiguous()       # (B, V)
    state = _repeat_state(state, num_samples)
    banned = list(banned)
    if any(not 0 <= i < logits.size(-1) for i in banned):
        raise ValueError(f"banned ids must be in [0, {logits.size(-1)}), got {banned}")
    stepper = (fastpath.stepper(model, num_samples, temperature, top_k, top_p, banned)
               if fast else None)
    if stepper is not None:
        chunk, remaining = 1, max_new_tokens
        while remaining is None or remaining > 0:
            n = chunk if remaining is None else min(chunk, remaining)
            n = n if wanted is None else max(1, min(n, wanted()))
            uniforms = torch.rand(n, num_samples, dtype=torch.float64, generator=generator)
            yield stepper.run(logits, state, uniforms)                 # updates logits, state
            remaining = None if remaining is None else remaining - n
            chunk = min(2 * chunk, MAX_CHUNK)
        return
    for _ in range(max_new_tokens) if max_new_tokens is not None else itertools.count():
        if banned:
            logits = logits.clone()
            logits[:, banned] = float("-inf")
        nxt = sample_next(logits, temperature, top_k, top_p, generator)  # (B,)
        yield nxt[None]
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
    """The prime's state for n streams, as fresh contiguous tensors the kernel may update in
    place."""
    if isinstance(state, tuple):
        return tuple(s.repeat(1, n, 1) for s in state)
    return state.repeat(1, n, 1)
