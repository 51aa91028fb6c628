"""`textrnn export RUN --web DIR`: a folder of static files that writes text in the visitor's
browser, with no server and no request to any other host.

    DIR/index.html   the page: prompt, length, temperature, top-k, top-p, seed; Generate, Stop;
                     the model's card and figures
    DIR/*.js         the engine (engine.js), tokenizers (tokenize.js), sampling (textrnn.js)
                     and the page's controls (page.js), hand-written, no dependencies
    DIR/model.js     the weights (base64 of the little-endian tensors, fp32 or fp16), their
                     manifest (names, shapes, offsets), the tokenizer and the config

The weights travel in a `<script src>` rather than a file the page fetches, because a page
opened from the disk (file://) may neither fetch() nor start a Worker in Chromium. The engine
ports model.py's cells, sample.sample_next's rule, torch's CPU generator and the UTF-8 guard,
so that the page's seeded text is textrnn's plain path's (docs/export.md says where float
differences can part them). Its matrix-vector products run in one hand-written WebAssembly SIMD
function (matvec.wat), measured 5-6x plain JavaScript's speed and as fast as onnxruntime-web's
step, at 1/500 of its size (docs/export.md). Left out on purpose: WebGL/WebGPU (a step is too
small to pay for the trip), and batches of samples.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from .. import checkpoint as checkpoints
from ..export import output
from ..lm import model_card, training_summary
from ..model import num_params, param_shapes

ASSETS = ("index.html", "tokenize.js", "engine.js", "textrnn.js", "page.js")
DTYPES = {"fp32": np.float32, "fp16": np.float16}
# The weights a page may carry: 256 MiB is base64 of ~358M characters in one script, under
# V8's longest string (2^29 - 24 characters), with room for the decoded copy in a tab
MAX_WEB_BYTES = 256 * 2**20
FORMAT = "textrnn-web"
FORMAT_VERSION = 1


def export_web(checkpoint: Path, out: Path, *, dtype: str = "fp32",
               max_bytes: int | None = None, overwrite: bool = False) -> Path:
    """Write the page of the checkpoint folder `checkpoint` to the folder `out`, whole or not
    at all (export.output: built beside it, then renamed into place). One line, and nothing
    written, for an output that exists (unless `overwrite`), an unknown dtype, or a model over
    `max_bytes` of weights (None: MAX_WEB_BYTES)."""
    out, max_bytes = Path(out), MAX_WEB_BYTES if max_bytes is None else max_bytes
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if out.is_symlink() or (out.exists() and not overwrite):
        raise FileExistsError(f"{out} already exists; choose a new folder for the web page, "
                              "or pass --overwrite to replace it")
    config, cfg, tokenizer, weights_file = checkpoints.check(checkpoint)
    size = num_params(cfg) * np.dtype(DTYPES[dtype]).itemsize
    if size > max_bytes:
        raise ValueError(too_large(num_params(cfg), dtype, max_bytes))
    with output(out, overwrite=True) as tmp:
        tmp.mkdir(mode=0o755)  # a page is meant to be served: readable by all
        for name in ASSETS:
            shutil.copyfile(Path(__file__).with_name(name), tmp / name)
        model = model_script(config, cfg, json.loads(tokenizer.to_json()), weights_file, dtype)
        (tmp / "model.js").write_text(model, encoding="utf-8")
    return out


def too_large(params: int, dtype: str, max_bytes: int) -> str:
    """The one line that refuses a model too large for a page, with the limit in parameters."""
    fits = {d: max_bytes // np.dtype(t).itemsize for d, t in DTYPES.items()}
    hint = "; try --dtype fp16" if dtype == "fp32" and params <= fits["fp16"] else ""
    return (f"the model has {params:,} parameters, too many for a web page: a page carries at "
            f"most {max_bytes / 2**20:,.0f} MiB of weights ({fits['fp32']:,} parameters in fp32, "
            f"{fits['fp16']:,} in fp16){hint}")


def weights(cfg, weights_file: Path, dtype: str) -> tuple[list, bytes]:
    """The manifest [[name, shape, byte offset], ...] and the tensors, little-endian, one after
    another in param_shapes' order (each offset a multiple of 4)."""
    tensors = load_file(weights_file)
    shapes = param_shapes(cfg)
    if cfg.tie_weights:
        shapes.pop("head.weight")  # the embedding, which the engine reads as the head
    manifest, parts, offset = [], [], 0
    for name, shape in shapes.items():
        with np.errstate(over="ignore"):  # (fp16's overflow is refused below, by name)
            t = tensors[name].astype(np.dtype(DTYPES[dtype]).newbyteorder("<"))
        if not np.isfinite(t).all():
            raise ValueError(f"{name} holds values beyond {dtype}'s range (or NaN): export it "
                             "as fp32")
        data = t.tobytes() + b"\0" * (-t.nbytes % 4)
        manifest.append([name, list(shape), offset])
        parts.append(data)
        offset += len(data)
    return manifest, b"".join(parts)


def figures(config: dict, params: int) -> list[list[str]]:
    """The figures the page shows beside the card, as [label, value] rows."""
    m, t, tr = config["model"], config["tokenizer"], training_summary(config)
    rows = [["cell", m["cell"] + (", tied weights" if m.get("tie_weights") else "")],
            ["layers x hidden", f"{m['layers']} x {m['hidden']}"],
            ["parameters", f"{params:,}"],
            ["tokenizer", f"{t['kind']}, vocabulary {t['vocab_size']:,}"]]
    if isinstance(tr.get("corpus_name"), str):
        rows.append(["corpus", tr["corpus_name"]])
    if isinstance(tr.get("val_bpc"), (int, float)):
        rows.append(["validation", f"{tr['val_bpc']:.4f} bits/char"])
    if isinstance(tr.get("train_time_s"), (int, float)):
        rows.append(["training time", f"{tr['train_time_s'] / 60:.1f} min"])
    return rows


def model_script(config: dict, cfg, tokenizer: dict, weights_file: Path, dtype: str) -> str:
    """model.js: one call that hands the page its model, weights as base64."""
    manifest, data = weights(cfg, weights_file, dtype)
    params = num_params(cfg)
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "dtype": dtype,
           "model": cfg.to_dict(), "tokenizer": tokenizer, "tensors": manifest,
           "card": model_card(config, params), "figures": figures(config, params)}
    return (f"textrnnModel({json.dumps(doc, ensure_ascii=True)},\n"
            f"\"{base64.b64encode(data).decode('ascii')}\");\n")
