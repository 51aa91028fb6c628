import json

import pytest
import torch

from textrnn.tokenizer import UNK, CharTokenizer, tokenizer_from_json

SAMPLES = ["", "hello, world", "café déjà vu", "日本語のテキスト", "emoji 🙂🚀 and 👍🏽", "tab\tnew\nline"]


@pytest.mark.parametrize("text", SAMPLES)
def test_round_trip(text):
    tok = CharTokenizer.train("".join(SAMPLES))
    ids = tok.encode(text)
    assert ids.dim() == 1 and len(ids) == len(text)  # one token per code point, not per byte
    assert tok.decode(ids) == text


def test_vocabulary_is_the_distinct_characters():
    tok = CharTokenizer.train("abracadabra 🙂")
    assert tok.chars == sorted(set("abracadabra 🙂"))
    assert tok.vocab_size == len(set("abracadabra 🙂")) + 1  # plus <unk>


def test_ids_are_compact():
    tok = CharTokenizer.train("abc")
    assert tok.encode("abcabc").dtype == torch.int16


def test_unknown_characters_map_to_unk_never_crash():
    tok = CharTokenizer.train("abc")
    ids = tok.encode("aXb日")
    assert ids.tolist() == [tok.encode("a").item(), UNK, tok.encode("b").item(), UNK]
    assert tok.decode(ids) == "a\ufffdb\ufffd"


def test_json_round_trip_keeps_ids():
    tok = CharTokenizer.train("".join(SAMPLES))
    again = tokenizer_from_json(tok.to_json())
    assert again.chars == tok.chars
    text = "".join(SAMPLES)
    assert torch.equal(again.encode(text), tok.encode(text))


@pytest.mark.parametrize("bad", ["not json", json.dumps({"kind": "wordpiece"}), json.dumps([1])])
def test_bad_json_is_a_value_error(bad):
    with pytest.raises(ValueError):
        tokenizer_from_json(bad)
