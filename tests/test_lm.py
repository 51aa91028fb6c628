import math

import pytest

from conftest import make_model
from textrnn import LM
from textrnn.tokenizer import CharTokenizer


@pytest.fixture
def lm(tiny_text):
    tok = CharTokenizer.train(tiny_text)
    return LM(make_model(vocab=tok.vocab_size), tok)


def test_same_seed_same_text_and_different_seed_different_text(lm):
    a = lm.generate("ANNA:", 80, temperature=1.0, seed=3)
    assert a == lm.generate("ANNA:", 80, temperature=1.0, seed=3)
    assert a != lm.generate("ANNA:", 80, temperature=1.0, seed=4)
    assert len(a) == 80


def test_temperature_zero_ignores_the_seed(lm):
    assert lm.generate("BEN", 50, temperature=0, seed=1) == lm.generate("BEN", 50, temperature=0,
                                                                        seed=2)


def test_stream_yields_the_same_text_piece_by_piece(lm):
    pieces = list(lm.stream("CARL:", 40, temperature=1.0, seed=5))
    assert len(pieces) == 40 and "".join(pieces) == lm.generate("CARL:", 40, temperature=1.0,
                                                                seed=5)


def test_unseen_characters_in_prompt_work_and_never_come_out(lm):
    text = lm.generate("日本 🙂 ÆØÅ", 200, temperature=3.0, seed=0)
    assert len(text) == 200 and "\ufffd" not in text
    assert set(text) <= set(lm.tokenizer.chars)


def test_empty_prompt_and_zero_length(lm):
    assert len(lm.generate("", 10, seed=0)) == 10
    assert lm.generate("ANNA", 0) == ""


def test_samples_are_a_batch_of_distinct_draws(lm):
    texts = lm.samples("ANNA:", 30, num_samples=3, temperature=1.0, seed=0)
    assert len(texts) == 3 and all(len(t) == 30 for t in texts) and len(set(texts)) == 3


@pytest.mark.parametrize("bad", [dict(max_new_chars=-1), dict(temperature=-0.5),
                                 dict(top_p=2.0), dict(top_k=0)])
def test_bad_settings_raise_value_error(lm, bad):
    with pytest.raises(ValueError):
        lm.generate("A", **{"max_new_chars": 5, **bad})


def test_evaluate_reports_nats_bits_and_unknowns(lm, tiny_text):
    r = lm.evaluate(tiny_text[:300] + "Ω")
    assert r["chars"] == 300 and r["unknown"] == 1
    assert math.isclose(r["bpc"], r["loss"] / math.log(2))
    assert math.isclose(r["perplexity"], math.exp(r["loss"]))
    with pytest.raises(ValueError):
        lm.evaluate("a")


@pytest.mark.parametrize("kw, said", [
    (dict(max_new_chars=2.5), "length must be a whole number"),
    (dict(max_new_chars=float("nan")), "length must be a whole number"),
    (dict(max_new_chars=-1), "length must be a whole number"),
    (dict(prompt=None), "the prompt must be a string"),
    (dict(prompt=b"bytes"), "the prompt must be a string"),
    (dict(num_samples=10**6), "number of samples must be a whole number from 1 to 1,024"),
    (dict(num_samples=1.5), "number of samples must be a whole number"),
])
def test_the_python_api_checks_what_it_is_given_in_one_line(kw, said, tokenizer):
    from textrnn import LM
    lm = LM(make_model(vocab=tokenizer.vocab_size), tokenizer)
    with pytest.raises(ValueError, match=said):
        lm.samples(**{"prompt": "ANNA", "max_new_chars": 5, "num_samples": 2, **kw})
