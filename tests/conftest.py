"""Shared fixtures: tiny corpora and tiny, seeded, CPU-only models."""

import os
import tempfile

import pytest
import torch

# Token files and the compiled kernel go to a cache of this session's own, not the user's.
os.environ["TEXTRNN_CACHE"] = tempfile.mkdtemp(prefix="textrnn-test-cache-")

from textrnn import CharTokenizer, ModelConfig, RNNLM

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
