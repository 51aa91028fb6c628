"""The vanilla RNN from first principles: NumPy only, every gradient by hand, checked.

    python -m lessons.reference        # finite differences and PyTorch agreement, float64

The model, for t = 1..T (x_t an input vector: one-hot for tokens, real values otherwise):

    (1) a_t = W_hh h_{t-1} + W_xh x_t + b_h          pre-activation
    (2) h_t = f(a_t)                                  f = tanh, sigmoid or ReLU
    (3) y_t = W_hy h_t + b_y                          output (logits for tokens)
    (4) L = sum_t CE(softmax(y_t), target_t)          tokens, or
        L = sum_t 1/2 ||y_t - target_t||^2            real-valued targets (MSE)

Backpropagation through time, with g_t = dL/dy_t (softmax(y_t) - onehot(target_t) for CE,
y_t - target_t for MSE):

    (5) dL/dW_hy = sum_t g_t h_t^T,  dL/db_y = sum_t g_t      the *output* gradient g_t
    (6) dh_t = W_hy^T g_t + W_hh^T delta_{t+1}                 all that reaches h_t
    (7) delta_t = dh_t * f'(a_t)                               (delta_{T+1} = 0)
    (8) dL/dW_xh = sum_t delta_t x_t^T,  dL/dW_hh = sum_t delta_t h_{t-1}^T,
        dL/db_h = sum_t delta_t,  dL/dh_0 = W_hh^T delta_1

f' is written in terms of h_t: tanh' = 1 - h^2, sigmoid' = h (1 - h), ReLU' = [h > 0].
docs/rnn-from-first-principles.md sets these beside the code. Left out on purpose: batches,
layers and gated cells; this file is for reading and checking, the fast model is model.py.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields

import numpy as np


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


# f(a), and f'(a) written from h = f(a)
ACTIVATIONS = {
    "tanh": (np.tanh, lambda h: 1 - h * h),
    "sigmoid": (_sigmoid, lambda h: h * (1 - h)),
    "relu": (lambda a: np.maximum(a, 0), lambda h: (h > 0).astype(h.dtype)),
}


@dataclass
class Params:
    W_xh: np.ndarray  # (H, D)
    W_hh: np.ndarray  # (H, H)
    W_hy: np.ndarray  # (O, H)
    b_h: np.ndarray   # (H,)
    b_y: np.ndarray   # (O,)
    h0: np.ndarray    # (H,) the initial state: a parameter here, so its gradient is checked too

    @classmethod
    def random(cls, D: int, H: int, O: int, seed: int = 0, scale: float = 0.5) -> Params:
        rng = np.random.default_rng(seed)
        r = lambda *shape: rng.normal(0, scale, shape)  # noqa: E731
        return cls(r(H, D) / np.sqrt(D), r(H, H) / np.sqrt(H), r(O, H) / np.sqrt(H), r(H),
                   r(O), r(H))

    def items(self):
        return [(f.name, getattr(self, f.name)) for f in fields(self)]

    def copy(self) -> Params:
        return Params(**{k: v.copy() for k, v in self.items()})


def forward(p: Params, X: np.ndarray, f: str = "tanh"):
    """Equations (1)-(3) over X (T, D): states hs (T+1, H) with hs[0] = h0, outputs (T, O)."""
    act, _ = ACTIVATIONS[f]
    hs = [p.h0]
    for x in X:
        hs.append(act(p.W_hh @ hs[-1] + p.W_xh @ x + p.b_h))   # (1), (2)
    hs = np.stack(hs)
    ys = hs[1:] @ p.W_hy.T + p.b_y                              # (3)
    return hs, ys


def loss_and_grads(p: Params, X: np.ndarray, targets: np.ndarray, f: str = "tanh",
                   loss: str = "ce") -> tuple[float, Params]:
    """Loss (4) and every gradient (5)-(8), by backpropagation through time."""
    _, dact = ACTIVATIONS[f]
    hs, ys = forward(p, X, f)
    T = len(X)
    if loss == "ce":  # targets: (T,) token ids
        z = ys - ys.max(axis=1, keepdims=True)                 # stable softmax
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        L = -logp[np.arange(T), targets].sum()
        g = np.exp(logp)
        g[np.arange(T), targets] -= 1                          # dL/dy_t = softmax - onehot
    elif loss == "mse":  # targets: (T, O) real values
        diff = ys - targets
        L = 0.5 * (diff ** 2).sum()
        g = diff                                               # dL/dy_t = y_t - target_t
    else:
        raise ValueError(f"loss must be 'ce' or 'mse', got {loss!r}")
    grads = Params(*(np.zeros_like(v) for _, v in p.items()))
    grads.W_hy = g.T @ hs[1:]                                  # (5) the output gradient g_t
    grads.b_y = g.sum(axis=0)
    delta_next = np.zeros_like(p.h0)
    for t in reversed(range(T)):                               # the loop over time
        dh = p.W_hy.T @ g[t] + p.W_hh.T @ delta_next           # (6) note the W_hh^T factor
        delta = dh * dact(hs[t + 1])                           # (7)
        grads.W_xh += np.outer(delta, X[t])                    # (8)
        grads.W_hh += np.outer(delta, hs[t])
        grads.b_h += delta
        delta_next = delta
    grads.h0 = p.W_hh.T @ delta_next
    return float(L), grads


def numeric_grads(p: Params, X, targets, f="tanh", loss="ce", eps=1e-6) -> Params:
    """Central differences, one parameter element at a time."""
    out = Params(*(np.zeros_like(v) for _, v in p.items()))
    for name, value in p.items():
        g = getattr(out, name)
        for i in np.ndindex(value.shape):
            old = value[i]
            value[i] = old + eps
            up, _ = loss_and_grads(p, X, targets, f, loss)
            value[i] = old - eps
            down, _ = loss_and_grads(p, X, targets, f, loss)
            value[i] = old
            g[i] = (up - down) / (2 * eps)
    return out


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / (||a|| + ||b||): 0 when equal, 1 when unrelated; scale-free."""
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def toy_case(f: str, loss: str, seed: int = 0, T: int = 7, D: int = 5, H: int = 6):
    """A small random case. Pre-activations are kept away from ReLU's kink, where a finite
    difference would straddle the corner and mean nothing."""
    rng = np.random.default_rng(seed)
    O = D
    for attempt in range(100):
        p = Params.random(D, H, O, seed=seed * 1000 + attempt)
        if loss == "ce":
            tokens = rng.integers(0, D, T + 1)
            X, targets = np.eye(D)[tokens[:-1]], tokens[1:]
        else:
            X, targets = rng.normal(size=(T, D)), rng.normal(size=(T, O))
        pre = np.stack([p.W_hh @ h + p.W_xh @ x + p.b_h           # each a_t of (1)
                        for h, x in zip(forward(p, X, f)[0][:-1], X)])
        if f != "relu" or np.abs(pre).min() > 1e-3:
            return p, X, targets
    raise AssertionError("no case away from the ReLU kink")


def gradient_check(f: str, loss: str, seed: int = 0) -> dict[str, float]:
    """Relative error of the hand-written gradients against central differences, per parameter."""
    p, X, targets = toy_case(f, loss, seed)
    _, grads = loss_and_grads(p, X, targets, f, loss)
    num = numeric_grads(p, X, targets, f, loss)
    return {name: relative_error(getattr(grads, name), getattr(num, name)) for name, _ in p.items()}


# --- the same model in PyTorch: model.py's RNNLM with cell rnn_tanh / rnn_relu ---

def to_torch(p: Params, f: str):
    """An RNNLM (float64) computing exactly the reference: embedding = identity, so that
    W_ih x_t = W_xh onehot(x_t); b_ih = b_h, b_hh = 0."""
    import torch
    from textrnn import ModelConfig, RNNLM
    H, D = p.W_xh.shape
    model = RNNLM(ModelConfig(vocab_size=D, cell=f"rnn_{f}", embed=D, hidden=H, layers=1,
                              dropout=0.0)).double()
    with torch.no_grad():
        model.embed.weight.copy_(torch.eye(D))
        model.rnn.weight_ih_l0.copy_(torch.from_numpy(p.W_xh))
        model.rnn.weight_hh_l0.copy_(torch.from_numpy(p.W_hh))
        model.rnn.bias_ih_l0.copy_(torch.from_numpy(p.b_h))
        model.rnn.bias_hh_l0.zero_()
        model.head.weight.copy_(torch.from_numpy(p.W_hy))
        model.head.bias.copy_(torch.from_numpy(p.b_y))
    return model


def from_torch(model) -> Params:
    """The reference parameters of a 1-layer rnn_tanh/rnn_relu RNNLM (any embedding):
    W_xh = W_ih E^T folds the embedding in, b_h = b_ih + b_hh."""
    g = lambda t: t.detach().double().numpy().copy()  # noqa: E731
    rnn = model.rnn
    return Params(W_xh=g(rnn.weight_ih_l0) @ g(model.embed.weight).T, W_hh=g(rnn.weight_hh_l0),
                  W_hy=g(model.head.weight), b_h=g(rnn.bias_ih_l0) + g(rnn.bias_hh_l0),
                  b_y=g(model.head.bias), h0=np.zeros(rnn.hidden_size))


def torch_loss_and_grads(model, tokens: np.ndarray, h0: np.ndarray):
    """Summed cross-entropy of the PyTorch model on one sequence, and its gradients."""
    import torch
    idx = torch.from_numpy(tokens[None, :-1])
    targets = torch.from_numpy(tokens[None, 1:])
    state = torch.from_numpy(h0).reshape(1, 1, -1).clone().requires_grad_(True)
    model.zero_grad()
    _, loss, _ = model(idx, targets, state)
    total = loss * targets.numel()                  # the model averages; the reference sums
    total.backward()
    return float(total.detach()), state.grad.reshape(-1).numpy()


def torch_check(f: str, seed: int = 0) -> dict[str, float]:
    """Relative error between the reference and the PyTorch model, weights copied both ways."""
    p, X, targets = toy_case(f, "ce", seed)
    tokens = np.concatenate([X.argmax(axis=1), targets[-1:]])
    L, grads = loss_and_grads(p, X, targets, f, "ce")
    # reference -> PyTorch
    model = to_torch(p, f)
    TL, dh0 = torch_loss_and_grads(model, tokens, p.h0)
    rnn = model.rnn
    errors = {"loss": abs(L - TL) / abs(L),
              "W_xh": relative_error(grads.W_xh, rnn.weight_ih_l0.grad.numpy()),
              "W_hh": relative_error(grads.W_hh, rnn.weight_hh_l0.grad.numpy()),
              "W_hy": relative_error(grads.W_hy, model.head.weight.grad.numpy()),
              "b_h": relative_error(grads.b_h, rnn.bias_ih_l0.grad.numpy()),
              "b_y": relative_error(grads.b_y, model.head.bias.grad.numpy()),
              "h0": relative_error(grads.h0, dh0)}
    # PyTorch (a real embedding, random biases) -> reference
    import torch
    torch.manual_seed(seed)
    from textrnn import ModelConfig, RNNLM
    H, D = p.W_xh.shape
    model = RNNLM(ModelConfig(vocab_size=D, cell=f"rnn_{f}", embed=3, hidden=H,
                              layers=1, dropout=0.0)).double()
    with torch.no_grad():
        for b in (model.rnn.bias_ih_l0, model.rnn.bias_hh_l0, model.head.bias):
            b.normal_(0, 0.3)
    q = from_torch(model)
    TL, _ = torch_loss_and_grads(model, tokens, q.h0)
    L, grads = loss_and_grads(q, X, targets, f, "ce")
    E, W_ih = (model.embed.weight.detach().numpy(), model.rnn.weight_ih_l0.detach().numpy())
    errors["loss (from torch)"] = abs(L - TL) / abs(L)
    # W_xh = W_ih E^T, so dL/dW_ih = dL/dW_xh E and dL/dE = dL/dW_xh^T W_ih
    errors["W_ih (from torch)"] = relative_error(grads.W_xh @ E,
                                                 model.rnn.weight_ih_l0.grad.numpy())
    errors["E (from torch)"] = relative_error(grads.W_xh.T @ W_ih, model.embed.weight.grad.numpy())
    errors["W_hh (from torch)"] = relative_error(grads.W_hh, model.rnn.weight_hh_l0.grad.numpy())
    return errors


# --- a tiny training loop: plain SGD on the hand-written gradients ---

def train_toy(task: str = "sine", steps: int = 300, lr: float = 0.05, f: str = "tanh",
              hidden: int = 16, clip: float = 5.0, seed: int = 0) -> list[float]:
    """Learn a toy task with `loss_and_grads` and SGD; returns the loss at every step.

    sine: read sin(t) and predict sin(t + 0.3), MSE. text: predict the next character of a
    short repeated line, cross-entropy. The gradient is clipped to norm `clip` (explosions
    happen even here, with ReLU and a large learning rate).
    """
    if task == "sine":
        t = np.linspace(0, 8 * np.pi, 60)
        X, targets = np.sin(t)[:, None], np.sin(t + 0.3)[:, None]
        p, loss = Params.random(1, hidden, 1, seed=seed), "mse"
    elif task == "text":
        text = "hello, world. " * 4
        chars = sorted(set(text))
        ids = np.array([chars.index(c) for c in text])
        V = len(chars)
        X, targets = np.eye(V)[ids[:-1]], ids[1:]
        p, loss = Params.random(V, hidden, V, seed=seed), "ce"
    else:
        raise ValueError(f"task must be 'sine' or 'text', got {task!r}")
    losses = []
    for _ in range(steps):
        L, grads = loss_and_grads(p, X, targets, f, loss)
        losses.append(L / len(X))
        norm = np.sqrt(sum((g ** 2).sum() for _, g in grads.items()))
        scale = min(1.0, clip / (norm + 1e-12))
        for (_, value), (_, g) in zip(p.items(), grads.items()):
            value -= lr * scale * g
    return losses


TOLERANCE = 1e-6


def main() -> int:
    worst = 0.0
    print("hand-written BPTT vs central differences (float64), relative error per parameter")
    for loss in ("ce", "mse"):
        for f in ACTIVATIONS:
            errs = gradient_check(f, loss)
            worst = max(worst, *errs.values())
            print(f"  {loss:3} {f:7} " + "  ".join(f"{k} {v:.1e}" for k, v in errs.items()))
    print("reference vs textrnn's PyTorch RNNLM (weights copied both ways), relative error")
    for f in ("tanh", "relu"):
        errs = torch_check(f)
        worst = max(worst, *errs.values())
        print(f"  rnn_{f:4} " + "  ".join(f"{k} {v:.1e}" for k, v in errs.items()))
    print("a tiny SGD loop on these gradients (mean loss per step: start -> end)")
    for task in ("sine", "text"):
        losses = train_toy(task)
        print(f"  {task:4} {losses[0]:.4f} -> {losses[-1]:.4f} after {len(losses)} steps")
    ok = worst < TOLERANCE
    print(f"worst {worst:.1e}: {'pass' if ok else 'FAIL'} (tolerance {TOLERANCE:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
