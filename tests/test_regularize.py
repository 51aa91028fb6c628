"""AWD-LSTM's regularizers: DropConnect on W_hh, embedding dropout, locked dropout."""

import json

import pytest
import torch

from conftest import make_model
from textrnn import Terminal, TrainConfig, load, train
from textrnn.card import card_text
from textrnn.cli import main
from textrnn.model import CELLS, ModelConfig
from textrnn.regularize import CLASSIC, LockedDropout, run_layers

IDX = torch.randint(1, 20, (3, 12), generator=torch.Generator().manual_seed(0))


def states(s):
    return s if isinstance(s, tuple) else (s,)


@pytest.mark.parametrize("cell", CLASSIC)
def test_layer_by_layer_with_all_off_gives_the_stacked_modules_logits(cell):
    model = make_model(cell, layers=3).train()  # dropout 0: training computes what eval does
    _, _, carried = model(IDX)
    want, _, want_state = model(IDX, state=carried)
    x = model.embedded(IDX)
    out, state = run_layers(model.rnn, x, carried, 0.0, model.drop)
    torch.testing.assert_close(model.head(out), want, rtol=0, atol=1e-6)
    for a, b in zip(states(state), states(want_state)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize("cell", CLASSIC)
def test_weight_drop_changes_training_outputs_not_eval_ones(cell):
    plain, dropped = make_model(cell), make_model(cell, weight_drop=0.5)
    assert dropped.config.layer_by_layer() and not plain.config.layer_by_layer()
    torch.testing.assert_close(dropped.eval()(IDX)[0], plain.eval()(IDX)[0], rtol=0, atol=0)
    dropped.train()
    first, second = dropped(IDX)[0], dropped(IDX)[0]
    assert not torch.allclose(first, plain(IDX)[0])
    assert not torch.allclose(first, second)  # a fresh mask each forward call (training step)
    assert torch.equal(dropped.rnn.weight_hh_l0, plain.rnn.weight_hh_l0)  # the weights intact


def test_weight_drop_masks_whole_weights_for_every_step():
    """One mask per call: the first step sees no W_hh (h0 = 0), so only later steps differ, and
    a dropped weight is dropped for every sequence in the batch alike."""
    model = make_model("rnn_tanh", layers=1, weight_drop=0.5).train()
    x = model.embedded(IDX)
    torch.manual_seed(1)
    out, _ = run_layers(model.rnn, x, None, 0.5, model.drop)
    torch.manual_seed(1)
    mask = torch.nn.functional.dropout(model.rnn.weight_hh_l0, 0.5, training=True)
    want, _ = torch.rnn_tanh(x, torch.zeros(1, 3, 16), [model.rnn.weight_ih_l0, mask,
                             model.rnn.bias_ih_l0, model.rnn.bias_hh_l0],
                             True, 1, 0.0, True, False, True)
    torch.testing.assert_close(out, want, rtol=0, atol=0)
    torch.testing.assert_close(out[:, 0], model.rnn(x)[0][:, 0], rtol=0, atol=0)


def test_embed_drop_zeroes_every_occurrence_of_a_dropped_token():
    model = make_model(embed_drop=0.5).train()
    idx = torch.tensor([[1, 2, 3, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 6, 7, 1]])
    torch.manual_seed(2)
    e = model.embedded(idx)                                # (B, T, E)
    w = model.embed.weight
    seen = {"dropped": 0, "kept": 0}
    for token in idx.unique().tolist():
        rows = e[idx == token]                             # every occurrence
        if torch.all(rows == 0):
            seen["dropped"] += 1
        else:
            torch.testing.assert_close(rows, (w[token] * 2).expand_as(rows))
            seen["kept"] += 1
    assert seen["dropped"] and seen["kept"]
    assert torch.equal(model.eval().embedded(idx), model.embed(idx))


@pytest.mark.parametrize("time_dim", [0, 1])
def test_locked_dropout_keeps_one_mask_across_time_steps(time_dim):
    drop = LockedDropout(0.5, time_dim).train()
    x = torch.ones(6, 10, 32) if time_dim == 1 else torch.ones(10, 6, 32)
    kept = drop(x) != 0
    first = kept.select(time_dim, 0).unsqueeze(time_dim)
    assert torch.equal(kept, first.expand_as(kept))        # the same mask at every step
    assert 0 < kept.float().mean() < 1
    assert torch.equal(drop.eval()(x), x)


@pytest.mark.parametrize("cell", CELLS)
def test_locked_dropout_is_the_models_dropout_and_eval_is_untouched(cell):
    plain, locked = make_model(cell, dropout=0.3), make_model(cell, dropout=0.3,
                                                             locked_dropout=True)
    assert isinstance(locked.drop, LockedDropout)
    assert locked.config.layer_by_layer() == (cell in CLASSIC)
    torch.testing.assert_close(locked.eval()(IDX)[0], plain.eval()(IDX)[0], rtol=0, atol=0)
    locked.train()  # (features: a min cell's head starts at zero)
    assert not torch.allclose(locked.features(IDX)[0], locked.features(IDX)[0])


@pytest.mark.parametrize("kw, said", [
    (dict(weight_drop=1.0), r"weight-drop must be in \[0, 1\), got 1.0"),
    (dict(weight_drop=-0.1), r"weight-drop must be in \[0, 1\), got -0.1"),
    (dict(embed_drop=1.0), r"embed-drop must be in \[0, 1\), got 1.0"),
    (dict(embed_drop=-0.1), r"embed-drop must be in \[0, 1\), got -0.1"),
    (dict(weight_drop=0.2, cell="mingru"),
     "weight-drop applies to the lstm, gru, rnn_tanh, rnn_relu cells .*; mingru has none"),
])
def test_bad_values_are_one_line_errors(kw, said):
    with pytest.raises(ValueError, match=said) as e:
        ModelConfig(**kw)
    assert "\n" not in str(e.value)


def test_bad_values_on_the_command_line(corpus_file, tmp_path, capsys):
    for flags in (["--weight-drop", "1.0"], ["--embed-drop", "-0.1"],
                  ["--cell", "minlstm", "--weight-drop", "0.1"]):
        code = main(["train", str(corpus_file), "--out", str(tmp_path / "x"), *flags])
        err = capsys.readouterr().err.strip()
        assert code != 0 and "\n" not in err and "drop" in err


def test_off_writes_the_model_section_it_always_did():
    assert set(ModelConfig().to_dict()) == {"vocab_size", "cell", "embed", "hidden", "layers",
                                            "dropout", "tie_weights"}
    assert ModelConfig(weight_drop=0.2, locked_dropout=True).to_dict()["locked_dropout"]


@pytest.mark.parametrize("cell, kw", [
    ("lstm", dict(weight_drop=0.3, embed_drop=0.1, locked_dropout=True)),
    ("minlstm", dict(embed_drop=0.1, locked_dropout=True)),
])
def test_a_checkpoint_trained_with_them_loads_generates_and_resumes(corpus_file, tmp_path,
                                                                    cell, kw):
    common = dict(corpus=str(corpus_file), seq_len=16, batch_size=4, evals=1, sample_chars=0,
                  precision="fp32")
    model = ModelConfig(cell=cell, hidden=16, embed=8, layers=2, dropout=0.2, **kw)
    run = train(TrainConfig(out=str(tmp_path / "run"), max_steps=6, model=model, **common),
                reporter=Terminal(log=lambda _: None, progress=False))
    saved = json.loads((run / "config.json").read_text())["model"]
    assert {k: saved[k] for k in kw} == kw
    lm = load(run)
    assert {k: getattr(lm.model.config, k) for k in kw} == kw
    assert len(lm.generate("ANNA:\n", 40, temperature=0.8, seed=1)) > 0
    said = ModelConfig(**kw).regularizers()  # on both cards, as the run's log says it
    assert said and said in lm.card()
    assert said in card_text(lm.config, lm.model.num_params(), "me/run", [], curve=False)
    train(TrainConfig(resume=str(run), max_steps=9, **common),
          reporter=Terminal(log=lambda _: None, progress=False))
    resumed = json.loads((run / "last" / "config.json").read_text())["model"]
    assert {k: resumed[k] for k in kw} == kw


def test_a_checkpoint_field_of_the_wrong_type_is_named(tmp_path, corpus_file):
    run = train(TrainConfig(corpus=str(corpus_file), out=str(tmp_path / "run"), max_steps=2,
                            evals=1, sample_chars=0, seq_len=8, batch_size=2,
                            model=ModelConfig(hidden=8, embed=8, layers=1, dropout=0.0)),
                reporter=Terminal(log=lambda _: None, progress=False))
    path = run / "config.json"
    config = json.loads(path.read_text())
    config["model"]["weight_drop"] = "0.1"
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match='bad model section: weight_drop is "0.1", not a number'):
        load(run)
