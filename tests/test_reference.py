"""The textbook RNN: hand-written BPTT against finite differences and against the fast model."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lessons import reference
from lessons.gradflow import clipping_demo, gradient_flow

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("loss", ["ce", "mse"])
@pytest.mark.parametrize("f", ["tanh", "sigmoid", "relu"])
def test_hand_written_gradients_match_finite_differences(f, loss):
    errors = reference.gradient_check(f, loss, seed=1)
    assert set(errors) == {"W_xh", "W_hh", "W_hy", "b_h", "b_y", "h0"}
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("f", ["tanh", "relu"])
def test_reference_and_pytorch_model_agree_both_ways(f):
    errors = reference.torch_check(f, seed=2)
    assert max(errors.values()) < 1e-6, errors


def test_the_check_can_fail(monkeypatch):
    # the tutorial's kind of slip: a wrong derivative (here tanh' = 1 - h) must be caught
    act, _ = reference.ACTIVATIONS["tanh"]
    monkeypatch.setitem(reference.ACTIVATIONS, "tanh", (act, lambda h: 1 - h))
    assert max(reference.gradient_check("tanh", "ce").values()) > 1e-3


def test_forward_is_the_equations():
    p = reference.Params.random(3, 4, 3, seed=0)
    X = np.eye(3)[[0, 2, 1]]
    hs, ys = reference.forward(p, X, "tanh")
    h1 = np.tanh(p.W_hh @ p.h0 + p.W_xh @ X[0] + p.b_h)
    assert np.allclose(hs[1], h1) and np.allclose(ys[0], p.W_hy @ h1 + p.b_y)


@pytest.mark.parametrize("task", ["sine", "text"])
def test_numpy_training_loop_learns(task):
    losses = reference.train_toy(task, steps=200)
    assert losses[-1] < losses[0] / 5


@pytest.mark.slow
def test_module_runs_its_checks_and_exits_zero():
    result = subprocess.run([sys.executable, "-m", "lessons.reference"], capture_output=True,
                            text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "pass" in result.stdout and "W_hh" in result.stdout


def test_vanilla_gradients_vanish_or_explode_and_gates_can_keep_them():
    back = lambda g: g[0] / g[-1]  # noqa: E731  gradient 99 steps back, relative to the last
    assert back(gradient_flow("rnn_tanh", 100)) < 1e-20
    assert back(gradient_flow("rnn_relu", 100, radius=1.5)) > 10
    assert back(gradient_flow("lstm", 100, gate_bias=3.0)) > 1e-3
    assert back(gradient_flow("lstm", 100)) < 1e-15


def test_clipping_rescues_an_exploding_run():
    unclipped, clipped = clipping_demo(None, steps=30), clipping_demo(1.0, steps=30)
    assert not np.isfinite(unclipped[-1])
    assert np.isfinite(clipped).all() and clipped[-1] < clipped[0] / 100
