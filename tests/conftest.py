"""Shared fixtures: tiny corpora and tiny, seeded, CPU-only models."""

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

# Token files and the compiled kernel go to a cache of this session's own, not the user's.
os.environ["TEXTRNN_CACHE"] = tempfile.mkdtemp(prefix="textrnn-test-cache-")

from textrnn import CharTokenizer, ModelConfig, RNNLM, Reporter, TrainConfig, train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# An original toy text: short lines with speaker names, enough structure to learn in seconds.
TINY = "".join(
    f"{who}:\nThe {thing} is {how}, and so am I.\n\n"
    for who, thing, how in [
        ("ANNA", "moon", "bright"), ("BEN", "sea", "grey"), ("ANNA", "wind", "cold"),
        ("CARL", "road", "long"), ("BEN", "night", "still"), ("CARL", "fire", "warm"),
    ]
) * 8


@pytest.fixture
def tiny_text() -> str:
    return TINY


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text(TINY, encoding="utf-8")
    return path


def make_model(cell="lstm", vocab=20, hidden=16, layers=2, embed=8, seed=0, dropout=0.0,
               **kw) -> RNNLM:
    torch.manual_seed(seed)
    return RNNLM(ModelConfig(vocab_size=vocab, cell=cell, hidden=hidden, layers=layers,
                             embed=embed, dropout=dropout, **kw))


@pytest.fixture
def tokenizer() -> CharTokenizer:
    return CharTokenizer.train(TINY)


# --- the web page's: a checkpoints folder, its catalog, the page served ---

@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A folder with one good checkpoint (trained on corpora/tiny.txt) and two broken ones."""
    root = tmp_path_factory.mktemp("checkpoints")
    cfg = TrainConfig(corpus=str(ROOT / "corpora" / "tiny.txt"), out=str(root / "tiny"),
                      model=ModelConfig(hidden=128, embed=16, layers=2), seq_len=32,
                      batch_size=4, lr=1e-2, max_steps=60, evals=2)
    train(cfg, reporter=Reporter())
    shutil.rmtree(root / "tiny" / "last")
    train(TrainConfig(corpus=str(ROOT / "corpora" / "tiny.txt"), out=str(root / "tiny-bpe"),
                      tokenizer="bpe", vocab_size=300, model=ModelConfig(hidden=32, embed=16),
                      seq_len=16, batch_size=4, max_steps=20, evals=1),
          reporter=Reporter())
    (root / "tiny" / "examples.json").write_text(json.dumps(
        {"about": "a toy", "prompts": ["ANNA:\n", "The sea"]}))
    (root / "broken").mkdir()
    (root / "broken" / "config.json").write_text("{ not json")
    shutil.copytree(root / "tiny", root / "future")
    cfg = json.loads((root / "future" / "config.json").read_text())
    cfg["format_version"] = 99
    (root / "future" / "config.json").write_text(json.dumps(cfg))
    return root


@pytest.fixture(scope="module")
def catalog(checkpoints):
    from textrnn.web.catalog import Catalog
    return Catalog(checkpoints)


@pytest.fixture(scope="module")
def server(catalog):
    from textrnn.web.page import build
    from textrnn.web.server import serve
    from support import SERVED, free_port
    port = free_port()
    demo = serve(build(catalog), "127.0.0.1", port, block=False)
    url = f"http://127.0.0.1:{port}/"
    SERVED[url] = catalog.root
    yield url
    demo.close()


@pytest.fixture(scope="module")
def workbench_server(checkpoints, tmp_path_factory):
    from textrnn.web import workbench
    from textrnn.web.catalog import Catalog
    from textrnn.web.page import build
    from textrnn.web.server import serve
    from support import free_port
    runs = tmp_path_factory.mktemp("web-runs")
    bench = workbench.Workbench(runs, max_minutes=1)
    catalog = Catalog(checkpoints, private=runs)
    port = free_port()
    demo = serve(build(catalog, bench), "127.0.0.1", port, block=False)
    yield f"http://127.0.0.1:{port}/", bench
    demo.close()
