"""The page's limits on a generation request, and the checks that hold a request to them."""

from __future__ import annotations

import math

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
    except (TypeError, ValueError):
        return default
    return default if math.isnan(value) else min(max(value, low), high)


def seed_from(value) -> int:
    """Blank means a fresh random seed; anything else must be a whole number, used as is."""
    if value is None or str(value).strip() == "":
        return textrnn.new_seed()
    try:
        seed = int(str(value).strip())
    except ValueError:
        raise gr.Error(f"Seed must be a whole number, or blank for a random one; got {value!r}.")
    if abs(seed) > MAX_SEED:
        raise gr.Error(f"Seed must be between -{MAX_SEED:,} and {MAX_SEED:,}; got {seed}.")
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
    except gr.Error:
        pass
    return out
