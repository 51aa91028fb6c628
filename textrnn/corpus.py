"""Corpora of any size: read in blocks, tokenized once into token files on disk, trained on
through a memmap.

    corpus = prepare(cfg)            # a Corpus: train and val ids (memmaps), tokenizer, counts

Preparing reads the text a block at a time and never holds it whole:
  1. a pass that hashes the files' bytes: with the tokenizer's settings and the split, the key of
     a cache folder (`$TEXTRNN_CACHE/corpora/KEY`, default `~/.cache/textrnn/corpora/KEY`); a
     hit skips the rest, so a second run and `--resume` start at once. Folders are kept until
     removed by hand (each says its size when made); the temporary folder of a preparation
     that was killed is removed by the next one, once its owner process is dead;
  2. a pass that decodes, checks (binary, wrong encoding, empty) and counts the characters, so
     that validation can be the end of the text: `val_fraction` of it, at most `max_val_chars`;
  3. the tokenizer: the characters of the training part (char), nothing (byte), or merges learnt
     from at most `BPE_SAMPLE` characters of it, spread evenly over it (bpe);
  4. a pass that encodes the training and validation parts into `train.bin` and `val.bin`, the
     narrowest unsigned integers the vocabulary allows, block by block.
A text file is read the way `data.read_corpus` reads it (BOM dropped, "\\r\\n" -> "\\n", a folder's
.txt files in sorted order, each ending in a newline), and gives the same ids.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import (BLOCK, SNIFF, cache_root, check_not_binary, check_not_empty, corpus_files,
                   read_blocks, val_size)
from .tokenizer import SAFE_CUT, WORD_CUT, predicted_chars, tokenizer_from_json
from .tokenizer import build as build_tokenizer

BPE_SAMPLE = 64 * 2**20   # characters BPE learns its merges from, at most
ENCODE_CHARS = 2**20      # char and byte encode this many characters at a time, to bound memory
FORMAT = 1                # of the cache folders; a change makes new keys


@dataclass
class Corpus:
    """The text of a run as the loop needs it: ids, and what per-character figures need."""
    chars: int                # characters in the corpus file(s)
    sha256: str               # of the corpus text (UTF-8, normalised), to tell corpora apart
    train_ids: np.ndarray     # token ids, a read-only memmap of the training part
    val_ids: np.ndarray       # ... and of the validation text
    val_chars: int            # characters a validation pass predicts
    val_text_chars: int       # characters of the validation text
    chars_per_token: float    # training characters per token, to report per character
    tokenizer: object
    cache: Path               # the folder the token files live in


def _pieces(path, encoding, start: int, stop: int) -> Iterator[str]:
    """The characters [start, stop) of the corpus text, in blocks."""
    return _stretches(path, encoding, [start], stop - start)


class _Writer:
    """Token ids into a file as text comes. For BPE the text is re-cut where its pre-tokenizer
    would cut anyway (tokenizer.SAFE_CUT), so that the ids are the whole text's; a stretch of
    32 Mi characters with no such point is cut before a word (" x"), which a pre-tokenizer
    also starts a new piece at."""

    def __init__(self, file: Path, tokenizer, dtype):
        self.file, self.tokenizer, self.dtype = file, tokenizer, dtype
        self.fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.bpe, self.carry, self.n = tokenizer.kind == "bpe", "", 0

    def add(self, text: str) -> None:
        if not self.bpe:
            return self._encode(text)
        text = self.carry + text
        cut = max((m.start() for m in SAFE_CUT.finditer(text, len(self.carry))), default=0)
        if cut == 0 and len(text) < 4 * BLOCK:
            self.carry = text
            return
        cut = cut or max((m.start() for m in WORD_CUT.finditer(text)), default=0) or len(text)
        self.carry = text[cut:]
        self._encode(text[:cut])

    def _encode(self, text: str) -> None:
        step = len(text) if self.bpe else ENCODE_CHARS  # BPE's pieces are its own cuts
        for i in range(0, len(text), step):
            ids = self.tokenizer.encode(text[i:i + step]).numpy().astype(self.dtype)
            self._write(memoryview(ids.tobytes()))
            self.n += len(ids)

    def _write(self, data: memoryview) -> None:
        """All of `data`, in blocks of megabytes (no buffer of ours); a full disk is said in
        one line that names the file, not as "[Errno 28] No space left on device"."""
        try:
            while data:
                data = data[os.write(self.fd, data):]
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            raise OSError(f"no space left on the device while writing {self.file}; free some, "
                          "or keep token files on another disk with --data-cache or "
                          "$TEXTRNN_CACHE") from None

    def shut(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def close(self) -> int:
        try:
            if self.carry:
                self._encode(self.carry)
                self.carry = ""
        finally:
            self.shut()
        return self.n


def encode_file(path, tokenizer, file: Path, encoding: str = "utf-8",
                progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, int]:
    """The text of `path` (a file, or a folder of .txt files, read as training reads it)
    encoded by `tokenizer` into `file` a block at a time: (its ids as a read-only memmap,
    characters read). `progress(bytes done, bytes in all)` hears how far it has come."""
    size = sum(f.stat().st_size for f in corpus_files(path))
    dtype, chars = _dtype(tokenizer.vocab_size), 0
    out = _Writer(file, tokenizer, dtype)
    try:
        for text, done in read_blocks(path, encoding):
            out.add(text)
            chars += len(text)
            if progress:
                progress(done, size)
    except BaseException:
        out.shut()
        raise
    return _memmap(file, dtype, out.close()), chars


# --- the token files and their cache ---

def _digest(path, encoding: str = "utf-8") -> tuple[str, int]:
    """SHA-256 of a corpus's file names, sizes and bytes, and its size; a binary file is refused
    at its first block, before the rest is read."""
    h, size = hashlib.sha256(), 0
    for file in corpus_files(path):
        name = str(file.relative_to(path)) if Path(path).is_dir() else ""
        h.update(f"{len(name)}:{name}:{file.stat().st_size}:".encode())
        with open(file, "rb") as f:
            first = True
            while data := f.read(BLOCK):
                if first:
                    check_not_binary(file, data[:SNIFF], encoding)
                    first = False
                h.update(data)
                size += len(data)
    return h.hexdigest(), size


def _key(digest: str, cfg, tokenizer) -> str:
    """The cache folder of a corpus, split and tokenized as `cfg` says: by a tokenizer of its
    kind learnt from the text (None), or by `tokenizer` itself (a resumed run's)."""
    how = {"format": FORMAT, "corpus": digest, "encoding": cfg.encoding,
           "val_fraction": cfg.val_fraction, "max_val_chars": cfg.max_val_chars,
           "val_file": _file_hash(cfg.val_file), "bpe_sample": BPE_SAMPLE,
           "tokenizer": tokenizer.to_json() if tokenizer else [cfg.tokenizer, cfg.vocab_size]}
    if cfg.tokenizer == "bpe":
        import tokenizers
        how["tokenizers"] = tokenizers.__version__  # its merges may change with it
    return hashlib.sha256(json.dumps(how, sort_keys=True).encode()).hexdigest()[:32]


def _file_hash(path) -> str | None:
    return _digest(path)[0] if path else None


def _dtype(vocab_size: int) -> np.dtype:
    """The narrowest unsigned integer that holds every id."""
    return np.dtype(np.uint8 if vocab_size <= 2**8 else
                    np.uint16 if vocab_size <= 2**16 else np.uint32)


def _memmap(file: Path, dtype, n: int) -> np.ndarray:
    if n == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(file, dtype=dtype, mode="r", shape=(n,))


def _whole(folder: Path) -> bool:
    """Whether a cache folder holds what its meta.json says (a damaged one is made again)."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        size = np.dtype(meta["dtype"]).itemsize
        if not ((folder / "train.bin").stat().st_size == size * meta["train_tokens"] and
                (folder / "val.bin").stat().st_size == size * meta["val_tokens"]):
            return False
        _load(folder)  # every file parses
        return True
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir())


def scratch(root: Path, name: str) -> Path:
    """A new temporary folder `.{name}.{owner}.{random}` in `root`, its owner (host, pid and
    the process's start time) in its name, so that a later preparation can tell a folder left
    by a killed one from one still being written (`_prune`)."""
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=root, prefix=f".{name}.{_owner(os.getpid())}."))


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _started(pid: int) -> str:
    """When process `pid` started, in clock ticks since boot (Linux's /proc); "0" where that
    cannot be read (another system, or no such process)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "0"


def _owner(pid: int) -> str:
    return f"{_host()}~{pid}~{_started(pid)}"


def _orphaned(tmp: Path) -> bool | None:
    """Whether a temporary folder's owner is dead (True), alive (False), or cannot be told
    (None: another host, or a folder from before owners were named). A pid that lives on in
    a process started at another time was reused: its owner is dead."""
    parts = tmp.name.split(".")  # "", key, owner, random
    host, pid, started = (parts[2].split("~") + ["", ""])[:3] if len(parts) == 4 else ("", "", "")
    if host != _host() or not pid.isdigit() or int(pid) < 1:
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's, alive
        pass
    now = _started(int(pid))
    if "0" in (now, started):  # start times unknown (no /proc): a reused pid cannot be told
        return None
    return now != started


def _prune(root: Path, hours: float = 24) -> None:
    """Remove the temporary folders of preparations killed part-way: at once where their owner
    is known to be dead, else once they are older than `hours`. A live owner's is kept."""
    import time
    for tmp in root.glob(".*.*") if root.is_dir() else []:
        with contextlib.suppress(OSError):
            dead = _orphaned(tmp)
            if tmp.is_dir() and (dead or dead is None and
                                 time.time() - tmp.stat().st_mtime > hours * 3600):
                shutil.rmtree(tmp, ignore_errors=True)


def _load(folder: Path) -> Corpus:
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    tokenizer = tokenizer_from_json((folder / "tokenizer.json").read_text(encoding="utf-8"))
    dtype = np.dtype(meta["dtype"])
    return Corpus(chars=meta["chars"], sha256=meta["sha256"],
                  train_ids=_memmap(folder / "train.bin", dtype, meta["train_tokens"]),
                  val_ids=_memmap(folder / "val.bin", dtype, meta["val_tokens"]),
                  val_chars=meta["val_chars"], val_text_chars=meta["val_text_chars"],
                  chars_per_token=meta["chars_per_token"], tokenizer=tokenizer, cache=folder)


def prepare(cfg, tokenizer=None, log: Callable[[str], None] = print,
            progress: Callable[[str, int, int], None] | None = None) -> Corpus:
    """The token files of `cfg.corpus` as `cfg` splits and tokenizes it, from the cache or made
    now. `tokenizer`: a resumed run's own (else one is built from the training text).
    `progress(what, done, total)` hears how far each pass has come, in bytes."""
    progress = progress or (lambda *a: None)
    if cfg.tokenizer != "bpe" and cfg.vocab_size is not None:
        build_tokenizer(cfg.tokenizer, "", cfg.vocab_size)  # refuses it, with the reason
    # 1. the cache folder, from the files' bytes: a whole one is served as is
    digest, size = _digest(cfg.corpus, cfg.encoding)
    stamp = _stamp(cfg.corpus)
    root = Path(cfg.data_cache) if cfg.data_cache else cache_root() / "corpora"
    folder, whole = _cached(root, digest, cfg, tokenizer)
    if whole:
        return _load(folder)
    _prune(root)
    shutil.rmtree(folder, ignore_errors=True)  # damaged, if anything: made again
    # 2. check, count and hash the text, and split it
    chars, sha = _count(cfg, size, progress)
    train_span, val_text_chars = _split(cfg, chars)
    # 3. the tokenizer, from the training part only
    if tokenizer is None:
        tokenizer = _learn(cfg, train_span, log)
    # 4. encode, into a fresh folder swapped in whole
    tmp = scratch(root, folder.name)
    try:
        dtype = _dtype(tokenizer.vocab_size)
        n_train, n_val = _encode(cfg, tokenizer, tmp, train_span[1], size, progress)
        if n_val < 2:
            raise ValueError(f"validation text too short ({val_text_chars} characters)")
        first = _memmap(tmp / "val.bin", dtype, n_val)[:1]
        meta = {"chars": chars, "sha256": sha, "dtype": dtype.name,
                "train_tokens": n_train, "val_tokens": n_val, "val_text_chars": val_text_chars,
                "val_chars": predicted_chars(tokenizer, val_text_chars, first),
                "chars_per_token": (train_span[1] - train_span[0]) / max(n_train, 1)}
        (tmp / "tokenizer.json").write_text(tokenizer.to_json(), encoding="utf-8")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        if stamp != _stamp(cfg.corpus):
            raise ValueError(f"{cfg.corpus} changed while it was being prepared; run again")
        _swap_in(tmp, folder)
        log(f"token files: {folder} ({_size(folder) / 2**20:,.1f} MB; remove it, or the whole "
            "folder, to free the space: it is made again when needed)")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _load(folder)


def _stamp(path) -> list[tuple[int, int]]:
    """The size and modification time of each corpus file, to notice a change part-way."""
    return [(f.stat().st_size, f.stat().st_mtime_ns) for f in corpus_files(path)]


def _cached(root: Path, digest: str, cfg, tokenizer) -> tuple[Path, bool]:
    """The cache folder of the corpus (the one to make, where none is whole), and whether it is
    whole. A folder whose tokenizer was learnt from the text also serves a resumed run whose
    tokenizer is that one; any other resumed run's tokenizer has a folder of its own."""
    folder = root / _key(digest, cfg, None)
    if _whole(folder) and (tokenizer is None or tokenizer.to_json() == (
            folder / "tokenizer.json").read_text(encoding="utf-8")):
        return folder, True  # made by an earlier run (or the one now resumed)
    if tokenizer is not None:
        folder = root / _key(digest, cfg, tokenizer)
        return folder, _whole(folder)
    return folder, False


def _count(cfg, size: int, progress) -> tuple[int, str]:
    """Pass 2 over the corpus: (its characters, the SHA-256 of its text); an empty or blank
    corpus is refused."""
    chars, sha, dark = 0, hashlib.sha256(), True
    for text, done in read_blocks(cfg.corpus, cfg.encoding):
        chars += len(text)
        sha.update(text.encode("utf-8", "surrogatepass"))
        dark = dark and not text.strip()
        progress("reading", done, size)
    if dark:
        check_not_empty(cfg.corpus, "" if chars == 0 else " ")
    return chars, sha.hexdigest()


def _split(cfg, chars: int) -> tuple[tuple[int, int], int]:
    """(the training part's span of the corpus's characters, the validation text's characters):
    the whole corpus and `cfg.val_file`, or the corpus less its end."""
    if cfg.val_file:
        train_span = (0, chars)
        val_text = [(len(t), bool(t.strip())) for t, _ in read_blocks(cfg.val_file, cfg.encoding)]
        val_text_chars = sum(n for n, _ in val_text)
        if not any(w for _, w in val_text):
            check_not_empty(cfg.val_file, "" if val_text_chars == 0 else " ")
    else:
        val_text_chars = val_size(chars, cfg.val_fraction, cfg.max_val_chars)
        train_span = (0, chars - val_text_chars)
    if val_text_chars < 2:
        raise ValueError(f"validation text too short ({val_text_chars} characters)")
    return train_span, val_text_chars


def _encode(cfg, tokenizer, folder: Path, boundary: int, size: int,
            progress) -> tuple[int, int]:
    """Pass 4: the training part (characters before `boundary`) into `folder`/train.bin, the
    validation text into val.bin, in one pass over the corpus; (train tokens, val tokens)."""
    dtype = _dtype(tokenizer.vocab_size)
    train = _Writer(folder / "train.bin", tokenizer, dtype)
    try:
        val_out = _Writer(folder / "val.bin", tokenizer, dtype)
    except BaseException:  # (no descriptor of train.bin left open)
        train.shut()
        raise
    at = 0
    try:
        for text, done in read_blocks(cfg.corpus, cfg.encoding):  # one pass: both parts
            cut = min(max(boundary - at, 0), len(text))
            train.add(text[:cut])
            if not cfg.val_file:
                val_out.add(text[cut:])
            at += len(text)
            progress("encoding", done, size)
        if cfg.val_file:
            for text, _ in read_blocks(cfg.val_file, cfg.encoding):
                val_out.add(text)
        return train.close(), val_out.close()
    finally:
        train.shut()
        val_out.shut()


def _swap_in(tmp: Path, folder: Path) -> None:
    try:
        os.rename(tmp, folder)
    except OSError:  # another run made the same folder meanwhile: theirs serves as well
        shutil.rmtree(tmp, ignore_errors=True)


def _learn(cfg, span: tuple[int, int], log):
    """A tokenizer built from the training part: all of it, or BPE's evenly spread sample."""
    start, stop = span
    if cfg.tokenizer == "byte":
        return build_tokenizer("byte", "", cfg.vocab_size, log)
    if cfg.tokenizer == "char":
        from .tokenizer import CharTokenizer, code_points
        seen = np.zeros(0x110000, dtype=bool)
        for piece in _pieces(cfg.corpus, cfg.encoding, start, stop):
            seen[code_points(piece)] = True
        return CharTokenizer([chr(c) for c in np.flatnonzero(seen)])
    n = stop - start
    if n <= BPE_SAMPLE:
        return build_tokenizer("bpe", "".join(_pieces(cfg.corpus, cfg.encoding, start, stop)),
                               cfg.vocab_size, log)
    width = BPE_SAMPLE // 64  # 64 evenly spaced stretches of the training text, read in one pass
    starts = [start + i * (n - width) // 63 for i in range(64)]
    log(f"BPE learns its merges from {64 * width:,} of the {n:,} training characters (64 "
        f"evenly spaced stretches of {width:,})")
    return build_tokenizer("bpe", _stretches(cfg.corpus, cfg.encoding, starts, width),
                           cfg.vocab_size, log)


def _stretches(path, encoding, starts: list[int], width: int) -> Iterator[str]:
    """The text of [a, a + width) for each a in `starts` (sorted), in one pass over the corpus
    that ends with the last stretch."""
    at, i = 0, 0
    for text, _ in read_blocks(path, encoding):
        while i < len(starts):
            lo, hi = max(starts[i] - at, 0), min(starts[i] + width - at, len(text))
            if lo >= len(text):
                break
            if lo < hi:
                yield text[lo:hi]
            if starts[i] + width <= at + len(text):
                i += 1
            else:
                break
        if i == len(starts):
            return
        at += len(text)
