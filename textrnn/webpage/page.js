// The page's controls over window.textrnn: the card and figures shown; Generate reads the
// fields (one line for a mistake), streams the text into #output, and says the seed it used;
// Stop stops. No model logic here.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  function number(id, parse, blank) {  // a field's value; `blank` where it is empty
    const text = $(id).value.trim();
    if (text === "") return blank;
    if (!/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(text))
      throw new Error(`${id} must be a number, got ${text.slice(0, 24)}`);
    return parse(text);
  }

  function settings() {
    const topK = number("top-k", Number, null);
    return {
      prompt: $("prompt").value,
      length: number("length", Number, 500),
      temperature: number("temperature", Number, 0.8),
      topK: topK === 0 ? null : topK,    // 0: off, as the Python page has it
      topP: number("top-p", Number, null),
      seed: number("seed", (t) => (/^-?\d+$/.test(t) ? Number(t) : NaN), null),
    };
  }

  async function run() {
    $("error").textContent = "";
    $("output").textContent = "";
    $("generate").disabled = true;
    $("stop").disabled = false;
    $("status").textContent = "writing...";
    try {
      const out = await window.textrnn.generate({
        ...settings(), onText: (piece) => $("output").append(piece) });
      $("status").textContent = `seed ${out.seed}` + (out.stopped ? ", stopped" : "");
    } catch (e) {
      $("status").textContent = "";
      $("error").textContent = String(e.message || e).split("\n")[0];
    } finally {
      $("generate").disabled = false;
      $("stop").disabled = true;
    }
  }

  function show() {
    try {
      const doc = window.textrnn.model();
      $("title").textContent = `${doc.model.cell.toUpperCase()} ${doc.model.layers}x` +
        doc.model.hidden;
      for (const [label, value] of doc.figures) $("figures").insertRow().append(
        Object.assign(document.createElement("td"), { textContent: label }),
        Object.assign(document.createElement("td"), { textContent: value }));
      $("card").textContent = doc.card;
    } catch (e) {
      $("error").textContent = String(e.message || e);
      $("generate").disabled = true;
    }
  }

  $("generate").addEventListener("click", run);
  $("stop").addEventListener("click", () => window.textrnn.stop());
  show();
})();
