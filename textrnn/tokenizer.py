"""Tokenizers: text <-> token ids, saved beside the model as `tokenizer.json`.

Three kinds, one small interface (`kind`, `vocab_size`, `unk_id`, `encode`, `decode`,
`stream_decoder`, `to_json`):

- `char`: every Unicode code point is one token, so accents, CJK and emoji are single tokens.
  The vocabulary is the set of characters in the training text plus one reserved id:

      Unknown-character policy: id 0 is `<unk>`. A character the training text never held (in
      a prompt, or in a text given to `eval`) encodes to it. Its embedding starts at zero and,
      since the training text never contains it, stays a "no information" input. The sampler
      never emits it. In `eval` it costs what the model predicts for it (a large loss, honestly
      counted), and the number of such characters is reported.

- `byte`: the 256 byte values of UTF-8; a fixed vocabulary that takes any text, no unknowns.
- `bpe`: byte-level BPE (Sennrich et al. 2016, on bytes as in GPT-2) trained with Hugging Face
  `tokenizers` on the training text only; any text encodes, no unknowns. Its `tokenizer.json` is
  the library's own format, so `tokenizers.Tokenizer.from_file` opens it too.

A byte or BPE token can end inside a UTF-8 character. `stream_decoder()` turns ids into text one
at a time and holds back an incomplete character until its last byte arrives, so a stream never
shows a broken character and its pieces add up to `decode(ids)`.

Encoding works on whole arrays, never a Python list per character, so a 100 MB corpus encodes
in seconds. Left out on purpose: Unicode normalisation and special tokens.
"""

from __future__ import annotations

import codecs
import json
import re

import numpy as np
import torch

UNK = 0
UNK_TEXT = "\ufffd"  # what `decode` shows for the char tokenizer's unknown id
BPE_MIN_VOCAB = 257  # the 256 byte values and at least one merge
MAX_VOCAB = 2**18


def code_points(text: str) -> np.ndarray:
    """The Unicode code points of `text` as a uint32 array, without a Python loop."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


# UTF-8 as a small automaton over bytes: state 0 is "between characters"; the others say how
# many continuation bytes are still due and which range the next one must fall in (RFC 3629:
# no overlong forms, no surrogates, nothing past U+10FFFF).
_UTF8_NEXT = [  # per state: the byte ranges that may come next, and the state each leads to
    [(0x00, 0x7F, 0), (0xC2, 0xDF, 1), (0xE0, 0xE0, 4), (0xE1, 0xEC, 2), (0xED, 0xED, 5),
     (0xEE, 0xEF, 2), (0xF0, 0xF0, 6), (0xF1, 0xF3, 3), (0xF4, 0xF4, 7)],
    [(0x80, 0xBF, 0)], [(0x80, 0xBF, 1)], [(0x80, 0xBF, 2)],   # 1, 2 or 3 bytes still due
    [(0xA0, 0xBF, 1)], [(0x80, 0x9F, 1)],                      # after E0, after ED
    [(0x90, 0xBF, 2)], [(0x80, 0x8F, 2)],                      # after F0, after F4
]


def utf8_tables(token_bytes: list[bytes]) -> tuple[torch.Tensor, torch.Tensor]:
    """For tokens that are byte strings: `allowed[s, v]` (uint8), whether token v's bytes may
    follow UTF-8 state s without breaking a character, and `following[s, v]` (int8), the state
    they leave. A sampler that masks the tokens not allowed from each stream's state can never
    emit a broken character, however the model or the settings weigh them."""
    step = np.full((len(_UTF8_NEXT), 256), -1, dtype=np.int8)
    for state, ranges in enumerate(_UTF8_NEXT):
        for lo, hi, nxt in ranges:
            step[state, lo:hi + 1] = nxt
    V = len(token_bytes)
    states = np.tile(np.arange(len(_UTF8_NEXT), dtype=np.int8)[:, None], (1, V))  # (S, V)
    longest = max((len(b) for b in token_bytes), default=0)
    padded = np.full((V, longest), -1, dtype=np.int16)  # -1: the token has ended
    for v, b in enumerate(token_bytes):
        padded[v, :len(b)] = np.frombuffer(b, dtype=np.uint8)
    for i in range(longest):  # feed every token's i-th byte to every state at once
        byte = padded[:, i]
        live = (byte >= 0) & (states >= 0)                              # (S, V)
        states = np.where(live, step[np.maximum(states, 0), np.maximum(byte, 0)], states)
    allowed = states >= 0
    if not allowed.any(axis=1).all():  # a vocabulary that cannot finish some character
        raise ValueError("this byte-level vocabulary cannot continue every UTF-8 character "
                         "(it lacks the byte tokens); the tokenizer is broken")
    return torch.from_numpy(allowed.astype(np.uint8)), torch.from_numpy(states)


def _guard(tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """A byte-level tokenizer's UTF-8 tables, made on first use and kept on it."""
    if getattr(tokenizer, "_utf8", None) is None:
        tokenizer._utf8 = utf8_tables(tokenizer._bytes)
    return tokenizer._utf8


def _scrub(text: str) -> str:
    """`text` with each lone surrogate (a str can hold one; UTF-8 cannot) as U+FFFD."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _scrub(text).encode("utf-8")


def token_dtype(vocab_size: int) -> torch.dtype:
    """The smallest signed integer dtype that holds every id: ids live in compact tensors."""
    return torch.int16 if vocab_size <= 2**15 else torch.int32


class _CharStream:
    def __init__(self, table: list[str]):
        self.table = table

    def step(self, token_id: int) -> str:
        return self.table[token_id]


class _ByteStream:
    """Ids -> bytes -> text, holding back the bytes of a character that is not complete yet."""

    def __init__(self, token_bytes: list[bytes]):
        self.token_bytes = token_bytes
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def step(self, token_id: int) -> str:
        return self.utf8.decode(self.token_bytes[token_id])


class CharTokenizer:
    """One token per Unicode code point, vocabulary taken from a training text."""

    kind = "char"
    unk_id = UNK

    def __init__(self, chars: list[str]):
        if not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise ValueError("a char vocabulary holds single code points")
        if len(set(chars)) != len(chars):
            dup = next(c for c in chars if chars.count(c) > 1)
            raise ValueError(f"duplicate character {dup!r} in the vocabulary")
        self.chars = list(chars)  # id i + 1 -> character; id 0 is <unk>
        self._lookup = np.full(0x110000, UNK, dtype=np.int32)  # code point -> id (4.5 MB)
        self._lookup[[ord(c) for c in self.chars]] = np.arange(1, len(self.chars) + 1)
        self._table = [UNK_TEXT] + self.chars  # id -> text

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        """Vocabulary = the distinct characters of `text`, in code point order."""
        counts = np.bincount(code_points(text), minlength=0)
        return cls([chr(cp) for cp in np.flatnonzero(counts)])

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> torch.Tensor:
        """`text` -> 1-D tensor of ids (compact dtype); unseen characters become `<unk>`."""
        ids = self._lookup[code_points(text)]
        return torch.from_numpy(ids).to(token_dtype(self.vocab_size))

    def decode(self, ids) -> str:
        """Ids (a tensor or any iterable of ints) -> text."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        table = self._table
        return "".join(table[i] for i in ids)

    def stream_decoder(self) -> _CharStream:
        return _CharStream(self._table)

    def utf8_guard(self) -> None:
        """None: every token is a whole character, so any sequence is valid text."""
        return None

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "unk_id": UNK, "chars": "".join(self.chars)},
                          ensure_ascii=False)

    @classmethod
    def from_json(cls, doc: dict) -> CharTokenizer:
        if not isinstance(doc.get("chars"), str):
            raise ValueError("a char tokenizer needs its 'chars'")
        return cls(list(doc["chars"]))


class ByteTokenizer:
    """The 256 byte values of UTF-8: any text, no training, no unknowns."""

    kind = "byte"
    unk_id = None
    vocab_size = 256
    _bytes = [bytes([b]) for b in range(256)]

    @classmethod
    def train(cls, text: str) -> ByteTokenizer:
        return cls()

    def encode(self, text: str) -> torch.Tensor:
        data = np.frombuffer(_utf8(text), dtype=np.uint8)
        return torch.from_numpy(data.astype(np.int16))

    def decode(self, ids) -> str:
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return bytes(ids).decode("utf-8", errors="replace")

    def stream_decoder(self) -> _ByteStream:
        return _ByteStream(self._bytes)

    def utf8_guard(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The tables that keep sampled text valid UTF-8 (see `utf8_tables`)."""
        return _guard(self)

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind})

    @classmethod
    def from_json(cls, doc: dict) -> ByteTokenizer:
        return cls()


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-ins for the 256 bytes, which byte-level BPE tokens are spelt in:
    printable Latin-1 bytes stand for themselves, the rest are moved to code points from 256."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    moved = [b for b in range(256) if b not in keep]
    return {**{b: chr(b) for b in keep}, **{b: chr(256 + i) for i, b in enumerate(moved)}}


# Cut only where byte-level pre-tokenization cuts anyway: after a non-space and a newline,
# before a non-space ("a\n\nb" and "a \nb" are not cut: the spaces before a cut would merge).
SAFE_CUT = re.compile(r"(?<=\S\n)(?=\S)")
WORD_CUT = re.compile(r"(?<=\S)(?= \S)")  # before a word: where no newline allows a cut


def _chunks(text: str, size: int = 1 << 20) -> list[str]:
    """`text` in pieces of about `size` characters that encode exactly as the whole would."""
    out, start = [], 0
    while start < len(text):
        m = SAFE_CUT.search(text, min(start + size, len(text)))
        end = m.start() if m else len(text)
        out.append(text[start:end])
        start = end
    return out


class BPETokenizer:
    """Byte-level BPE from Hugging Face `tokenizers`, trained on the training text only."""

    kind = "bpe"
    unk_id = None

    def __init__(self, hf):
        self.hf = hf
        to_byte = {c: b for b, c in _byte_to_unicode().items()}
        self._bytes = [bytes(to_byte[c] for c in hf.id_to_token(i))
                       for i in range(hf.get_vocab_size())]

    @classmethod
    def train(cls, text, vocab_size: int) -> BPETokenizer:
        """Merges learnt from `text`: a str, or an iterator of pieces (a bounded sample)."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        hf = Tokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        if isinstance(text, str):
            hf.train_from_iterator(_chunks(text, 1 << 16), trainer, length=len(text))
        else:
            hf.train_from_iterator(text, trainer)
        return cls(hf)

    @property
    def vocab_size(self) -> int:
        return len(self._bytes)

    def encode(self, text: str) -> torch.Tensor:
        encode = getattr(self.hf, "encode_batch_fast", self.hf.encode_batch)  # no offsets
        try:
            encodings = encode(_chunks(text), add_special_tokens=False)
        except TypeError:  # a lone surrogate: not text, though a Python str can hold one
            encodings = encode(_chunks(_scrub(text)), add_special_tokens=False)
        ids = np.concatenate([np.asarray(e.ids, dtype=np.int32) for e in encodings] or
                             [np.zeros(0, np.int32)])
        return torch.from_numpy(ids).to(token_dtype(self.vocab_size))

    def decode(self, ids) -> str:
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        table = self._bytes
        return b"".join(table[i] for i in ids).decode("utf-8", errors="replace")

    def stream_decoder(self) -> _ByteStream:
        return _ByteStream(self._bytes)

    def utf8_guard(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The tables that keep sampled text valid UTF-8 (see `utf8_tables`)."""
        return _guard(self)

    def to_json(self) -> str:
        return self.hf.to_str()

    @classmethod
    def from_json(cls, doc: dict) -> BPETokenizer:
        from tokenizers import Tokenizer
        if doc.get("model", {}).get("type") != "BPE":
            raise ValueError("not a BPE tokenizer")
        try:
            return cls(Tokenizer.from_str(json.dumps(doc)))
        except Exception as e:  # the Rust side raises plain Exception
            raise ValueError(f"not a readable BPE tokenizer ({e})") from None


KINDS = ("char", "bpe", "byte")


def predicted_chars(tokenizer, chars: int, ids) -> int:
    """How many of a text's `chars` characters a pass over its tokens `ids` predicts: all but
    those of the first token, which nothing predicts (at least 1). This is the denominator of
    nats per character, for every tokenizer and every caller (evaluation, validation, a look
    inside), so that a char and a BPE model compare."""
    return max(chars - len(tokenizer.decode(ids[:1].tolist())), 1)


def build(kind: str, text: str, vocab_size: int | None = None, log=print):
    """A tokenizer of `kind` for the training `text`; `vocab_size` is for BPE only."""
    if kind not in KINDS:
        raise ValueError(f"unknown tokenizer {kind!r}; choose one of {', '.join(KINDS)}")
    if kind != "bpe":
        if vocab_size is not None:
            raise ValueError(f"--vocab-size applies to --tokenizer bpe; a {kind} tokenizer's "
                             "vocabulary comes from " + ("the text" if kind == "char" else
                                                         "the 256 byte values"))
        return CharTokenizer.train(text) if kind == "char" else ByteTokenizer()
    vocab_size = 1024 if vocab_size is None else vocab_size
    if not BPE_MIN_VOCAB <= vocab_size <= MAX_VOCAB:
        raise ValueError(f"--vocab-size for bpe must be between {BPE_MIN_VOCAB} (the 256 byte "
                         f"values and one merge) and {MAX_VOCAB:,}; got {vocab_size}")
    tok = BPETokenizer.train(text, vocab_size)
    if tok.vocab_size < vocab_size:
        log(f"note: the training text allows only {tok.vocab_size:,} BPE tokens "
            f"(asked for {vocab_size:,}); using {tok.vocab_size:,}")
    return tok


def tokenizer_from_json(text: str | dict):
    """Rebuild whichever tokenizer a `tokenizer.json` describes (its text, or parsed)."""
    try:
        doc = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON ({e})") from None
    except RecursionError:
        raise ValueError("nested too deep to be a tokenizer") from None
    if not isinstance(doc, dict):
        raise ValueError("not a tokenizer description")
    if "kind" not in doc and isinstance(doc.get("model"), dict):
        return BPETokenizer.from_json(doc)  # the Hugging Face format
    classes = {"char": CharTokenizer, "byte": ByteTokenizer}
    if doc.get("kind") == "bpe":  # a BPE tokenizer is saved in Hugging Face's format, kindless
        raise ValueError("it says kind 'bpe' but holds no BPE model (a bpe tokenizer.json is "
                         "the Hugging Face tokenizers format, with a 'model' section)")
    if doc.get("kind") not in classes:
        raise ValueError(f"unknown tokenizer kind {doc.get('kind')!r} (known: {', '.join(KINDS)})")
    return classes[doc["kind"]].from_json(doc)
