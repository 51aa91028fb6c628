"""A model as an ONNX graph, built from its weights: one step, (token, state) -> (logits,
state), or a whole sequence, (tokens, state) -> (every step's logits, state).

    step      token  int64 (B,)      h, c  float32 (L, B, H)  ->  logits (B, V), h_out, c_out
    sequence  tokens int64 (B, T)    h, c  float32 (L, B, H)  ->  logits (B, T, V), h_out, c_out

`c` and `c_out` are the LSTM's cell state, and only the LSTM has them: minLSTM's state, like
minGRU's, GRU's and the vanilla RNN's, is h alone (minrnn.py). B and T are free (named "batch"
and "steps"). The config.json and tokenizer.json of the checkpoint travel in the model's
metadata_props ("textrnn.config", "textrnn.tokenizer"), so the .onnx file alone is complete.

Why it is built by hand with `onnx.helper`, and not by `torch.onnx.export`: torch 2.13's default
exporter (dynamo=True) needs onnxscript and its IR on top of onnx, and does not know minrnn's
custom autograd scan; the TorchScript one (dynamo=False) still runs but warns that it "will be
removed". The graph of an RNN language model is a dozen operators: the standard LSTM, GRU and RNN
operators for the classic cells (their gates reordered: PyTorch's LSTM keeps i, f, g, o and ONNX
i, o, f, c; its GRU r, z, n and ONNX z, r, h, with linear_before_reset as PyTorch computes it),
and for minGRU and minLSTM the same equations as minrnn.py, elementwise, with a Scan for the
recurrence over a sequence. Written here, it is exact, needs `onnx` alone (the `onnx` extra), and
does not move when torch's exporter does. Opset 17 and IR version 8, which runtimes of 2022 on
read. Left out on purpose: fp16 weights and external weight files (a model past protobuf's 2 GB
is refused), and training.
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from .minrnn import MIN_CELLS
from .model import RNNLM

OPSET, IR_VERSION = 17, 8
MAX_BYTES = 2**31 - 2**24  # protobuf's 2 GB, less room for the graph and the JSON texts
META_CONFIG, META_TOKENIZER = "textrnn.config", "textrnn.tokenizer"
# the rows of each gate, PyTorch's order -> ONNX's: LSTM ifgo -> iofc, GRU rzn -> zrh
GATE_ORDER = {"lstm": [0, 3, 1, 2], "gru": [1, 0, 2], "rnn_tanh": [0], "rnn_relu": [0]}
ONNX_OP = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN", "rnn_relu": "RNN"}


def state_names(cell: str) -> list[str]:
    """The state's inputs, in order: h, and c for the LSTM; outputs add `_out`."""
    return ["h", "c"] if cell == "lstm" else ["h"]


class _Builder:
    """Nodes and initializers, with fresh names for intermediate values."""

    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def const(self, name: str, value) -> str:
        """An initializer (made once: a second call with the same name reuses it)."""
        if name not in {i.name for i in self.inits}:
            self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, *inputs: str, outputs: int | list[str] = 1, **attrs):
        """Add a node; its output name (or names, when `outputs` is several)."""
        names = outputs if isinstance(outputs, list) else [self._fresh(op_type)
                                                           for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, **attrs))
        return names[0] if len(names) == 1 and not isinstance(outputs, list) else names

    def _fresh(self, stem: str) -> str:
        self.count += 1
        return f"{stem.lower()}_{self.count}"


def build(model: RNNLM, config_json: str, tokenizer_json: str, sequence: bool = False) -> bytes:
    """The serialized ONNX model of `model` (in eval mode: no dropout), one step or (with
    `sequence`) a whole sequence per call, with both JSON texts in its metadata."""
    c = model.config
    weights = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    size = sum(v.nbytes for k, v in weights.items() if not (c.tie_weights and k == "head.weight"))
    if size > MAX_BYTES:
        raise ValueError(f"the model is {size / 1e6:,.0f} MB of weights; one .onnx file holds "
                         f"at most {MAX_BYTES / 1e6:,.0f} MB (protobuf's limit)")
    b = _Builder()
    tokens = "tokens" if sequence else "token"
    ids = b.op("Transpose", tokens, perm=[1, 0]) if sequence else \
        b.op("Unsqueeze", tokens, _axis(b, 0))                             # (T, B)
    x = b.op("Gather", b.const("embed.weight", weights["embed.weight"]), ids)  # (T, B, E)
    states = [b.op("Split", name, outputs=c.layers, axis=0) if c.layers > 1 else [name]
              for name in state_names(c.cell)]                             # each (1, B, H)
    if c.cell in MIN_CELLS:
        x = _min_stack(b, weights, c, x, states[0], sequence)
    else:
        x = _classic_stack(b, weights, c, x, states)
    _head(b, weights, c, x, tokens, sequence)
    graph = helper.make_graph(b.nodes, f"textrnn-{c.cell}-{'sequence' if sequence else 'step'}",
                              _inputs(c, tokens, sequence), _outputs(c, sequence), b.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="textrnn")
    helper.set_model_props(proto, {META_CONFIG: config_json, META_TOKENIZER: tokenizer_json})
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _inputs(c, tokens: str, sequence: bool) -> list:
    shape = ["batch", "steps"] if sequence else ["batch"]
    return [helper.make_tensor_value_info(tokens, TensorProto.INT64, shape)] + [
        helper.make_tensor_value_info(s, TensorProto.FLOAT, [c.layers, "batch", c.hidden])
        for s in state_names(c.cell)]


def _outputs(c, sequence: bool) -> list:
    shape = ["batch", "steps", c.vocab_size] if sequence else ["batch", c.vocab_size]
    return [helper.make_tensor_value_info("logits", TensorProto.FLOAT, shape)] + [
        helper.make_tensor_value_info(f"{s}_out", TensorProto.FLOAT,
                                      [c.layers, "batch", c.hidden])
        for s in state_names(c.cell)]


def _head(b: _Builder, w: dict, c, x: str, tokens: str, sequence: bool) -> None:
    """logits = x W_hy^T + b_y, from the top layer's outputs x (T, B, H); a tied model's head
    reads the embedding's initializer, stored once."""
    head = "embed.weight" if c.tie_weights else b.const("head.weight", w["head.weight"])
    bias = b.const("head.bias", w["head.bias"])
    if not sequence:
        x = b.op("Squeeze", x, _axis(b, 0))                                # (B, H)
        b.op("Gemm", x, head, bias, transB=1, outputs=["logits"])           # (B, V)
        return
    x = b.op("Transpose", x, perm=[1, 0, 2])                               # (B, T, H)
    flat = b.op("Reshape", x, b.const("rows", np.array([-1, c.hidden])))  # (B*T, H)
    y = b.op("Gemm", flat, head, bias, transB=1)                           # (B*T, V)
    shape = b.op("Concat", b.op("Shape", tokens), b.const("vocab", np.array([c.vocab_size])),
                 axis=0)
    b.op("Reshape", y, shape, outputs=["logits"])                          # (B, T, V)


def _classic_stack(b: _Builder, w: dict, c, x: str, states: list[list[str]]) -> str:
    """nn.LSTM, nn.GRU or nn.RNN's layers as ONNX's own operators, one node a layer; the
    outputs (T, B, H), and h_out (and c_out) written as the graph's outputs."""
    order, H, finals = GATE_ORDER[c.cell], c.hidden, [[] for _ in states]
    attrs = {"hidden_size": H}
    if c.cell == "gru":
        attrs["linear_before_reset"] = 1  # PyTorch: n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    if c.cell.startswith("rnn_"):
        attrs["activations"] = ["Tanh" if c.cell == "rnn_tanh" else "Relu"]
    for l in range(c.layers):
        def gates(name):  # (G*H, ...) rows regrouped in ONNX's gate order, one direction
            v = w[f"rnn.{name}_l{l}"]
            return np.concatenate([v[g * H:(g + 1) * H] for g in order])[None]
        W, R = b.const(f"W{l}", gates("weight_ih")), b.const(f"R{l}", gates("weight_hh"))
        B = b.const(f"B{l}", np.concatenate([gates("bias_ih"), gates("bias_hh")], axis=1))
        outs = b.op(ONNX_OP[c.cell], x, W, R, B, "", *(s[l] for s in states),
                    outputs=1 + len(states), **attrs)        # Y (T, 1, B, H), Y_h (1, B, H)...
        x = b.op("Squeeze", outs[0], _axis(b, 1))                          # (T, B, H)
        for final, out in zip(finals, outs[1:]):
            final.append(out)
    for name, final in zip(state_names(c.cell), finals):
        b.op("Concat", *final, axis=0, outputs=[f"{name}_out"])            # (L, B, H)
    return x


def _rms_norm(b: _Builder, x: str, weight: str) -> str:
    """nn.RMSNorm with its default eps: x / sqrt(mean(x^2) + eps) * weight."""
    eps = b.const("rms_eps", np.array(torch.finfo(torch.float32).eps, dtype=np.float32))
    mean = b.op("ReduceMean", b.op("Mul", x, x), axes=[-1], keepdims=1)
    return b.op("Mul", b.op("Div", x, b.op("Sqrt", b.op("Add", mean, eps))), weight)


def _min_stack(b: _Builder, w: dict, c, x: str, h: list[str], sequence: bool) -> str:
    """MinStack's pre-norm residual layers and its final RMSNorm (minrnn.py); the outputs
    (T, B, H), and h_out written as the graph's output."""
    finals, width = [], c.embed
    for l in range(c.layers):
        a, u = _min_gates(b, w, c.cell, f"rnn.layers.{l}.", x)
        y, last = _recurrence(b, a, u, h[l], sequence)     # y (T, B, H); last (1, B, H)
        finals.append(last)
        x = b.op("Add", x, y) if width == c.hidden else y  # residual where widths agree
        width = c.hidden
    b.op("Concat", *finals, axis=0, outputs=["h_out"])    # (L, B, H)
    return _rms_norm(b, x, b.const("rnn.norm.weight", w["rnn.norm.weight"]))


def _min_gates(b: _Builder, w: dict, cell: str, p: str, x: str) -> tuple[str, str]:
    """A minGRU or minLSTM layer's decay a and input u (T, B, H) from its input x (T, B, In):
    MinLayer.forward's equations, h_t = a_t * h_{t-1} + u_t being left to `_recurrence`."""
    normed = _rms_norm(b, x, b.const(p + "norm.weight", w[p + "norm.weight"]))
    k = b.op("Add", b.op("MatMul", normed, b.const(p + "proj.weight_t", w[p + "proj.weight"].T)),
             b.const(p + "proj.bias", w[p + "proj.bias"]))                  # (T, B, G*H)
    parts = b.op("Split", k, outputs=2 if cell == "mingru" else 3, axis=-1)
    gate = parts[0] if cell == "mingru" else b.op(  # minLSTM: softplus(-k_f) - softplus(-k_i)
        "Sub", b.op("Softplus", b.op("Neg", parts[0])), b.op("Softplus", b.op("Neg", parts[1])))
    k_h = parts[-1]                                 # g(v) = v + 1/2 where v >= 0, sigmoid(v)
    g = b.op("Where", b.op("GreaterOrEqual", k_h, b.const("zero", np.float32(0))),
             b.op("Add", k_h, b.const("half", np.float32(0.5))), b.op("Sigmoid", k_h))
    return b.op("Sigmoid", b.op("Neg", gate)), b.op("Mul", b.op("Sigmoid", gate), g)


def _recurrence(b: _Builder, a: str, u: str, h0: str, sequence: bool) -> tuple[str, str]:
    """h_t = a_t * h_{t-1} + u_t over the steps of a, u (T, B, H) from h0 (1, B, H): every
    h_t, and the last as (1, B, H). One step is one multiply-add; a sequence runs a Scan."""
    if not sequence:
        h = b.op("Add", u, b.op("Mul", a, h0))                             # (1, B, H)
        return h, h
    body = helper.make_graph(
        [helper.make_node("Mul", ["a_t", "h_prev"], ["ah"]),
         helper.make_node("Add", ["u_t", "ah"], ["h_next"]),
         helper.make_node("Identity", ["h_next"], ["h_t"])], "step",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", None])
         for n in ("h_prev", "a_t", "u_t")],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", None])
         for n in ("h_next", "h_t")])
    start = b.op("Squeeze", h0, _axis(b, 0))                               # (B, H)
    last, every = b.op("Scan", start, a, u, outputs=2, body=body, num_scan_inputs=2)
    return every, b.op("Unsqueeze", last, _axis(b, 0))


def _axis(b: _Builder, k: int) -> str:
    """The axes input [k] of Squeeze and Unsqueeze."""
    return b.const(f"axis{k}", np.array([k]))


def metadata(data: bytes) -> dict[str, str]:
    """The metadata_props of a serialized model: the checkpoint's JSON texts among them."""
    return {p.key: p.value for p in onnx.load_from_string(data).metadata_props}


def verify(data: bytes, model: RNNLM, steps: int = 50, batch: int = 2) -> str:
    """Run the graph `data` with onnxruntime on `steps` random tokens in `batch` streams beside
    `model`, and say how close the logits came; ValueError where they differ by more than 1e-3
    (a bug: please report it). Where onnxruntime is not installed, say so."""
    try:
        import onnxruntime as ort
    except ImportError:
        return "not checked: onnxruntime is not installed (pip install onnxruntime)"
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    c = model.config
    idx = torch.randint(c.vocab_size, (batch, steps), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected, _, _ = model(idx)  # (B, T, V)
    feed = {s: np.zeros((c.layers, batch, c.hidden), np.float32) for s in state_names(c.cell)}
    sequence = session.get_inputs()[0].name == "tokens"
    if sequence:
        got = session.run(["logits"], {"tokens": idx.numpy(), **feed})[0]
    else:
        got = np.stack([_step(session, idx[:, t].numpy(), feed) for t in range(steps)], 1)
    diff = float(np.abs(got - expected.numpy()).max())
    said = (f"{steps} {'tokens' if sequence else 'steps'} at batch {batch} against PyTorch: "
            f"logits within {diff:.1e}")
    if not diff <= 1e-3:  # (NaN fails too)
        raise ValueError(f"the ONNX graph disagrees with PyTorch ({said}); nothing was written. "
                         "Please report this as a textrnn bug")
    return f"checked with onnxruntime {ort.__version__}: {said}"


def _step(session, token: np.ndarray, feed: dict) -> np.ndarray:
    """One step of a step graph: its logits; `feed`'s state is replaced by the new one."""
    names = list(feed)
    out = session.run(["logits", *(f"{n}_out" for n in names)], {"token": token, **feed})
    feed.update(zip(names, out[1:]))
    return out[0]

