"""--ema: a moving average of the weights, validated and saved, with the raw weights resumed."""

import json

import pytest
import torch
from safetensors.torch import load_file

from textrnn import ModelConfig, TrainConfig, train
from textrnn.cli import main
from textrnn.model import RNNLM
from support import Silent

MODEL = ModelConfig(hidden=16, embed=8, layers=2, dropout=0.0)


def tiny(corpus, out, **kw):
    defaults = dict(seq_len=16, batch_size=8, lr=1e-2, evals=2, max_steps=30, precision="fp32",
                    model=MODEL, ema=0.9)
    return TrainConfig(corpus=str(corpus), out=str(out), **{**defaults, **kw})


def saved(run):
    """(the average in last/model.safetensors, the raw weights in last/resume.safetensors)."""
    raw = {k[len("raw."):]: v for k, v in load_file(run / "last/resume.safetensors").items()
           if k.startswith("raw.")}
    return load_file(run / "last/model.safetensors"), raw


class EverySave(Silent):
    """Keeps (average, raw weights) of last/ at each validation."""

    def __init__(self, run):
        super().__init__()
        self.run, self.saves = run, []

    def validated(self, state, record) -> None:
        self.saves.append(saved(self.run))


def test_the_checkpoints_hold_the_average_computed_by_hand(corpus_file, tmp_path):
    steps, decay = 6, 0.5
    seen = EverySave(tmp_path / "run")
    run = train(tiny(corpus_file, tmp_path / "run", max_steps=steps, evals=steps, ema=decay),
                seen)
    config = json.loads((run / "last/config.json").read_text())
    assert config["training"]["train_config"]["ema"] == decay
    torch.manual_seed(1337)  # the run's seed: its initial weights
    ema = dict(RNNLM(ModelConfig(**config["model"])).named_parameters())
    assert len(seen.saves) == steps
    for n, (average, raw) in enumerate(seen.saves):  # after optimizer step n (0 the first)
        d = min(decay, (1 + n) / (10 + n))
        ema = {k: d * ema[k].detach() + (1 - d) * raw[k] for k in raw}
        assert all(torch.allclose(average[k], ema[k], atol=1e-6, rtol=0) for k in raw)
        assert not all(torch.equal(average[k], raw[k]) for k in raw)
    best = load_file(run / "model.safetensors")  # the run's top: an average too
    step = config["training"]["best_step"]
    assert all(torch.equal(best[k], seen.saves[step - 1][0][k]) for k in best)


def test_off_the_checkpoint_holds_the_weights_and_no_raw_copy(corpus_file, tmp_path):
    run = train(tiny(corpus_file, tmp_path / "run", max_steps=5, ema=0.0), Silent())
    assert saved(run)[1] == {}


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_interrupt_and_resume_matches_an_unbroken_run(corpus_file, tmp_path, dropout):
    model = ModelConfig(hidden=16, embed=8, layers=2, dropout=dropout)
    whole = train(tiny(corpus_file, tmp_path / "whole", model=model, evals=3), Silent())

    def stop_at_13(step):
        if step == 13:
            raise KeyboardInterrupt

    cfg = tiny(corpus_file, tmp_path / "split", model=model, evals=3)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, Silent(stop_at_13))
    split = train(TrainConfig(**{**cfg.__dict__, "resume": str(tmp_path / "split")}), Silent())
    (avg_a, raw_a), (avg_b, raw_b) = saved(whole), saved(split)
    assert raw_a.keys() == avg_a.keys()
    assert all(torch.equal(avg_a[k], avg_b[k]) and torch.equal(raw_a[k], raw_b[k])
               for k in avg_a)


@pytest.mark.parametrize("bad", ["1", "-0.1", "2", "nan"])
def test_a_bad_decay_is_one_line(bad, corpus_file, tmp_path, capsys):
    code = main(["train", str(corpus_file), "--out", str(tmp_path / "run"), "--ema", bad])
    err = capsys.readouterr().err
    assert code != 0 and "ema" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
