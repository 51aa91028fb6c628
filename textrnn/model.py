"""The recurrent language model: embedding -> stacked RNN/GRU/LSTM -> linear -> softmax.

For the vanilla cell, each layer computes
    h_t = f(W_hh h_{t-1} + W_xh x_t + b_h)        f = tanh or ReLU
and the head computes the logits y_t = W_hy h_t + b_y; the loss is the softmax cross-entropy of
y_t against the next token, averaged over every position (nats per token). GRU (Cho et al. 2014)
and LSTM (Hochreiter & Schmidhuber 1997) replace the cell with gated ones whose additive state
path lets gradients survive over many more steps. minGRU and minLSTM (minrnn.py) drop the
previous state from the gates, so that a sequence's matrix products run at once.
AWD-LSTM's regularizers (regularize.py: DropConnect on W_hh, embedding and locked dropout) act
in training only, and leave the weights' names and the eval-mode model as they are.

One contract, whatever the cell:
    forward(idx, targets=None, state=None) -> (logits, loss, state)
The trainer and the sampler rely on nothing else. Left out on purpose: attention, layer norm
inside the classic cells, and anything that would stop PyTorch's fused RNN kernels from running.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .minrnn import MIN_CELLS, MIN_GATES, MinStack
from .regularize import CLASSIC, LockedDropout, embedding_dropout, run_layers

CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu", *MIN_CELLS)
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1,  # rows of W_ih and W_hh, per unit
         **MIN_GATES}
EMBED = 64  # an untied embedding's width: a char vocabulary of ~100 needs few dimensions
MAX_SIZE = {"embed": 65536, "hidden": 65536, "layers": 64}  # past these, a typo, not a model
REGULARIZERS = {"weight_drop": 0.0, "embed_drop": 0.0, "locked_dropout": False}  # (their "off")

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # (h) or, for LSTM, (h, c)


def said_regularizers(model: dict) -> str:
    """", weight drop 0.2, embedding drop 0.1, locked" for the AWD-LSTM regularizers a model
    section (a dict, as config.json holds it) sets; "" for none."""
    said = {"weight_drop": "weight drop {:g}", "embed_drop": "embedding drop {:g}",
            "locked_dropout": "locked"}
    return "".join(", " + said[k].format(model[k]) for k in REGULARIZERS
                   if model.get(k, REGULARIZERS[k]) != REGULARIZERS[k])


@dataclass
class ModelConfig:
    vocab_size: int = 0      # set by the tokenizer from the training text; 0 until it is known
    cell: str = "lstm"       # lstm | gru | rnn_tanh | rnn_relu | mingru | minlstm (minrnn.py)
    embed: int | None = None  # embedding width; None: the hidden width when tied, else EMBED
    hidden: int | None = None  # units per layer: the model's memory and most of its cost (~H^2)
    layers: int | None = None  # stacked layers; a second layer helps, a third rarely pays on a CPU
    dropout: float | None = None  # on embeddings, between layers and before the head; raise it
                             # (0.1-0.3) when validation loss rises while training loss falls
    # None: `textrnn train` chooses from the corpus and budget (plan.py); a model is only
    # built from a config that leaves nothing open
    tie_weights: bool | None = None  # share the embedding with the output layer (needs
                             # embed == hidden); None: chosen (plan.embedding), and False
                             # where an embed width is set
    # AWD-LSTM's regularizers (regularize.py), training only; off by default, and the plan
    # never turns them on: only what a person sets
    weight_drop: float = 0.0   # DropConnect on each layer's W_hh (lstm, gru, rnn_tanh, rnn_relu)
    embed_drop: float = 0.0    # drop whole embedding rows: every occurrence of a token at once
    locked_dropout: bool = False  # `dropout` draws one mask per sequence, not one per token

    def __post_init__(self):
        if self.tie_weights is None and self.embed is not None:
            self.tie_weights = False  # a width of its own: an embedding apart from the head
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        for name in ("embed", "hidden", "layers"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
            if getattr(self, name) is not None and getattr(self, name) > MAX_SIZE[name]:
                raise ValueError(f"{name} must be at most {MAX_SIZE[name]:,}, got "
                                 f"{getattr(self, name):,}" + (
                                     "; RNN stacks deeper than a few layers train badly (2-3 is "
                                     "usual)" if name == "layers" else ""))
        for name in ("dropout", "weight_drop", "embed_drop"):
            p = getattr(self, name)
            if p is not None and not 0 <= p < 1:
                raise ValueError(f"{name.replace('_', '-')} must be in [0, 1), got {p}")
        if self.weight_drop and self.cell not in CLASSIC:
            raise ValueError(f"weight-drop applies to the {', '.join(CLASSIC)} cells (their "
                             f"recurrent weights W_hh); {self.cell} has none")
        if self.vocab_size < 0:
            raise ValueError(f"vocab_size must be positive, got {self.vocab_size}")
        if self.tie_weights and None not in (self.embed, self.hidden) and self.embed != self.hidden:
            raise ValueError(f"weight tying needs embed == hidden (got {self.embed} and "
                             f"{self.hidden}); set --embed {self.hidden} or drop tying")

    def to_dict(self) -> dict:
        """The fields as a checkpoint records them: the regularizers only where set, so that a
        run without them writes the model section it always did (and older textrnn reads it)."""
        return {k: v for k, v in asdict(self).items()
                if k not in REGULARIZERS or v != REGULARIZERS[k]}

    def draws_masks(self) -> bool:
        """Whether training draws random masks (dropout of any kind)."""
        return bool(self.dropout or self.weight_drop or self.embed_drop)

    def regularizers(self) -> str:
        """AWD-LSTM's regularizers that are set, as a run's log says them ("" for none)."""
        return said_regularizers(asdict(self))

    def layer_by_layer(self) -> bool:
        """Whether training runs a classic stack one layer at a time (regularize.run_layers):
        for DropConnect, or for a locked dropout between layers."""
        between = self.locked_dropout and bool(self.dropout) and (self.layers or 1) > 1
        return self.cell in CLASSIC and (self.weight_drop > 0 or between)

    def open_fields(self) -> list[str]:
        """The fields left to be chosen (None)."""
        return [k for k in ("embed", "hidden", "layers", "dropout", "tie_weights")
                if getattr(self, k) is None]


def recurrent(cell: str, inputs: int, hidden: int, layers: int, dropout: float = 0.0,
              locked: bool = False) -> nn.Module:
    """PyTorch's stacked RNN, GRU or LSTM for a cell name (batch first): its fused kernels run;
    or a stack of minGRU or minLSTM layers behind the same interface (minrnn.py), with a locked
    dropout between layers if asked."""
    if cell in MIN_CELLS:
        return MinStack(cell, inputs, hidden, layers, dropout, locked)
    kind = {"lstm": nn.LSTM, "gru": nn.GRU}.get(cell, nn.RNN)
    extra = {"nonlinearity": cell[4:]} if cell.startswith("rnn_") else {}
    return kind(inputs, hidden, layers, batch_first=True, dropout=dropout, **extra)


def param_shapes(c: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor in the state_dict of `RNNLM(c)`, worked out without building
    it (tests check the two agree): a checkpoint's weights are checked against these before
    anything is allocated."""
    G, H = GATES[c.cell], c.hidden
    shapes = {"embed.weight": (c.vocab_size, c.embed)}
    for l in range(c.layers):
        inputs = c.embed if l == 0 else H
        if c.cell in MIN_CELLS:
            shapes |= {f"rnn.layers.{l}.norm.weight": (inputs,),
                       f"rnn.layers.{l}.proj.weight": (G * H, inputs),
                       f"rnn.layers.{l}.proj.bias": (G * H,)}
        else:
            shapes |= {f"rnn.weight_ih_l{l}": (G * H, inputs), f"rnn.weight_hh_l{l}": (G * H, H),
                       f"rnn.bias_ih_l{l}": (G * H,), f"rnn.bias_hh_l{l}": (G * H,)}
    if c.cell in MIN_CELLS:
        shapes["rnn.norm.weight"] = (H,)
    return shapes | {"head.weight": (c.vocab_size, H), "head.bias": (c.vocab_size,)}


def core_params(c: ModelConfig) -> int:
    """The recurrent layers' weights: what every token trains (an embedding or softmax row is
    trained mostly by its own token's occurrences)."""
    return sum(math.prod(s) for k, s in param_shapes(c).items() if k.startswith("rnn."))


def num_params(c: ModelConfig) -> int:
    """`RNNLM(c).num_params()`, without building it (tied weights count once)."""
    shapes = param_shapes(c)
    if c.tie_weights:
        shapes.pop("head.weight")
    return sum(math.prod(s) for s in shapes.values())


class RNNLM(nn.Module):

    def __init__(self, config: ModelConfig):
        super().__init__()
        assert config.vocab_size > 0, "vocab_size comes from the tokenizer"
        if config.open_fields():
            raise ValueError(f"ModelConfig leaves {', '.join(config.open_fields())} to be chosen "
                             "(None); set them to build a model")
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.embed)
        self.rnn = recurrent(c.cell, c.embed, c.hidden, c.layers,
                             dropout=c.dropout if c.layers > 1 else 0.0, locked=c.locked_dropout)
        self.drop = LockedDropout(c.dropout, time_dim=1) if c.locked_dropout else \
            nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden, c.vocab_size)
        self._init_weights()
        if c.tie_weights:  # Press & Wolf 2017, "Using the Output Embedding to Improve LMs"
            self.head.weight = self.embed.weight

    @torch.no_grad()
    def _init_weights(self):
        # PyTorch's own initialisation is kept: measured on tiny-shakespeare, a small-std head,
        # zero recurrent biases or an LSTM forget-gate bias of 1 each slowed the first minutes
        # of training (30 s runs: 2.32 nats/char as is; 2.41 forget bias 1; 2.52 head std 0.02).
        self.embed.weight[0].zero_()  # id 0 is <unk>: a zero, "no information" input
        if self.config.cell in MIN_CELLS and not self.config.tie_weights:
            # the stack ends in an RMSNorm (unit scale), which PyTorch's head turns into logits
            # of std 0.6 (a first loss 0.1-0.2 nats above ln V); a zero head starts at ln V,
            # as muP advises for the readout (Yang et al. 2021, "Tensor Programs V")
            self.head.weight.zero_()

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def features(self, idx: torch.Tensor, state: State | None = None):
        """The top layer's outputs (B, T, H) and the new state: the model short of its head."""
        x = self.drop(self.embedded(idx))                  # (B, T, E)
        if self.training and self.config.layer_by_layer():
            return run_layers(self.rnn, x, state, self.config.weight_drop, self.drop)
        return self.rnn(x, state)                          # (B, T, H); state (L, B, H)

    def embedded(self, idx: torch.Tensor) -> torch.Tensor:
        """The embedding of idx (B, T) -> (B, T, E), with embedding dropout when training."""
        if self.training and self.config.embed_drop > 0:
            return embedding_dropout(self.embed, idx.long(), self.config.embed_drop)
        return self.embed(idx.long())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                state: State | None = None):
        out, state = self.features(idx, state)
        logits = self.head(self.drop(out))                 # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten().long())
        return logits, loss, state


def parse_device(name: str) -> torch.device | None:
    """The device a name means (None for auto), whether or not this machine has it; ValueError
    for a name that is no device, or one textrnn does not run on."""
    if name == "auto":
        return None
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {name!r}; try cpu, cuda or auto") from None
    if device.type not in ("cpu", "cuda", "mps"):  # meta, xpu, ...: PyTorch's, not ours
        raise ValueError(f"textrnn does not run on device {name!r}; try cpu, cuda, mps or auto")
    return device


def pick_device(name: str) -> torch.device:
    """A device from its name (auto: cuda where there is one, else cpu); ValueError for one
    that is unknown or absent."""
    device = parse_device(name)
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda asked for, but this PyTorch sees no CUDA GPU")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"no GPU {device}: this machine has {torch.cuda.device_count()}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device mps asked for, but this PyTorch sees no Apple GPU")
    return device


def autocast(device: torch.device, precision: str):
    """The context a forward pass runs in at `precision`: bf16 or fp16 autocast (matmuls in
    that type, weights and loss in fp32), or nothing (fp32)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device.type, dtype) if dtype else contextlib.nullcontext()


def detach_state(state: State | None, dtype: torch.dtype | None = None) -> State | None:
    """Cut the graph at a batch boundary (truncated BPTT), keeping the values (as `dtype`)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach().to(dtype) for s in state)
    return state.detach().to(dtype)
