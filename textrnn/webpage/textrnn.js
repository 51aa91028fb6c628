// Sampling in the browser, as textrnn's plain path samples (sample.py, lm.py): torch's CPU
// generator (mt19937 seeded by manual_seed; torch.rand's float64 from two 32-bit draws, the
// first the high word), sample_next's rule (temperature, top-k, top-p, inverse CDF in float64),
// the banned unknown id and the UTF-8 guard as sample.Plain applies them, and lm.py's prompt
// and length rules. It runs steps in chunks between yields to the event loop, so a page stays
// responsive and Stop is heard. window.textrnn is the API the page and the tests drive.
"use strict";
var TR = window.TR || (window.TR = {});

(function () {
  const MAX_SEED = 2 ** 53 - 1;       // sample.MAX_SEED
  const MAX_NEW_CHARS = 1e8;          // lm.MAX_NEW_CHARS
  const MIN_TEMPERATURE = 1e-3, MAX_TEMPERATURE = 1e6;
  const CHUNK_MS = 30;                // steps between yields: ~30 ms of work

  // torch.Generator().manual_seed(seed) and torch.rand(dtype=float64): the standard mt19937,
  // seeded with the seed's low 32 bits (two's complement for a negative one)
  class MT19937 {
    constructor(seed) {
      const mt = (this.mt = new Uint32Array(624));
      mt[0] = ((seed % 2 ** 32) + 2 ** 32) % 2 ** 32;
      for (let i = 1; i < 624; i++) {
        const s = mt[i - 1] ^ (mt[i - 1] >>> 30);
        mt[i] = Math.imul(1812433253, s) + i;
      }
      this.i = 624;
    }
    next32() {
      const mt = this.mt;
      if (this.i >= 624) {
        for (let k = 0; k < 624; k++) {
          const y = (mt[k] & 0x80000000) | (mt[(k + 1) % 624] & 0x7fffffff);
          mt[k] = mt[(k + 397) % 624] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
        }
        this.i = 0;
      }
      let y = mt[this.i++];
      y ^= y >>> 11;
      y ^= (y << 7) & 0x9d2c5680;
      y ^= (y << 15) & 0xefc60000;
      return (y ^ (y >>> 18)) >>> 0;
    }
    double() {  // 53 bits: the low 21 of the first draw, then all 32 of the second
      const hi = this.next32() & 0x1fffff, lo = this.next32();
      return (hi * 2 ** 32 + lo) * 2 ** -53;
    }
  }

  // settings as sample.Settings and lm.stream_many check them; an Error in one line
  function check(o) {
    const t = o.temperature ?? 0.8, k = o.topK ?? null, p = o.topP ?? null;
    if (typeof t !== "number" || !(t >= 0 && t <= MAX_TEMPERATURE))
      throw new Error(`temperature must be a number from 0 (always the likeliest) to 1e+06`);
    if (t > 0 && t < MIN_TEMPERATURE)
      throw new Error(`temperature must be 0 or at least 0.001, got ${t}`);
    if (k !== null && !(Number.isInteger(k) && k >= 1))
      throw new Error(`top-k must be a whole number of at least 1 (or unset), got ${k}`);
    if (p !== null && !(typeof p === "number" && p > 0 && p <= 1))
      throw new Error(`top-p must be in (0, 1] (or unset), got ${p}`);
    const length = o.length ?? 500;
    if (!Number.isInteger(length) || length < 0 || length > MAX_NEW_CHARS)
      throw new Error(`length must be a whole number from 0 to 100,000,000, got ${length}`);
    const seed = o.seed ?? null;
    if (seed !== null && !(Number.isInteger(seed) && Math.abs(seed) <= MAX_SEED))
      throw new Error(`seed must be a whole number between -${MAX_SEED} and ${MAX_SEED}`);
    return { temperature: t, topK: k, topP: p, length, prompt: String(o.prompt ?? ""),
             seed: seed ?? crypto.getRandomValues(new Uint32Array(1))[0] >>> 1 };
  }

  // sample.sample_next for one row, from logits z already masked (-Infinity): an id
  class Sampler {
    constructor(V, s) {
      this.s = s;
      this.t = Math.fround(s.temperature);  // the division runs in float32, as torch's
      this.z = new Float32Array(V);
      this.sorted = new Float32Array(V);
      this.order = new Int32Array(V);
      this.cdf = new Float64Array(V);
    }
    pick(z, u) {
      const V = z.length, s = this.z, { topK, topP } = this.s;
      if (this.s.temperature === 0) {  // argmax: the first of the largest
        let best = 0;
        for (let v = 1; v < V; v++) if (z[v] > z[best]) best = v;
        return best;
      }
      for (let v = 0; v < V; v++) s[v] = z[v] / this.t;  // (stored as float32)
      if (topK !== null && topK < V) {
        this.sorted.set(s);
        this.sorted.sort();                                // ascending
        const kth = this.sorted[V - topK];
        for (let v = 0; v < V; v++) if (s[v] < kth) s[v] = -Infinity;
      }
      if (topP !== null && topP < 1) this.nucleus(s, topP);
      let m = -Infinity, cum = 0, last = 0;
      for (let v = 0; v < V; v++) if (s[v] > m) m = s[v];
      for (let v = 0; v < V; v++) {
        const w = s[v] === -Infinity ? 0 : Math.exp(s[v] - m);
        if (w > 0) last = v;
        cum += w;
        this.cdf[v] = cum;
      }
      const target = u * cum;
      for (let v = 0; v < V; v++) if (this.cdf[v] > target) return v;
      return last;
    }
    // drop the tokens ranked below the smallest set whose probability reaches p (a stable
    // descending sort; the softmax in float64)
    nucleus(s, p) {
      const V = s.length, order = this.order;
      for (let v = 0; v < V; v++) order[v] = v;
      order.sort((a, b) => (s[b] - s[a]) || (a - b));
      const m = s[order[0]];
      let total = 0;
      for (let r = 0; r < V; r++) total += (this.cdf[r] = Math.exp(s[order[r]] - m));
      let cum = 0;
      const drop = [];
      for (let r = 0; r < V; r++) {
        const q = this.cdf[r] / total;
        cum += q;
        if (cum - q >= p) drop.push(order[r]);
      }
      for (const v of drop) s[v] = -Infinity;
    }
  }

  // One stream of new ids after a prompt: the state primed, then `next()` a token at a time
  class Generation {
    constructor(model, ids, settings, seed) {
      const { net, tok } = model;
      this.net = net;
      this.rng = new MT19937(seed);
      this.sampler = new Sampler(net.V, settings);
      this.banned = tok.unkId === null ? [] : [tok.unkId];
      this.guard = tok.guard();
      this.utf8 = 0;                      // between characters, as the whole prompt leaves it
      this.masked = new Float32Array(net.V);
      this.ids = ids;
      this.primed = 0;
      net.reset();
    }
    prime(until) {  // read prompt tokens till `until` (ms); whether all are read
      const { net, ids } = this;
      while (this.primed < ids.length && performance.now() < until) {
        net.step(ids[this.primed], this.primed === ids.length - 1);
        this.primed++;
      }
      return this.primed === ids.length;
    }
    next() {
      const { net, guard, masked } = this, V = net.V, u = this.rng.double();
      masked.set(net.logits);
      for (const b of this.banned) masked[b] = -Infinity;
      const row = this.utf8 * V;
      if (guard) for (let v = 0; v < V; v++) if (!guard.allowed[row + v]) masked[v] = -Infinity;
      let id = this.sampler.pick(masked, u);
      if (guard) {  // NaN logits can pick a masked token: the first allowed one, as Plain does
        if (!guard.allowed[row + id]) id = guard.allowed.subarray(row, row + V).indexOf(1);
        this.utf8 = Math.max(guard.following[row + id], 0);
      }
      net.step(id);
      return id;
    }
  }

  // lm._prompt_ids: an empty prompt reads as a newline (id 1 where that is unknown)
  function promptIds(tok, prompt) {
    let ids = tok.encode(prompt);
    if (ids.length === 0) {
      ids = tok.encode("\n");
      if (tok.unkId !== null && ids[0] === tok.unkId) ids[0] = 1;
    }
    return ids;
  }

  const yieldToPage = () => new Promise((done) => {
    const ch = new MessageChannel();  // not setTimeout: its 4 ms floor would idle the loop
    ch.port1.onmessage = () => { ch.port1.close(); done(); };
    ch.port2.postMessage(0);
  });

  let doc = null, base64 = null, model = null, running = null;

  window.textrnnModel = (d, b) => { doc = d; base64 = b; };  // model.js calls it

  function load() {
    if (!model) {
      if (!doc) throw new Error("model.js is missing or did not load");
      const engine = new URLSearchParams(location.search).get("engine") || "wasm";  // or js
      const net = new TR.Net(doc.model, TR.tensors(doc, base64), engine);
      model = { net, tok: TR.tokenizer(doc.tokenizer), doc };
      base64 = null;  // the tensors hold what the page needs
    }
    return model;
  }

  // Generate as lm.LM.stream does: pieces cut to `length` characters (code points);
  // onText(piece) hears each chunk's new text. Resolves to {text, seed, stopped}
  async function generate(options = {}) {
    const o = check(options), m = load();
    if (running) running.stop = true;
    const me = (running = { stop: false });
    const gen = new Generation(m, promptIds(m.tok, o.prompt), o, o.seed);
    const decode = m.tok.decoder(), parts = [];
    let count = 0;
    while (!gen.prime(performance.now() + CHUNK_MS)) {
      await yieldToPage();
      if (me.stop) return { text: "", seed: o.seed, stopped: true };
    }
    while (count < o.length && !me.stop) {
      const until = performance.now() + CHUNK_MS;
      let piece = "";
      do {
        const p = [...decode(gen.next())].slice(0, o.length - count).join("");
        count += [...p].length;
        piece += p;
      } while (count < o.length && performance.now() < until);
      parts.push(piece);
      if (piece && options.onText) options.onText(piece);
      if (count < o.length) await yieldToPage();
    }
    if (running === me) running = null;
    return { text: parts.join(""), seed: o.seed, stopped: me.stop };
  }

  window.textrnn = {
    generate,
    stop() { if (running) running.stop = true; },
    model: () => load().doc,
    engine: () => load().net.engine,  // "wasm", or "js" (?engine=js, or no WebAssembly SIMD)
    encode: (text) => load().tok.encode(text),
    // the logits (an Array) after reading `prompt` as generation primes it
    logits(prompt) {
      const { net, tok } = load();
      net.reset();
      const ids = promptIds(tok, prompt);
      ids.forEach((id, i) => net.step(id, i === ids.length - 1));
      return Array.from(net.logits);
    },
    // steps/s of the model's step alone, its argmax fed back (the engine, without sampling
    // or text): what python -m benchmarks web compares with onnxruntime-web's step
    stepRate(steps) {
      const { net } = load();
      if (running) running.stop = true;
      net.reset();
      let token = 1;
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) {
        net.step(token);
        token = 0;
        for (let v = 1; v < net.V; v++) if (net.logits[v] > net.logits[token]) token = v;
      }
      return steps / ((performance.now() - t0) / 1000);
    },
    rand(seed, n) {  // torch.rand(n, dtype=float64) after manual_seed(seed)
      const g = new MT19937(seed);
      return Array.from({ length: n }, () => g.double());
    },
    guard() {
      const g = load().tok.guard();
      return g && { allowed: Array.from(g.allowed), following: Array.from(g.following) };
    },
  };
})();
