import json
import math
import sys

import pytest
import torch
from safetensors.torch import load_file

from textrnn import ModelConfig, Terminal, TrainConfig, TrainRecord, load, read_metrics, train
from support import Silent
from textrnn.evaluate import evaluate_ids


def tiny_config(corpus, out, **kw):
    model = kw.pop("model", ModelConfig(hidden=32, embed=16, layers=1, dropout=0.0))
    defaults = dict(seq_len=16, batch_size=8, lr=1e-2, evals=2, max_steps=40, precision="fp32")
    return TrainConfig(corpus=str(corpus), out=str(out), model=model, **{**defaults, **kw})



def weights(run):
    return load_file(run / "last" / "model.safetensors")


def test_tiny_model_overfits_tiny_corpus(corpus_file, tmp_path, tiny_text):
    cfg = tiny_config(corpus_file, tmp_path / "run", max_steps=300, lr=2e-2, evals=1,
                      model=ModelConfig(hidden=64, embed=16, layers=1))
    run = train(cfg, Silent())
    lm = load(run)
    assert lm.evaluate(tiny_text)["loss"] < 0.5  # from ln(27) = 3.3 nats at the start
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train_loss"] for r in rows if "train_loss" in r]
    assert losses[-1] < losses[0] / 4
    assert [r["step"] for r in rows if "val_loss" in r] == [300]


def test_same_seed_same_run(corpus_file, tmp_path):
    a = train(tiny_config(corpus_file, tmp_path / "a", model=ModelConfig(hidden=16, embed=8,
                                                                         dropout=0.2)), Silent())
    b = train(tiny_config(corpus_file, tmp_path / "b", model=ModelConfig(hidden=16, embed=8,
                                                                         dropout=0.2)), Silent())
    wa, wb = weights(a), weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = train(tiny_config(corpus_file, tmp_path / "c", seed=2), Silent())
    assert not torch.equal(weights(c)["head.weight"], wa["head.weight"])


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_interrupt_and_resume_matches_an_unbroken_run(corpus_file, tmp_path, dropout):
    model = ModelConfig(hidden=16, embed=8, layers=2, dropout=dropout)
    whole = train(tiny_config(corpus_file, tmp_path / "whole", model=model, max_steps=30,
                              evals=3), Silent())

    def stop_at_13(step):
        if step == 13:
            raise KeyboardInterrupt

    cfg = tiny_config(corpus_file, tmp_path / "split", model=model, max_steps=30, evals=3)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, Silent(stop_at_13))
    assert json.loads((tmp_path / "split/last/resume.json").read_text())["step"] == 13
    split = train(TrainConfig(**{**cfg.__dict__, "resume": str(tmp_path / "split")}), Silent())
    wa, wb = weights(whole), weights(split)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # the metrics log reads as one run
    steps = [json.loads(x)["step"] for x in (split / "metrics.jsonl").read_text().splitlines()
             if "train_loss" in x]
    assert steps == sorted(set(steps)) and steps[-1] == 30


def test_resume_extends_the_budget(corpus_file, tmp_path):
    run = train(tiny_config(corpus_file, tmp_path / "r", max_steps=10), Silent())
    cfg = tiny_config(corpus_file, run, max_steps=25, resume=str(run))
    train(cfg, Silent())
    assert json.loads((run / "last/resume.json").read_text())["step"] == 25
    assert load(run / "last").config["training"]["steps"] == 25


def test_a_resumed_run_validates_on_the_split_it_was_started_with(tmp_path):
    """A run started with a small max_val_chars and resumed through the Python API without it
    (today's default) validates on its own split: the corpus is prepared from the merged
    config, not the default's larger split."""
    import random
    rng = random.Random(0)
    text = "".join(rng.choice("abcdefgh ") for _ in range(4000))
    corpus = tmp_path / "c.txt"
    corpus.write_text(text, encoding="utf-8")
    run = train(tiny_config(corpus, tmp_path / "r", max_steps=10, evals=1, max_val_chars=100),
                Silent())
    first = load(run / "last").config["training"]
    train(TrainConfig(corpus=str(corpus), out=str(run), resume=str(run), max_steps=20, evals=1),
          Silent())
    resumed = load(run / "last").config["training"]
    assert resumed["train_config"]["max_val_chars"] == 100
    assert resumed["val_chars"] == first["val_chars"] == 100
    val = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
           if "val_loss" in line][-1]
    assert val["step"] == 20  # ... and the figure is that of the run's own split, the last 100
    assert val["val_loss"] == pytest.approx(load(run / "last").evaluate(text[-100:])["loss"],
                                            abs=1e-4)


def test_existing_run_is_never_silently_overwritten(corpus_file, tmp_path):
    run = train(tiny_config(corpus_file, tmp_path / "r", max_steps=5), Silent())
    before = (run / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="--resume"):
        train(tiny_config(corpus_file, run, max_steps=5, seed=9), Silent())
    assert (run / "model.safetensors").read_bytes() == before
    train(tiny_config(corpus_file, run, max_steps=5, seed=9, overwrite=True), Silent())
    assert (run / "model.safetensors").read_bytes() != before


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(corpus_file, tmp_path, monkeypatch):
    cfg = tiny_config(corpus_file, tmp_path / "r", max_steps=40, evals=4)
    holder = {}

    def poison(step):  # after the first validation (step 10) has saved a checkpoint
        if step == 15:
            holder["model"].head.weight.data.fill_(float("nan"))

    train_module = sys.modules["textrnn.train"]
    real = train_module.RNNLM

    def spy(config):
        holder["model"] = real(config)
        return holder["model"]

    monkeypatch.setattr(train_module, "RNNLM", spy)
    with pytest.raises(FloatingPointError, match="last good checkpoint"):
        train(cfg, Silent(poison))
    lm = load(tmp_path / "r")
    assert lm.config["training"]["steps"] == 10
    assert math.isfinite(lm.evaluate("ANNA:\nThe moon")["loss"])


def test_time_budget_ends_the_run(corpus_file, tmp_path):
    """The run ends at the first step whose training time reaches the budget: the logic, not
    this machine's speed (a loaded machine takes fewer steps, never a longer run)."""
    cfg = tiny_config(corpus_file, tmp_path / "r", max_steps=None, time_budget=1.0, log_every=1)
    run = train(cfg, Silent())
    times = [r.train_time for r in read_metrics(run) if isinstance(r, TrainRecord)]
    summary = load(run / "last").config["training"]
    assert len(times) == summary["steps"] > 1 and times == sorted(times)
    # (records keep milliseconds: a step that ended at 0.9996 s reads 1.0, and the run went on)
    assert times[-2] <= 1.0 <= times[-1] == pytest.approx(summary["train_time_s"], abs=0.01)


def test_validation_file_and_short_corpus(tmp_path, tiny_text):
    corpus, val = tmp_path / "c.txt", tmp_path / "v.txt"
    corpus.write_text(tiny_text[:60])
    val.write_text(tiny_text[60:200])
    logs = []
    run = train(tiny_config(corpus, tmp_path / "r", max_steps=5, batch_size=32, seq_len=100),
                reporter=Terminal(log=logs.append, progress=False))
    assert any("batch-size 1, seq-len 53" in line for line in logs)  # 54 train chars after split
    cfg = tiny_config(corpus, tmp_path / "v", max_steps=5, val_file=str(val))
    summary = load(train(cfg, Silent())).config["training"]
    assert summary["val_chars"] == 140 and summary["val_source"] == str(val)
    assert run.exists()


def test_evaluation_in_chunks_equals_one_pass(tiny_text, monkeypatch):
    from conftest import make_model
    from textrnn import evaluate
    from textrnn.tokenizer import CharTokenizer
    tok = CharTokenizer.train(tiny_text)
    model = make_model(vocab=tok.vocab_size).eval()
    ids = tok.encode(tiny_text[:500])
    with torch.no_grad():
        logits, _, _ = model(ids[None, :-1])
    exact = torch.nn.functional.cross_entropy(logits[0], ids[1:].long(), reduction="sum").item()
    whole, n = evaluate_ids(model, ids, chunk=10_000)
    chunked, m = evaluate_ids(model, ids, chunk=7)
    monkeypatch.setattr(evaluate, "EVAL_LOGITS", 3 * tok.vocab_size)  # the head 3 rows at a time
    sliced, k = evaluate_ids(model, ids, chunk=10_000)
    assert n == m == k == 499
    assert all(math.isclose(x, exact, rel_tol=1e-5) for x in (whole, chunked, sliced))


def test_last_checkpoint_names_the_step_its_validation_came_from(corpus_file, tmp_path):
    def stop_at_25(step):
        if step == 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(corpus_file, tmp_path / "r", max_steps=40, evals=2),
              Silent(stop_at_25))
    summary = load(tmp_path / "r" / "last").config["training"]
    assert summary["steps"] == 25 and summary["best_step"] == 20


def test_a_front_end_plugs_in_its_own_reporter(corpus_file, tmp_path):
    from textrnn import Reporter, ValRecord

    class Recorder(Reporter):
        def __init__(self):
            self.events = []

        def begin(self, budget, state):
            self.events.append(("begin", budget.steps, state.step))

        def trained(self, state, record):
            self.events.append(("trained", record))

        def stepped(self, state):
            self.events.append(("stepped", state.step))

        def validated(self, state, record):
            self.events.append(("validated", record))

        def end(self):
            self.events.append(("end",))

    rec = Recorder()
    run = train(tiny_config(corpus_file, tmp_path / "r", max_steps=20, log_every=5),
                reporter=rec)
    kinds = [e[0] for e in rec.events]
    assert rec.events[0] == ("begin", 20, 0) and kinds[-1] == "end"
    assert [e[1] for e in rec.events if e[0] == "stepped"] == list(range(1, 21))
    records = [e[1] for e in rec.events if e[0] in ("trained", "validated")]
    logged = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r.to_dict() for r in records] == logged  # what it hears is what the log holds
    assert [r.step for r in records if isinstance(r, ValRecord)] == [10, 20]
