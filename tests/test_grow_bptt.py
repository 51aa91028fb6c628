"""--grow-bptt: a step reads 1, 2, 4, ... consecutive seq-len windows as the run goes on, with
the recurrent state carried undetached across them."""

import json

import pytest
import torch
from safetensors.torch import load_file

from textrnn import ModelConfig, TrainConfig, TrainRecord, load, read_metrics, train
from textrnn.cli import main
from textrnn.data import Batches
from textrnn.model import RNNLM, detach_state
from textrnn.train import windows_at
from support import Silent


def tiny_config(corpus, out, **kw):
    model = ModelConfig(hidden=16, embed=8, layers=2, dropout=0.0)
    defaults = dict(seq_len=16, batch_size=8, lr=1e-2, evals=3, max_steps=30, precision="fp32",
                    log_every=1)
    return TrainConfig(corpus=str(corpus), out=str(out), model=model, **{**defaults, **kw})


def weights(run):
    return load_file(run / "last" / "model.safetensors")


def test_the_schedule_splits_the_budget_into_equal_parts():
    assert [windows_at(1, p) for p in (0, 0.5, 0.99, 1.0)] == [1, 1, 1, 1]
    assert [windows_at(2, p) for p in (0, 0.49, 0.5, 0.99, 1.0)] == [1, 1, 2, 2, 2]
    assert [windows_at(4, p) for p in (0, 0.33, 0.34, 0.66, 0.67, 1.0)] == [1, 1, 2, 2, 4, 4]
    assert [windows_at(16, i / 5) for i in range(5)] == [1, 2, 4, 8, 16]


def test_tokens_per_step_double_in_the_second_half(corpus_file, tmp_path):
    cfg = tiny_config(corpus_file, tmp_path / "run", grow_bptt=2, max_steps=10, evals=1)
    run = train(cfg, Silent())
    seen = [r.tokens for r in read_metrics(run) if isinstance(r, TrainRecord)]
    per_step = [b - a for a, b in zip([0] + seen, seen)]
    # 12 windows of 16 tokens per stream in the first epoch: steps 0-4 read one window each
    # (positions 0-4), steps 5-8 two (5, 7, 9), then the one left (11); step 9 opens epoch 1
    assert per_step == [8 * 16] * 5 + [8 * 32] * 3 + [8 * 16, 8 * 32]
    assert json.loads((run / "last/resume.json").read_text())["loop"]["pos"] == 2
    assert load(run).config["training"]["train_config"]["grow_bptt"] == 2


def test_one_step_over_two_windows_backpropagates_through_both(tiny_text):
    ids = torch.tensor([ord(c) % 32 for c in tiny_text])
    batches = Batches(ids, batch_size=4, seq_len=8, seed=0)
    x, y = batches.get(0, 3, windows=2)
    (x1, y1), (x2, y2) = batches.get(0, 3), batches.get(0, 4)
    assert torch.equal(x, torch.cat([x1, x2], 1)) and torch.equal(y, torch.cat([y1, y2], 1))

    def grads(detach: bool | None):
        torch.manual_seed(0)  # the same weights each time
        model = RNNLM(ModelConfig(vocab_size=32, hidden=16, embed=8, layers=2, cell="lstm",
                                  dropout=0.0))
        if detach is None:  # the step as train_step takes it: both windows in one pass
            loss = model(x, y)[1]
        else:               # window by window, the state carried (or cut) between them
            _, loss1, state = model(x1, y1)
            _, loss2, _ = model(x2, y2, detach_state(state) if detach else state)
            loss = (loss1 + loss2) / 2
        loss.backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    one, carried, cut = grads(None), grads(False), grads(True)
    assert torch.allclose(one, carried, atol=1e-6)
    assert not torch.allclose(one, cut, atol=1e-4)


def test_resume_across_a_change_of_k_matches_an_unbroken_run(corpus_file, tmp_path):
    # 30 steps in thirds: k = 1, 2, 4; stopped at step 8, resumed through k = 2 and k = 4
    whole = train(tiny_config(corpus_file, tmp_path / "whole", grow_bptt=4), Silent())

    def stop_at_8(step):
        if step == 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(corpus_file, tmp_path / "split", grow_bptt=4), Silent(stop_at_8))
    # the flag is not given again: the run keeps its own
    split = train(TrainConfig(corpus=str(corpus_file), resume=str(tmp_path / "split")),
                  Silent())
    wa, wb = weights(whole), weights(split)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert load(split / "last").config["training"]["train_config"]["grow_bptt"] == 4


@pytest.mark.parametrize("k", [3, 0, 32, -2])
def test_a_bad_k_is_one_line(k, corpus_file, tmp_path, capsys):
    with pytest.raises(ValueError, match=f"grow-bptt must be one of 1, 2, 4, 8, 16, got {k}"):
        TrainConfig(corpus=str(corpus_file), grow_bptt=k)
    code = main(["train", str(corpus_file), "--grow-bptt", str(k), "--out",
                 str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("textrnn: error:") and err.count("\n") == 1
    assert "grow-bptt must be one of" in err and not (tmp_path / "run").exists()
