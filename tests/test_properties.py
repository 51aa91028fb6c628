"""Properties over the whole input space (hypothesis): tokenizer round trips over any Unicode, and
generation that is valid text, or a clear error, at any settings."""

import codecs

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import TINY, make_model
from textrnn import LM
from textrnn.sample import MAX_TEMPERATURE
from textrnn.tokenizer import BPETokenizer, ByteTokenizer, CharTokenizer, utf8_tables

BPE = BPETokenizer.train(TINY + "naïve café 日本語 🙂 " * 20, 300)
CHAR = CharTokenizer.train(TINY)
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def scrubbed(text: str) -> str:
    """What a byte-level tokenizer reads `text` as: lone surrogates become U+FFFD."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


@FAST
@given(st.text())
def test_byte_and_bpe_round_trip_any_text(text):
    for tok in (ByteTokenizer(), BPE):
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        decoder = tok.stream_decoder()
        assert "".join(decoder.step(int(i)) for i in ids) == text  # streamed, the same


@FAST
@given(st.lists(st.one_of(st.characters(), SURROGATES)).map("".join))
def test_lone_surrogates_read_as_replacement_characters(text):
    for tok in (ByteTokenizer(), BPE):
        assert tok.decode(tok.encode(text)) == scrubbed(text)
    unk = CHAR.decode(CHAR.encode(text))  # char: every unseen character is <unk>
    assert len(unk) == len(text) and all(a == b or b == "\ufffd" for a, b in zip(text, unk))


@FAST
@given(st.text(alphabet=sorted(set(TINY))))
def test_char_round_trips_its_own_alphabet(text):
    assert CHAR.decode(CHAR.encode(text)) == text


def _completes(head: bytes) -> bool:
    """Whether continuation bytes (0x80) after `head` make it whole UTF-8."""
    for extra in range(3):
        try:
            (head + b"\x80" * extra).decode("utf-8")
            return True
        except UnicodeDecodeError:
            pass
    return False


@FAST
@given(st.lists(st.binary(min_size=0, max_size=4), min_size=1, max_size=40))
def test_utf8_tables_accept_exactly_the_sequences_that_decode(tokens):
    allowed, following = utf8_tables([bytes([b]) for b in range(256)] + tokens)
    state, ok = 0, True
    for v in range(256, 256 + len(tokens)):
        if not allowed[state, v]:
            ok = False
            break
        state = int(following[state, v])
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(b"".join(tokens), final=False)  # raises on most broken sequences,
        pending = decoder.getstate()[0]                # but may hold a bad start (ED A0) back:
        unbroken = not pending or any(                 # one that no byte can complete
            _completes(pending + bytes([b])) for b in range(0x80, 0xC0))
    except UnicodeDecodeError:
        unbroken = False
    assert ok == unbroken
    if ok:  # and the tables know when a character is still open at the end
        assert (state == 0) == (decoder.getstate()[0] == b"")


def untrained(tok):
    torch.manual_seed(0)
    return LM(make_model(vocab=tok.vocab_size, hidden=32, embed=16), tok)


def test_a_vocabulary_that_cannot_finish_a_character_is_refused():
    with pytest.raises(ValueError, match="cannot continue every UTF-8 character"):
        utf8_tables([bytes([b]) for b in range(128)] + ["é".encode()])


@pytest.mark.parametrize("tok", [ByteTokenizer(), BPE], ids=["byte", "bpe"])
@pytest.mark.parametrize("temperature", [1.0, 5.0, 100.0])
def test_an_untrained_byte_level_model_writes_only_whole_characters(tok, temperature,
                                                                   monkeypatch):
    from textrnn import fast
    lm = untrained(tok)
    kernel = lm.samples("naïve ", 600, num_samples=3, temperature=temperature, seed=1)
    for text in kernel:
        assert "\ufffd" not in text and len(text) == 600
        assert text.encode("utf-8").decode("utf-8") == text
    monkeypatch.setattr(fast, "stepper", lambda *a, **k: None)  # the plain backend
    assert lm.samples("naïve ", 600, num_samples=3, temperature=temperature, seed=1) == kernel


FLOATS = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(temperature=FLOATS, top_k=st.one_of(st.none(), st.integers(-5, 400)),
       top_p=st.one_of(st.none(), FLOATS), which=st.sampled_from(["char", "byte", "bpe"]))
def test_any_settings_give_valid_text_or_a_clear_error(temperature, top_k, top_p, which):
    tok = {"char": CHAR, "byte": ByteTokenizer(), "bpe": BPE}[which]
    lm = LMS[which]
    try:
        text = lm.generate("ANNA: naïve", 40, temperature=temperature, top_k=top_k,
                           top_p=top_p, seed=3)
    except ValueError as e:
        assert any(w in str(e) for w in ("temperature", "top-k", "top-p")), e
        bad_t = not (temperature == 0 or 1e-3 <= temperature <= MAX_TEMPERATURE)
        bad_k = top_k is not None and top_k < 1
        bad_p = top_p is not None and not 0 < top_p <= 1
        assert bad_t or bad_k or bad_p
        return
    assert len(text) == 40 and "\ufffd" not in text
    assert tok.unk_id is None or CHAR.decode(CHAR.encode(text)) == text  # no <unk> emitted


LMS = {"char": untrained(CHAR), "byte": untrained(ByteTokenizer()), "bpe": untrained(BPE)}


def test_infinite_and_nan_logits_still_give_whole_characters(monkeypatch):
    from textrnn import fast
    lm = untrained(ByteTokenizer())
    with torch.no_grad():
        lm.model.head.weight.fill_(1e30)  # logits of +-inf, and NaN where they meet
        lm.model.head.weight[::3].fill_(-1e30)
    kernel = lm.generate("naïve ", 200, temperature=1.0, seed=1)
    assert len(kernel) == 200 and "\ufffd" not in kernel
    monkeypatch.setattr(fast, "stepper", lambda *a, **k: None)
    assert lm.generate("naïve ", 200, temperature=1.0, seed=1) == kernel
