"""minGRU and minLSTM: recurrent cells whose gates read the input only, so that a whole
sequence's matrix products run at once (Feng et al. 2024, "Were RNNs All We Needed?").

Each layer computes, from its input x_t alone, a decay a_t and an input b_t, and then

    h_t = a_t * h_{t-1} + b_t                     (elementwise: a linear recurrence)

    minGRU:   z = sigmoid(k_z)                     a = 1 - z      b = z * g(k_h)
    minLSTM:  f' = f / (f + i), f = sigmoid(k_f), i = sigmoid(k_i)
              = sigmoid(softplus(-k_i) - softplus(-k_f))
                                                   a = f'         b = (1 - f') * g(k_h)

where [k_z, k_h] (or [k_f, k_i, k_h]) = W x_t + c is one matrix product for every step at once,
and g(v) = v + 1/2 for v >= 0, sigmoid(v) below, keeps h positive (the authors' choice, which
lets the recurrence run in log space). Layers stack as the authors stack them: pre-norm residual
blocks, x <- x + cell(RMSNorm(x)), and an RMSNorm on the top layer's output.

The recurrence itself is cheap (a multiply-add per unit per step); the matrix products were the
cost of an LSTM, and here they leave the loop. Two ways to run it over a sequence:
- `scan_loop`: step by step with one fused multiply-add, in a custom autograd function whose
  backward is the same loop run backwards. On a CPU it is the fastest measured (a 32x256x512
  scan, forward and backward: 77 ms, against 1,040 ms for the log-space scan), and it takes the
  very operations generation takes, so training and generation agree to the bit.
- `scan_log`: the parallel scan in log space (Heinsen 2023, "Efficient Parallelization of a
  Ubiquitous Sequential Computation"): cumulative sums and a cumulative log-sum-exp, run in
  chunks of CHUNK steps (one chunk over 256 steps drifts 5e-5 from the step recurrence in fp32;
  chunks of 32 stay under 1e-5). It suits a GPU, where a step-by-step loop is one kernel
  launch a step.
Left out on purpose: the authors' optional convolution and feed-forward layers.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .regularize import LockedDropout

MIN_CELLS = ("mingru", "minlstm")
MIN_GATES = {"mingru": 2, "minlstm": 3}  # rows of W per unit: [k_z, k_h] or [k_f, k_i, k_h]
CHUNK = 32  # steps a log-space scan runs at once; the state is carried between chunks


class _Scan(torch.autograd.Function):
    """h_t = a_t * h_{t-1} + b_t over dim 0 of (T, B, H) tensors, from h0 (B, H)."""

    @staticmethod
    def forward(ctx, a, b, h0):
        h, out = h0, torch.empty_like(b)
        for t in range(len(a)):
            h = torch.addcmul(b[t], a[t], h, out=out[t])
        ctx.save_for_backward(a, out, h0)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out, h0 = ctx.saved_tensors
        db, carry = torch.empty_like(grad), torch.zeros_like(h0)  # carry: dL/dh_t from t + 1
        for t in range(len(a) - 1, -1, -1):
            carry = torch.add(grad[t], carry, out=db[t]) * a[t]  # db_t is the whole dL/dh_t
        return db * torch.cat([h0[None], out[:-1]]), db, carry


def scan_loop(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """Every h_t (T, B, H) of h_t = a_t * h_{t-1} + b_t, step by step."""
    return _Scan.apply(a, b, h0)


def scan_log(log_a: torch.Tensor, log_b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """Every h_t (T, B, H) of the same recurrence from log a_t, log b_t and h0 >= 0, in
    chunks of CHUNK steps computed at once: h_t = A_t (h0 + sum_s<=t b_s / A_s), A_t the
    product of a up to t, all in logs."""
    out, log_h = [], h0.clamp_min(1e-30).log()  # log 0 would make the backward NaN
    for s in range(0, len(log_a), CHUNK):
        a_star = torch.cumsum(log_a[s:s + CHUNK], 0)                         # log A_t
        v = torch.cat([log_h[None], log_b[s:s + CHUNK] - a_star])
        h = torch.exp(a_star + torch.logcumsumexp(v, 0)[1:])
        out.append(h)
        log_h = h[-1].log()
    return torch.cat(out)


def _g(v: torch.Tensor) -> torch.Tensor:
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def _log_g(v: torch.Tensor) -> torch.Tensor:
    return torch.where(v >= 0, (F.relu(v) + 0.5).log(), -F.softplus(-v))


class MinLayer(nn.Module):
    """One minGRU or minLSTM layer: RMSNorm, the input's projection, the recurrence."""

    def __init__(self, cell: str, inputs: int, hidden: int):
        super().__init__()
        self.cell = cell
        self.norm = nn.RMSNorm(inputs)
        self.proj = nn.Linear(inputs, MIN_GATES[cell] * hidden)

    def forward(self, x: torch.Tensor, h0: torch.Tensor, log_space: bool) -> torch.Tensor:
        """Every step's state (T, B, H) from the inputs x (T, B, In) and the state h0 (B, H)."""
        k = self.proj(self.norm(x)).float()  # (T, B, G*H); the recurrence runs in fp32
        if self.cell == "mingru":
            gate, k_h = k.chunk(2, dim=-1)   # a = sigmoid(-gate), 1 - a = sigmoid(gate)
        else:
            k_f, k_i, k_h = k.chunk(3, dim=-1)
            gate = F.softplus(-k_f) - F.softplus(-k_i)  # a = f' = sigmoid(-gate)
        if log_space:
            return scan_log(F.logsigmoid(-gate), F.logsigmoid(gate) + _log_g(k_h), h0)
        return scan_loop(torch.sigmoid(-gate), torch.sigmoid(gate) * _g(k_h), h0)


class MinStack(nn.Module):
    """Stacked minGRU or minLSTM layers behind nn.GRU's interface (batch first):
    (B, T, In) and a state h (L, B, H) or None -> (B, T, H) and the new state."""

    def __init__(self, cell: str, inputs: int, hidden: int, layers: int, dropout: float = 0.0,
                 locked: bool = False):
        super().__init__()
        self.hidden = hidden
        self.layers = nn.ModuleList(MinLayer(cell, inputs if l == 0 else hidden, hidden)
                                    for l in range(layers))
        self.norm = nn.RMSNorm(hidden)
        # between layers; `locked`: one mask per sequence (regularize.py), time being dim 0 here
        self.drop = LockedDropout(dropout, time_dim=0) if locked else nn.Dropout(dropout)
        self.log_space: bool | None = None  # None: on CUDA only (see the module's docstring)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None):
        out, state, _ = self.run(x, state)
        return out, state

    def run(self, x: torch.Tensor, state: torch.Tensor | None = None, every: bool = False):
        """`forward`'s output and state, and with `every` each layer's state after each step
        (L, B, T, H), which Look inside shows (probe.py)."""
        x = x.transpose(0, 1)                                    # (T, B, In): a step's rows
        if state is None:
            state = x.new_zeros(len(self.layers), x.size(1), self.hidden, dtype=torch.float32)
        log_space = x.is_cuda if self.log_space is None else self.log_space
        last, kept = [], []
        for l, layer in enumerate(self.layers):
            h = layer(x, state[l], log_space)                    # (T, B, H)
            last.append(h[-1])
            if every:
                kept.append(h.transpose(0, 1))
            y = self.drop(h) if l < len(self.layers) - 1 else h
            x = y if x.size(-1) != y.size(-1) else x + y         # residual where widths agree
        out = self.norm(x).transpose(0, 1)                       # (B, T, H)
        return out, torch.stack(last), torch.stack(kept) if every else None
