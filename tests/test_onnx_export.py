"""textrnn export --onnx: onnxruntime against PyTorch for every cell and tokenizer, the graph's
names, shapes and metadata, the files beside it, the docs' example, and the mistakes."""

import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from conftest import ROOT, TINY, make_model
from textrnn import CELLS, checkpoint, export_onnx
from textrnn.cli import main
from textrnn.export import output
from textrnn.onnxgraph import META_CONFIG, META_TOKENIZER, metadata
from textrnn.sample import generate
from textrnn.tokenizer import build, tokenizer_from_json

TOKENIZERS = {kind: build(kind, TINY, 300 if kind == "bpe" else None, log=lambda m: None)
              for kind in ("char", "byte", "bpe")}


@functools.cache
def trained(cell: str, kind: str = "char", seed: int = 0, **kw):
    """A tiny model of `cell` over the `kind` tokenizer, every weight moved at random from its
    initial value (a min cell's zero head included, so that no logit is a constant); made
    once, and never changed by a test. (Training a few steps instead takes seconds for GRU.)"""
    tok = TOKENIZERS[kind]
    model = make_model(cell, vocab=tok.vocab_size, seed=seed, **kw)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)
    return model.eval(), tok


def exported(tmp_path, model, tok, sequence=False, name="model.onnx"):
    """`model` saved as a checkpoint, exported; its onnxruntime session."""
    folder = checkpoint.save(tmp_path / "ckpt", model, tok, {"steps": 1})
    done = export_onnx(folder, tmp_path / name, sequence=sequence)
    assert done.checked.startswith("checked with onnxruntime"), done.checked
    return ort.InferenceSession(str(tmp_path / name), providers=["CPUExecutionProvider"])


class Stepper:
    """The exported step graph driven one token at a time, its state carried."""

    def __init__(self, session, batch=1):
        self.session = session
        self.state = {i.name: np.zeros((i.shape[0], batch, i.shape[2]), np.float32)
                      for i in session.get_inputs()[1:]}

    def __call__(self, tokens) -> np.ndarray:
        logits, *new = self.session.run(None, {"token": np.asarray(tokens, np.int64),
                                               **self.state})
        self.state = dict(zip(self.state, new))
        return logits                                                     # (B, V)


def onnx_greedy(session, tok, prompt: str, chars: int) -> str:
    """Greedy text by an argmax loop over onnxruntime, masked as textrnn's sampler masks:
    never the unknown id, never a token that would break a UTF-8 character."""
    step, guard, utf8 = Stepper(session), tok.utf8_guard(), 0
    for t in tok.encode(prompt).tolist():
        logits = step([t])
    decode, text = tok.stream_decoder().step, ""
    while len(text) < chars:
        scores = logits[0].astype(np.float64)
        if tok.unk_id is not None:
            scores[tok.unk_id] = -np.inf
        if guard is not None:
            scores[guard[0][utf8].numpy() == 0] = -np.inf
        nxt = int(scores.argmax())
        if guard is not None:
            utf8 = max(int(guard[1][utf8, nxt]), 0)
        text += decode(nxt)
        logits = step([nxt])
    return text[:chars]


def torch_greedy(model, tok, prompt: str, chars: int) -> str:
    """textrnn's own greedy text: temperature 0 on the plain PyTorch path."""
    decode, text = tok.stream_decoder().step, ""
    steps = generate(model, tok.encode(prompt), None, temperature=0, fast=False,
                     banned=[] if tok.unk_id is None else [tok.unk_id], guard=tok.utf8_guard())
    for ids in steps:
        text += decode(int(ids[0]))
        if len(text) >= chars:
            return text[:chars]


@pytest.mark.parametrize("kind", TOKENIZERS)
@pytest.mark.parametrize("cell", CELLS)
def test_onnxruntime_matches_pytorch_over_1000_steps_and_500_greedy_chars(cell, kind,
                                                                          tmp_path):
    model, tok = trained(cell, kind)
    session = exported(tmp_path, model, tok)
    ids = tok.encode(TINY * 3)[:1000].long()
    with torch.inference_mode():
        expected = model(ids[None])[0][0].numpy()                         # (1000, V)
    step = Stepper(session)
    got = np.concatenate([step([t]) for t in ids.tolist()])
    assert np.abs(got - expected).max() < 1e-4
    want = torch_greedy(model, tok, "ANNA:\n", 500)
    assert len(want) == 500 and onnx_greedy(session, tok, "ANNA:\n", 500) == want


@pytest.mark.parametrize("cell", ["lstm", "gru", "minlstm"])
def test_tied_weights_are_stored_once_and_match(cell, tmp_path):
    model, tok = trained(cell, embed=16, tie_weights=True)
    session = exported(tmp_path, model, tok)
    ids = tok.encode(TINY)[:200].long()
    with torch.inference_mode():
        expected = model(ids[None])[0][0].numpy()
    step = Stepper(session)
    assert np.abs(np.concatenate([step([t]) for t in ids.tolist()]) - expected).max() < 1e-4
    names = [i.name for i in onnx.load(tmp_path / "model.onnx").graph.initializer]
    assert "embed.weight" in names and "head.weight" not in names


@pytest.mark.parametrize("cell", ["lstm", "rnn_relu", "mingru"])
def test_a_batch_of_streams_steps_as_pytorch_does(cell, tmp_path):
    model, tok = trained(cell)
    session = exported(tmp_path, model, tok)
    ids = tok.encode(TINY)[:300].long().view(3, 100)                     # 3 streams
    with torch.inference_mode():
        expected, _, state = model(ids)                                   # (3, 100, V)
    step = Stepper(session, batch=3)
    got = np.stack([step(ids[:, t].numpy()) for t in range(100)], 1)
    assert np.abs(got - expected.numpy()).max() < 1e-4
    states = state if isinstance(state, tuple) else (state,)
    for name, want in zip(step.state, states):
        assert np.abs(step.state[name] - want.numpy()).max() < 1e-4


@pytest.mark.parametrize("cell", ["lstm", "gru", "minlstm"])
def test_the_sequence_graph_scores_a_batch_in_one_call(cell, tmp_path):
    model, tok = trained(cell)
    session = exported(tmp_path, model, tok, sequence=True)
    ids = tok.encode(TINY)[:400].long().view(2, 200)
    with torch.inference_mode():
        expected, _, state = model(ids)
    start = {i.name: np.zeros((2, 2, 16), np.float32) for i in session.get_inputs()[1:]}
    logits, *states = session.run(None, {"tokens": ids.numpy(), **start})
    assert logits.shape == (2, 200, tok.vocab_size)
    assert np.abs(logits - expected.numpy()).max() < 1e-4
    for got, want in zip(states, state if isinstance(state, tuple) else (state,)):
        assert np.abs(got - want.numpy()).max() < 1e-4


def test_the_graph_is_named_and_complete_on_its_own(tmp_path):
    model, tok = trained("lstm", "bpe")
    session = exported(tmp_path, model, tok, name="mine.onnx")
    ins = {i.name: (i.type, i.shape) for i in session.get_inputs()}
    outs = {o.name: (o.type, o.shape) for o in session.get_outputs()}
    V = tok.vocab_size
    assert ins == {"token": ("tensor(int64)", ["batch"]),
                   "h": ("tensor(float)", [2, "batch", 16]),
                   "c": ("tensor(float)", [2, "batch", 16])}
    assert outs == {"logits": ("tensor(float)", ["batch", V]),
                    "h_out": ("tensor(float)", [2, "batch", 16]),
                    "c_out": ("tensor(float)", [2, "batch", 16])}
    meta = metadata((tmp_path / "mine.onnx").read_bytes())
    ckpt = tmp_path / "ckpt"
    assert meta[META_CONFIG] == (ckpt / "config.json").read_text(encoding="utf-8") == \
        (tmp_path / "mine.config.json").read_text(encoding="utf-8")
    assert meta[META_TOKENIZER] == (ckpt / "tokenizer.json").read_text(encoding="utf-8") == \
        (tmp_path / "mine.tokenizer.json").read_text(encoding="utf-8")
    assert tokenizer_from_json(meta[META_TOKENIZER]).encode(TINY).tolist() == \
        tok.encode(TINY).tolist()
    assert json.loads(meta[META_CONFIG])["model"]["cell"] == "lstm"
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["ckpt", "mine.config.json", "mine.onnx", "mine.tokenizer.json"]


def test_min_cells_carry_h_alone(tmp_path):
    model, tok = trained("minlstm", layers=3)
    session = exported(tmp_path, model, tok)
    assert [i.name for i in session.get_inputs()] == ["token", "h"]
    assert [o.name for o in session.get_outputs()] == ["logits", "h_out"]
    assert session.get_inputs()[1].shape == [3, "batch", 16]


def test_the_docs_example_samples_text(tmp_path):
    """docs/export.md's onnxruntime example, run as it is over a char model exported under the
    name it uses."""
    text = (ROOT / "docs" / "export.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text[text.index("## ONNX"):], re.S).group(1)
    model, tok = trained("lstm")
    exported(tmp_path, model, tok, name="shakespeare.onnx")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ROMEO:") and len(done.stdout) > 150
    assert set(done.stdout[len("ROMEO:"):]) <= set(tok.chars) | {"\n"}


# --- the command line ---

def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def run(tmp_path):
    """A finished run folder: its best checkpoint at the top, its latest in last/."""
    model, tok = trained("gru")
    checkpoint.save(tmp_path / "run", model, tok, {"steps": 1})
    checkpoint.save(tmp_path / "run" / "last", model, tok, {"steps": 1})
    return tmp_path / "run"


def test_the_cli_exports_a_run_and_says_what_it_checked(run, tmp_path, capsys):
    code, _, err = cli(capsys, "export", run, "--onnx", tmp_path / "out" / "gru.onnx")
    assert code == 0, err
    assert "wrote " in err and "checked with onnxruntime" in err and "against PyTorch" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == \
        ["gru.config.json", "gru.onnx", "gru.tokenizer.json"]


def _one_line(code, err, said):
    assert code == 1 and said in err, err
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_an_unfinished_run_is_refused(run, tmp_path, capsys):
    """A run that has not validated yet holds only last/: nothing to export."""
    checkpoint.clear_run(run)
    model, tok = trained("gru", seed=1)
    checkpoint.save(run / "last", model, tok, {"steps": 1})
    code, _, err = cli(capsys, "export", run, "--onnx", tmp_path / "x.onnx")
    _one_line(code, err, "holds no best checkpoint yet, only last/")
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("argv, said", [
    (["export", "{tmp}/nowhere", "--onnx", "{tmp}/x.onnx"], "no such run folder"),
    (["export", "{tmp}/empty", "--onnx", "{tmp}/x.onnx"], "holds no best checkpoint"),
    (["export", "{run}", "--onnx", "{tmp}/x.txt"], "should end in .onnx"),
    (["export", "{run}"], "one of the arguments --onnx --web is required"),
])
def test_mistakes_are_one_line_and_write_nothing(run, tmp_path, capsys, argv, said):
    (tmp_path / "empty").mkdir()
    before = sorted(tmp_path.rglob("*"))
    code, _, err = cli(capsys, *[a.format(tmp=tmp_path, run=run) for a in argv])
    assert code == 1 and said in err, err
    assert "Traceback" not in err and sorted(tmp_path.rglob("*")) == before


def test_an_output_that_exists_is_kept_unless_overwrite(run, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    for name in ("m.onnx", "m.tokenizer.json"):  # (one of the three is enough to refuse)
        (tmp_path / name).write_text("mine")
        code, _, err = cli(capsys, "export", run, "--onnx", out)
        _one_line(code, err, f"{tmp_path / name} exists; pass --overwrite")
        assert (tmp_path / name).read_text() == "mine"
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["run", name])
        (tmp_path / name).unlink()
    out.write_text("mine")
    code, _, err = cli(capsys, "export", run, "--onnx", out, "--overwrite")
    assert code == 0, err
    assert metadata(out.read_bytes())[META_TOKENIZER] == (run / "tokenizer.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["m.config.json", "m.onnx", "m.tokenizer.json", "run"]


def test_an_interrupted_write_leaves_nothing(tmp_path):
    for exc in (KeyboardInterrupt, OSError):
        with pytest.raises(exc):
            with output(tmp_path / "a.onnx") as tmp:
                tmp.write_bytes(b"half")
                raise exc
    assert list(tmp_path.iterdir()) == []
    with output(tmp_path / "site") as tmp:  # (a folder, as a web export writes)
        (tmp / "deep").mkdir(parents=True)
    assert (tmp_path / "site" / "deep").is_dir()
    with pytest.raises(FileExistsError, match="is a folder"):
        with output(tmp_path / "site", overwrite=True) as tmp:
            tmp.write_text("a file")
    assert [p.name for p in tmp_path.iterdir()] == ["site"]


def test_without_onnx_the_error_names_the_extra(run, tmp_path):
    code = ("import sys; sys.modules['onnx'] = None\n"
            "from textrnn.cli import main\n"
            f"sys.exit(main(['export', {str(run)!r}, '--onnx', {str(tmp_path / 'x.onnx')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent, timeout=60)
    _one_line(done.returncode, done.stderr, 'pip install "textrnn[onnx]"')
    assert not (tmp_path / "x.onnx").exists()


def test_a_model_past_protobufs_limit_is_refused_in_one_line(monkeypatch):
    """(The limit lowered, not a 2 GB model built.)"""
    from textrnn import onnxgraph
    monkeypatch.setattr(onnxgraph, "MAX_BYTES", 1000)
    with pytest.raises(ValueError, match="one .onnx file holds at most"):
        onnxgraph.build(make_model("lstm"), "{}", "{}")
