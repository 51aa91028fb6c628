"""Pinned behaviour: a fixed seed and config give these exact weights, losses and texts.

Written before the trainer, the config and generation were restructured (issue 14), and meant to
outlive it: code that only moves things must leave every figure here as it is. A change that
means to alter training or sampling updates `pinned.json` in the same commit and says why:

    python tests/test_pinned.py    # rewrites tests/pinned.json from this machine

Float results depend on the CPU's vector units and the PyTorch build, so the exact weight hashes
are compared where the platform is the one they were recorded on (CI's); everywhere else the
losses must agree to 1e-4 and the texts exactly. A run added on another platform than the
file's (minGRU and minLSTM, pinned on an AVX2 machine) has no hashes until the file is
rewritten on one platform.
"""

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import textrnn
from textrnn import CELLS, ModelConfig, Terminal, TrainConfig, train

from conftest import TINY  # (tests/ is on the path: pytest's, or the script's own folder)

PINNED = Path(__file__).with_name("pinned.json")
PROMPT = "ANNA:\n"
SAMPLES = {  # name -> generation settings
    "t0.8": dict(temperature=0.8, seed=3),
    "topk": dict(temperature=1.0, top_k=5, seed=4),
    "topp": dict(temperature=1.2, top_p=0.9, seed=5),
    "argmax": dict(temperature=0.0, seed=6),
}


def platform_key() -> str:
    cpu = torch.backends.cpu.get_cpu_capability()
    return f"torch {torch.__version__}, {platform.machine()}, {cpu}"


def run_configs(corpus: Path, root: Path) -> dict[str, TrainConfig]:
    """One short fp32 run per cell with every size set, and one that leaves the sizes, batch,
    lr, dropout and weight decay to the adaptive defaults."""
    common = dict(corpus=str(corpus), max_steps=80, evals=3, log_every=10, precision="fp32",
                  seed=7)
    runs = {cell: TrainConfig(out=str(root / cell), seq_len=16, batch_size=4, lr=1e-2,
                              model=ModelConfig(cell=cell, hidden=16, embed=8, layers=2,
                                                dropout=0.1), **common)
            for cell in CELLS}
    runs["auto"] = TrainConfig(out=str(root / "auto"), **common)
    return runs


def weights_sha(path: Path) -> str:
    weights = load_file(path / "model.safetensors")
    h = hashlib.sha256()
    for name in sorted(weights):
        h.update(name.encode() + weights[name].numpy().tobytes())
    return h.hexdigest()


def observe(run: Path, said: list[str]) -> dict:
    """What a run produced: weight hashes, losses, its resolved config and what it said."""
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    config = json.loads((run / "last" / "config.json").read_text())
    return {
        "best_sha": weights_sha(run), "last_sha": weights_sha(run / "last"),
        "train_loss": [m["train_loss"] for m in metrics if "train_loss" in m],
        "val_loss": [m["val_loss"] for m in metrics if "val_loss" in m],
        "model": config["model"], "train_config": config["training"]["train_config"],
        "chose": [m for m in said if m.startswith("chose")],
    }


def texts(run: Path, plain: bool) -> dict[str, str]:
    """The pinned samples of a run, on the kernel or (in a child with the kernel turned off) on
    the plain PyTorch path."""
    if not plain:
        lm = textrnn.load(run)
        return {name: lm.generate(PROMPT, 300, **s) for name, s in SAMPLES.items()}
    code = ("import json, sys, textrnn\n"
            "from textrnn import fast\n"
            "assert fast.status().startswith('plain'), fast.status()\n"
            "lm = textrnn.load(sys.argv[1])\n"
            f"print(json.dumps({{n: lm.generate({PROMPT!r}, 300, **s) "
            f"for n, s in {SAMPLES!r}.items()}}))")
    out = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True,
                         env={**os.environ, "TEXTRNN_KERNEL": "0"}, timeout=300, check=True)
    return json.loads(out.stdout)


def record(root: Path) -> dict:
    corpus = root / "tiny.txt"
    corpus.write_text(TINY, encoding="utf-8")
    runs = {}
    for name, cfg in run_configs(corpus, root).items():
        said = []
        runs[name] = observe(train(cfg, reporter=Terminal(log=said.append, progress=False)), said)
    return {"platform": platform_key(), "runs": runs,
            "texts": texts(root / "lstm", plain=False)}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    root = tmp_path_factory.mktemp("pinned")
    return root, record(root)


@pytest.fixture(scope="module")
def pinned():
    return json.loads(PINNED.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", [*CELLS, "auto"])
def test_same_seed_same_training_run(recorded, pinned, name):
    got, want = recorded[1]["runs"][name], pinned["runs"][name]
    assert got["train_loss"] == pytest.approx(want["train_loss"], abs=1e-4)
    assert got["val_loss"] == pytest.approx(want["val_loss"], abs=1e-4)
    assert (got["model"], got["train_config"]["lr"], got["chose"]) == \
        (want["model"], want["train_config"]["lr"], want["chose"])
    assert {k: v for k, v in got["train_config"].items() if k not in ("out", "corpus")} == \
        {k: v for k, v in want["train_config"].items() if k not in ("out", "corpus")}
    if recorded[1]["platform"] == pinned["platform"] and want["best_sha"] is not None:
        assert (got["best_sha"], got["last_sha"]) == (want["best_sha"], want["last_sha"])


@pytest.mark.slow
@pytest.mark.parametrize("plain", [False, True], ids=["kernel", "plain"])
def test_same_seed_same_text_on_both_generation_paths(recorded, pinned, plain):
    if not plain:
        assert textrnn.fast.status() == "fast kernel"
        assert recorded[1]["texts"] == pinned["texts"]
    else:
        assert texts(recorded[0] / "lstm", plain=True) == pinned["texts"]


if __name__ == "__main__":
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        PINNED.write_text(json.dumps(record(Path(tmp)), indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {PINNED}")
