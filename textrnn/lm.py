"""`LM`: a loaded model and its tokenizer, with the verbs users want: generate, stream, evaluate.

    lm = textrnn.load("runs/mine")
    lm.generate("ROMEO:", max_new_chars=500, temperature=0.8, seed=1)   # -> str
    for piece in lm.stream("ROMEO:"): print(piece, end="")
    lm.evaluate(text)   # -> {"loss": nats/char, "bpc": bits/char, "chars": n, ...}
    lm.evaluate_file("held_out.txt")   # the same over a file or folder of any size, streamed
    lm.inspect(text)   # -> Inspection: each token's cost, the guesses for it, every unit's state

Generated text is the continuation only; the prompt is not repeated. An empty prompt starts the
model as if it had just read a newline (or, with no newline in the vocabulary, its first
character). Unknown characters in a prompt follow the tokenizer's policy (see tokenizer.py).
"""

from __future__ import annotations

import json
import math
import secrets
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from . import checkpoint, hub
from .plan import val_streams
from .corpus import encode_file
from .data import cache_root
from .evaluate import evaluate_ids
from .model import pick_device, said_regularizers
from .probe import MAX_INSPECT_CHARS, Inspection, inspect_ids
from .sample import Generation, Settings, check_seed, is_whole, quoted
from .tokenizer import predicted_chars

MAX_NEW_CHARS = 10**8    # one call's length: a long book; past it, a typo
MAX_SAMPLES = 1024       # samples side by side: each keeps a state and a decoder


def new_seed() -> int:
    """A fresh random seed, for callers that want to show the seed they used."""
    return secrets.randbelow(2**31)


class LM:
    """A model with its tokenizer and checkpoint config; see the module docstring."""

    def __init__(self, model, tokenizer, config: dict | None = None, source: str = ""):
        self.model, self.tokenizer, self.config = model.eval(), tokenizer, config or {}
        self.device = next(model.parameters()).device
        self.source = source  # where it was loaded from: a folder, or hub:user/name@commit

    # --- generation ---

    def _prompt_ids(self, prompt: str) -> torch.Tensor:
        ids = self.tokenizer.encode(prompt)
        if len(ids) == 0:
            ids = self.tokenizer.encode("\n")
            if self.tokenizer.unk_id is not None and int(ids[0]) == self.tokenizer.unk_id:
                ids[0] = 1
        return ids

    def _generator(self, seed: int | None) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(
            new_seed() if seed is None else check_seed(seed))

    def stream_many(self, prompt: str = "", max_new_chars: int = 500, temperature: float = 0.8,
                    top_k: int | None = None, top_p: float | None = None,
                    seed: int | None = None, num_samples: int = 1) -> Iterator[list[str]]:
        """Yield, step by step, the new text of `num_samples` samples drawn side by side."""
        if not isinstance(prompt, str):
            raise ValueError(f"the prompt must be a string, got {type(prompt).__name__}")
        if not is_whole(max_new_chars) or not 0 <= max_new_chars <= MAX_NEW_CHARS:
            raise ValueError(f"length must be a whole number from 0 to {MAX_NEW_CHARS:,}, got "
                             f"{quoted(max_new_chars)}")
        if not is_whole(num_samples) or not 1 <= num_samples <= MAX_SAMPLES:
            raise ValueError(f"number of samples must be a whole number from 1 to "
                             f"{MAX_SAMPLES:,}, got {quoted(num_samples)}")
        settings = Settings(temperature, top_k, top_p)
        if max_new_chars == 0:
            return
        tok = self.tokenizer
        gen = Generation(self.model, self._prompt_ids(prompt), settings, self._generator(seed),
                         num_samples, banned=[] if tok.unk_id is None else [tok.unk_id],
                         guard=tok.utf8_guard())
        # A byte or BPE token may end inside a character: each sample decodes through its own
        # stream decoder, which holds back incomplete characters, and stops at its length.
        decoders = [tok.stream_decoder().step for _ in range(num_samples)]
        counts = [0] * num_samples
        for size in gen.sizes():
            # one step per character the slowest sample still lacks, at most
            for ids in gen.take(min(size, max_new_chars - min(counts))).tolist():
                pieces = [step(i)[:max_new_chars - n] for step, i, n in zip(decoders, ids, counts)]
                counts = [n + len(p) for n, p in zip(counts, pieces)]
                yield pieces
                if min(counts) >= max_new_chars:
                    return

    def stream(self, prompt: str = "", max_new_chars: int = 500, **settings) -> Iterator[str]:
        """Yield the new text piece by piece as it is sampled (settings as in `generate`)."""
        for pieces in self.stream_many(prompt, max_new_chars, **settings):
            if pieces[0]:
                yield pieces[0]

    def generate(self, prompt: str = "", max_new_chars: int = 500, temperature: float = 0.8,
                 top_k: int | None = None, top_p: float | None = None,
                 seed: int | None = None) -> str:
        """The continuation of `prompt`, `max_new_chars` long. Same seed, same text."""
        return "".join(self.stream(prompt, max_new_chars, temperature=temperature, top_k=top_k,
                                   top_p=top_p, seed=seed))

    def samples(self, prompt: str = "", max_new_chars: int = 500, num_samples: int = 2,
                **settings) -> list[str]:
        """`num_samples` continuations, drawn as one batch."""
        out = None  # (made once the settings have been checked)
        for pieces in self.stream_many(prompt, max_new_chars, num_samples=num_samples, **settings):
            out = out or [[] for _ in pieces]
            for buf, piece in zip(out, pieces):
                buf.append(piece)
        return ["".join(buf) for buf in out] if out else [""] * num_samples

    # --- evaluation ---

    def evaluate(self, text: str) -> dict:
        """Cross-entropy over `text` read as one stream: total nats over the characters
        predicted (all but those of the first token), so any two tokenizers compare."""
        tok = self.tokenizer
        ids = tok.encode(text)
        if len(ids) < 2:
            raise ValueError("text to evaluate needs at least 2 tokens")
        nats, n_tokens = evaluate_ids(self.model, ids)
        unknown = 0 if tok.unk_id is None else int((ids == tok.unk_id).sum())
        return _figures(nats, n_tokens, predicted_chars(tok, len(text), ids), unknown, 1)

    def evaluate_file(self, path: str | Path, encoding: str = "utf-8", streams: int | None = None,
                      progress: Callable[[str, int, int], None] | None = None) -> dict:
        """`evaluate` over a file or a folder of .txt files (read as training reads a corpus),
        in memory that does not grow with it: the text is encoded a block at a time into a
        temporary token file under the cache folder, then read from there. Beyond
        SINGLE_STREAM_TOKENS it is read as VAL_STREAMS slices side by side, as training's
        validation is (within ~0.001 nats/char of one stream); `streams=1` reads it as one
        stream, as `evaluate` does. `progress(what, done, total)` hears how far each pass has
        come ("encoding" in bytes, "evaluating" in tokens)."""
        if streams is not None and streams < 1:
            raise ValueError(f"streams must be at least 1, got {streams}")
        tok, progress = self.tokenizer, progress or (lambda *a: None)
        root = cache_root()
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root, prefix=".eval-") as tmp:
            ids, chars = encode_file(path, tok, Path(tmp) / "ids.bin", encoding,
                                     lambda done, total: progress("encoding", done, total))
            if chars == 0:
                raise ValueError(f"{path} is empty")
            if len(ids) < 2:
                raise ValueError(f"{path} is too short to evaluate (it needs at least 2 tokens)")
            streams = streams or val_streams(len(ids))
            nats, n_tokens = evaluate_ids(
                self.model, ids, streams=streams,
                progress=lambda done, total: progress("evaluating", done, total))
            unknown = 0 if tok.unk_id is None else sum(
                int((ids[i:i + 2**22] == tok.unk_id).sum()) for i in range(0, len(ids), 2**22))
            predicted = predicted_chars(tok, chars, ids)
            del ids
        return _figures(nats, n_tokens, predicted, unknown, streams)

    # --- looking inside ---

    def inspect(self, text: str, top_k: int = 5) -> Inspection:
        """`text` read as one stream, as `evaluate` reads it, kept token by token: what each
        token cost, the model's `top_k` guesses for it, and every layer's state after it (see
        probe.py). At most MAX_INSPECT_CHARS characters, for the states are all kept."""
        if len(text) > MAX_INSPECT_CHARS:
            raise ValueError(f"text to inspect is {len(text):,} characters; the limit is "
                             f"{MAX_INSPECT_CHARS:,}")
        ids = self.tokenizer.encode(text)
        if len(ids) < 2:
            raise ValueError("text to inspect needs at least 2 tokens")
        return inspect_ids(self.model, self.tokenizer, ids,
                           predicted_chars(self.tokenizer, len(text), ids), top_k)

    # --- description ---

    def card(self) -> str:
        """The model card: what this model is and how it was made, as plain text."""
        return model_card(self.config, self.model.num_params())


def _figures(nats: float, n_tokens: int, chars: int, unknown: int, streams: int) -> dict:
    loss = nats / chars
    return {"loss": loss, "bpc": loss / math.log(2), "perplexity": math.exp(loss),
            "chars": chars, "tokens": n_tokens, "nats_per_token": nats / n_tokens,
            "unknown": unknown, "streams": streams}


def model_card(config: dict, num_params: int | None = None) -> str:
    """The model card of a checkpoint's config. A field of the wrong type (a hand-edited or
    hostile config.json) makes a shorter card that says so, never an exception."""
    try:
        return _card(config, num_params)
    except (TypeError, ValueError, AttributeError):
        return ("(this checkpoint's config.json has fields of the wrong type: its card cannot be "
                "shown in full)\n" + json.dumps(config.get("model") if isinstance(config, dict)
                                                else None))


def training_summary(config: dict) -> dict:
    """The training section of a checkpoint's config, or {} where it is not an object (it is
    only a record for the card: a hand-edited one loses its card lines, not the model)."""
    tr = config.get("training") if isinstance(config, dict) else None
    return tr if isinstance(tr, dict) else {}


def _card(config: dict, num_params: int | None) -> str:
    m, t, tr = config.get("model", {}), config.get("tokenizer", {}), training_summary(config)
    lines = [f"model      {m.get('layers')}-layer {m.get('cell', '?').upper()}, hidden "
             f"{m.get('hidden')}, embedding {m.get('embed')}, dropout {m.get('dropout')}"
             + (", tied weights" if m.get("tie_weights") else "") + said_regularizers(m)]
    if num_params is not None:
        lines.append(f"parameters {num_params:,}")
    lines.append(f"tokenizer  {t.get('kind')}, vocabulary {t.get('vocab_size')}")
    if tr:
        val = tr.get("val_loss")
        lines += [
            f"corpus     {tr.get('corpus_name')} ({tr.get('corpus_chars', 0):,} chars)",
            f"trained    {tr.get('steps', 0):,} steps, {tr.get('chars_seen', 0):,} chars seen, "
            f"{_hms(tr.get('train_time_s', 0))} training ({_hms(tr.get('wall_time_s', 0))} wall)",
            "validation " + (f"{val:.4f} nats/char, {tr.get('val_bpc'):.4f} bits/char "
                             f"(measured at step {tr.get('best_step'):,})" if val is not None
                             else "-"),
            f"version    textrnn {config.get('textrnn_version')}, format "
            f"{config.get('format_version')}",
            f"command    {tr.get('command') or '-'}",
        ]
    return "\n".join(lines)


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s // 60 % 60:02d}m{s % 60:02d}s"
    return f"{s // 60}m{s % 60:02d}s"


def load(path: str | Path, device: str | torch.device = "cpu") -> LM:
    """Load a checkpoint folder (or a run folder: its best checkpoint) as an `LM`; or, where no
    folder of that name exists, the model a Hugging Face Hub repo id names (`user/name`, or
    `user/name@revision`), fetched into the Hub's cache (hub.py)."""
    folder = hub.locate(path)
    model, tokenizer, config = checkpoint.load(folder, pick_device(str(device)))
    return LM(model, tokenizer, config, hub.origin(folder))
