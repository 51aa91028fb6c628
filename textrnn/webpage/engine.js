// The model in the browser: model.js's weights decoded (base64, fp32 or fp16), and one step of
// every cell of model.py and minrnn.py (lstm, gru, rnn_tanh, rnn_relu, mingru, minlstm).
// The matrix-vector products, nearly all of a step's work, run in one small WebAssembly
// function (matvec.wat: 128-bit SIMD, float32 sums, as PyTorch's are) over copies of the
// weights in its memory; where WebAssembly SIMD is missing, in JavaScript (float64 sums).
// Measured on the shipped 2x384 LSTM in headless Chromium: docs/export.md. The gates run in
// JavaScript, every state stored as float32, as PyTorch stores it; nothing is allocated per
// step. Layer 0's input projection is folded into a per-token table, as fast.py does, where
// that table is small. Left out: batches, and training.
"use strict";
var TR = window.TR || (window.TR = {});

(function () {
  const FOLD_MAX = 16 * 2 ** 20;  // floats in layer 0's per-token table (64 MB), past it: none
  const EPS = 1.1920928955078125e-7;  // torch.finfo(float32).eps, nn.RMSNorm's default
  const GATES = { lstm: 4, gru: 3, rnn_tanh: 1, rnn_relu: 1, mingru: 2, minlstm: 3 };

  // matvec.wat, assembled (its header says how to rebuild this)
  const MATVEC_WASM =
    "AGFzbQEAAAABEQJgBn9/f39/fwBgBHt/f38AAwMCAAEFAwEAAQcTAgZtZW1vcnkCAAZtYXR2ZWMAAAr1AgLAAgQD" +
    "fwF7A38EeyAFQQJ0IQgCQANAIAYgBE8NASAAIAhqIQogCiAIaiELIAsgCGohDP0MAAAAAAAAAAAAAAAAAAAAACEN" +
    "/QwAAAAAAAAAAAAAAAAAAAAAIQ79DAAAAAAAAAAAAAAAAAAAAAAhD/0MAAAAAAAAAAAAAAAAAAAAACEQQQAhBwJA" +
    "A0AgByAITw0BIAEgB2r9AAQAIQkgDSAJIAAgB2r9AAQA/eYB/eQBIQ0gDiAJIAogB2r9AAQA/eYB/eQBIQ4gDyAJ" +
    "IAsgB2r9AAQA/eYB/eQBIQ8gECAJIAwgB2r9AAQA/eYB/eQBIRAgB0EQaiEHDAALCyANIAIgAyAGQQBqEAEgDiAC" +
    "IAMgBkEBahABIA8gAiADIAZBAmoQASAQIAIgAyAGQQNqEAEgDCAIaiEAIAZBBGohBgwACwsLMQAgA0ECdCEDIAIg" +
    "A2ogASADaioCACAA/R8AIAD9HwGSIAD9HwIgAP0fA5KSkjgCAAs=";

  function fromBase64(text) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
    const bin = atob(text), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  let halfTable = null;  // every fp16 bit pattern's value, made on first use
  function halves(bits) {
    if (!halfTable) {
      halfTable = new Float32Array(65536);
      for (let h = 0; h < 65536; h++) {
        const e = (h >> 10) & 31, m = h & 1023, sign = h & 32768 ? -1 : 1;
        halfTable[h] = sign * (e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity)
          : (1 + m / 1024) * 2 ** (e - 15));
      }
    }
    const out = new Float32Array(bits.length);
    for (let i = 0; i < bits.length; i++) out[i] = halfTable[bits[i]];
    return out;
  }

  // name -> Float32Array, views on the decoded bytes for fp32 (no copy)
  TR.tensors = function (doc, base64) {
    const bytes = fromBase64(base64), out = {};
    for (const [name, shape, offset] of doc.tensors) {
      const n = shape.reduce((a, b) => a * b, 1);
      out[name] = doc.dtype === "fp16"
        ? halves(new Uint16Array(bytes.buffer, bytes.byteOffset + offset, n))
        : new Float32Array(bytes.buffer, bytes.byteOffset + offset, n);
    }
    return out;
  };

  // out[o + r] = b[r] + W[r] . x for rows r: W (rows x n) row-major; four rows at a time,
  // so that each x[k] read serves four (measured: 0.5 ms against 0.8 for a 1536 x 384 matrix)
  function matvec(out, o, W, b, x, rows, n) {
    let r = 0, w = 0;
    for (; r + 4 <= rows; r += 4, w += 4 * n) {
      const w1 = w + n, w2 = w1 + n, w3 = w2 + n;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let k = 0; k < n; k++) {
        const xk = x[k];
        s0 += W[w + k] * xk; s1 += W[w1 + k] * xk; s2 += W[w2 + k] * xk; s3 += W[w3 + k] * xk;
      }
      out[o + r] = b[r] + s0; out[o + r + 1] = b[r + 1] + s1;
      out[o + r + 2] = b[r + 2] + s2; out[o + r + 3] = b[r + 3] + s3;
    }
    for (; r < rows; r++, w += n) {
      let s = 0;
      for (let k = 0; k < n; k++) s += W[w + k] * x[k];
      out[o + r] = b[r] + s;
    }
  }

  const pad4 = (n) => (n + 3) & ~3;

  // The products of one model in WebAssembly memory: each matrix copied once, its rows and
  // columns padded to fours with zeros, and one input and one output buffer shared by all.
  // null where the browser has no WebAssembly SIMD (the caller falls back to JavaScript)
  class Products {
    static make(matrices) {
      const bytes = fromBase64(MATVEC_WASM);
      if (typeof WebAssembly !== "object" || !WebAssembly.validate(bytes)) return null;
      return new Products(new WebAssembly.Instance(new WebAssembly.Module(bytes)), matrices);
    }

    constructor(instance, matrices) {  // matrices: [W, b, rows, cols]
      let at = 0, widest = 4, tallest = 4;
      const place = (floats) => { const p = at; at += 4 * pad4(floats); return p; };
      this.layout = matrices.map(([W, b, rows, cols]) => {
        const R = pad4(rows), C = pad4(cols);
        widest = Math.max(widest, C); tallest = Math.max(tallest, R);
        return { W, b, rows, cols, R, C, w: place(R * C), bias: place(R) };
      });
      this.xp = place(widest); this.yp = place(tallest);
      const memory = instance.exports.memory, need = at - memory.buffer.byteLength;
      if (need > 0) memory.grow(Math.ceil(need / 65536));
      const f32 = new Float32Array(memory.buffer);
      for (const m of this.layout) {
        for (let r = 0; r < m.rows; r++) {
          f32.set(m.W.subarray(r * m.cols, (r + 1) * m.cols), m.w / 4 + r * m.C);
        }
        f32.set(m.b, m.bias / 4);
        m.W = m.b = null;  // the copy is what runs
      }
      this.matvec = instance.exports.matvec;
      this.x = new Float32Array(memory.buffer, this.xp, widest);
      this.y = new Float32Array(memory.buffer, this.yp, tallest);
    }

    // out[o + r] = b[r] + (W x)[r] for the i-th matrix; x holds its cols (at least)
    run(i, out, o, x) {
      const m = this.layout[i];
      this.x.set(x.length === m.cols ? x : x.subarray(0, m.cols));
      this.x.fill(0, m.cols, m.C);  // (the padding reads zeros)
      this.matvec(m.w, this.xp, m.bias, this.yp, m.R, m.C);
      out.set(this.y.subarray(0, m.rows), o);
    }
  }

  // torch.nn.RMSNorm: x * rsqrt(mean(x^2) + eps) * w
  function rmsNorm(out, x, w, n) {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[i] * x[i];
    const r = 1 / Math.sqrt(ss / n + EPS);
    for (let i = 0; i < n; i++) out[i] = x[i] * r * w[i];
  }

  const sigmoid = (v) => 1 / (1 + Math.exp(-v));
  const softplus = (v) => (v > 20 ? v : Math.log1p(Math.exp(v)));  // F.softplus, threshold 20
  const g = (v) => (v >= 0 ? v + 0.5 : sigmoid(v));                 // minrnn._g

  class Net {
    // engine: "wasm" (where the browser has WebAssembly SIMD; else "js") or "js"
    constructor(cfg, t, engine = "wasm") {
      const G = GATES[cfg.cell], H = cfg.hidden, L = cfg.layers;
      Object.assign(this, { cell: cfg.cell, L, H, E: cfg.embed, V: cfg.vocab_size, G });
      this.min = cfg.cell === "mingru" || cfg.cell === "minlstm";
      this.emb = t["embed.weight"];
      this.head = cfg.tie_weights ? t["embed.weight"] : t["head.weight"];
      this.headBias = t["head.bias"];
      this.layers = Array.from({ length: L }, (_, l) => this.min
        ? { norm: t[`rnn.layers.${l}.norm.weight`], wih: t[`rnn.layers.${l}.proj.weight`],
            bih: t[`rnn.layers.${l}.proj.bias`] }
        : { wih: t[`rnn.weight_ih_l${l}`], whh: t[`rnn.weight_hh_l${l}`],
            bih: t[`rnn.bias_ih_l${l}`], bhh: t[`rnn.bias_hh_l${l}`] });
      this.normOut = t["rnn.norm.weight"];
      this.h = Array.from({ length: L }, () => new Float32Array(H));
      this.c = Array.from({ length: L }, () => new Float32Array(H));
      this.gx = new Float64Array(G * H);
      this.gh = new Float64Array(G * H);
      const width = Math.max(H, this.E);
      this.x = new Float32Array(width);     // a layer's input, or minrnn's residual stream
      this.xn = new Float32Array(width);    // its RMSNorm
      this.logits = new Float32Array(this.V);
      this.table = this.V * G * H <= FOLD_MAX ? this.fold() : null;
      this.products(engine);
    }

    // this.mv(key, out, o, x): out[o + r] = b[r] + (W x)[r] for the head ("head"), or layer
    // l's input ("ih" + l) or recurrent ("hh" + l) weights; in WebAssembly where it can
    products(engine) {
      const { G, H } = this, list = [["head", this.head, this.headBias, this.V, H]];
      this.layers.forEach((layer, l) => {
        const n = l ? H : this.E;
        if (l > 0 || !this.table) list.push([`ih${l}`, layer.wih, layer.bih, G * H, n]);
        if (layer.whh) list.push([`hh${l}`, layer.whh, layer.bhh, G * H, H]);
      });
      const index = Object.fromEntries(list.map((m, i) => [m[0], i]));
      const wasm = engine === "wasm" ? Products.make(list.map((m) => m.slice(1))) : null;
      this.engine = wasm ? "wasm" : "js";
      this.mv = wasm ? (key, out, o, x) => wasm.run(index[key], out, o, x)
        : (key, out, o, x) => {
          const [, W, b, rows, n] = list[index[key]];
          matvec(out, o, W, b, x, rows, n);
        };
    }

    // Layer 0's input projection of every token (and its norm, for minGRU/minLSTM): a row
    // lookup instead of a matrix product per step
    fold() {
      const { V, E, G, H } = this, layer = this.layers[0];
      const table = new Float32Array(V * G * H);
      for (let v = 0; v < V; v++) {
        const x = this.emb.subarray(v * E, (v + 1) * E);
        if (this.min) { rmsNorm(this.xn, x, layer.norm, E); }
        matvec(table, v * G * H, layer.wih, layer.bih, this.min ? this.xn : x, G * H, E);
      }
      return table;
    }

    reset() {
      for (const a of [...this.h, ...this.c]) a.fill(0);
    }

    // Read token `tok`: the state moves on one step; with `head`, this.logits are the next
    // token's logits
    step(tok, head = true) {
      const top = this.min ? this.minStep(tok) : this.classicStep(tok);
      if (head) this.mv("head", this.logits, 0, top);
    }

    input(tok, l, x, n) {  // gx = layer l's projection of its input x (n wide)
      const { G, H } = this, layer = this.layers[l];
      if (l === 0 && this.table) {
        const row = tok * G * H;
        for (let i = 0; i < G * H; i++) this.gx[i] = this.table[row + i];
      } else {
        if (this.min) { rmsNorm(this.xn, x, layer.norm, n); x = this.xn; }
        this.mv(`ih${l}`, this.gx, 0, x);
      }
    }

    classicStep(tok) {
      const { H, E, gx, gh } = this;
      let x = this.emb.subarray(tok * E, (tok + 1) * E);
      for (let l = 0; l < this.L; l++) {
        const layer = this.layers[l], h = this.h[l], c = this.c[l];
        this.input(tok, l, x, l === 0 ? E : H);
        this.mv(`hh${l}`, gh, 0, h);
        if (this.cell === "lstm") {             // gates i, f, g, o (nn.LSTM's order)
          for (let j = 0; j < H; j++) {
            const i = sigmoid(gx[j] + gh[j]), f = sigmoid(gx[H + j] + gh[H + j]);
            const n = Math.tanh(gx[2 * H + j] + gh[2 * H + j]);
            const o = sigmoid(gx[3 * H + j] + gh[3 * H + j]);
            c[j] = f * c[j] + i * n;
            h[j] = o * Math.tanh(c[j]);
          }
        } else if (this.cell === "gru") {       // gates r, z, n (nn.GRU's order)
          for (let j = 0; j < H; j++) {
            const r = sigmoid(gx[j] + gh[j]), z = sigmoid(gx[H + j] + gh[H + j]);
            const n = Math.tanh(gx[2 * H + j] + r * gh[2 * H + j]);
            h[j] = (1 - z) * n + z * h[j];
          }
        } else if (this.cell === "rnn_tanh") {
          for (let j = 0; j < H; j++) h[j] = Math.tanh(gx[j] + gh[j]);
        } else {
          for (let j = 0; j < H; j++) h[j] = Math.max(gx[j] + gh[j], 0);
        }
        x = h;
      }
      return x;
    }

    // minGRU/minLSTM (minrnn.py): h = a * h + b from the input alone; pre-norm residual
    // layers, x <- x + h where the widths agree; an RMSNorm on the top
    minStep(tok) {
      const { H, E, gx, x } = this;
      x.set(this.emb.subarray(tok * E, (tok + 1) * E));
      let width = E;
      for (let l = 0; l < this.L; l++) {
        const h = this.h[l];
        this.input(tok, l, x, width);
        for (let j = 0; j < H; j++) {
          const gate = this.cell === "mingru" ? gx[j]
            : softplus(-gx[j]) - softplus(-gx[H + j]);
          h[j] = sigmoid(-gate) * h[j] + sigmoid(gate) * g(gx[(this.G - 1) * H + j]);
        }
        for (let j = 0; j < H; j++) x[j] = width === H ? x[j] + h[j] : h[j];
        width = H;
      }
      rmsNorm(this.xn, x, this.normOut, H);
      return this.xn;
    }
  }

  TR.Net = Net;
})();
