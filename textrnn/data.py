"""Corpus files -> text -> token ids, the train/validation split, and batches for truncated BPTT.

Reading: a UTF-8 text file, or a folder whose `.txt` files (searched recursively, in sorted path
order) are joined, each ending in a newline, a block at a time (`read_blocks`; `read_corpus`
joins them). A byte-order mark is dropped and Windows line endings become "\\n". Empty, binary
(NUL bytes) and wrongly-encoded files are refused with a message that says what to do.
Splitting: validation is the end of the text (`val_size`). corpus.py turns a corpus into token
files from these blocks.

Batches follow the classic char-rnn scheme. The training ids are cut into B contiguous streams,
one per batch row; step i feeds each row the next `seq_len` tokens of its stream, and the
recurrent state left by step i is the initial state of step i+1 (detached: gradients flow back
`seq_len` steps, no further). Reset rules:
  * the state starts at zero at the start of training and of every epoch (a pass over the
    streams), since each row then jumps back to the start of its stream;
  * each epoch starts its streams at a different offset in [0, seq_len), drawn from the seed and
    the epoch number, so the truncation boundaries move between epochs; the draw needs no saved
    state, which keeps resuming exact.
Left out on purpose: shuffling of windows (it would break the carried state) and any padding.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

SNIFF = 1 << 16  # bytes looked at to tell a binary file
BLOCK = 8 * 2**20  # bytes read at a time


def cache_root() -> Path:
    """Where textrnn keeps what it can make again (token files, the compiled kernel):
    `$TEXTRNN_CACHE`, else ~/.cache/textrnn."""
    return Path(os.environ.get("TEXTRNN_CACHE") or Path.home() / ".cache" / "textrnn")


def looks_like_utf16(head: bytes) -> bool:
    """Whether a file's first bytes look like UTF-16: its byte order mark, or NULs on one side
    of the byte pairs only (an ASCII-range character's high byte)."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    odd, even, half = head[1::2].count(0), head[0::2].count(0), len(head) // 2
    return max(odd, even) > half // 2 and min(odd, even) <= half // 20


def check_not_binary(path: Path, head: bytes, encoding: str) -> None:
    """Refuse a file whose first bytes hold NULs (unless the encoding expects them), naming
    UTF-16 when it looks like it."""
    if b"\x00" in head and "16" not in encoding and "32" not in encoding:
        if looks_like_utf16(head):
            raise ValueError(f"{path} looks like UTF-16 text; read it with --encoding utf-16")
        raise ValueError(f"{path} looks like a binary file (it holds NUL bytes), not text")


def corpus_files(path: str | Path) -> list[Path]:
    """The file, or the .txt files under the folder (sorted), that make up a corpus."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_file():
        return [path]
    if not path.is_dir():  # a pipe, a socket or a device: read, it may never end
        raise ValueError(f"{path} is neither a regular file nor a folder; give a text file")
    files = sorted(p for p in path.rglob("*.txt") if p.is_file())
    if not files:
        raise ValueError(f"folder {path} holds no .txt files")
    return files


def text_codec(encoding: str) -> str:
    """The codec that reads files in `encoding` (UTF-8 drops a BOM), or ValueError for a name
    that is no codec, or names one that is not a text encoding (rot13, base64, zlib: Python's
    codecs that turn text into text or bytes into bytes)."""
    codec = "utf-8-sig" if encoding.replace("-", "").replace("_", "").lower() == "utf8" \
        else encoding
    try:
        info = codecs.lookup(codec)
    except LookupError:
        raise ValueError(f"unknown text encoding {encoding!r}") from None
    if not getattr(info, "_is_text_encoding", True):
        raise ValueError(f"{encoding!r} is not a text encoding (it does not turn bytes into "
                         "text); give one such as utf-8, utf-16 or latin-1")
    return codec


def _blocks(path: Path, encoding: str) -> Iterator[tuple[str, int]]:
    """The text of one file, a block at a time: BOM dropped, "\\r\\n" -> "\\n", refused if
    binary or not in `encoding`: (text, bytes read so far)."""
    decoder = codecs.getincrementaldecoder(text_codec(encoding))("strict")
    done, held_cr = 0, False
    with open(path, "rb") as f:
        while True:
            data = f.read(BLOCK)
            if done == 0:
                check_not_binary(path, data[:SNIFF], encoding)
            try:
                text = decoder.decode(data, final=not data)
            except UnicodeDecodeError as e:
                at = done + e.start - len(decoder.getstate()[0])
                raise ValueError(
                    f"{path} is not valid {e.encoding} (byte 0x{e.object[e.start]:02x} at "
                    f"offset about {at:,}); if it uses another encoding, say which, e.g. "
                    "--encoding latin-1") from None
            done += len(data)
            text = ("\r" if held_cr else "") + text
            held_cr = text.endswith("\r") and bool(data)
            if held_cr:
                text = text[:-1]
            yield text.replace("\r\n", "\n"), done
            if not data:
                return


def read_blocks(path: str | Path, encoding: str = "utf-8") -> Iterator[tuple[str, int]]:
    """The corpus text (a file, or a folder's .txt files each ending in a newline), a block at
    a time, never whole: (text, bytes read so far in all)."""
    offset, folder = 0, Path(path).is_dir()
    for file in corpus_files(path):
        last, done = "", 0
        for text, done in _blocks(file, encoding):
            if text:
                last = text
                yield text, offset + done
        if folder and last and not last.endswith("\n"):
            yield "\n", offset + done
        offset += done


def read_corpus(path: str | Path, encoding: str = "utf-8") -> str:
    """The text of a file, or of all `.txt` files under a folder (`read_blocks`, joined).
    Raises on empty or bad input."""
    text = "".join(t for t, _ in read_blocks(path, encoding))
    check_not_empty(path, text)
    return text


def check_not_empty(path, text: str) -> None:
    if not text.strip():
        raise ValueError(f"{path} is empty" if not text else f"{path} holds only whitespace")


def corpus_name(path: str | Path) -> str:
    """What a corpus is called: a file's name without its suffix, or a folder's name."""
    path = Path(path)
    return (path.stem if path.is_file() else path.name) or "corpus"


def val_size(n: int, fraction: float, most: int | None = None) -> int:
    """How much of a text of `n` characters (or ids) is kept for validation: `fraction` of it,
    at most `most`, from its end."""
    if not 0 < fraction < 1:
        raise ValueError(f"--val-fraction must be between 0 and 1, got {fraction}")
    n_val = min(int(n * fraction), n if most is None else most)
    if n_val < 2 and n < 20 or n - n_val < 2 and n < 4:  # (20: even a tenth would be < 2)
        raise ValueError(f"corpus too short to split ({n} characters): give at least a "
                         "few hundred characters, or a separate --val-file")
    if n_val < 2 or n - n_val < 2:  # the corpus could be split: the fraction is the trouble
        share = 3 / n if n_val < 2 else 1 - 3 / n  # (3: rounded to 3 digits, still enough)
        raise ValueError(f"--val-fraction {fraction} of {n:,} characters leaves "
                         f"{'validation' if n_val < 2 else 'training'} under 2 characters; "
                         f"give a fraction {'of at least' if n_val < 2 else 'below'} "
                         f"{share:.3g}, or a separate --val-file")
    return n_val


def split(text, val_fraction: float, most: int | None = None):
    """Train on the first part of a text (or ids), validate on the rest (the end)."""
    n_val = val_size(len(text), val_fraction, most)
    return text[:-n_val], text[-n_val:]


def fit_batch_shape(n_tokens: int, batch_size: int, seq_len: int) -> tuple[int, int]:
    """Shrink (batch_size, seq_len) until one batch fits in `n_tokens` training tokens.

    One step needs batch_size * seq_len inputs plus one more token for the last target. Batch
    size gives way first (fewer streams), then sequence length.
    """
    if n_tokens < 2:
        raise ValueError(f"training text too short: {n_tokens} token(s); it needs at least 2")
    batch_size = max(1, min(batch_size, (n_tokens - 1) // seq_len))
    seq_len = min(seq_len, n_tokens - 1)
    return batch_size, seq_len


def as_ids(ids) -> torch.Tensor:
    """Ids as an int64 tensor, from a tensor or a numpy array of any unsigned width."""
    if isinstance(ids, np.ndarray):
        return torch.from_numpy(ids.astype(np.int64))
    return ids.long()


class Batches:
    """B contiguous streams over `ids`, served `seq_len` tokens at a time (see module doc)."""

    def __init__(self, ids, batch_size: int, seq_len: int, seed: int,
                 rows: slice | None = None):
        """`ids`: a tensor, or a numpy array (a memmap of a token file: only the windows a
        step reads are read). `rows`: the streams this process serves, of the batch's B (in a
        distributed run, its block of them; the streams themselves do not change)."""
        assert (len(ids) - 1) >= batch_size * seq_len, "call fit_batch_shape first"
        self.ids, self.B, self.T, self.seed = ids, batch_size, seq_len, seed
        self.rows = torch.arange(batch_size)[rows or slice(None)]
        self.stream_len = (len(ids) - 1) // batch_size  # tokens per row, plus one for targets

    def offset(self, epoch: int) -> int:
        """Where each stream starts in this epoch: 0 first, then a seeded draw in [0, T)."""
        room = min(self.T, self.stream_len - self.T + 1)
        if epoch == 0 or room <= 1:
            return 0
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**64)  # torch's wrap
        return int(torch.randint(room, (1,), generator=g))

    def steps_in_epoch(self, epoch: int) -> int:
        return (self.stream_len - self.offset(epoch)) // self.T

    def get(self, epoch: int, i: int, windows: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets (rows, T) for step i of an epoch; targets are inputs shifted by
        one. `windows`: windows i .. i + windows - 1 at once, (rows, windows x T), one
        contiguous stretch of each stream (--grow-bptt)."""
        starts = self.rows * self.stream_len + self.offset(epoch) + i * self.T
        pos = starts[:, None] + torch.arange(windows * self.T + 1)  # (B, windows x T + 1)
        chunk = as_ids(self.ids[pos.numpy()] if isinstance(self.ids, np.ndarray)
                       else self.ids[pos])
        return chunk[:, :-1], chunk[:, 1:]
