"""Draw docs/gradient-flow.png: how far back gradients reach, and what clipping does.

    python scripts/plot_gradients.py        (needs matplotlib: pip install -e ".[docs]")

Both panels come from lessons/gradflow.py; this script only draws.
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # lessons/ sits beside textrnn/, not installed
from lessons.gradflow import clipping_demo, gradient_flow  # noqa: E402

OUT = ROOT / "docs" / "gradient-flow.png"
CURVES = [  # (label, cell, W_hh spectral radius, gate bias)
    ("tanh RNN, PyTorch init", "rnn_tanh", None, 0.0),
    ("tanh RNN, orthogonal W_hh, radius 1", "rnn_tanh", 1.0, 0.0),
    ("ReLU RNN, radius 1.0", "rnn_relu", 1.0, 0.0),
    ("ReLU RNN, radius 1.5", "rnn_relu", 1.5, 0.0),
    ("GRU, PyTorch init", "gru", None, 0.0),
    ("GRU, update gate bias +3 (keeps state)", "gru", None, 3.0),
    ("LSTM, PyTorch init", "lstm", None, 0.0),
    ("LSTM, forget gate bias +3", "lstm", None, 3.0),
]


def main() -> None:
    T = 100
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    for label, cell, radius, bias in CURVES:
        norms = gradient_flow(cell, T, radius=radius, gate_bias=bias)
        left.semilogy(range(T - 1, -1, -1), norms, label=label,
                      linestyle="--" if cell.startswith("rnn") else "-")
    left.set(xlabel="steps back from the loss (T - t)", ylabel="|dL/dh_t|",
             title="Gradient reaching h_t, one-layer cells, hidden 64 (at initialisation)")
    left.legend(fontsize=8)
    left.grid(True, which="major", alpha=0.3)
    for clip, style in ((None, "o-"), (1.0, "-")):
        losses = clipping_demo(clip)
        right.semilogy(range(len(losses)), [min(x, 1e6) for x in losses], style,
                       label="no clipping: NaN at step %d" % (len(losses) - 1) if clip is None
                       else f"clip gradient norm to {clip:g}")
    right.set(xlabel="SGD step", ylabel="training loss (nats/char)",
              title="ReLU RNN with W_hh at spectral radius 2, lr 0.05")
    right.legend()
    right.grid(True, alpha=0.3)
    fig.tight_layout()
    OUT.parent.mkdir(exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
