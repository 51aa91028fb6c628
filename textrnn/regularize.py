"""AWD-LSTM's regularizers (Merity, Keskar & Socher 2018, "Regularizing and Optimizing LSTM
Language Models"), for training only:

- `embedding_dropout`: whole rows of the embedding matrix dropped, so that every occurrence of a
  dropped token in the batch reads zeros, and the rest scaled by 1/(1-p).
- `LockedDropout`: one dropout mask per sequence, shared over its time steps (variational
  dropout, Gal & Ghahramani 2016), instead of a fresh mask per token.
- `run_layers`: a stacked nn.LSTM, nn.GRU or nn.RNN run one layer at a time with its own
  parameters (so the state_dict and every checkpoint stay as they are), through the functional
  ops the module itself calls. That makes room for DropConnect on each layer's hidden-to-hidden
  weights W_hh (one mask per forward call, shared by the batch and every step) and for a
  locked dropout between layers, which the fused stacked call cannot apply.

In eval mode none of this runs: validation, generation, the kernel and Look inside see the
stacked module as it is. Left out on purpose: AWD-LSTM's other levers (activation
regularization, NT-ASGD), and DropConnect on minGRU/minLSTM, which have no W_hh.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

CLASSIC = ("lstm", "gru", "rnn_tanh", "rnn_relu")  # the cells with a W_hh to drop


class LockedDropout(nn.Module):
    """Dropout with one mask per sequence: the mask has size 1 along `time_dim`."""

    def __init__(self, p: float, time_dim: int):
        super().__init__()
        self.p, self.time_dim = p, time_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        shape = list(x.shape)
        shape[self.time_dim] = 1                           # (B, 1, H) or (1, B, H)
        mask = x.new_empty(shape).bernoulli_(1 - self.p) / (1 - self.p)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}, time_dim={self.time_dim}"


def embedding_dropout(embed: nn.Embedding, idx: torch.Tensor, p: float) -> torch.Tensor:
    """The embedding of idx (B, T) -> (B, T, E) with each vocabulary row dropped with
    probability p, the kept rows scaled by 1/(1-p) (Merity et al. 2018, section 4.3)."""
    w = embed.weight
    mask = w.new_empty(w.size(0), 1).bernoulli_(1 - p) / (1 - p)   # (V, 1)
    return F.embedding(idx, w * mask)


def _op(rnn: nn.Module):
    """The functional op that `rnn` (a stacked nn.LSTM, nn.GRU or nn.RNN) calls."""
    if isinstance(rnn, nn.LSTM):
        return torch.lstm
    if isinstance(rnn, nn.GRU):
        return torch.gru
    return torch.rnn_tanh if rnn.nonlinearity == "tanh" else torch.rnn_relu


def run_layers(rnn: nn.Module, x: torch.Tensor, state, weight_drop: float,
               between: nn.Module):
    """What `rnn(x, state)` computes (batch first; x (B, T, In); state (L, B, H), or a pair
    for LSTM, or None), one layer at a time: with DropConnect of probability `weight_drop` on
    each layer's W_hh, and `between` applied to every layer's output but the last (where the
    stacked module applies its own dropout). With weight_drop 0 and `between` the module's own
    dropout, it is the stacked module's computation."""
    lstm, L = isinstance(rnn, nn.LSTM), rnn.num_layers
    if state is None:
        zeros = x.new_zeros(L, x.size(0), rnn.hidden_size)
        state = (zeros, zeros) if lstm else zeros
    h0, c0 = state if lstm else (state, None)
    op, hs, cs = _op(rnn), [], []
    for l in range(L):
        w_ih, w_hh, b_ih, b_hh = (getattr(rnn, f"{n}_l{l}") for n in
                                  ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        if weight_drop > 0:
            w_hh = F.dropout(w_hh, weight_drop, training=True)  # DropConnect (Wan et al. 2013)
        hx = (h0[l:l + 1], c0[l:l + 1]) if lstm else h0[l:l + 1]
        # (input, hx, params, has_biases, layers, dropout, train, bidirectional, batch_first)
        out = op(x, hx, [w_ih, w_hh, b_ih, b_hh], True, 1, 0.0, True, False, True)
        x = out[0] if l == L - 1 else between(out[0])     # (B, T, H)
        hs.append(out[1])
        if lstm:
            cs.append(out[2])
    h = torch.cat(hs)                                      # (L, B, H)
    return x, ((h, torch.cat(cs)) if lstm else h)
