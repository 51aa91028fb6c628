"""`textrnn sweep`: trials of train searched by Optuna, resumable, pruned, reported."""

import json

import pytest

import textrnn
from textrnn import sweep as sweeps
from textrnn.cli import main

pytestmark = pytest.mark.slow  # each test here runs a sweep: several trainings

SMALL = ["--steps-per-trial", "30", "--evals", "3"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def trials(folder):
    return json.loads((folder / "results.json").read_text())


def test_a_small_sweep_writes_its_table_plots_and_best_run(corpus_file, tmp_path, capsys):
    out = tmp_path / "sw"
    code, _, err = run(capsys, "sweep", corpus_file, "--out", out, "--trials", "3", *SMALL)
    assert code == 0, err
    records = trials(out)
    assert [r["number"] for r in records] != [] and sorted(r["number"] for r in records) == \
        [0, 1, 2]
    assert records == sorted(records, key=lambda r: (r["pruned"], r["val_loss"]))  # best first
    table = (out / "results.md").read_text()
    assert "| 0 (defaults) |" in table and table.count("\n| ") == 3  # a row a trial
    assert "for the defaults" in err or "no trial beat them" in err
    for png in ("params.png", "curves.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    best = textrnn.load(out / "best")
    assert best.config["training"]["val_loss"] == pytest.approx(records[0]["val_loss"])
    code, text, err = run(capsys, "sample", out / "best", "--prompt", "ANNA:", "--length", "30",
                          "--seed", "1")
    assert code == 0 and text.startswith("ANNA:") and len(text) >= 35, err


def test_same_seed_same_trials(corpus_file, tmp_path, capsys):
    for name in ("a", "b"):
        assert run(capsys, "sweep", corpus_file, "--out", tmp_path / name, "--trials", "3",
                   *SMALL)[0] == 0
    a, b = (trials(tmp_path / name) for name in "ab")
    assert [(r["params"], r["val_loss"], r["steps"]) for r in a] == \
        [(r["params"], r["val_loss"], r["steps"]) for r in b]


def test_resuming_runs_only_the_missing_trials(corpus_file, tmp_path, capsys, monkeypatch):
    out = tmp_path / "sw"
    run_trial = sweeps._run
    started = []

    asked = {}

    def cut_at_trial_2(cfg, number, params, *args, **kw):
        started.append(number)
        asked[number] = params
        if number == 2 and started.count(2) == 1:
            raise KeyboardInterrupt  # Ctrl-C during trial 2
        return run_trial(cfg, number, params, *args, **kw)

    monkeypatch.setattr(sweeps, "_run", cut_at_trial_2)
    code, _, err = run(capsys, "sweep", corpus_file, "--out", out, "--trials", "4", *SMALL)
    assert code == 130 and started == [0, 1, 2]
    assert sorted(r["number"] for r in trials(out)) == [0, 1]  # the finished ones, kept
    params_1 = next(r for r in trials(out) if r["number"] == 1)["params"]
    code, _, err = run(capsys, "sweep", corpus_file, "--out", out, "--trials", "4", *SMALL,
                       "--resume")
    assert code == 0, err
    assert started == [0, 1, 2, 3, 4]  # not 0 or 1 again; 3 is the cut trial 2, run again
    assert asked[3] == asked[2]
    done = trials(out)
    assert sorted(r["number"] for r in done) == [0, 1, 3, 4]
    assert next(r for r in done if r["number"] == 1)["params"] == params_1
    code, _, err = run(capsys, "sweep", corpus_file, "--out", out, *SMALL)
    assert code == 1 and "already holds a sweep; continue it with --resume" in err


def test_the_pruner_stops_a_trial_with_an_absurd_learning_rate(corpus_file, tmp_path, capsys):
    out = tmp_path / "sw"
    code, _, err = run(capsys, "sweep", corpus_file, "--out", out, "--grid", "lr=0.01,0.012,30",
                       "--steps-per-trial", "60", "--evals", "4", "--prune-margin", "1.0")
    assert code == 0, err
    records = {r["params"]["lr"]: r for r in trials(out) if r["number"] > 0}
    assert set(records) == {0.01, 0.012, 30.0}
    assert records[30.0]["pruned"] and records[30.0]["steps"] < 60, records[30.0]
    assert not records[0.01]["pruned"] and records[0.01]["steps"] == 60


@pytest.mark.parametrize("flags, says", [
    (["--search", "hidden,colour"], "unknown setting 'colour' to search"),
    (["--grid", "hidden=128,abc"], "--grid hidden= takes whole numbers >= 1; got 'abc'"),
    (["--grid", "cell=lstm,transformer"], "--grid cell= takes lstm"),
    (["--grid", "lr"], "--grid takes NAME=V1,V2,...; got 'lr'"),
    (["--trials", "0"], "trials must be at least 1"),
    (["--prune-margin", "-1"], "prune margin must be >= 0"),
    (["--prune-margin", "nan"], "prune margin must be >= 0 and finite, got nan"),
    (["--steps-per-trial", "0"], "--steps-per-trial must be at least 1, got 0"),
    (["--seed", "-1"], "the sweep's seed must be between 0 and 4,294,967,295, got -1"),
    (["--grid", "hidden=64,1000000"], "--grid hidden=1000000 cannot be trained: hidden must be "
     "at most 65,536, got 1,000,000"),
    (["--grid", "dropout=0.2,1"], "--grid dropout=1 cannot be trained: dropout must be in "
     "[0, 1)"),
    (["--val-fraction", "2"], "--val-fraction must be between 0 and 1, got 2.0"),
])
def test_bad_settings_get_one_line(corpus_file, tmp_path, capsys, flags, says):
    code, _, err = run(capsys, "sweep", corpus_file, "--out", tmp_path / "sw", *SMALL, *flags)
    assert code == 1 and says in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "sw").exists()


def test_a_budget_of_zero_seconds_is_refused_not_made_sixty(corpus_file, tmp_path, capsys):
    code, _, err = run(capsys, "sweep", corpus_file, "--out", tmp_path / "sw",
                       "--budget-per-trial", "0")
    assert code == 1 and "--budget-per-trial must be a positive number of seconds, got 0" in err
    assert not (tmp_path / "sw").exists()


def test_without_optuna_the_sweep_says_how_to_get_it(corpus_file, tmp_path, capsys,
                                                     monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "optuna", None)  # import fails
    code, _, err = run(capsys, "sweep", corpus_file, "--out", tmp_path / "sw", *SMALL)
    assert code == 1 and "needs Optuna: pip install optuna matplotlib" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("lrs", [[0.004, 0.006, 0.009], [0.0025, 0.01, 0.04], [0.003, 0.0031]])
def test_every_panel_of_params_png_has_tick_labels(lrs):
    pytest.importorskip("matplotlib")
    records = [{"number": i, "val_loss": 2.0 - i / 10, "pruned": i == 2,
                "params": {"hidden": 128 + 64 * i, "lr": lr, "dropout": 0.1 * i, "cell": "lstm"}}
               for i, lr in enumerate(lrs)]
    fig = sweeps.params_figure(records, ["hidden", "lr", "dropout", "cell"])
    fig.canvas.draw()
    for ax in fig.axes:
        lo, hi = sorted(ax.get_xlim())
        shown = [label.get_text() for tick, label in zip(ax.get_xticks(), ax.get_xticklabels())
                 if lo <= tick <= hi and label.get_text()]
        assert len(shown) >= (1 if ax.get_xlabel() == "cell" else 2), (ax.get_xlabel(), shown)
