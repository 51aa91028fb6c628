"""minGRU and minLSTM (minrnn.py): both scans are the step recurrence, the backward of the loop
is the true gradient, and a carried state makes windows of a text one text."""

import pytest
import torch

from conftest import make_model
from textrnn.minrnn import MIN_CELLS, scan_log, scan_loop


def step_by_step(a, b, h0):
    h, out = h0, []
    for t in range(len(a)):
        h = a[t] * h + b[t]
        out.append(h)
    return torch.stack(out)


def coefficients(T=256, B=4, H=64, seed=0):
    """a in (0, 1) and b > 0, as the cells make them, with the gates' spread of a trained
    model (some units keep their state for hundreds of steps, some forget at once)."""
    g = torch.Generator().manual_seed(seed)
    k = torch.randn(T, B, H, generator=g) * 3
    return torch.sigmoid(-k), torch.sigmoid(k) * torch.rand(T, B, H, generator=g) * 2


@pytest.mark.parametrize("scan", ["loop", "log"])
def test_each_scan_is_the_step_recurrence_to_1e5_in_fp32(scan):
    a, b = coefficients()
    h0 = torch.rand(4, 64)
    want = step_by_step(a.double(), b.double(), h0.double())
    got = scan_loop(a, b, h0) if scan == "loop" else scan_log(a.log(), b.log(), h0)
    assert got.dtype == torch.float32
    assert ((got.double() - want).abs() / want.abs()).max() < 1e-5


def test_the_loop_scan_backward_is_the_gradient():
    a, b = coefficients(T=7, B=2, H=3)
    args = [t.double().requires_grad_() for t in (a, b, torch.rand(2, 3))]
    assert torch.autograd.gradcheck(scan_loop, args)


def test_the_log_scan_gives_the_loop_scans_gradients_from_a_zero_state():
    """Gradients with respect to log a and log b, which the cells make (a gradient with
    respect to an a of 1e-5 divides the rounding error of its log by 1e-5)."""
    a, b = coefficients(T=80, B=2, H=8)
    grads = []
    for scan in ("loop", "log"):
        x, y = a.log().requires_grad_(), b.log().requires_grad_()
        h = scan_loop(x.exp(), y.exp(), torch.zeros(2, 8)) if scan == "loop" else \
            scan_log(x, y, torch.zeros(2, 8))
        (h * torch.linspace(-1, 1, 8)).sum().backward()
        grads.append((x.grad, y.grad))
    for loop, log in zip(*grads):
        assert torch.isfinite(log).all()
        assert (loop - log).abs().max() < 1e-5 * loop.abs().max()


@pytest.mark.parametrize("cell", MIN_CELLS)
def test_windows_with_the_state_carried_are_one_text_to_the_bit(cell):
    model = make_model(cell, layers=3).eval()
    idx = torch.randint(20, (3, 40))
    whole, _, end = model(idx)
    first, _, mid = model(idx[:, :17])
    second, _, end2 = model(idx[:, 17:], state=mid)
    assert torch.equal(torch.cat([first, second], 1), whole) and torch.equal(end, end2)


@pytest.mark.parametrize("cell", MIN_CELLS)
def test_the_log_space_path_gives_the_same_model(cell):
    model = make_model(cell, layers=2).eval()
    idx = torch.randint(20, (2, 100))
    loop, _, s_loop = model(idx)
    model.rnn.log_space = True
    log, _, s_log = model(idx)
    assert torch.allclose(loop, log, atol=1e-5) and torch.allclose(s_loop, s_log, atol=1e-5)
