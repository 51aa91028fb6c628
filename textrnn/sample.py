"""Sampling: the settings, the rule that picks the next token, and a generation that streams.

`Settings` (temperature, top-k, top-p) are checked once, when made. `sample_next` is the rule: a
pure function of the logits and the caller's uniforms or `torch.Generator`; no global seed is
read or set, so concurrent callers with their own generators never disturb each other.
Temperature 0 means argmax.

`Generation` primes the recurrent state with the whole prompt in one forward pass, then samples
a run of steps at a time, carrying the state: the prompt is never re-run. Its steps run in one
of two backends with one interface, `run(logits, state, uniforms) -> tokens`: the compiled
kernel of fast.py where it can (same text, many times faster), else `Plain`, one PyTorch forward
per step. It yields token ids; `LM` (lm.py) turns them into text, so the CLI prints and the web
UI streams from the same code. Left out on purpose: beam search (it makes dull text) and
repetition penalties.
"""

from __future__ import annotations

import numbers
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from . import fast as fastpath


MIN_TEMPERATURE = 1e-3  # below it, use 0: the likeliest token
MAX_TEMPERATURE = 1e6   # far past uniform already; and finite as the float32 it becomes (a
                        # temperature of 3.5e38 is inf in float32, and wrote degenerate text)
MAX_SEED = 2**53 - 1    # seeds run from -MAX_SEED to MAX_SEED: whole numbers a browser keeps exact


def check_seed(seed) -> int:
    """`seed` as an int, or ValueError in one line if it is not a whole number in range."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or abs(seed) > MAX_SEED:
        shown = "a number of more than 24 digits" if isinstance(seed, int) and \
            abs(seed) >= 10**24 else str(seed)[:24] + ("..." if len(str(seed)) > 24 else "")
        raise ValueError(f"seed must be a whole number between -{MAX_SEED:,} and {MAX_SEED:,}, "
                         f"got {shown}")
    return int(seed)


@dataclass(frozen=True)
class Settings:
    """How the next token is chosen, checked once when made: a ValueError with advice for
    settings that mean nothing. Every backend applies them by the rule of `sample_next`."""
    temperature: float = 1.0       # 0 = always the likeliest; 1 = the model's own odds
    top_k: int | None = None       # sample only from the k likeliest (None: all)
    top_p: float | None = None     # ... only from the likeliest whose odds reach p (None: all)

    def __post_init__(self):
        t, k, p = self.temperature, self.top_k, self.top_p
        if not is_number(t) or not 0 <= t <= MAX_TEMPERATURE:  # also catches NaN
            raise ValueError(f"temperature must be a number from 0 (always the likeliest) to "
                             f"{MAX_TEMPERATURE:g}, got {quoted(t)}")
        if 0 < t < MIN_TEMPERATURE:  # logits / t would overflow to inf
            raise ValueError(f"temperature must be 0 or at least {MIN_TEMPERATURE:g}, got {t:g}")
        if k is not None and (not is_whole(k) or k < 1):
            raise ValueError(f"top-k must be a whole number of at least 1 (or unset), got "
                             f"{quoted(k)}")
        if p is not None and (not is_number(p) or not 0 < p <= 1):
            raise ValueError(f"top-p must be in (0, 1] (or unset), got {quoted(p)}")


def is_whole(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def is_number(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def quoted(x) -> str:
    """A value as an error message quotes it: cut, whatever it is."""
    text = repr(x)
    return text if len(text) <= 40 else text[:37] + "..."


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


MAX_CHUNK = 32      # most steps one kernel call runs; the first call runs 1, then doubling
PRIME_CHUNK = 4096  # prompt tokens per forward pass while priming: memory flat in its length


class Plain:
    """The plain backend: one PyTorch forward per step, on any device. `guard` and `states` as
    for fast.Stepper: no token that breaks UTF-8 is sampled."""

    def __init__(self, model, settings: Settings, banned: Sequence[int], guard=None,
                 states: torch.Tensor | None = None):
        self.model, self.settings, self.banned = model, settings, list(banned)
        device = next(model.parameters()).device
        self.allowed = None if guard is None else guard[0].to(device)        # (S, V)
        self.following, self.states = (None, None) if guard is None else (guard[1], states)

    def run(self, logits: torch.Tensor, state, uniforms: torch.Tensor) -> torch.Tensor:
        """Sample len(uniforms) steps; `logits` (B, V) and `state` are updated in place, as
        the kernel's `Stepper.run` does. Returns the tokens (steps, B)."""
        s, tokens = self.settings, []
        for u in uniforms:
            masked = logits
            if self.banned:
                masked = logits.clone()
                masked[:, self.banned] = float("-inf")
            if self.allowed is not None:
                allowed = self.allowed[self.states.to(logits.device).long()]      # (B, V)
                masked = masked.masked_fill(allowed == 0, float("-inf"))
            nxt = sample_next(masked, s.temperature, s.top_k, s.top_p, uniforms=u)  # (B,)
            if self.allowed is not None:
                # NaN or infinite logits can pick a masked token: take the first allowed one,
                # as the kernel does
                ok = allowed.gather(1, nxt[:, None])[:, 0].bool()
                nxt = torch.where(ok, nxt, allowed.argmax(dim=1))
                self.states.copy_(self.following[self.states.long(), nxt.cpu()].clamp(min=0))
            tokens.append(nxt)
            new_logits, _, new_state = _forward(self.model, nxt[:, None], state)
            logits.copy_(new_logits[:, -1])
            for old, new in zip(_tensors(state), _tensors(new_state)):
                old.copy_(new)
        return torch.stack(tokens)


class Generation:
    """New token ids continuing a prompt, for `num_samples` streams side by side.

    Priming reads the prompt PRIME_CHUNK tokens per forward pass, keeping only the state and
    the last logits; then `take(n)` samples n more steps per stream, carrying the state: the
    prompt is never re-run. The steps run in the compiled kernel (fast.py) where it can, else
    (or with fast=False) in the plain backend; both draw the same uniforms from `generator` and
    give the same tokens. `banned` ids are never emitted (the tokenizer's unknown id, for one),
    and with `guard` (a byte-level tokenizer's `utf8_guard()`) no token whose bytes would break
    a UTF-8 character is either: each stream carries its UTF-8 state, starting between
    characters, as the prompt (whole text) leaves it. `sizes()` says how many steps to take at
    a time.
    """

    @torch.inference_mode()
    def __init__(self, model, prompt_ids: torch.Tensor, settings: Settings,
                 generator: torch.Generator | None = None, num_samples: int = 1,
                 banned: Sequence[int] = (), fast: bool = True, guard=None):
        assert prompt_ids.dim() == 1 and len(prompt_ids) > 0, "prompt needs at least one token"
        device = next(model.parameters()).device
        self.generator, self.num_samples, banned = generator, num_samples, list(banned)
        state = None
        for i in range(0, len(prompt_ids), PRIME_CHUNK):
            idx = prompt_ids[i:i + PRIME_CHUNK].to(device).long()[None]   # (1, T)
            # oneDNN stays on here: over 4,096 steps its set-up pays, 25k against 11k tokens/s
            # (2x384 LSTM, 2 cores); it is turned off only for the one-token steps below
            logits, _, state = model(idx, state=state)
            logits = logits[:, -1]                                         # (1, V)
        self.logits = logits.expand(num_samples, -1).contiguous()         # (B, V)
        self.state = _repeat_state(state, num_samples)
        V = self.logits.size(-1)
        if any(not 0 <= i < V for i in banned):
            raise ValueError(f"banned ids must be in [0, {V}), got {banned}")
        self.states = torch.zeros(num_samples, dtype=torch.int32)  # UTF-8: between characters
        self.backend = (fastpath.stepper(model, num_samples, settings, banned, guard, self.states)
                        if fast else None)
        self.backend = self.backend or Plain(model, settings, banned, guard, self.states)
        # the plain backend gains nothing from runs of steps: it streams one at a time
        self.max_chunk = 1 if isinstance(self.backend, Plain) else MAX_CHUNK

    def sizes(self) -> Iterator[int]:
        """Steps per `take`: 1 first, so the first token comes at once, then doubling up to
        the backend's most, so the kernel runs long stretches without Python between steps."""
        n = 1
        while True:
            yield n
            n = min(2 * n, self.max_chunk)

    @torch.inference_mode()
    def take(self, n: int) -> torch.Tensor:
        """The next n steps: token ids (n, num_samples)."""
        g = self.generator
        uniforms = torch.rand(n, self.num_samples, dtype=torch.float64, generator=g,
                              device=g.device if g is not None else self.logits.device)
        return self.backend.run(self.logits, self.state, uniforms)


def generate(model, prompt_ids: torch.Tensor, max_new_tokens: int | None, *,
             generator: torch.Generator | None = None, num_samples: int = 1,
             banned: Sequence[int] = (), fast: bool = True, guard=None,
             **settings) -> Iterator[torch.Tensor]:
    """Yield steps of new ids, each (num_samples,), continuing `prompt_ids` (T,);
    `max_new_tokens` steps, or without end if it is None. `settings` are those of `Settings`
    (temperature, top_k, top_p). A `Generation` underneath, taken a chunk at a time."""
    gen = Generation(model, prompt_ids, Settings(**settings), generator, num_samples, banned,
                     fast, guard)
    left = max_new_tokens
    for n in gen.sizes():
        if left is not None and left <= 0:
            return
        n = n if left is None else min(n, left)
        yield from gen.take(n)
        left = None if left is None else left - n


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


def _tensors(state) -> tuple[torch.Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


def _repeat_state(state, n: int):
    """The prime's state for n streams, as fresh contiguous tensors the kernel may update in
    place."""
    if isinstance(state, tuple):
        return tuple(s.repeat(1, n, 1) for s in state)
    return state.repeat(1, n, 1)
