"""Tokenizers: text <-> token ids, saved beside the model as `tokenizer.json`.

`CharTokenizer` treats every Unicode code point as one token, so accents, CJK and emoji are
single tokens (not UTF-8 bytes). Its vocabulary is the set of characters in the training text,
plus one reserved id:

    Unknown-character policy: id 0 is `<unk>`. A character the training text never held (in a
    prompt, or in a text given to `eval`) encodes to it. Its embedding starts at zero and, since
    the training text never contains it, stays a "no information" input. The sampler never emits
    it. In `eval` it costs what the model predicts for it (a large loss, honestly counted), and
    the number of such characters is reported.

Encoding works on whole arrays (code points through a lookup table), never a Python list per
character, so a 100 MB corpus encodes in seconds. Left out on purpose: normalisation (NFC etc.)
and any notion of words; BPE and byte tokenizers implement the same small interface.
"""

from __future__ import annotations

import json

import numpy as np
import torch

UNK = 0
UNK_TEXT = "\ufffd"  # what `decode` shows for the unknown id


def _code_points(text: str) -> np.ndarray:
    """The Unicode code points of `text` as a uint32 array, without a Python loop."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def token_dtype(vocab_size: int) -> torch.dtype:
    """The smallest signed integer dtype that holds every id: ids live in compact tensors."""
    return torch.int16 if vocab_size <= 2**15 else torch.int32


class CharTokenizer:
    """One token per Unicode code point, vocabulary taken from a training text."""

    kind = "char"

    def __init__(self, chars: list[str]):
        assert all(len(c) == 1 for c in chars), "a char vocabulary holds single code points"
        assert len(set(chars)) == len(chars), "duplicate characters in vocabulary"
        self.chars = list(chars)  # id i + 1 -> character; id 0 is <unk>
        self.unk_id = UNK
        self._lookup = np.full(0x110000, UNK, dtype=np.int32)  # code point -> id (4.5 MB)
        self._lookup[[ord(c) for c in self.chars]] = np.arange(1, len(self.chars) + 1)
        self._table = [UNK_TEXT] + self.chars  # id -> text

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        """Vocabulary = the distinct characters of `text`, in code point order."""
        counts = np.bincount(_code_points(text), minlength=0)
        return cls([chr(cp) for cp in np.flatnonzero(counts)])

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> torch.Tensor:
        """`text` -> 1-D tensor of ids (compact dtype); unseen characters become `<unk>`."""
        ids = self._lookup[_code_points(text)]
        return torch.from_numpy(ids).to(token_dtype(self.vocab_size))

    def count_unknown(self, ids: torch.Tensor) -> int:
        return int((ids == UNK).sum())

    def decode(self, ids) -> str:
        """Ids (a tensor or any iterable of ints) -> text."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        table = self._table
        return "".join(table[i] for i in ids)

    # --- serialisation: a small JSON document, the only state a char tokenizer has ---

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "unk_id": UNK, "chars": "".join(self.chars)},
                          ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> CharTokenizer:
        doc = json.loads(text)
        if doc.get("kind") != cls.kind or not isinstance(doc.get("chars"), str):
            raise ValueError("not a textrnn char tokenizer")
        return cls(list(doc["chars"]))


TOKENIZERS = {CharTokenizer.kind: CharTokenizer}


def tokenizer_from_json(text: str):
    """Rebuild whichever tokenizer a `tokenizer.json` describes."""
    try:
        kind = json.loads(text).get("kind")
    except (json.JSONDecodeError, AttributeError) as e:
        raise ValueError(f"tokenizer file is not valid JSON ({e})") from None
    if kind not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer kind {kind!r} (known: {', '.join(TOKENIZERS)})")
    return TOKENIZERS[kind].from_json(text)
