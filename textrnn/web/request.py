"""A generation request as the page takes it: checked once where it enters (the Generate tab,
Compare, a shared link, /generate), then trusted. Numbers out of range are clamped to the page's
limits, and what was cut is said; a seed that cannot be used, or a model name that is not a
name, is refused. `number` and `whole` read the other tabs' numbers as a raw API call may send
them (a NaN, a word)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import gradio as gr

import textrnn

MAX_NEW_CHARS = 3000      # per request; a 2x256 LSTM makes ~1-2k chars/s per CPU core
MAX_PROMPT_CHARS = 2000   # longer prompts keep their end: the state only needs the recent past
MAX_TEMPERATURE = 2.0
MAX_SEED = textrnn.MAX_SEED  # seeds are used as given, within what a browser keeps exact
SEED_INFO = "blank = random; keep it to draw the same text again"
SEED_RULE = f"a whole number from -{MAX_SEED:,} to {MAX_SEED:,}, or blank for a random one"


def clamp(value, low, high, default):
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit integer
        return default
    return default if math.isnan(value) else min(max(value, low), high)


def number(value) -> float | None:
    """A finite number from what a page or a raw API call sent (a number or its text), or
    None: a NaN, an infinity, a list or a word is not one."""
    if isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def whole(value) -> int | None:
    """A whole number from what a page or a raw API call sent, or None (see `number`)."""
    value = number(value)
    return int(value) if value is not None and value == int(value) else None


class BadSeed(gr.Error):
    """A seed that cannot be used: the page flags its field rather than the text."""


@dataclass(frozen=True)
class Request:
    model: str                # a name from the catalog (looked up when it runs)
    prompt: str               # as used: its last MAX_PROMPT_CHARS characters
    length: int               # characters to write, 1..MAX_NEW_CHARS
    temperature: float        # 0 (the likeliest), or MIN_TEMPERATURE..MAX_TEMPERATURE
    top_k: int | None         # None: off
    top_p: float | None       # None: off
    seed: int                 # the seed used: a blank one is drawn here, once
    cut: tuple[str, ...] = ()  # what was cut to the limits, to tell the visitor

    @classmethod
    def parse(cls, model, prompt, length, temperature, top_k=0, top_p=1.0, seed=None
              ) -> Request:
        """The request that these fields (as a page or an API call sends them) ask for; a seed
        or a model name it cannot use raises gr.Error, checked before anything else."""
        seed = seed_from(seed)
        if not isinstance(model, str):
            raise gr.Error(f"The model must be named by a string; got {type(model).__name__}.")
        cut = []
        prompt = str(prompt or "")
        if len(prompt) > MAX_PROMPT_CHARS:
            cut.append(f"Prompt cut to its last {MAX_PROMPT_CHARS} characters.")
            prompt = prompt[-MAX_PROMPT_CHARS:]
        cut += _outside("Length", clamp(length, -math.inf, math.inf, 1), 1, MAX_NEW_CHARS,
                        " characters")
        cut += _outside("Temperature", clamp(temperature, -math.inf, math.inf, 0),
                        0, MAX_TEMPERATURE)
        temperature = clamp(temperature, 0, MAX_TEMPERATURE, 0.8)
        top_p = clamp(top_p, 0.01, 1.0, 1.0)
        return cls(model, prompt, int(clamp(length, 1, MAX_NEW_CHARS, 300)),
                   0.0 if temperature < textrnn.MIN_TEMPERATURE else temperature,
                   int(clamp(top_k, 0, 10**6, 0)) or None,         # 0 = off
                   None if top_p >= 1 else top_p,                  # 1 = off
                   seed, tuple(cut))

    def settings(self) -> dict:
        """The sampling settings, as `LM.stream` takes them."""
        return dict(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p,
                    seed=self.seed)


def _outside(field: str, value: float, low: float, high: float, unit: str = "") -> list[str]:
    """What to tell a visitor whose value was clamped to [low, high]: [] if it was not."""
    if value > high:
        return [f"{field} cut to {high:,}{unit}."]
    if value < low:
        return [f"{field} raised to {low:,}{unit[:-1] if low == 1 else unit}."]
    return []


def seed_from(value) -> int:
    """Blank means a fresh random seed; anything else must be a whole number, used as is."""
    if value is None or str(value).strip() == "":
        return textrnn.new_seed()
    try:
        seed = int(str(value).strip())
    except ValueError:
        raise BadSeed(f"Seed must be a whole number, or blank for a random one; got {value!r}.")
    if abs(seed) > MAX_SEED:
        raise BadSeed(f"Seed must be between -{MAX_SEED:,} and {MAX_SEED:,}; got {seed}.")
    return seed


def shared_settings(query, models: list[str]) -> dict:
    """The Generate tab's settings from a shared link's query (?model=..&prompt=..&seed=..),
    each checked and clamped as a request's would be; what is missing or unusable is left out."""
    out = {}
    if query.get("model") in models:
        out["model"] = query["model"]
    if "prompt" in query:
        out["prompt"] = str(query["prompt"])[-MAX_PROMPT_CHARS:]
    for key, low, high, whole in (("length", 1, MAX_NEW_CHARS, True),
                                  ("temperature", 0, MAX_TEMPERATURE, False),
                                  ("top_k", 0, 100, True), ("top_p", 0.05, 1.0, False)):
        value = clamp(query.get(key), low, high, None)
        if value is not None:
            out[key] = int(value) if whole else value
    try:
        if str(query.get("seed", "")).strip():  # blank would draw a random one
            out["seed"] = str(seed_from(query["seed"]))  # whole numbers within MAX_SEED only
    except BadSeed:
        pass
    return out
