"""Byte and BPE tokenizers: round trips, streaming decode, bits per character, no peeking."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import TINY, make_model
from textrnn import LM, ModelConfig, Reporter, TrainConfig, load, train
from textrnn.tokenizer import BPETokenizer, ByteTokenizer, CharTokenizer, build, tokenizer_from_json

SAMPLES = ["", "plain ASCII text.", "accents: café, déjà vu, Ångström", "CJK: 日本語のテキスト、中文",
           "emoji: 🙂🚀👍🏽 and a flag 🇳🇴", "mixed\n\ttabs  and   spaces\n\n"]
TRAIN_TEXT = TINY * 2 + "".join(SAMPLES) * 3


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer.train(TRAIN_TEXT, 400)


def tokenizers(bpe):
    return [CharTokenizer.train("".join(SAMPLES)), ByteTokenizer(), bpe]


@pytest.mark.parametrize("text", SAMPLES + ["unseen: Ωμέγα ∑ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"])
def test_round_trip_and_streaming_for_byte_and_bpe(bpe, text):
    for tok in (ByteTokenizer(), bpe):
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        decoder = tok.stream_decoder()
        pieces = [decoder.step(i) for i in ids.tolist()]
        assert "".join(pieces) == text and "\ufffd" not in "".join(pieces)
        again = tokenizer_from_json(tok.to_json())
        assert torch.equal(again.encode(text), ids)


def test_bpe_file_is_the_hugging_face_format(bpe, tmp_path):
    from tokenizers import Tokenizer
    path = tmp_path / "tokenizer.json"
    path.write_text(bpe.to_json())
    hf = Tokenizer.from_file(str(path))
    assert hf.encode("café 🙂").ids == bpe.encode("café 🙂").tolist()


def test_bytes_split_characters_and_the_stream_holds_them_back():
    tok = ByteTokenizer()
    ids = tok.encode("é🙂").tolist()
    assert len(ids) == 2 + 4
    decoder = tok.stream_decoder()
    assert [decoder.step(i) for i in ids] == ["", "é", "", "", "", "🙂"]


def test_bpe_never_learns_from_validation_text(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TINY * 6 + "zyxwvutsrq " * 40)  # the last 10% holds a word seen nowhere else
    run = train(TrainConfig(corpus=str(corpus), out=str(tmp_path / "r"), tokenizer="bpe",
                            vocab_size=300, model=ModelConfig(hidden=16, embed=8, layers=1),
                            seq_len=16, batch_size=4, max_steps=2, evals=1),
                reporter=Reporter())
    tok = load(run).tokenizer
    assert len(tok.encode("zyxwvutsrq")) == 10  # no merge ever joined its letters
    assert len(tok.encode(" bright")) < len(" bright")  # while a training word's did


def test_bpe_bits_per_char_is_summed_token_loss_over_characters(bpe):
    model = make_model(vocab=bpe.vocab_size, hidden=16, embed=8)
    lm = LM(model, bpe)
    text = TINY[:400]
    result = lm.evaluate(text)
    ids = bpe.encode(text).long()
    with torch.no_grad():
        logits, _, _ = model(ids[None, :-1])
        nats = F.cross_entropy(logits[0], ids[1:], reduction="sum").item()
    chars = len(text) - len(bpe.decode(ids[:1]))
    assert len(ids) < len(text)  # tokens really are bigger than characters
    assert math.isclose(result["loss"], nats / chars, rel_tol=1e-5)
    assert math.isclose(result["bpc"], nats / chars / math.log(2), rel_tol=1e-5)
    assert math.isclose(result["nats_per_token"], nats / (len(ids) - 1), rel_tol=1e-5)


@pytest.mark.parametrize("kind", ["byte", "bpe"])
def test_streamed_model_output_equals_the_whole_decode(bpe, kind):
    tok = ByteTokenizer() if kind == "byte" else bpe
    lm = LM(make_model(vocab=tok.vocab_size, hidden=16, embed=8), tok)
    pieces = list(lm.stream("café 日本", 300, temperature=1.5, seed=3))
    text = "".join(pieces)
    assert len(text) == 300 and text == lm.generate("café 日本", 300, temperature=1.5, seed=3)
    # replay the same ids through a whole decode: the stream must equal it
    many = lm.samples("café 日本", 50, num_samples=3, temperature=1.5, seed=4)
    assert [len(t) for t in many] == [50, 50, 50]


@pytest.mark.parametrize("kind, size, message", [
    ("bpe", 0, "between 257"), ("bpe", 1, "between 257"), ("bpe", 10**9, "between 257"),
    ("char", 500, "applies to --tokenizer bpe"), ("byte", 300, "applies to --tokenizer bpe"),
    ("wordpiece", None, "unknown tokenizer"),
])
def test_absurd_vocabulary_sizes(kind, size, message):
    with pytest.raises(ValueError, match=message):
        build(kind, TRAIN_TEXT, size)


def test_vocabulary_larger_than_the_text_allows_says_so():
    notes = []
    tok = build("bpe", "abcabcabc abc", 5000, log=notes.append)
    assert tok.vocab_size < 5000 and "allows only" in notes[0]


def test_missing_or_corrupt_bpe_tokenizer_file_is_named(tmp_path, bpe):
    from textrnn import checkpoint
    ck = tmp_path / "ck"
    checkpoint.save(ck, make_model(vocab=bpe.vocab_size, hidden=8, embed=8), bpe, {})
    assert load(ck).tokenizer.kind == "bpe"
    doc = json.loads((ck / "tokenizer.json").read_text())
    doc["model"]["merges"] = "garbage"
    (ck / "tokenizer.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="tokenizer.json"):
        load(ck)
    (ck / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        load(ck)
