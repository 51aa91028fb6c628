"""Looking inside a model: what it expected at each token, and which units follow the text.

    ins = lm.inspect(text)             # one pass over the text, the state carried (as evaluate)
    ins.loss[t], ins.top[t]            # nats spent on token t; the guesses made before reading it
    ins.activations["h"][l, t, u]      # unit u of layer l after token t ("c" too, for an LSTM)
    found = find_units(ins)            # the units whose activation follows a feature of the text

Karpathy, Johnson & Fei-Fei (2015), "Visualizing and Understanding Recurrent Networks", found
LSTM cells that switch on inside quotes, count the position in a line or follow the depth of
brackets. `find_units` looks for such units the simple way: the Pearson correlation, over one
text, between each unit's activation and a few features of that text (FEATURES). A high score
says the unit follows the feature on this text, not that it exists for it.

nn.LSTM, nn.GRU and nn.RNN return only the top layer's outputs and the last step's state, so
each layer runs here as a one-layer module of its own with the same weights; an LSTM's cell
state c is then worked out from the gates (see `cell_states`). A minGRU or minLSTM stack
hands back every layer's states itself (`MinStack.run`). The pass runs in PyTorch, never
in the generation kernel, which keeps no state but the last. Left out on purpose: gate values,
gradients and saliency, and any search over features not listed in FEATURES.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .minrnn import MinStack
from .model import recurrent

MAX_INSPECT_CHARS = 10_000  # a 2x384 LSTM keeps 61 MB of states for this many characters (h and
                            # c, float32; a byte model of 4-byte characters, 4 times that), and
                            # reads it in about a second on two cores
LOGITS_AT_ONCE = 2**22      # logits made at a time, whatever the vocabulary
STEPS_AT_ONCE = 1024        # tokens a layer reads at a time: PyTorch's LSTM keeps 4H floats a
                            # step while it runs (100 MB over 10,000 steps of a 2x384 LSTM)


@dataclass
class Inspection:
    """One pass over a text, token by token (T tokens, L layers, H units a layer)."""
    ids: torch.Tensor        # (T,) the text's tokens
    pieces: list[str]        # each token's text, as a stream decodes it: a token that ends inside
                             # a UTF-8 character shows "" and the one that completes it shows the
                             # whole character, so the pieces join to the decoded text
    loss: torch.Tensor       # (T,) nats spent on each token, given all before it; NaN for the
                             # first, which nothing predicts
    top: list[list[tuple[str, float]]]  # per token, the model's likeliest guesses for it before
                             # reading it, (text, probability), best first; [] for the first;
                             # a guess that is part of a character is spelt in hex ("0xE2")
    activations: dict[str, torch.Tensor]  # "h": (L, T, H) each layer's output after each token;
                             # for an LSTM also "c": (L, T, H), its cell state
    nats: float              # total nats over all tokens but the first, as LM.evaluate counts
    chars: int               # the characters those tokens hold (LM.evaluate's "chars")

    @property
    def bits_per_char(self) -> float:
        return self.nats / self.chars / math.log(2)


@torch.no_grad()  # not inference_mode: its tensors could not be changed in place outside it
def inspect_ids(model, tokenizer, ids: torch.Tensor, chars: int, top_k: int = 5) -> Inspection:
    """`LM.inspect` on token ids (T,), T >= 2, read from a zero state in eval mode. `chars`:
    the characters predicted, as `LM.evaluate` counts them."""
    assert len(ids) >= 2, "a pass needs a token to read and one to predict"
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ValueError(f"top_k must be a whole number >= 0, got {top_k!r}")
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        activations, features = layer_states(model, ids.to(device))
        loss, top = _predictions(model, tokenizer, ids, features, top_k)
    finally:
        model.train(was_training)
    decoder = tokenizer.stream_decoder()
    pieces = [decoder.step(i) for i in ids.tolist()]
    return Inspection(ids=ids, pieces=pieces, loss=loss, top=top,
                      activations={k: v.cpu() for k, v in activations.items()},
                      nats=float(loss[1:].double().sum()), chars=chars)


def layer_states(model, ids: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Every layer's state after every token of `ids` (T,), read from a zero state: "h"
    (L, T, H), and for an LSTM "c" (L, T, H); and what the head reads (T, H). Each layer reads
    STEPS_AT_ONCE tokens at a time, its state carried, so that nothing but the states grows
    with T. Eval mode is assumed: no dropout anywhere."""
    c = model.config
    T, H = len(ids), c.hidden
    x = model.embed(ids.long())                                       # (T, E)
    h = x.new_empty(c.layers, T, H)
    if isinstance(model.rnn, MinStack):  # the layers' states and the top's output, as it runs
        out, state = x.new_empty(T, H), None
        for s in range(0, T, STEPS_AT_ONCE):
            e = min(s + STEPS_AT_ONCE, T)
            top, state, every = model.rnn.run(x[None, s:e], state, every=True)
            out[s:e], h[:, s:e] = top[0], every[:, 0]
        return {"h": h}, out
    cell = x.new_empty(c.layers, T, H) if c.cell == "lstm" else None
    for l in range(c.layers):
        layer = recurrent(c.cell, x.size(-1), H, 1).to(x.device, x.dtype)
        layer.load_state_dict({f"{name}_l0": getattr(model.rnn, f"{name}_l{l}") for name in
                               ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
        state = None
        for s in range(0, T, STEPS_AT_ONCE):
            e = min(s + STEPS_AT_ONCE, T)
            out, state = layer(x[None, s:e], state)                   # (1, n, H)
            h[l, s:e] = out[0]
            if cell is not None:
                before = (h[l, s - 1], cell[l, s - 1]) if s else (x.new_zeros(H),) * 2
                cell[l, s:e] = cell_states(layer, x[s:e], h[l, s:e], *before)
        x = h[l]
    return {"h": h} | ({"c": cell} if cell is not None else {}), h[-1]


def cell_states(layer, x: torch.Tensor, h: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor
                ) -> torch.Tensor:
    """An LSTM layer's cell states c (n, H) over n steps, from its inputs x (n, In), its outputs
    h (n, H) and the state (h0, c0) before the first step.

    With h_{t-1} known for every step, the gates of all steps are one matrix product (PyTorch's
    order: i, f, g, o); what is left of the recurrence is c_t = f_t * c_{t-1} + i_t * g_t
    (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000), one elementwise
    op a step. Tests check that h_t = o_t * tanh(c_t), and the last c against PyTorch's.
    """
    h_before = torch.cat([h0[None], h[:-1]])                          # (n, H): h_{t-1}
    gates = (F.linear(x, layer.weight_ih_l0, layer.bias_ih_l0)
             + F.linear(h_before, layer.weight_hh_l0, layer.bias_hh_l0))     # (n, 4H)
    i, f, g, _ = gates.chunk(4, dim=1)                                # (n, H) each
    new, keep = torch.sigmoid(i) * torch.tanh(g), torch.sigmoid(f)
    c, prev = torch.empty_like(h), c0
    for t in range(len(h)):
        prev = torch.addcmul(new[t], keep[t], prev, out=c[t])
    return c


def _predictions(model, tokenizer, ids: torch.Tensor, h: torch.Tensor, top_k: int):
    """The nats each token cost (T,) and the top_k guesses for it, from the top layer's
    outputs h (T, H). Probabilities are the model's softmax over its whole vocabulary; the
    guesses leave out tokens the sampler never writes there (the unknown id; for byte-level
    tokenizers a token whose bytes would break a UTF-8 character), so the first guess is what
    temperature 0 writes."""
    T, V = len(ids), model.config.vocab_size
    targets = ids.long()
    barred = _barred(tokenizer, ids, V)
    loss = torch.full((T,), math.nan)
    found = []                                                        # (probs, ids) per chunk
    rows = max(1, LOGITS_AT_ONCE // V)
    for s in range(0, T - 1, rows):
        e = min(s + rows, T - 1)                                      # h[s:e] predicts s+1..e
        logits = model.head(h[s:e]).float().cpu()                     # (n, V)
        loss[s + 1:e + 1] = F.cross_entropy(logits, targets[s + 1:e + 1], reduction="none")
        guesses = logits.masked_fill(barred(s, e), -math.inf).topk(min(top_k, V), dim=1)
        probs = logits.softmax(dim=1).gather(1, guesses.indices)
        found.append((probs.masked_fill(guesses.values == -math.inf, -1), guesses.indices))
    probs, idx = torch.cat([p for p, _ in found]), torch.cat([i for _, i in found])
    text = {i: guess_text(tokenizer, i) for i in idx.unique().tolist()}
    top = [[]] + [[(text[i], p) for i, p in zip(row_i, row_p) if p >= 0]
                  for row_i, row_p in zip(idx.tolist(), probs.tolist())]
    return loss, top


def guess_text(tokenizer, token: int) -> str:
    """A token as a guess is shown: its text; for a byte-level token that is part of a
    character, its bytes in hex where they are not whole characters (b"\\xe2" -> "0xE2",
    b" \\xe2\\x80" -> " 0xE2 0x80"), never U+FFFD, which would say nothing."""
    text = tokenizer.decode([token])
    if "\ufffd" not in text or not hasattr(tokenizer, "_bytes"):
        return text
    raw = tokenizer._bytes[token].decode("utf-8", errors="surrogateescape")  # bad -> U+DCxx
    return re.sub("[\udc80-\udcff]+", lambda m: " ".join(f"0x{ord(c) - 0xDC00:02X}"
                                                        for c in m[0]), raw)


def _barred(tokenizer, ids: torch.Tensor, V: int):
    """(s, e) -> the tokens the sampler could not write as tokens s+1..e, (e - s or 1, V)."""
    barred = torch.zeros(1, V, dtype=torch.bool)
    if tokenizer.unk_id is not None:
        barred[0, tokenizer.unk_id] = True
    guard = tokenizer.utf8_guard()
    if guard is None:
        return lambda s, e: barred
    allowed, following = guard[0] == 0, guard[1].numpy()
    states, state = np.zeros(len(ids), dtype=np.int64), 0   # states[t]: UTF-8 state after t
    for t, i in enumerate(ids.tolist()):
        state = states[t] = max(int(following[state, i]), 0)
    return lambda s, e: allowed[torch.from_numpy(states[s:e])] | barred


# --- units that follow the text ---

FEATURES = ("in double quotes", "in single quotes", "in brackets", "line position",
            "after newline", "in word")


def text_features(text: str) -> torch.Tensor:
    """FEATURES at each character of `text`, as they stand once it is read: (len(FEATURES), N).

    in double quotes: an odd number of `"` so far (a docstring's three count as one).
    in single quotes: the same for `'`, but a `'` between two letters or digits is an
    apostrophe and does not count, and a newline ends the quote (quoted words and code
    strings rarely span lines; a stray apostrophe then spoils one line, not the rest).
    in brackets: more of ( [ { than of ) ] } so far (a close with none open is ignored).
    line position: characters since the last newline (0 on the newline itself).
    after newline: the character is a newline.  in word: it is a letter or a digit.
    """
    double = single = depth = column = 0
    rows = []
    for n, ch in enumerate(text):
        if ch == '"':
            double ^= 1
        elif ch == "'" and not (text[n - 1:n].isalnum() and text[n + 1:n + 2].isalnum()):
            single ^= 1
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(depth - 1, 0)
        single, column = (0, 0) if ch == "\n" else (single, column + 1)
        rows.append((double, single, depth > 0, column, ch == "\n", ch.isalnum()))
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, len(FEATURES)).T


def token_features(pieces: list[str]) -> torch.Tensor:
    """FEATURES at each token, (len(FEATURES), T): those of the last character it completes
    (for a char model, its own character; a token that completes none takes the one before)."""
    ends = torch.tensor([len(p) for p in pieces]).cumsum(0) - 1
    return text_features("".join(pieces))[:, ends.clamp(min=0)]


@dataclass(frozen=True)
class Unit:
    """One hidden unit and how well it follows one feature."""
    layer: int
    state: str      # "h" (the layer's output) or "c" (an LSTM's cell state)
    unit: int
    feature: str
    score: float    # |Pearson r| between the unit's activation and the feature, over the text
    sign: int       # +1: the unit rises with the feature; -1: it falls


@dataclass
class Findings:
    """What `find_units` found over one text."""
    best: list[Unit]                  # the units that follow some feature best, each once
    by_feature: dict[str, list[Unit]]  # per feature, the units that follow it best
    constant: list[str]               # features that never change in this text: not scored


def find_units(inspection: Inspection, top: int = 5) -> Findings:
    """Rank every unit (every layer; h, and c for an LSTM) by the correlation of its activation
    with each of FEATURES over the inspected text (features per token: `token_features`)."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a whole number >= 1, got {top!r}")
    feats = token_features(inspection.pieces)                       # (F, T)
    varies = feats.std(dim=1) > 0
    names = [n for n, v in zip(FEATURES, varies.tolist()) if v]
    constant = [n for n in FEATURES if n not in names]
    if not names:
        return Findings([], {}, constant)
    r, where = _correlations(feats[varies], inspection.activations)  # (F', N) for N units

    def unit(f: int, n: int) -> Unit:
        return Unit(*where[n], names[f], abs(r[f, n].item()), 1 if r[f, n] >= 0 else -1)

    k = min(top, r.size(1))
    by_feature = {name: [unit(f, n) for n in r[f].abs().topk(k).indices.tolist()]
                  for f, name in enumerate(names)}
    score, feature = r.abs().max(dim=0)                              # (N,) each unit's best
    best = [unit(feature[n].item(), n) for n in score.topk(k).indices.tolist()]
    return Findings(best, by_feature, constant)


def _correlations(feats: torch.Tensor, activations: dict[str, torch.Tensor]):
    """Pearson r of every feature (F, T) with every unit: (F, N), and (layer, state, unit) for
    each of the N units. A unit that never changes correlates with nothing (r = 0)."""
    def standard(x: torch.Tensor, dim: int) -> torch.Tensor:
        x = x.double() - x.double().mean(dim=dim, keepdim=True)
        return x / x.norm(dim=dim, keepdim=True).clamp_min(1e-30)
    f = standard(feats, 1)                                           # (F, T)
    blocks, where = [], []
    for state, acts in activations.items():                          # (L, T, H)
        for layer, a in enumerate(acts):
            blocks.append((f @ standard(a, 0)).float())              # (F, H)
            where += [(layer, state, u) for u in range(a.size(1))]
    return torch.cat(blocks, dim=1), where
