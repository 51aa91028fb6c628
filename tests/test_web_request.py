"""The page's generation request (textrnn/web/request.py): checked once, where it enters."""

import math

import gradio as gr
import pytest

from textrnn import MAX_SEED, MIN_TEMPERATURE
from textrnn.web.request import (MAX_NEW_CHARS, MAX_PROMPT_CHARS, MAX_TEMPERATURE, BadSeed,
                                 Request, number, seed_from, whole)


def test_fields_are_clamped_to_the_page_limits_and_what_was_cut_is_said():
    r = Request.parse("m", "x" * (MAX_PROMPT_CHARS + 5) + "end", 10**9, 99, -3, 7, "12")
    assert r.prompt == ("x" * (MAX_PROMPT_CHARS + 5) + "end")[-MAX_PROMPT_CHARS:]
    assert r.length == MAX_NEW_CHARS and r.temperature == MAX_TEMPERATURE
    assert r.top_k is None and r.top_p is None and r.seed == 12
    assert r.cut == (f"Prompt cut to its last {MAX_PROMPT_CHARS} characters.",
                     f"Length cut to {MAX_NEW_CHARS:,} characters.",
                     f"Temperature cut to {MAX_TEMPERATURE}.")
    assert Request.parse("m", "hi", 5, 0.5, 3, 0.9, "1").cut == ()
    low = Request.parse("m", "hi", 0, -1, seed="1")
    assert (low.length, low.temperature) == (1, 0.0)
    assert low.cut == ("Length raised to 1 character.", "Temperature raised to 0.")


@pytest.mark.parametrize("field, value, expected", [
    ("length", "abc", 300), ("length", math.nan, 300), ("length", -5, 1), ("length", 2.7, 2),
    ("temperature", MIN_TEMPERATURE / 2, 0.0), ("temperature", None, 0.8),
    ("top_k", 0, None), ("top_k", 4.9, 4), ("top_p", 1.0, None), ("top_p", 0.0, 0.01),
])
def test_each_number_is_made_usable(field, value, expected):
    fields = dict(model="m", prompt="", length=10, temperature=0.8, top_k=0, top_p=1.0, seed=1)
    assert getattr(Request.parse(**{**fields, field: value}), field) == expected


def test_a_blank_seed_is_drawn_once_and_a_bad_one_refused_first():
    drawn = Request.parse("m", "", 10, 0.8, seed=" ").seed
    assert isinstance(drawn, int) and abs(drawn) <= MAX_SEED
    for bad in ("abc", "1.5", str(MAX_SEED + 1)):
        with pytest.raises(BadSeed):
            Request.parse(["not", "a", "name"], "x" * 10**5, 10, 0.8, seed=bad)
    assert seed_from(str(-MAX_SEED)) == -MAX_SEED


def test_a_model_name_that_is_not_a_string_is_refused_in_one_line():
    for bad in (["a"], {"a": 1}, None, 3):
        with pytest.raises(gr.Error, match="must be named by a string"):
            Request.parse(bad, "", 10, 0.8, seed=1)


def test_the_settings_are_what_lm_stream_takes():
    r = Request.parse("m", "p", 10, 0.5, 3, 0.9, "4")
    assert r.settings() == dict(temperature=0.5, top_k=3, top_p=0.9, seed=4)


def test_numbers_from_a_raw_api_call_are_read_or_refused_never_raised():
    assert [number(v) for v in (2, "2.5", " 3 ", 1e308)] == [2.0, 2.5, 3.0, 1e308]
    assert [whole(v) for v in (2, "4", 5.0, "-1")] == [2, 4, 5, -1]
    for bad in (math.nan, "nan", math.inf, "-inf", "1e400", "abc", None, [1], {"a": 1}, True):
        assert number(bad) is None and whole(bad) is None, bad
    assert whole(1.5) is None and whole("2.5") is None


def test_a_number_too_big_for_a_float_is_clamped_not_raised():
    from textrnn.web.request import clamp
    assert clamp(10**400, 1, 100, 7) == 7 and clamp(-10**400, 1, 100, 7) == 7
