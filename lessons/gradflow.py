"""How far back a gradient reaches: exploding and vanishing gradients, measured.

    gradient_flow("rnn_tanh", T=100)   # |dL/dh_t| for t = 1..T, L read at step T only

A loss that depends only on the last step's output is backpropagated through T steps of a
one-layer recurrent cell, and the norm of the gradient reaching each hidden state h_t is
recorded. In a vanilla RNN each step back multiplies it by W_hh^T diag(f'(a_t)), so it shrinks
or grows geometrically with distance (Bengio et al. 1994; Pascanu et al. 2013). GRU and LSTM
carry their state additively and keep it alive far longer. `clipping_demo` trains a ReLU RNN
whose recurrent matrix is large, with and without gradient-norm clipping.

`python scripts/plot_gradients.py` draws docs/gradient-flow.png from these functions.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from textrnn import ModelConfig, RNNLM
from textrnn.model import recurrent


def _cell(cell: str, hidden: int, radius: float | None, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    rnn = recurrent(cell, hidden, hidden, 1).double()
    if radius is not None:  # an orthogonal W_hh scaled to this spectral radius
        with torch.no_grad():
            for w in rnn.weight_hh_l0.chunk(rnn.weight_hh_l0.size(0) // hidden):
                nn.init.orthogonal_(w)
                w.mul_(radius)
    return rnn


def gradient_flow(cell: str, T: int = 100, hidden: int = 64, radius: float | None = None,
                  gate_bias: float = 0.0, seed: int = 0) -> list[float]:
    """|dL/dh_t| for t = 1..T, where L is a random linear read-out of h_T.

    `radius` sets W_hh to an orthogonal matrix times it (None: PyTorch's init). `gate_bias` is
    added to the bias of the LSTM forget gate f, or of the GRU update gate z (h' = (1-z) n + z h),
    so that both lean towards keeping their state; 0 leaves PyTorch's init."""
    rnn = _cell(cell, hidden, radius, seed)
    if gate_bias and cell in ("lstm", "gru"):
        with torch.no_grad():  # LSTM gates (i, f, g, o); GRU gates (r, z, n), h' = (1-z) n + z h
            rows = slice(hidden, 2 * hidden)
            rnn.bias_ih_l0[rows] += gate_bias
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, T, hidden, generator=g, dtype=torch.float64)
    state, hs = None, []
    for t in range(T):  # step by step, so that every h_t is a tensor whose gradient we can read
        _, state = rnn(x[:, t:t + 1], state)
        h = state[0] if isinstance(state, tuple) else state                # (1, 1, H)
        h.retain_grad()
        hs.append(h)
    readout = torch.randn(hidden, generator=g, dtype=torch.float64)
    (hs[-1][0, 0] @ readout).backward()
    return [float(h.grad.norm()) for h in hs]


def clipping_demo(clip: float | None, steps: int = 60, lr: float = 0.05, seed: int = 0,
                  radius: float = 2.0) -> list[float]:
    """Training loss of a 1-layer ReLU RNN language model on a short repeated text, whose
    recurrent matrix starts at spectral radius `radius`, with gradient clipping or without."""
    text = "the cat sat on the mat. " * 20
    chars = sorted(set(text))
    ids = torch.tensor([chars.index(c) for c in text])
    torch.manual_seed(seed)
    model = RNNLM(ModelConfig(vocab_size=len(chars), cell="rnn_relu", embed=16, hidden=64,
                              layers=1, dropout=0.0))
    with torch.no_grad():
        nn.init.orthogonal_(model.rnn.weight_hh_l0)
        model.rnn.weight_hh_l0.mul_(radius)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    windows = ids[:len(ids) // 41 * 41].view(-1, 41)   # BPTT windows of 40 steps
    x, y = windows[:, :-1], windows[:, 1:]
    losses = []
    for _ in range(steps):
        _, loss, _ = model(x, y)
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            break
        opt.zero_grad()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
    return losses
