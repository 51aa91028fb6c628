"""Choosing by experiment: trials of `train` on one corpus, each with the same budget, searched
by Optuna, and a report of which won.

    best = sweep(SweepConfig(corpus="my.txt", out="sweeps/mine", trial_seconds=60, trials=12))

Trial 0 is always the adaptive defaults (every setting left to `plan.choose`); the search
ranges are then set around what it chose: hidden width from half to twice, learning rate from a
quarter to 4x, and so on (SPACE). Each later trial is drawn by a TPE sampler (or walks a grid),
trains in its own run folder under `out/trials/`, and reports its validation loss at each of
its `evals` validations; a trial whose loss at one of them is behind the median of the finished
trials at the same point by more than `prune_margin` nats/char is stopped there (pruned). All
trials share the train/validation split and the prepared token files.

The study lives in `out/study.db` (SQLite), so a sweep stopped by Ctrl-C resumes with
`resume=True` and runs only the trials still missing; a trial cut short is run again. The
results: `out/results.md` and `results.json` (every trial, best first), `out/params.png`
(validation loss against each searched setting), `out/curves.png` (every trial's validation
curve), and `out/best/`, a copy of the best trial's run folder that `textrnn sample`, `eval`
and the web app take like any other.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import checkpoint
from .config import TrainConfig
from .model import CELLS
from .report import Reporter
from .train import train


@dataclass(frozen=True)
class Param:
    """One searchable setting: where it goes, its kind, and its range around the default d."""
    kind: str                  # "int", "float" or "cell"
    low: Callable[[float], float] | None = None
    high: Callable[[float], float] | None = None
    log: bool = False
    step: int | None = None


def _r32(x: float) -> int:
    return max(32, int(round(x / 32)) * 32)


SPACE = {
    "hidden": Param("int", lambda d: _r32(d / 2), lambda d: _r32(d * 2), step=32),
    "lr": Param("float", lambda d: d / 4, lambda d: d * 4, log=True),
    "dropout": Param("float", lambda d: 0.0, lambda d: 0.5),
    "cell": Param("cell"),
    "layers": Param("int", lambda d: 1, lambda d: 4),
    "weight_decay": Param("float", lambda d: 0.0, lambda d: 0.5),
    "embed": Param("int", lambda d: 16, lambda d: 256, step=16),
    "seq_len": Param("int", lambda d: 16, lambda d: 256, log=True),
    "batch_size": Param("int", lambda d: 8, lambda d: 256, log=True),
}
MODEL_PARAMS = {"hidden", "dropout", "cell", "layers", "embed"}
DEFAULT_SEARCH = ("hidden", "lr", "dropout")
PRUNE_MARGIN = 0.05            # nats/char behind the median that counts as "clearly behind"


@dataclass
class SweepConfig:
    corpus: str
    out: str
    trials: int = 12                 # trial 0 (the defaults) included
    trial_seconds: float | None = 60  # each trial's training budget, in seconds ...
    trial_steps: int | None = None   # ... or in optimizer steps (reproducible: same seed, same
                                     # trials)
    search: tuple[str, ...] = DEFAULT_SEARCH  # settings the sampler draws (names of SPACE)
    grid: dict[str, list] = field(default_factory=dict)  # instead of search: these values, all
                                                          # combinations
    prune_margin: float | None = PRUNE_MARGIN  # None: no pruning
    seed: int = 1337                 # the sampler's; every trial trains with the same data seed
    resume: bool = False
    overwrite: bool = False
    base: dict = field(default_factory=dict)  # more TrainConfig fields for every trial
                                              # (tokenizer, val_fraction, evals, device, ...)

    def __post_init__(self):
        unknown = [p for p in [*self.search, *self.grid] if p not in SPACE]
        if unknown:
            raise ValueError(f"unknown setting {unknown[0]!r} to search; known: "
                             f"{', '.join(SPACE)}")
        if self.trials < 1:
            raise ValueError(f"trials must be at least 1, got {self.trials}")
        if (self.trial_seconds is None) == (self.trial_steps is None):
            raise ValueError("give each trial a budget in seconds or in steps, not both")
        if self.trial_seconds is not None and not 0 < self.trial_seconds < math.inf:
            raise ValueError(f"--budget-per-trial must be a positive number of seconds, got "
                             f"{self.trial_seconds:g}")
        if self.trial_steps is not None and self.trial_steps < 1:
            raise ValueError(f"--steps-per-trial must be at least 1, got {self.trial_steps}")
        if not 0 <= self.seed < 2**32:  # what Optuna's samplers take
            raise ValueError(f"the sweep's seed must be between 0 and {2**32 - 1:,}, got "
                             f"{self.seed if abs(self.seed) < 10**24 else 'a longer number'}")
        if self.prune_margin is not None and not 0 <= self.prune_margin < math.inf:  # and NaN
            raise ValueError(f"prune margin must be >= 0 and finite, got {self.prune_margin}")
        for name, values in self.grid.items():
            if not values:
                raise ValueError(f"--grid {name}= lists no values")
            self.grid[name] = [_value(name, v) for v in values]
        self._check_trials()

    def _check_trials(self) -> None:
        """Build the training config of every grid value (and of the settings all trials
        share) before anything runs: a value train would refuse (hidden past 65,536) is
        refused here in one line, not recorded as a pruned trial."""
        _train_config(self, Path(self.out), {})
        for name, values in self.grid.items():
            for v in values:
                try:
                    _train_config(self, Path(self.out), {name: v})
                except ValueError as e:
                    raise ValueError(f"--grid {name}={_fmt(v)} cannot be trained: {e}") from None


def _value(name: str, v):
    """A grid value as its setting takes it, or ValueError in one line."""
    kind = SPACE[name].kind
    try:
        if kind == "cell":
            if v not in CELLS:
                raise ValueError
            return v
        x = float(v)
        if not math.isfinite(x) or x < 0 or (kind == "int" and (x != int(x) or x < 1)):
            raise ValueError
        return int(x) if kind == "int" else x
    except (TypeError, ValueError):
        want = ", ".join(CELLS) if kind == "cell" else (
            "whole numbers >= 1" if kind == "int" else "numbers >= 0")
        raise ValueError(f"--grid {name}= takes {want}; got {v!r}") from None


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ValueError("textrnn sweep needs Optuna: pip install optuna matplotlib (in the "
                         "repository: pip install -e '.[sweep]')") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


class _Trial(Reporter):
    """A trial's training, heard: validation losses go to Optuna, a prune stops the run."""

    def __init__(self, trial=None):
        self.trial = trial
        self.curve: list[tuple[float, float]] = []  # (share of the budget, val nats/char)
        self.evals, self.pruned, self.speed = 0, False, 0.0
        self.budget = None

    def begin(self, budget, state):
        self.budget = budget

    def trained(self, state, record):
        self.speed = record.chars_per_s

    def validated(self, state, record):
        self.evals += 1
        loss = record.val_loss
        self.curve.append((self.budget.progress(state.step, state.train_time), loss))
        if self.trial is not None:
            self.trial.report(loss, self.evals)
            self.pruned = self.trial.should_prune()

    def stepped(self, state):
        if self.pruned:
            raise KeyboardInterrupt  # stops the run as Ctrl-C does: last/ saved


def _behind(optuna, margin: float, startup: int = 1):
    """An Optuna pruner that stops a trial whose validation loss at its k-th validation is more
    than `margin` nats/char above the median of the finished trials at their k-th (from the 2nd
    validation on; trial 0, the defaults, is the first that can have finished)."""

    class Behind(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            step = trial.last_step
            if step is None or step < 2:
                return False
            value = trial.intermediate_values[step]
            if not math.isfinite(value):
                return True
            seen = [r["curve"][step - 1][1] for r in results(study)
                    if not r["pruned"] and len(r["curve"]) >= step]
            return len(seen) >= startup and value > statistics.median(seen) + margin

    return Behind()


def _train_config(cfg: SweepConfig, out: Path, params: dict) -> TrainConfig:
    model = {k: v for k, v in params.items() if k in MODEL_PARAMS}
    rest = {k: v for k, v in params.items() if k not in MODEL_PARAMS}
    base = dict(cfg.base)
    return TrainConfig(corpus=cfg.corpus, out=str(out), time_budget=cfg.trial_seconds,
                       max_steps=cfg.trial_steps, overwrite=True,
                       model={**base.pop("model", {}), **model}, **base, **rest)


def _chosen(run: Path) -> dict:
    """Every searchable setting of a finished run, as it was chosen or given."""
    config = checkpoint.read_config(run)
    trained = config["training"]["train_config"]
    return {name: config["model"][name] if name in MODEL_PARAMS else trained[name]
            for name in SPACE}


def _run(cfg: SweepConfig, number: int, params: dict, trial,
         defaults: dict | None = None) -> dict:
    """Train one trial and return its record for the results. A trial that fails (its loss
    went to infinity, say) is recorded with an infinite loss, as pruned."""
    out = Path(cfg.out) / "trials" / f"trial-{number:03d}"
    heard = _Trial(trial)
    pruned, failed = False, ""
    try:
        train(_train_config(cfg, out, params), reporter=heard)
    except KeyboardInterrupt:
        if not heard.pruned:
            raise
        pruned = True
    except (ValueError, FloatingPointError) as e:
        if defaults is None:  # trial 0: the defaults themselves cannot train here
            raise
        pruned, failed = True, str(e).splitlines()[0]
    try:
        summary = checkpoint.read_config(out)["training"]  # the best checkpoint's
        last = checkpoint.read_config(checkpoint.last_dir(out))["training"]
        chosen, loss, steps, seconds = _chosen(out), summary["val_loss"], last["steps"], \
            last["train_time_s"]
    except (OSError, ValueError):  # failed before it saved anything
        chosen, loss, steps, seconds = {**defaults, **params}, None, 0, 0.0
    return {"number": number, "params": chosen, "val_loss": math.inf if loss is None else loss,
            "steps": steps, "train_s": seconds, "chars_per_s": heard.speed, "pruned": pruned,
            "failed": failed, "curve": heard.curve, "run": str(out)}


def sweep(cfg: SweepConfig, say: Callable[[str], None] = print) -> dict:
    """Run the sweep (or what is left of it); return the best trial's record."""
    optuna = _optuna()
    out = Path(cfg.out)
    db = out / "study.db"
    if out.exists() and not cfg.resume:
        if not cfg.overwrite and any(out.iterdir()):
            raise FileExistsError(f"{out} already holds a sweep; continue it with --resume, "
                                  "replace it with --overwrite, or pick another --out")
        shutil.rmtree(out)
    if cfg.resume and not db.is_file():
        raise FileNotFoundError(f"{out} holds no sweep to resume (no study.db)")
    out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{db}"
    sampler = (optuna.samplers.GridSampler(cfg.grid, seed=cfg.seed) if cfg.grid else
               optuna.samplers.TPESampler(seed=cfg.seed, n_startup_trials=max(2, cfg.trials // 3)))
    pruner = (_behind(optuna, cfg.prune_margin) if cfg.prune_margin is not None
              else optuna.pruners.NopPruner())
    study = optuna.create_study(study_name="sweep", storage=storage, load_if_exists=True,
                                direction="minimize", sampler=sampler, pruner=pruner)
    _forget_cut_short(optuna, study)

    defaults = study.user_attrs.get("defaults")                       # 1. trial 0
    if defaults is None:
        say("trial 0: the defaults, chosen for this corpus and budget")
        defaults = _run(cfg, 0, {}, None)
        study.set_user_attr("defaults", defaults)
        say(_line(defaults, cfg))
    space = _distributions(optuna, cfg, defaults["params"])

    def objective(trial):                                             # 2. the search
        params = {name: _suggest(trial, name, d) for name, d in space.items()}
        say(f"trial {trial.number + 1}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in
                                                     params.items()))
        record = _run(cfg, trial.number + 1, params, trial, defaults["params"])
        trial.set_user_attr("record", record)
        say(_line(record, cfg))
        if record["pruned"]:
            raise optuna.TrialPruned()
        return record["val_loss"]

    left = cfg.trials - len(results(study))
    if cfg.grid:
        left = min(left, math.prod(len(v) for v in cfg.grid.values()) - len(results(study)) + 1)
    try:
        if left > 0:
            study.optimize(objective, n_trials=left)
    finally:
        _forget_cut_short(optuna, study)
        records = results(study)
        report(cfg, records, out, say)
    return records[0]


def _forget_cut_short(optuna, study) -> None:
    """Trials an interrupted sweep left without a result (running, or failed by the
    interruption): marked failed if need be, and queued to run again with the same settings."""
    state = optuna.trial.TrialState
    retried = set(study.user_attrs.get("retried", []))
    for t in study.get_trials(deepcopy=False, states=(state.RUNNING, state.FAIL)):
        if "record" in t.user_attrs or t.number in retried:
            continue
        if t.state == state.RUNNING:
            study.tell(t.number, state=state.FAIL)
        if t.params:
            study.enqueue_trial(t.params)
        retried.add(t.number)
    study.set_user_attr("retried", sorted(retried))


def _distributions(optuna, cfg: SweepConfig, d: dict) -> dict:
    dist = optuna.distributions
    if cfg.grid:
        return {name: dist.CategoricalDistribution(values) for name, values in cfg.grid.items()}
    space = {}
    for name in cfg.search:
        p = SPACE[name]
        if p.kind == "cell":
            space[name] = dist.CategoricalDistribution(list(CELLS))
        elif p.kind == "int":
            space[name] = dist.IntDistribution(int(p.low(d[name])), int(p.high(d[name])),
                                               log=p.log, step=p.step or 1)
        else:
            space[name] = dist.FloatDistribution(p.low(d[name]), p.high(d[name]), log=p.log)
    return space


def _suggest(trial, name: str, d):
    dist = type(d).__name__
    if dist == "CategoricalDistribution":
        return trial.suggest_categorical(name, d.choices)
    if dist == "IntDistribution":
        return trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
    return trial.suggest_float(name, d.low, d.high, log=d.log)


def results(study) -> list[dict]:
    """Every finished trial's record, trial 0 included: those that ran their budget, best
    first, then the pruned ones."""
    records = [study.user_attrs["defaults"]] if "defaults" in study.user_attrs else []
    records += [t.user_attrs["record"] for t in study.get_trials(deepcopy=False)
                if "record" in t.user_attrs]
    return sorted(records, key=lambda r: (r["pruned"], r["val_loss"], r["number"]))


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _model(p: dict) -> str:
    return f"{p['layers']}x{p['hidden']} {p['cell']}"


def _line(r: dict, cfg: SweepConfig) -> str:
    loss = r["val_loss"]
    return (f"  trial {r['number']}: {_model(r['params'])} lr {r['params']['lr']:.3g}: "
            + (f"{loss:.4f} nats/char" if math.isfinite(loss) else "no validation")
            + f", {r['steps']:,} steps" + (" (pruned)" if r["pruned"] else ""))


TABLE_HEADER = ("| trial | model | lr | dropout | searched | val nats/char | bits/char | steps | "
                "chars/s | pruned |\n|---|---|---|---|---|---|---|---|---|---|")


def table(records: list[dict], searched: list[str]) -> str:
    rows = [TABLE_HEADER]
    for r in records:
        p, loss = r["params"], r["val_loss"]
        extra = ", ".join(f"{k} {_fmt(p[k])}" for k in searched
                          if k not in ("hidden", "layers", "cell", "lr", "dropout"))
        rows.append(f"| {r['number']}{' (defaults)' if r['number'] == 0 else ''} | "
                    f"{_model(p)} | {p['lr']:.3g} | {p['dropout']:.2f} | {extra or '-'} | "
                    f"{loss:.4f} | {loss / math.log(2):.4f} | {r['steps']:,} | "
                    f"{r['chars_per_s']:,.0f} | {'yes' if r['pruned'] else ''} |")
    return "\n".join(rows)


def verdict(records: list[dict]) -> str:
    """One line: how far the best trial beat the defaults."""
    best = records[0]
    base = next(r for r in records if r["number"] == 0)
    p = best["params"]
    if best is base:
        return f"best: the defaults ({_model(p)} lr {p['lr']:.3g}), {best['val_loss']:.4f} " \
               "nats/char; no trial beat them"
    return (f"best: trial {best['number']}, {_model(p)} lr {p['lr']:.3g}, "
            f"{best['val_loss']:.4f} against {base['val_loss']:.4f} for the defaults "
            f"({best['val_loss'] - base['val_loss']:+.4f} nats/char)")


def report(cfg: SweepConfig, records: list[dict], out: Path, say) -> None:
    """The table, the plots, the best run's copy and the verdict."""
    searched = list(cfg.grid) or list(cfg.search)
    text = table(records, searched)
    (out / "results.md").write_text(text + "\n\n" + verdict(records) + "\n", encoding="utf-8")
    (out / "results.json").write_text(json.dumps(records, indent=1), encoding="utf-8")
    _plots(records, searched, out)
    best = records[0]
    if math.isfinite(best["val_loss"]):
        tmp = out / "best.new"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(best["run"], tmp)
        shutil.rmtree(out / "best", ignore_errors=True)
        tmp.rename(out / "best")
    pruned = [r for r in records if r["pruned"]]
    say(text)
    spent = sum(r.get("train_s", 0.0) for r in records)
    full = max((r.get("train_s", 0.0) for r in records if not r["pruned"]), default=0.0)
    saved = (f" (pruning saved {len(records) * full - spent:,.0f} of {len(records) * full:,.0f} "
             "s of training)" if pruned and full else "")
    say(verdict(records) + f"; {len(records)} trials, {len(pruned)} pruned{saved}; the best "
        f"run is in {out / 'best'}, the table and plots in {out}")


def _plots(records: list[dict], searched: list[str], out: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return  # the table says it all; the plots need matplotlib
    fig = params_figure(records, searched)
    fig.savefig(out / "params.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in records:
        if r["curve"]:
            x, y = zip(*r["curve"])
            ax.plot(x, y, marker="o", ms=3, lw=2.5 if r["number"] == 0 else 1,
                    ls="--" if r["pruned"] else "-",
                    label="trial 0 (defaults)" if r["number"] == 0 else
                    f"trial {r['number']}" + (" (pruned)" if r["pruned"] else ""))
    ax.set_xlabel("share of the trial's budget")
    ax.set_ylabel("validation, nats/char")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    plt.close(fig)


def params_figure(records: list[dict], searched: list[str]):
    """params.png: best validation loss against each searched setting, a panel each."""
    import matplotlib.pyplot as plt
    done = [r for r in records if math.isfinite(r["val_loss"])]
    fig, axes = plt.subplots(1, max(1, len(searched)), figsize=(4 * max(1, len(searched)), 3.2),
                             squeeze=False)
    for ax, name in zip(axes[0], searched):
        for pruned, marker in ((False, "o"), (True, "x")):
            xs = [r for r in done if r["pruned"] == pruned]
            ax.scatter([r["params"][name] for r in xs], [r["val_loss"] for r in xs],
                       marker=marker, label="pruned" if pruned else "finished")
        base = next((r for r in done if r["number"] == 0), None)
        if base is not None:
            ax.scatter([base["params"][name]], [base["val_loss"]], s=120, facecolors="none",
                       edgecolors="black", label="defaults")
        ax.set_xlabel(name)
        _ticks(ax, [r["params"][name] for r in done], SPACE[name].log)
    axes[0][0].set_ylabel("best validation, nats/char")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _ticks(ax, values: list, log: bool) -> None:
    """Readable tick labels on a panel's x axis. A log axis labels 1, 2 and 5 times each power
    of ten (matplotlib labels only the powers, and a learning rate searched from a quarter to
    4x the default may span none); an axis still left with under two labels in view is
    labelled at the values tried."""
    from matplotlib import ticker
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    lo, hi = ax.get_xlim()
    numbers = sorted({v for v in values if isinstance(v, (int, float))})
    if numbers and sum(lo <= t <= hi for t in ax.get_xticks()) < 2:
        ax.set_xticks(numbers[::max(1, len(numbers) // 5)])
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
