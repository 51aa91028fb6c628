"""The fast generation kernel changes speed, not samples.

Two claims, each tested for every cell: its logits agree with PyTorch's to 1e-5 at every step,
fed the same tokens; and, given the same seed and settings, it samples the same tokens as the
plain one-forward-per-step path. Odd sizes (not whole panels of 16) and both ways into layer 0
(the folded table and the embedding) are covered, as is the fallback when no kernel can be built.
minGRU and minLSTM are covered with and without the residual on layer 0 (embed == hidden), and
through `textrnn sample` on trained char and BPE models.
"""

import os

import pytest
import torch

from conftest import ROOT, TINY, make_model
from textrnn import LM, ModelConfig, Reporter, TrainConfig, fast, train
from textrnn.cli import main
from textrnn.minrnn import MIN_CELLS
from textrnn.sample import Settings, generate, sample_next
from textrnn.tokenizer import CharTokenizer

CELLS = ["lstm", "gru", "rnn_tanh", "rnn_relu", *MIN_CELLS]
SETTINGS = [dict(temperature=0.0), dict(temperature=1.0), dict(temperature=0.7, top_k=5),
            dict(temperature=1.2, top_p=0.9), dict(temperature=0.9, top_k=10, top_p=0.8)]


def test_the_kernel_builds_here():
    """CI machines have a C compiler; this is the path users get, so it must be what we test."""
    assert fast.kernel() is not None, fast.status()


def odd_model(cell, **kw):
    """Sizes that fill no panel exactly, so padding is exercised."""
    kw = dict(vocab=37, hidden=50, layers=3, embed=13) | kw
    return woken(make_model(cell, seed=3, **kw).eval())


def woken(model):
    """A minGRU or minLSTM model's head starts at zero, which would hide the whole stack from
    the logits: it gets random weights here, and its norms weights other than ones, as training
    gives them."""
    if model.config.cell in MIN_CELLS:
        with torch.no_grad():
            model.head.weight.normal_(0, 0.5)
            for name, p in model.rnn.named_parameters():
                if "norm" in name:
                    p.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize("table", [True, False], ids=["table", "embedding"])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("cell", CELLS)
def test_logits_agree_with_pytorch_at_every_step(cell, batch, table, monkeypatch):
    if not table:
        monkeypatch.setattr(fast, "MAX_TABLE_BYTES", 0)
    model = odd_model(cell)
    with torch.no_grad():
        logits, _, state = model(torch.randint(1, 37, (batch, 5)))
    logits = logits[:, -1].contiguous()
    ref_state = state
    state = tuple(s.clone() for s in state) if cell == "lstm" else state.clone()
    stepper = fast.stepper(model, batch, Settings(1.0), banned=[0])
    assert stepper is not None
    worst = 0.0
    for _ in range(60):
        tokens = stepper.run(logits, state, torch.rand(1, batch, dtype=torch.float64))
        with torch.no_grad():
            ref, _, ref_state = model(tokens.T, state=ref_state)
        worst = max(worst, (ref[:, -1] - logits).abs().max().item())
    assert worst <= 1e-5, worst


@pytest.mark.parametrize("threads,batch", [(1, 2), (3, 5), (8, 60)])
@pytest.mark.parametrize("cell", ["lstm", "gru", *MIN_CELLS])
def test_threads_and_runs_of_steps_keep_state_and_logits_exact(cell, threads, batch):
    """Uneven splits of 4 panels over 3 threads, more threads than panels, a batch wider than
    the hidden layer, and calls of 2 and 3 steps (the state swaps buffers inside a call)."""
    _check_runs_of_steps(odd_model(cell), cell, threads, batch)


@pytest.mark.parametrize("table", [True, False], ids=["table", "embedding"])
@pytest.mark.parametrize("batch", [1, 6])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("embed,layers", [(50, 2), (13, 1)], ids=["residual", "narrow"])
@pytest.mark.parametrize("cell", MIN_CELLS)
def test_min_cells_with_and_without_the_residual_on_layer_0(cell, embed, layers, threads, batch,
                                                             table, monkeypatch):
    """embed == hidden: layer 0's output joins the embedding in the residual stream, which the
    kernel keeps beside the state, in one of two buffers by turns (two layers: it ends in the
    other buffer than one layer leaves it in). embed != hidden, one layer: no residual, and the
    head reads layer 0's output."""
    if not table:
        monkeypatch.setattr(fast, "MAX_TABLE_BYTES", 0)
    model = odd_model(cell, embed=embed, layers=layers)
    assert (fast.weights(model).net.table is not None) == table
    _check_runs_of_steps(model, cell, threads, batch)


def _check_runs_of_steps(model, cell, threads, batch):
    with torch.no_grad():
        logits, _, ref_state = model(torch.randint(1, 37, (batch, 4)))
    logits = logits[:, -1].contiguous()
    state = tuple(s.clone() for s in ref_state) if cell == "lstm" else ref_state.clone()
    stepper = fast.Stepper(fast.kernel(), model, batch, Settings(1.0), [0], threads=threads)
    for steps in (2, 3, 2, 3):
        tokens = stepper.run(logits, state, torch.rand(steps, batch, dtype=torch.float64))
        with torch.no_grad():
            ref, _, ref_state = model(tokens.T, state=ref_state)
        assert (ref[:, -1] - logits).abs().max() <= 1e-5
        for ours, theirs in zip(state if cell == "lstm" else [state],
                                ref_state if cell == "lstm" else [ref_state]):
            # relative where states grow large (saturated minLSTM gates: h in the hundreds)
            assert (ours - theirs).abs().max() <= 1e-5 * max(1.0, theirs.abs().max())


@pytest.mark.parametrize("settings", [
    dict(temperature=1.0), dict(temperature=0.0), dict(temperature=0.5, top_k=3),
    dict(temperature=1.0, top_k=40), dict(temperature=1.0, top_p=1e-9),
    dict(temperature=2.0, top_p=0.5), dict(temperature=1.0, top_k=2, top_p=0.3)])
@pytest.mark.parametrize("banned", [[0], list(range(36))])
def test_the_kernel_samples_by_the_same_rule_as_sample_next(settings, banned):
    """One step samples from the logits handed in: exact, not statistical, agreement."""
    model, B = odd_model("lstm"), 64
    logits = torch.randn(B, 37, generator=torch.Generator().manual_seed(1)) * 3
    logits[:8, 5] = logits[:8, 6] = 9.0                       # ties at the top
    u = torch.rand(1, B, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    u[0, -1] = 1 - 2**-53                                     # the largest uniform there is
    h = torch.zeros(3, B, 50)
    stepper = fast.stepper(model, B, Settings(**settings), banned)
    ours = stepper.run(logits.clone(), (h, h.clone()), u)[0]
    masked = logits.clone()
    masked[:, banned] = float("-inf")
    theirs = sample_next(masked, settings["temperature"], settings.get("top_k"),
                         settings.get("top_p"), uniforms=u[0])
    assert torch.equal(ours, theirs)
    assert not torch.isin(ours, torch.tensor(banned)).any()


def test_bad_calls_raise_errors_not_crashes():
    model = odd_model("lstm")
    stepper = fast.stepper(model, 2, Settings(1.0), [0])
    logits, h = torch.zeros(2, 37), torch.zeros(3, 2, 50)
    u = torch.rand(1, 2, dtype=torch.float64)
    for bad_logits, bad_state in [(torch.zeros(3, 37), (h, h)), (logits, h),
                                  (logits, (torch.zeros(3, 4, 50), h)),
                                  (logits, (h.double(), h))]:
        with pytest.raises(ValueError):
            stepper.run(bad_logits, bad_state, u)
    with pytest.raises(ValueError, match="banned"):
        list(generate(model, torch.tensor([1]), 3, banned=[37]))
    with pytest.raises(ValueError, match="temperature"):
        list(generate(model, torch.tensor([1]), 3, temperature=1e-40))


def test_tied_weights_and_a_single_stream_of_a_wide_vocab():
    model = make_model("lstm", vocab=300, hidden=32, embed=32, layers=1, tie_weights=True).eval()
    for settings in SETTINGS:
        plain, quick = (_tokens(model, kernel=f, num_samples=1, **settings) for f in (False, True))
        assert torch.equal(plain, quick), settings


@pytest.mark.parametrize("cell", CELLS)
def test_same_seed_same_tokens_as_the_plain_path(cell):
    model = odd_model(cell)
    for settings in SETTINGS:
        for num_samples in (1, 4):
            plain = _tokens(model, kernel=False, num_samples=num_samples, **settings)
            quick = _tokens(model, kernel=True, num_samples=num_samples, **settings)
            assert torch.equal(plain, quick), (settings, num_samples)


def test_banned_ids_are_never_sampled_and_top_k_holds():
    model = odd_model("lstm")
    tokens = _tokens(model, kernel=True, num_samples=8, temperature=2.0, banned=[0, 5])
    assert not torch.isin(tokens, torch.tensor([0, 5])).any()
    assert len(tokens.unique()) > 10  # hot sampling does reach many tokens
    greedy = _tokens(model, kernel=True, num_samples=1, temperature=0.0, top_k=1)
    assert torch.equal(greedy, _tokens(model, kernel=True, num_samples=1, temperature=1.0,
                                       top_k=1))


def test_lm_streams_through_the_kernel(monkeypatch):
    calls = []
    run = fast.Stepper.run
    monkeypatch.setattr(fast.Stepper, "run", lambda self, *a: calls.append(1) or run(self, *a))
    tok = CharTokenizer.train(TINY)
    lm = LM(make_model(vocab=tok.vocab_size), tok)
    text = lm.generate("ANNA:", 200, seed=1)
    assert len(text) == 200 and calls
    assert len(calls) < 20  # chunks of steps, not a call per character


def test_without_a_compiler_the_plain_path_gives_the_same_text(monkeypatch, tmp_path):
    tok = CharTokenizer.train(TINY)
    lm = LM(make_model(vocab=tok.vocab_size), tok)
    expected = lm.samples("BEN:", 150, num_samples=3, seed=7, top_p=0.95)
    monkeypatch.setattr(fast, "_lib", None)
    monkeypatch.setattr(fast, "_why_not", None)
    monkeypatch.setenv("TEXTRNN_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setattr(fast.shutil, "which", lambda name: None)
    assert fast.kernel() is None
    assert fast.status().startswith("plain PyTorch")
    assert lm.samples("BEN:", 150, num_samples=3, seed=7, top_p=0.95) == expected


def test_turned_off_by_the_environment(monkeypatch):
    monkeypatch.setattr(fast, "_lib", None)
    monkeypatch.setattr(fast, "_why_not", None)
    monkeypatch.setenv("TEXTRNN_KERNEL", "0")
    assert fast.kernel() is None and "TEXTRNN_KERNEL=0" in fast.status()


def test_a_build_is_cached_and_leaves_no_temporary_files(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTRNN_CACHE", str(tmp_path))
    fast._build()
    built = sorted((tmp_path / "kernels").iterdir())
    assert [p.suffix for p in built] == [".sha256", ".so"]  # the library and its hash
    mtime = built[1].stat().st_mtime_ns
    fast._build()
    assert sorted((tmp_path / "kernels").iterdir()) == built
    assert built[1].stat().st_mtime_ns == mtime  # reused, not rebuilt


PLANT = """
#include <stdio.h>
__attribute__((constructor)) static void planted(void) {
    FILE *f = fopen(MARKER, "w"); if (f) { fputs("ran", f); fclose(f); }
}
"""


@pytest.mark.slow
def test_a_planted_library_is_never_loaded(monkeypatch, tmp_path):
    import subprocess
    monkeypatch.setenv("TEXTRNN_CACHE", str(tmp_path))
    fast._build()
    folder = tmp_path / "kernels"
    assert (folder.stat().st_mode & 0o777) == 0o700
    lib = next(folder.glob("*.so"))
    marker, src = tmp_path / "ran", tmp_path / "plant.c"
    src.write_text(PLANT.replace("MARKER", f'"{marker}"'))
    subprocess.run(["cc", "-shared", "-fPIC", str(src), "-o", str(lib)], check=True)
    fast._build()  # its hash is not the one recorded: rebuilt, never loaded
    assert not marker.exists()
    assert fast._digest(lib) == lib.with_suffix(".sha256").read_text().strip()
    subprocess.run(["cc", "-shared", "-fPIC", str(src), "-o", str(lib)], check=True)
    lib.with_suffix(".sha256").write_text(fast._digest(lib))  # its own hash, even
    lib.chmod(0o777)  # but anyone could have written it: rebuilt, never loaded
    fast._build()
    assert not marker.exists() and (lib.stat().st_mode & 0o777) == 0o700
    folder.chmod(0o775)  # a cache made under umask 002: made private again
    fast._build()
    assert (folder.stat().st_mode & 0o777) == 0o700
    if os.geteuid() == 0:  # root can hand the library to another user, as an attacker would
        os.chown(lib, 12345, -1)
        with pytest.raises(OSError, match="not this user's"):
            fast._build()
        os.chown(lib, 0, -1)
    open_to_all = tmp_path / "shared"
    open_to_all.mkdir(mode=0o777)
    open_to_all.chmod(0o777)  # no sticky bit: anyone may swap the cache folder
    monkeypatch.setenv("TEXTRNN_CACHE", str(open_to_all / "cache"))
    with pytest.raises(OSError, match="writable by anyone"):
        fast._build()
    monkeypatch.setattr(fast, "_lib", None)
    monkeypatch.setattr(fast, "_why_not", None)
    assert fast.kernel() is None and "writable by anyone" in fast.status()
    assert not marker.exists()


def test_packed_weights_are_reused_until_a_parameter_changes():
    model = odd_model("gru")
    first = fast.weights(model)
    assert fast.weights(model) is first
    with torch.no_grad():
        model.head.bias.add_(1.0)  # as an optimiser step would
    assert fast.weights(model) is not first


def test_pack_lays_out_panels_k_major():
    w = torch.arange(2 * 20 * 3, dtype=torch.float32).reshape(40, 3)  # 2 groups of 20 rows
    packed = fast.pack(w, groups=2).reshape(2, 2, 3, fast.PANEL)      # 2 panels per group
    assert packed[1, 0, 2, 5] == w[20 + 5, 2]
    assert packed[0, 1, 1, 3] == w[16 + 3, 1]
    assert packed[0, 1, :, 4:].abs().sum() == 0                        # rows 20..31: padding


def _tokens(model, kernel, num_samples, banned=(0,), steps=150, **settings):
    if kernel:  # or this would compare the plain path with itself
        assert fast.stepper(model, num_samples, Settings(1.0)) is not None
    g = torch.Generator().manual_seed(11)
    steps_iter = generate(model, torch.tensor([1, 2, 3]), steps, generator=g,
                          num_samples=num_samples, banned=banned, fast=kernel, **settings)
    return torch.stack(list(steps_iter))


def test_the_kernel_agrees_with_python_on_its_struct_layout(monkeypatch):
    lib = fast.kernel()
    fast.check_layout(lib)  # what every load does; this build agrees
    ours = fast.layout()
    monkeypatch.setattr(fast, "layout", lambda: ours[:-1] + [ours[-1] + 8])
    with pytest.raises(OSError, match="layout"):
        fast.check_layout(lib)


def test_a_team_uses_the_faster_thread_count_and_follows_a_change_in_load():
    """fast.Team with made-up timings: it tries both sizes, keeps to the faster, tries the
    slower again at growing gaps (so an idle machine loses little), and switches back soon
    after the load changes."""
    team = fast.Team(2)
    cost = {2: 1.0, 1: 1.9}                        # idle: two threads are faster

    def call(steps=32):
        n = team.size(steps)
        team.record(n, steps, cost[n] * steps)
        return n

    assert team.size(4) == 2 and [call(), call()] == [2, 1]   # short calls are not timed
    idle = [call() for _ in range(600)]
    trials = [i for i, n in enumerate(idle) if n == 1]
    assert len(trials) <= 8                               # gaps of 8, 16, 32, ..., 256
    assert all(b - a > a - z for z, a, b in zip(trials, trials[1:], trials[2:])
               if b - a < fast.Team.LAST_TRIAL)
    cost = {2: 6.0, 1: 2.9}                        # a hog on every core: one thread is faster
    loaded = [call() for _ in range(20)]
    assert loaded[0] == 2 and set(loaded[1:]) <= {1, 2} and loaded[-5:] == [1] * 5
    cost = {2: 1.0, 1: 1.9}                        # idle again: back to two within a few calls
    back = [call() for _ in range(20)]
    assert back[-5:] == [2] * 5
    assert fast.Team(1).size(100) == 1


@pytest.mark.parametrize("cell", ["lstm", "minlstm"])
def test_the_thread_count_never_changes_the_text(cell, monkeypatch):
    """Each stream's arithmetic is the same whatever threads a call gets (a minLSTM's every
    thread normalises the whole residual stream itself, in one order), so the adaptive choice
    (fast.Team) cannot change a sample."""
    tok = CharTokenizer.train(TINY)
    lm = LM(woken(make_model(cell, vocab=tok.vocab_size, hidden=64)), tok)
    texts = []
    for size in (1, 2, 3, None):
        monkeypatch.setattr(fast, "team_size", size)
        texts.append(lm.generate("ANNA:", 300, seed=3) + "|".join(lm.samples("A", 80, 5, seed=4)))
    assert len(set(texts)) == 1


FULL_DISK_CC = """#!/bin/sh
[ "$1" = --version ] && { echo "cc 1.0"; exit 0; }
echo "/usr/bin/ld: final link failed: No space left on device" >&2
echo "collect2: error: ld returned 1 exit status" >&2
exit 1
"""


def test_a_full_kernel_cache_is_said_as_a_full_disk(monkeypatch, tmp_path):
    cc = tmp_path / "cc"  # says what gcc says when the disk fills during the link
    cc.write_text(FULL_DISK_CC)
    cc.chmod(0o755)
    monkeypatch.setenv("TEXTRNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", str(cc))
    with pytest.raises(OSError, match=r"the disk of the kernel cache .*kernels is full: no "
                                      r"kernel could be built; free some space") as e:
        fast._build()
    assert "collect2" not in str(e.value)
    assert [p.name for p in (tmp_path / "cache" / "kernels").iterdir()] == []


def test_a_symlinked_kernel_library_is_called_a_symlink(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTRNN_CACHE", str(tmp_path))
    fast._build()
    lib = next((tmp_path / "kernels").glob("*.so"))
    copy = tmp_path / "elsewhere.so"
    lib.rename(copy)
    lib.symlink_to(copy)
    with pytest.raises(OSError, match=r"\.so is a symbolic link \(to .*elsewhere.so\); no "
                                      r"kernel is loaded through one") as e:
        fast._build()
    assert "not this user's" not in str(e.value)


@pytest.fixture(scope="module")
def min_runs(tmp_path_factory):
    """A minGRU trained on characters and a minLSTM on BPE tokens (whose steps the UTF-8 guard
    masks), a few steps each."""
    root = tmp_path_factory.mktemp("min-runs")
    for cell, tokenizer in (("mingru", "char"), ("minlstm", "bpe")):
        train(TrainConfig(corpus=str(ROOT / "corpora" / "tiny.txt"), out=str(root / cell),
                          tokenizer=tokenizer, vocab_size=300 if tokenizer == "bpe" else None,
                          model=ModelConfig(cell=cell, hidden=48, embed=16, layers=2),
                          seq_len=16, batch_size=4, lr=1e-2, max_steps=30, evals=1),
              reporter=Reporter())
    return root


@pytest.mark.slow  # trains two models
@pytest.mark.parametrize("cell", MIN_CELLS)
def test_textrnn_sample_runs_min_cells_on_the_kernel_with_the_plain_paths_text(
        cell, min_runs, capsys, monkeypatch):
    guarded = []  # per kernel call: whether it ran with the UTF-8 guard
    run = fast.Stepper.run
    monkeypatch.setattr(fast.Stepper, "run", lambda self, *a: guarded.append(
        getattr(self, "guard", None) is not None) or run(self, *a))
    texts = []
    for kernel in (True, False):
        if not kernel:
            monkeypatch.setattr(fast, "stepper", lambda *a, **k: None)  # the plain backend
        argv = ["sample", str(min_runs / cell), "--prompt", "ANNA:", "--length", "300",
                "--seed", "5", "--temperature", "1.5", "--num-samples", "3"]
        assert main(argv) == 0
        texts.append(capsys.readouterr().out)
        assert bool(guarded) == kernel  # the kernel ran the first time, and only then
        assert set(guarded) <= {cell == "minlstm"}  # the BPE model's steps were guarded
        guarded.clear()
    assert texts[0] == texts[1] and len(texts[0]) > 900
    assert "\ufffd" not in texts[0]


@pytest.mark.parametrize("cell", MIN_CELLS)
def test_min_cells_agree_with_pytorch_where_the_gates_saturate(cell):
    """Pre-activations in the hundreds, past where exp overflows a float: the kernel's minLSTM
    gate, computed without softplus, stays finite and equal to torch's."""
    model = odd_model(cell)
    with torch.no_grad():
        for layer in model.rnn.layers:
            layer.proj.weight.mul_(100)
            layer.proj.bias.mul_(100)
    _check_runs_of_steps(model, cell, 2, 4)
