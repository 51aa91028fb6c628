"""Looking inside a model: `LM.inspect` agrees with the model's own forward, with `evaluate` and
with greedy sampling, and `find_units` finds a unit that follows a feature."""

import math
import re

import pytest
import torch

from conftest import TINY, make_model
from textrnn import FEATURES, LM, MAX_INSPECT_CHARS, find_units
from textrnn.probe import guess_text, text_features, token_features
from textrnn.sample import generate
from textrnn.tokenizer import BPETokenizer, ByteTokenizer, CharTokenizer

TEXT = 'ANNA:\nThe "moon" (so bright) is it\'s own, and so am I.\n\nBEN: \'grey\' [sea]\n' * 3
CELLS = ["lstm", "gru", "rnn_tanh"]


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer.train(TINY + TEXT, 300)


def make_lm(cell, tokenizer, **kw) -> LM:
    return LM(make_model(cell, vocab=tokenizer.vocab_size, **kw), tokenizer)


@pytest.mark.parametrize("kind", ["char", "bpe"])
@pytest.mark.parametrize("cell", CELLS)
def test_per_token_losses_add_up_to_evaluate(cell, kind, bpe):
    tok = CharTokenizer.train(TINY + TEXT) if kind == "char" else bpe
    lm = make_lm(cell, tok)
    ins, ref = lm.inspect(TEXT), lm.evaluate(TEXT)
    assert len(ins.pieces) == len(ins.ids) == len(ins.loss) == len(ins.top)
    assert "".join(ins.pieces) == TEXT
    assert math.isnan(ins.loss[0]) and not ins.loss[1:].isnan().any() and ins.top[0] == []
    assert ins.chars == ref["chars"]
    assert math.isclose(ins.loss[1:].double().sum().item(), ref["loss"] * ref["chars"],
                        rel_tol=1e-4)
    assert math.isclose(ins.bits_per_char, ref["bpc"], rel_tol=1e-4)


@pytest.mark.parametrize("cell", CELLS)
def test_states_are_those_of_the_models_own_forward(cell):
    tok = CharTokenizer.train(TINY + TEXT)
    lm = make_lm(cell, tok, layers=3)
    ins = lm.inspect(TEXT)
    with torch.no_grad():
        out, state = lm.model.features(ins.ids[None].long())
    h, c = state if cell == "lstm" else (state, None)
    assert ins.activations["h"].shape == (3, len(ins.ids), 16)
    torch.testing.assert_close(ins.activations["h"][-1], out[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ins.activations["h"][:, -1], h[:, 0], rtol=1e-5, atol=1e-5)
    assert ("c" in ins.activations) == (cell == "lstm")
    if cell == "lstm":  # the cell state worked out from the gates gives back h = o * tanh(c)
        torch.testing.assert_close(ins.activations["c"][:, -1], c[:, 0], rtol=1e-5, atol=1e-5)
        rnn = lm.model.rnn
        x, h_all, c_all = lm.model.embed(ins.ids.long()), ins.activations["h"], ins.activations["c"]
        for l in range(3):
            h_before = torch.cat([torch.zeros(1, 16), h_all[l, :-1]])
            with torch.no_grad():
                gates = (x @ getattr(rnn, f"weight_ih_l{l}").T + getattr(rnn, f"bias_ih_l{l}")
                         + h_before @ getattr(rnn, f"weight_hh_l{l}").T
                         + getattr(rnn, f"bias_hh_l{l}"))
            o = torch.sigmoid(gates.chunk(4, dim=1)[3])
            torch.testing.assert_close(o * torch.tanh(c_all[l]), h_all[l], rtol=1e-5, atol=1e-5)
            x = h_all[l]


@pytest.mark.parametrize("cell", CELLS)
def test_first_guess_is_what_greedy_sampling_writes_after_each_prefix(cell):
    tok = CharTokenizer.train(TINY)  # TEXT holds characters this vocabulary lacks: <unk>
    lm = make_lm(cell, tok, seed=1)
    text = TEXT[:60]
    ins = lm.inspect(text, top_k=3)
    for t in range(1, len(text)):
        guesses = ins.top[t]
        assert len(guesses) == 3 and all(p1 >= p2 for (_, p1), (_, p2) in zip(guesses,
                                                                            guesses[1:]))
        assert guesses[0][0] == lm.generate(text[:t], 1, temperature=0), t


@pytest.mark.parametrize("kind", ["bpe", "byte"])
def test_first_guess_of_a_byte_level_model_is_greedy_sampling_from_the_same_tokens(kind, bpe):
    tok = bpe if kind == "bpe" else ByteTokenizer()
    lm = make_lm("gru", tok, seed=2)
    text = TEXT[:40] + " café 日本 🙂 ok"
    ins = lm.inspect(text)
    assert "".join(ins.pieces) == text and "" in ins.pieces  # a partial character shows ""
    with torch.no_grad():
        raw = lm.model(ins.ids[None].long())[0][0].argmax(dim=1)              # (T,)
    broken = 0  # positions where the model's own likeliest token would break a character
    for t in range(1, len(ins.ids)):
        assert not any("\ufffd" in guess for guess, _ in ins.top[t]), ins.top[t]
        if "\ufffd" in tok.decode(ins.ids[:t]):  # inside a character: its continuation bytes
            assert all(re.fullmatch("0x[89AB][0-9A-F]", g) for g, _ in ins.top[t]) or kind == "bpe"
            continue
        # between characters, as a generation's prompt leaves it
        step = next(generate(lm.model, ins.ids[:t], 1, temperature=0, guard=tok.utf8_guard()))
        assert ins.top[t][0][0] == guess_text(tok, step.item()), t
        broken += ins.top[t][0][0] != tok.decode([raw[t - 1].item()])
    assert kind == "bpe" or broken > 0  # the untrained byte model tries the rule


def test_a_guess_that_is_part_of_a_character_is_spelt_in_hex(bpe):
    byte = ByteTokenizer()
    assert [guess_text(byte, b) for b in (0x41, 0xE2, 0x80)] == ["A", "0xE2", "0x80"]
    assert guess_text(byte, ord("\n")) == "\n"
    partial = next(i for i in range(bpe.vocab_size) if "\ufffd" in bpe.decode([i]))
    assert "\ufffd" not in guess_text(bpe, partial) and "0x" in guess_text(bpe, partial)


def test_probabilities_are_the_models_softmax():
    tok = CharTokenizer.train(TINY)
    lm = make_lm("gru", tok)
    ins = lm.inspect(TINY[:50], top_k=tok.vocab_size)
    assert len(ins.top[1]) == tok.vocab_size - 1  # all but <unk>, which is never written
    for t in range(1, 50):
        target = ins.pieces[t]
        p = dict(ins.top[t])[target]
        assert math.isclose(-math.log(p), ins.loss[t].item(), rel_tol=1e-4)
        assert sum(p for _, p in ins.top[t]) <= 1 + 1e-5


def test_text_features():
    text = 'a "b c" (d [e]) f\'s \'g\'\nxy'
    f = dict(zip(FEATURES, text_features(text).tolist()))
    inside = lambda s: [float(x == "1") for x in s]  # noqa: E731
    assert f["in double quotes"] == inside("00111100000000000000000000")
    assert f["in brackets"] == inside("00000000111111000000000000")
    assert f["in single quotes"] == inside("00000000000000000000110000")  # f's: an apostrophe
    assert f["after newline"] == inside("00000000000000000000000100")
    assert f["in word"] == inside("10010100010010001010010011")
    assert f["line position"][-4:] == [23.0, 0.0, 1.0, 2.0]


def test_token_features_take_the_last_character_of_each_piece():
    pieces = ["ab", '"c', "", "d\n", "e"]
    f = dict(zip(FEATURES, token_features(pieces).tolist()))
    assert f["in double quotes"] == [0, 1, 1, 1, 1]
    assert f["after newline"] == [0, 0, 0, 1, 0]
    assert f["line position"] == [2, 4, 4, 0, 1]


def test_find_units_finds_a_unit_that_follows_a_feature():
    tok = CharTokenizer.train(TINY + TEXT)
    lm = make_lm("lstm", tok)
    ins = lm.inspect(TEXT)
    features = dict(zip(FEATURES, token_features(ins.pieces)))
    torch.manual_seed(0)
    noise = 0.01 * torch.randn(len(ins.ids))
    ins.activations["h"][1, :, 5] = 2 * features["in double quotes"] - 1 + noise
    ins.activations["c"][0, :, 7] = -3 * features["line position"] + noise
    ins.activations["h"][0, :, 2] = 0.0  # a dead unit correlates with nothing
    found = find_units(ins, top=3)
    assert found.constant == []
    first = found.by_feature["in double quotes"][0]
    assert (first.layer, first.state, first.unit, first.sign) == (1, "h", 5, 1)
    assert first.score > 0.99
    line = found.by_feature["line position"][0]
    assert (line.layer, line.state, line.unit, line.sign) == (0, "c", 7, -1)
    assert {(u.layer, u.state, u.unit) for u in found.best[:2]} == {(1, "h", 5), (0, "c", 7)}
    assert len(found.best) == 3 and len({(u.layer, u.state, u.unit) for u in found.best}) == 3
    assert all(len(units) == 3 for units in found.by_feature.values())


def test_find_units_skips_features_that_never_change():
    tok = CharTokenizer.train(TINY)
    ins = make_lm("rnn_tanh", tok).inspect("the sea is grey and so am I")
    found = find_units(ins)
    assert set(found.constant) == {"in double quotes", "in single quotes", "in brackets",
                                   "after newline"}
    assert set(found.by_feature) == {"line position", "in word"}
    assert all(u.state == "h" for u in found.best)


def test_too_long_and_too_short_texts_say_what_is_wrong():
    tok = CharTokenizer.train(TINY)
    lm = make_lm("gru", tok)
    with pytest.raises(ValueError, match=f"limit is {MAX_INSPECT_CHARS:,}"):
        lm.inspect("a" * (MAX_INSPECT_CHARS + 1))
    for short in ["", "a"]:
        with pytest.raises(ValueError, match="at least 2 tokens"):
            lm.inspect(short)
    with pytest.raises(ValueError, match="top_k"):
        lm.inspect("ab", top_k=-1)
    with pytest.raises(ValueError, match="top"):
        find_units(lm.inspect("ab"), top=0)
