"""The model card a pushed run carries: README.md with the Hub's metadata in its front matter
(library, license, language where given, tags), what the model is, what it was trained on (the
corpus's name, size and hash, never its text), its validation figure, the loss curve (loss.png)
and three samples, and how to load it.

Every field that comes from a checkpoint is treated as untrusted text: the front matter holds
JSON strings (valid YAML, so quotes, newlines and `---` stay inside them), the body escapes
HTML and keeps each value on one line, and samples sit in code fences longer than any run of
backticks they hold.
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

from . import __version__
from .lm import LM
from .metrics import TrainRecord, ValRecord, read_metrics
from .model import said_regularizers

CARD, CURVE = "README.md", "loss.png"
SAMPLES, SAMPLE_CHARS, SAMPLE_TEMPERATURE = 3, 300, 0.8  # the card's samples, seeds 1..3


def write_card(lm: LM, run: Path, folder: Path, repo_id: str, license: str | None = None,
               language: str | None = None) -> dict[str, Path]:
    """README.md (the model card) and loss.png for `lm`, loaded from `run`, into `folder`;
    {name in the repo: path}."""
    config, records = lm.config, read_metrics(run)
    out = {CARD: folder / CARD}
    if _plot(records, folder / CURVE):
        out[CURVE] = folder / CURVE
    samples = [lm.generate("", SAMPLE_CHARS, temperature=SAMPLE_TEMPERATURE, seed=s)
               for s in range(1, SAMPLES + 1)]
    text = card_text(config, lm.model.num_params(), repo_id, samples, CURVE in out, license,
                     language)
    (folder / CARD).write_text(text, encoding="utf-8")
    return out


def card_metadata(config: dict, license: str | None, language: str | None) -> dict:
    """The card's YAML front matter, as a dict: the library, a license, the language where
    known, tags the Hub filters on."""
    model = config.get("model") or {}
    kind = (config.get("tokenizer") or {}).get("kind", "char")
    meta = {"library_name": "textrnn", "license": license or "other",
            "pipeline_tag": "text-generation",
            "tags": ["textrnn", "recurrent-neural-network", str(model.get("cell", "rnn")),
                     {"char": "character-level", "byte": "byte-level"}.get(kind, "bpe")]}
    if language:
        meta["language"] = [language]
    return meta


def _yaml(meta: dict) -> str:
    """Front matter whose every string is a JSON string (valid YAML), so no field can break out
    of it: quotes, newlines and `---` stay inside their quotes."""
    lines = []
    for key, value in meta.items():
        if isinstance(value, list):
            lines += [f"{key}:"] + [f"- {json.dumps(str(v))}" for v in value]
        else:
            lines.append(f"{key}: {json.dumps(str(value))}")
    return "---\n" + "\n".join(lines) + "\n---\n"


def _plain(value, limit: int = 200) -> str:
    """A config value as card text: one line, cut, HTML escaped."""
    return html.escape(" ".join(str(value).split())[:limit])


def _fenced(text: str) -> str:
    """`text` in a code fence longer than any run of backticks inside it."""
    fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", text)), default=0))
    return f"{fence}text\n{text}\n{fence}"


def _averaged(training: dict) -> str:
    """A sentence for a run trained with --ema: its weights are an average."""
    ema = (training.get("train_config") or {}).get("ema")
    if not isinstance(ema, (int, float)) or not 0 < ema < 1:
        return ""
    return (f" Its weights are an exponential moving average of the trained ones (decay "
            f"{ema:g}).")


def card_text(config: dict, num_params: int, repo_id: str, samples: list[str], curve: bool,
              license: str | None = None, language: str | None = None) -> str:
    m, t = config.get("model") or {}, config.get("tokenizer") or {}
    tr = config.get("training") or {}
    val = tr.get("val_loss")
    tied = ", tied" if m.get("tie_weights") is True else ""
    lines = [_yaml(card_metadata(config, license, language)),
             f"# {_plain(repo_id.split('/')[-1])}", "",
             f"A {_plain(m.get('layers'))}-layer {_plain(str(m.get('cell', '?')).upper())} "
             f"language model ({num_params:,} parameters: hidden {_plain(m.get('hidden'))}, "
             f"embedding {_plain(m.get('embed'))}{tied}{_plain(said_regularizers(m))}, "
             f"{_plain(t.get('kind'))} tokenizer of "
             f"{_plain(t.get('vocab_size'))} tokens), trained with textrnn {__version__}."
             + _averaged(tr), "",
             "## Training data", "",
             f"`{_plain(tr.get('corpus_name'), 100)}`: {tr.get('corpus_chars', 0):,} characters, "
             f"SHA-256 `{_plain(tr.get('corpus_sha256'), 64)}`. The text itself is not in this "
             "repository.", "",
             "## Evaluation", ""]
    if isinstance(val, (int, float)) and math.isfinite(val):
        lines.append(f"Validation loss **{val:.4f} nats/char** ({val / math.log(2):.4f} "
                     f"bits/char), over {tr.get('val_chars', 0):,} characters of "
                     f"{_plain(tr.get('val_source'), 100)}, read as one stream, at step "
                     f"{tr.get('best_step') or 0:,} of {tr.get('steps') or 0:,} "
                     f"({tr.get('train_time_s') or 0:,.0f} s of training on "
                     f"{_plain(tr.get('device'), 40)}).")
    else:
        lines.append("No validation figure was recorded.")
    if curve:
        lines += ["", f"![Training and validation loss by step]({CURVE})"]
    lines += ["", "## Samples", "", f"Seeds 1 to {len(samples)}, temperature "
              f"{SAMPLE_TEMPERATURE}, {SAMPLE_CHARS} characters, no prompt:", ""]
    for sample in samples:
        lines += [_fenced(sample), ""]
    lines += ["## Use it", "", "With textrnn installed (see its README):", "",
              "```python", "import textrnn", f"lm = textrnn.load({json.dumps(repo_id)})",
              'print(lm.generate("", max_new_chars=300, temperature=0.8, seed=1))', "```", "",
              f"or `textrnn sample {repo_id} --length 300`, or `textrnn serve {repo_id}` for a "
              "web page.", ""]
    return "\n".join(lines)


def _plot(records: list, path: Path) -> bool:
    """The loss curve as a PNG (matplotlib, where installed); whether one was drawn."""
    train = [(r.step, r.train_loss) for r in records if isinstance(r, TrainRecord)]
    val = [(r.step, r.val_loss) for r in records if isinstance(r, ValRecord)]
    if not train and not val:
        return False
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    for points, label, style in ((train, "train", "-"), (val, "validation", "o-")):
        if points:
            ax.plot(*zip(*points), style, label=label, markersize=4)
    ax.set_xlabel("step")
    ax.set_ylabel("nats/char")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
