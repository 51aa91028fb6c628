// textrnn's tokenizers (tokenizer.py) in the browser: char, byte and byte-level BPE, giving
// Python's ids for any prompt; their stream decoders, which hold back a character whose bytes
// have not all come; and the UTF-8 guard's tables (tokenizer.utf8_tables), ported as they are.
// Left out: training a tokenizer, and Hugging Face options textrnn never sets.
"use strict";
var TR = window.TR || (window.TR = {});

(function () {
  const UNK = 0;
  const encoder = new TextEncoder();
  // Python scrubs a lone surrogate to U+FFFD before encoding (tokenizer._scrub): so does this
  const wellFormed = (text) => (text.toWellFormed ? text.toWellFormed() :
    text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
                 "\ufffd"));

  function byteStream(tokenBytes) {
    const decoder = new TextDecoder("utf-8");  // replaces broken bytes, as Python's does
    return (id) => decoder.decode(tokenBytes[id], { stream: true });
  }

  class CharTokenizer {
    constructor(doc) {
      this.kind = "char";
      this.unkId = UNK;
      this.chars = Array.from(doc.chars);            // id i + 1 -> character; 0 is <unk>
      this.lookup = new Map(this.chars.map((c, i) => [c, i + 1]));
      this.table = ["\ufffd", ...this.chars];
      this.vocabSize = this.chars.length + 1;
    }
    encode(text) { return Array.from(text, (c) => this.lookup.get(c) ?? UNK); }
    decoder() { return (id) => this.table[id]; }
    guard() { return null; }  // every token is a whole character
  }

  class ByteTokenizer {
    constructor() {
      this.kind = "byte";
      this.unkId = null;
      this.vocabSize = 256;
      this.tokenBytes = Array.from({ length: 256 }, (_, b) => Uint8Array.of(b));
    }
    encode(text) { return Array.from(encoder.encode(wellFormed(text))); }
    decoder() { return byteStream(this.tokenBytes); }
    guard() { return this._guard || (this._guard = utf8Tables(this.tokenBytes)); }
  }

  // GPT-2's printable stand-ins for the 256 bytes (tokenizer._byte_to_unicode)
  function byteToUnicode() {
    const keep = [];
    for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
    for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
    for (let b = 0xae; b <= 0xff; b++) keep.push(b);
    const map = new Array(256);
    let moved = 0;
    for (let b = 0; b < 256; b++)
      map[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + moved++);
    return map;
  }

  // The ByteLevel pre-tokenizer's regex (GPT-2's), with \s spelt as Oniguruma's Unicode
  // White_Space (JavaScript's \s adds U+FEFF and lacks U+0085)
  const WS = "[\\t-\\r\\x85\\p{Zs}\\u2028\\u2029]";
  const NON_WS = "[^\\t-\\r\\x85\\p{Zs}\\u2028\\u2029]";
  const PIECES = new RegExp("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+" +
    `| ?[^\\t-\\r\\x85\\p{Zs}\\u2028\\u2029\\p{L}\\p{N}]+|${WS}+(?!${NON_WS})|${WS}+`, "gu");

  class BPETokenizer {
    constructor(doc) {
      this.kind = "bpe";
      this.unkId = null;
      const vocab = doc.model.vocab;
      this.vocab = new Map(Object.entries(vocab));
      this.ranks = new Map();
      doc.model.merges.forEach((m, rank) => {
        const [a, b] = typeof m === "string" ? m.split(" ") : m;
        this.ranks.set(a + " " + b, rank);
      });
      this.unicode = byteToUnicode();
      const toByte = new Map(this.unicode.map((c, b) => [c, b]));
      this.vocabSize = Math.max(...Object.values(vocab)) + 1;
      this.tokenBytes = new Array(this.vocabSize);
      for (const [token, id] of this.vocab)
        this.tokenBytes[id] = Uint8Array.from(Array.from(token, (c) => toByte.get(c)));
    }

    encode(text) {
      const ids = [];
      text = wellFormed(text);
      let at = 0;
      for (const m of text.matchAll(PIECES)) {  // (gaps, were there any, are pieces too)
        if (m.index > at) this.word(text.slice(at, m.index), ids);
        this.word(m[0], ids);
        at = m.index + m[0].length;
      }
      if (at < text.length) this.word(text.slice(at), ids);
      return ids;
    }

    // One pre-token's ids: its bytes' stand-ins, merged by rank, the lowest first and the
    // leftmost of equals (as tokenizers' Word::merge_all pops its queue)
    word(piece, ids) {
      const symbols = Array.from(encoder.encode(piece), (b) => this.unicode[b]);
      while (symbols.length > 1) {
        let best = Infinity, at = -1;
        for (let i = 0; i + 1 < symbols.length; i++) {
          const rank = this.ranks.get(symbols[i] + " " + symbols[i + 1]);
          if (rank !== undefined && rank < best) { best = rank; at = i; }
        }
        if (at < 0) break;
        symbols.splice(at, 2, symbols[at] + symbols[at + 1]);
      }
      for (const s of symbols) ids.push(this.vocab.get(s));
    }

    decoder() { return byteStream(this.tokenBytes); }
    guard() { return this._guard || (this._guard = utf8Tables(this.tokenBytes)); }
  }

  // UTF-8 as an automaton over bytes (tokenizer._UTF8_NEXT): per state, the byte ranges that
  // may come next and the state each leads to; 0 is "between characters"
  const UTF8_NEXT = [
    [[0x00, 0x7f, 0], [0xc2, 0xdf, 1], [0xe0, 0xe0, 4], [0xe1, 0xec, 2], [0xed, 0xed, 5],
     [0xee, 0xef, 2], [0xf0, 0xf0, 6], [0xf1, 0xf3, 3], [0xf4, 0xf4, 7]],
    [[0x80, 0xbf, 0]], [[0x80, 0xbf, 1]], [[0x80, 0xbf, 2]],
    [[0xa0, 0xbf, 1]], [[0x80, 0x9f, 1]],
    [[0x90, 0xbf, 2]], [[0x80, 0x8f, 2]],
  ];

  // allowed[s * V + v]: whether token v's bytes may follow state s without breaking a
  // character; following[s * V + v]: the state they leave (-1 where not allowed)
  function utf8Tables(tokenBytes) {
    const S = UTF8_NEXT.length, V = tokenBytes.length;
    const step = new Int8Array(S * 256).fill(-1);
    UTF8_NEXT.forEach((ranges, s) => {
      for (const [lo, hi, next] of ranges) step.fill(next, s * 256 + lo, s * 256 + hi + 1);
    });
    const allowed = new Uint8Array(S * V), following = new Int8Array(S * V);
    for (let s = 0; s < S; s++)
      for (let v = 0; v < V; v++) {
        let state = s;
        for (const b of tokenBytes[v]) if (state >= 0) state = step[state * 256 + b];
        allowed[s * V + v] = state >= 0 ? 1 : 0;
        following[s * V + v] = state;
      }
    return { allowed, following, states: S };
  }

  TR.tokenizer = function (doc) {
    if (doc.model && doc.model.type === "BPE") return new BPETokenizer(doc);
    if (doc.kind === "char") return new CharTokenizer(doc);
    if (doc.kind === "byte") return new ByteTokenizer();
    throw new Error("unknown tokenizer in model.js");
  };
})();
