"""The defaults that adapt to the corpus and the budget (config.py)."""

import json
import math
from dataclasses import replace

import pytest
import torch

from textrnn import ModelConfig, Reporter, RNNLM, Terminal, TrainConfig, config, plan, train
from textrnn.model import EMBED

CPU = torch.device("cpu")


def flops_speed(rate: float):
    """A machine that trains at `rate` FLOP/s: tokens/s = rate / (6 x weights)."""
    return lambda mc, b, t: rate / (6 * plan.num_weights(mc))


def no_timing(*_):
    raise AssertionError("a step budget must not time anything")


def pick(n_tokens=1_000_000, vocab=65, speed=None, **kw):
    cfg, why = plan.choose(TrainConfig(**kw), n_tokens, vocab, CPU, "fp32", speed=speed)
    return cfg, why


def test_a_longer_budget_buys_a_wider_model_and_never_breaks_the_rules():
    widths = []
    for budget in (10, 100, 300, 1800, 20_000):
        cfg, _ = pick(n_tokens=50_000_000, time_budget=budget, speed=flops_speed(150e9))
        weights = plan.num_weights(cfg.model)
        tokens = 150e9 / (6 * weights) * budget
        assert tokens >= config.TOKENS_PER_WEIGHT * weights or cfg.model.hidden == config.WIDTHS[0]
        assert weights <= config.WEIGHTS_PER_TOKEN * 50_000_000
        widths.append(cfg.model.hidden)
    assert widths == sorted(widths) and widths[0] < widths[-1]
    # each choice is the widest that passes: the next width up would not get enough tokens
    cfg, _ = pick(n_tokens=50_000_000, time_budget=300, speed=flops_speed(150e9))
    wider = config.WIDTHS[config.WIDTHS.index(cfg.model.hidden) + 1]
    w = plan.num_weights(plan.candidate(ModelConfig(vocab_size=65), wider))  # as it would be
    assert 150e9 / (6 * w) * 300 < config.TOKENS_PER_WEIGHT * w


def test_a_small_corpus_caps_the_model_whatever_the_budget():
    cfg, why = pick(n_tokens=100_000, time_budget=3600, speed=flops_speed(1e12))
    assert plan.num_weights(cfg.model) <= config.WEIGHTS_PER_TOKEN * 100_000
    assert cfg.model.hidden < 256
    # ...and a run that will read it hundreds of times gets the most dropout
    assert cfg.model.dropout == config.MAX_DROPOUT and "passes over the corpus" in why


def test_a_step_budget_is_decided_without_timing():
    cfg, why = pick(max_steps=20, speed=no_timing)
    assert cfg.batch_size == config.BATCH  # smaller batches would add no steps, only read less
    assert cfg.model.hidden == config.WIDTHS[0] and "tokens/s" not in why
    cfg, _ = pick(max_steps=5000, speed=no_timing)
    assert cfg.batch_size == config.BATCH
    assert cfg.model.hidden > config.WIDTHS[0]


def test_a_short_time_budget_takes_smaller_batches_for_enough_steps():
    calls = []

    def speed(mc, b, t):  # 20,000 tokens/s whatever the width and batch
        calls.append((mc.hidden, b))
        return 20_000.0

    cfg, why = pick(time_budget=60, speed=speed)  # 1.2M tokens: 375 steps at 64 x 50
    steps = 20_000 * 60 / (cfg.batch_size * cfg.seq_len)
    assert cfg.batch_size == 16 and steps >= config.MIN_STEPS and "20,000 tokens/s" in why
    assert "batch 16 for 1,500 steps, not 375 at 64: a short budget gains" in why
    assert len(calls) == len(set(calls))  # each width and batch is timed once
    # a step budget that ends first keeps the full batch
    assert pick(time_budget=60, max_steps=100, speed=speed)[0].batch_size == config.BATCH


def test_values_set_by_hand_are_kept_and_not_reported_as_chosen():
    cfg, why = pick(max_steps=2000, speed=no_timing, lr=3e-3, batch_size=16, seq_len=20,
                    model=ModelConfig(hidden=48, dropout=0.0))
    assert (cfg.lr, cfg.batch_size, cfg.seq_len) == (3e-3, 16, 20)
    assert (cfg.model.hidden, cfg.model.dropout, cfg.model.layers) == (48, 0.0, config.LAYERS)
    assert why.startswith("chose embed 48, tied embeddings, layers 2, weight-decay 0.1 (")
    assert "hidden" not in why
    everything = dict(lr=1e-3, batch_size=4, seq_len=8, weight_decay=0.05,
                      model=ModelConfig(hidden=8, layers=1, dropout=0.1, embed=8))
    assert pick(max_steps=10, speed=no_timing, **everything)[1] == ""


def test_tied_weights_get_the_embedding_width():
    cfg, why = pick(max_steps=100, speed=no_timing,
                    model=ModelConfig(embed=96, tie_weights=True))
    assert cfg.model.hidden == 96 and "hidden" not in why.split("(")[0]


@pytest.mark.parametrize("model, tied, embed", [
    (dict(), True, "hidden"),                      # the default: tied, as wide as the layers
    (dict(hidden=96), True, 96),                   # a width set by hand is followed
    (dict(tie_weights=True), True, "hidden"),
    (dict(tie_weights=False), False, EMBED),       # --no-tie-weights: the old 64-wide one
    (dict(embed=32), False, 32),                   # a width of its own unties
    (dict(embed=32, tie_weights=False), False, 32),
    (dict(cell="mingru"), False, EMBED),           # the min cells: untied (their RMSNorm)
    (dict(cell="minlstm", tie_weights=True), True, "hidden"),
])
def test_embeddings_are_tied_unless_a_width_of_their_own_is_asked_for(model, tied, embed):
    cfg, why = pick(max_steps=100, speed=no_timing, model=ModelConfig(**model))
    m = cfg.model
    assert m.tie_weights is tied and m.embed == (m.hidden if embed == "hidden" else embed)
    chosen = why.split(" (")[0]
    said = {"tied embeddings" if tied else "untied embeddings"}
    left_open = "tie_weights" not in model and "embed" not in model
    assert said & set(chosen.split(", ")) == (said if left_open else set())
    assert ("embed" in chosen) == ("embed" not in model)
    RNNLM(replace(m, vocab_size=65))  # nothing left open


def test_a_tied_model_counts_its_embedding_in_the_width_rule():
    """A tied embedding is as wide as the layers, so the first layer's input weights grow with
    the width: the rule sees the model it will build."""
    tied, _ = pick(n_tokens=50_000_000, time_budget=300, speed=flops_speed(150e9))
    untied, _ = pick(n_tokens=50_000_000, time_budget=300, speed=flops_speed(150e9),
                     model=ModelConfig(tie_weights=False))
    for cfg in (tied, untied):
        w = plan.num_weights(cfg.model)
        assert 150e9 / (6 * w) * 300 >= config.TOKENS_PER_WEIGHT * plan.core_params(cfg.model)
    assert tied.model.hidden <= untied.model.hidden


def test_dropout_weight_decay_and_learning_rate_rules():
    assert plan.dropout_for(1) == plan.dropout_for(4) == 0.0
    assert plan.dropout_for(10) == 0.1
    rising = [plan.dropout_for(p) for p in (8, 16, 32, 1000)]
    assert rising == sorted(rising) and 0 < rising[0] and rising[-1] == config.MAX_DROPOUT
    assert plan.lr_for(config.BASE_WIDTH) == config.BASE_LR
    assert plan.lr_for(64) > plan.lr_for(256) > plan.lr_for(1024)
    assert plan.lr_for(1024) == pytest.approx(config.BASE_LR / 4 ** 0.75, rel=0.02)
    # weight decay: the base value for a few passes, more in proportion for many
    assert plan.weight_decay_for(1) == plan.weight_decay_for(config.WEIGHT_DECAY_PASSES) == 0.1
    assert plan.weight_decay_for(2 * config.WEIGHT_DECAY_PASSES) == 0.2
    assert plan.weight_decay_for(1000) == config.MAX_WEIGHT_DECAY


def test_many_passes_get_more_weight_decay_and_a_hand_set_one_is_kept():
    # a 100k-token corpus read hundreds of times in an hour: the most of both regularisers
    cfg, why = pick(n_tokens=100_000, time_budget=3600, speed=flops_speed(1e12))
    assert cfg.weight_decay == config.MAX_WEIGHT_DECAY and "weight-decay 0.3" in why
    cfg, why = pick(n_tokens=100_000, time_budget=3600, speed=flops_speed(1e12),
                    weight_decay=0.0)
    assert cfg.weight_decay == 0.0 and "weight-decay" not in why


def test_train_speed_times_a_real_model():
    mc = ModelConfig(vocab_size=30, hidden=16, layers=1, dropout=0.0, embed=8)
    speed = plan.train_speed(mc, 4, 10, CPU, "fp32")
    assert math.isfinite(speed) and speed > 0


NATIVE_BF16 = plan.pick_precision("auto", CPU) == "bf16"


def test_a_resumed_run_keeps_what_was_chosen(corpus_file, tmp_path):
    precision = "bf16" if NATIVE_BF16 else "fp32"  # bf16 where this CPU can, else by hand
    out = train(TrainConfig(corpus=str(corpus_file), out=str(tmp_path / "r"), max_steps=10,
                            precision=precision), reporter=Reporter())
    first = json.loads((out / "config.json").read_text())["training"]
    assert first["precision"] == first["train_config"]["precision"] == precision
    said = []
    train(TrainConfig(corpus=str(corpus_file), out=str(out), resume=str(out), max_steps=20),
          reporter=Terminal(log=said.append, progress=False))
    again = json.loads((out / "last" / "config.json").read_text())["training"]
    assert again["steps"] == 20 and not any(m.startswith("chose") for m in said)
    for key in ("lr", "batch_size", "seq_len", "precision"):
        assert again["train_config"][key] == first["train_config"][key]


def test_bf16_trains_where_the_cpu_has_it_and_is_refused_in_one_line_where_not(corpus_file,
                                                                                tmp_path):
    cfg = TrainConfig(corpus=str(corpus_file), out=str(tmp_path / "r"), max_steps=3,
                      precision="bf16")
    if NATIVE_BF16:
        out = train(cfg, reporter=Reporter())
        assert json.loads((out / "config.json").read_text())["training"]["precision"] == "bf16"
    else:  # oneDNN has no bfloat16 LSTM here: it used to fail deep inside the first step
        with pytest.raises(ValueError, match="needs a CPU with native bfloat16.*fp32"):
            train(cfg, reporter=Reporter())
        assert not (tmp_path / "r").exists()


def test_a_min_lr_above_the_chosen_lr_is_said_and_clamped(corpus_file, tmp_path):
    said = []
    out = train(TrainConfig(corpus=str(corpus_file), out=str(tmp_path / "r"), max_steps=5,
                            min_lr=0.5, precision="fp32"),
                reporter=Terminal(log=said.append, progress=False))
    tc = json.loads((out / "config.json").read_text())["training"]["train_config"]
    assert tc["min_lr"] == tc["lr"] < 0.5
    assert any(m.startswith("note: min-lr 0.5 is above the chosen lr") for m in said)


def test_train_says_what_it_chose_and_records_the_values(corpus_file, tmp_path):
    said = []
    out = train(TrainConfig(corpus=str(corpus_file), out=str(tmp_path / "r"), max_steps=15,
                            precision="fp32"), reporter=Terminal(log=said.append, progress=False))
    chose = [m for m in said if m.startswith("chose")]
    lr = plan.lr_for(64)
    assert len(chose) == 1 and "hidden 64" in chose[0] and f"lr {lr:g}" in chose[0]
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["hidden"] == 64 and saved["model"]["dropout"] is not None
    tc = saved["training"]["train_config"]
    assert tc["lr"] == lr and tc["batch_size"] >= 1 and tc["seq_len"] >= 1
    assert tc["weight_decay"] is not None and f"weight-decay {tc['weight_decay']:g}" in chose[0]
    assert saved["training"]["precision"] == "fp32"


def test_a_large_alphabet_does_not_shrink_the_recurrent_core():
    from textrnn.model import core_params
    c = ModelConfig(vocab_size=6000, embed=64, hidden=256, layers=2, dropout=0.0)
    assert core_params(c) == 4 * 256 * (64 + 256 + 2) + 4 * 256 * (256 + 256 + 2)
    speed = flops_speed(150e9)  # the softmax of 6,000 still slows every step, as timed
    small, _ = pick(n_tokens=1_000_000, vocab=65, speed=speed, time_budget=120)
    large, why = pick(n_tokens=1_000_000, vocab=6000, speed=speed, time_budget=120)
    assert large.model.hidden >= 192 and "per recurrent weight" in why
    assert small.model.hidden >= large.model.hidden


def test_a_resume_through_the_api_keeps_what_the_run_was_started_with(corpus_file, tmp_path):
    """The one merge: every setting the resuming config leaves at its default is the run's own,
    through the Python API as through the CLI; what it gives anew wins."""
    first = TrainConfig(corpus=str(corpus_file), out=str(tmp_path / "r"), max_steps=10, evals=2,
                        sample_chars=7, val_fraction=0.2, seed=5, precision="fp32")
    out = train(first, reporter=Reporter())
    train(TrainConfig(corpus=str(corpus_file), resume=str(out), max_steps=20, log_every=3),
          reporter=Reporter())
    again = json.loads((out / "last" / "config.json").read_text())["training"]["train_config"]
    assert (again["evals"], again["sample_chars"], again["val_fraction"], again["seed"]) == \
        (2, 7, 0.2, 5)
    assert again["max_steps"] == 20 and again["log_every"] == 3 and again["out"] == str(out)


@pytest.mark.parametrize("field, value, said", [
    ("seq_len", 2.5, "seq-len must be a whole number, got 2.5"),
    ("max_steps", "100", "max-steps must be a whole number"),
    ("evals", True, "evals must be a whole number"),
    ("lr", "fast", "lr must be a finite number"),
    ("time_budget", [60], "time-budget must be a finite number"),
    ("weight_decay", float("inf"), "weight-decay must be a finite number, got inf"),
    ("grad_clip", float("nan"), "grad-clip must be a finite number, got nan"),
    ("min_lr", float("-inf"), "min-lr must be a finite number"),
    ("encoding", "rot13", "'rot13' is not a text encoding"),
    ("device", "meta", "textrnn does not run on device 'meta'"),
])
def test_a_config_field_of_the_wrong_kind_is_named(field, value, said):
    with pytest.raises(ValueError, match=said):
        TrainConfig(**{field: value})
