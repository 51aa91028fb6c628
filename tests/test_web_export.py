"""The exported web page (textrnn.webpage) in headless Chromium, from a static server on
127.0.0.1 and from file://: the same greedy text and logits as PyTorch for every cell and
tokenizer, the same seeded text as the plain path, Python's BPE ids, no broken UTF-8, the
controls and Stop, no request elsewhere; and the writer's refusals."""

import functools
import http.server
import threading

import pytest
import torch

from conftest import TINY, make_model
from support import launch
from textrnn import checkpoint, sample
from textrnn.lm import LM
from textrnn.tokenizer import BPETokenizer, ByteTokenizer, CharTokenizer
from textrnn.webpage import MAX_WEB_BYTES, export_web, too_large

EXTRA = "é中😀 «quoted» 'it's' 42 1999\t\n"
CHAR = CharTokenizer.train(TINY + EXTRA)
BPE = BPETokenizer.train(TINY * 2 + EXTRA * 3, 300)
MODELS = {  # name -> (cell, tokenizer, extra ModelConfig fields)
    "lstm": ("lstm", CHAR, {}), "gru": ("gru", CHAR, {}), "rnn_tanh": ("rnn_tanh", CHAR, {}),
    "rnn_relu": ("rnn_relu", CHAR, {}), "mingru": ("mingru", CHAR, {}),
    "minlstm": ("minlstm", CHAR, {}),
    "lstm-tied": ("lstm", CHAR, {"embed": 24, "tie_weights": True}),
    "mingru-tied": ("mingru", CHAR, {"embed": 24, "tie_weights": True}),  # residual at layer 0
    "byte-gru": ("gru", ByteTokenizer(), {}), "bpe-lstm": ("lstm", BPE, {}),
    "bpe-minlstm": ("minlstm", BPE, {}),
}
PROMPTS = ["ANNA:\nThe moon", "", "Zq é?"]  # an empty prompt; unknown characters
LENGTH = 320


def build(name: str):
    cell, tok, extra = MODELS[name]
    model = make_model(cell, vocab=tok.vocab_size, hidden=24, **{"embed": 12, **extra})
    with torch.no_grad():  # livelier than PyTorch's initialisation: texts that vary
        for p in model.parameters():  # (a ReLU RNN's logits grow large at 2.5)
            p.mul_(1.5 if cell == "rnn_relu" else 2.5)
        if not model.config.tie_weights:
            model.head.weight.normal_(0, 0.5)  # (a minGRU's and minLSTM's starts at zero)
    return LM(model, tok)


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Every model exported under one folder, served on 127.0.0.1: (folder, url, LMs)."""
    root = tmp_path_factory.mktemp("site")
    lms = {}
    for name in MODELS:
        lms[name] = build(name)
        checkpoint.save(root / f"{name}.ckpt", lms[name].model, lms[name].tokenizer,
                        {"corpus_name": "tiny", "val_bpc": 1.5, "train_time_s": 60.0})
        export_web(root / f"{name}.ckpt", root / name)
    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}", lms
    server.shutdown()


@pytest.fixture(scope="module")
def browser(site):
    """One Chromium for the module; every request any page makes is recorded."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = launch(p)
        b.requests = []
        yield b
        b.close()


def open_page(browser, site, name, via="http", engine="wasm"):
    """The page of model `name`, its products in WebAssembly or (engine="js") JavaScript."""
    root, url, _ = site
    page = browser.new_page()
    page.on("request", lambda r: browser.requests.append(r.url))
    query = "?engine=js" if engine == "js" else ""
    page.goto(f"{url}/{name}/index.html{query}" if via == "http"
              else (root / name / "index.html").as_uri() + query)
    page.wait_for_function("() => window.textrnn !== undefined")
    assert page.evaluate("() => textrnn.engine()") == engine
    return page


def js_generate(page, **options) -> str:
    return page.evaluate("o => textrnn.generate(o).then(r => r.text)", options)


@pytest.fixture
def plain(monkeypatch):
    """Python's generation on the plain PyTorch path (no kernel)."""
    monkeypatch.setattr(sample.fastpath, "stepper", lambda *a, **k: None)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_greedy_text_and_logits_match_pytorch(browser, site, name, plain):
    lm = site[2][name]
    for via, engine in (("http", "wasm"), ("file", "wasm"), ("http", "js")):
        page = open_page(browser, site, name, via, engine)
        for prompt in PROMPTS:
            ids = lm._prompt_ids(prompt)
            with torch.no_grad():
                want = lm.model(ids[None].long())[0][0, -1]
            got = torch.tensor(page.evaluate("p => textrnn.logits(p)", prompt))
            assert (got - want).abs().max() < 1e-4, (via, engine, prompt)
            text = js_generate(page, prompt=prompt, length=LENGTH, temperature=0)
            assert text == lm.generate(prompt, LENGTH, temperature=0), (via, engine, prompt)
            assert len(text) == LENGTH and "\ufffd" not in text
        page.close()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lstm", "minlstm", "byte-gru", "bpe-lstm"])
def test_seeded_text_is_the_plain_paths(browser, site, name, plain):
    lm, page = site[2][name], open_page(browser, site, name)
    for t, k, p, seed in [(0.8, 10, None, 5), (0.8, None, 0.9, 5), (0.8, 8, 0.8, -3),
                          (1.0, None, None, 2**53 - 1)]:
        want = lm.generate("ANNA:", 300, temperature=t, top_k=k, top_p=p, seed=seed)
        got = js_generate(page, prompt="ANNA:", length=300, temperature=t, topK=k, topP=p,
                          seed=seed)
        assert got == want, (t, k, p, seed)
        other = js_generate(page, prompt="ANNA:", length=300, temperature=t, topK=k, topP=p,
                            seed=seed - 1)
        assert other != got
    page.close()


@pytest.mark.slow
def test_the_js_generator_is_torchs_and_tokenizers_give_pythons_ids(browser, site):
    page = open_page(browser, site, "bpe-lstm")
    for seed in (0, 7, -3, 2**40 + 5, 2**53 - 1):
        want = torch.rand(6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        assert page.evaluate("([s, n]) => textrnn.rand(s, n)", [seed, 6]) == want.tolist()
    tricky = ["", "Hello world", "  two  spaces\n\n\nnewlines \n", "it's 'quoted' \"twice\"",
              "digits 1234567 and 3.14", "é中😀 «» \u00a0nbsp\u2003em", "tab\tend \r\n",
              "ANNA:\nThe moon is bright, and so am I.", "   ", "a   b"]
    for text in tricky:
        assert page.evaluate("t => textrnn.encode(t)", text) == BPE.encode(text).tolist(), text
    lone = "() => textrnn.encode('x' + String.fromCharCode(0xd800) + 'y')"  # scrubbed to U+FFFD
    assert page.evaluate(lone) == BPE.encode("x\ud800y").tolist()
    for name, tok in (("bpe-lstm", BPE), ("byte-gru", ByteTokenizer())):
        page = open_page(browser, site, name)
        allowed, following = tok.utf8_guard()
        got = page.evaluate("() => textrnn.guard()")
        assert got["allowed"] == allowed.flatten().tolist()
        assert got["following"] == following.flatten().tolist()
    page = open_page(browser, site, "lstm")
    assert page.evaluate("t => textrnn.encode(t)", "Zq é😀") == CHAR.encode("Zq é😀").tolist()


@pytest.mark.slow
def test_no_broken_utf8_at_high_temperature(browser, site):
    for name in ("byte-gru", "bpe-lstm"):
        page = open_page(browser, site, name)
        text = js_generate(page, prompt="é", length=2000, temperature=3.0, seed=1)
        assert len(text) == 2000 and "\ufffd" not in text
        assert any(ord(c) > 127 for c in text)  # it did write characters of several bytes


@pytest.mark.slow
def test_the_controls_generate_stop_and_change_seed(browser, site, plain):
    lm, page = site[2]["lstm"], open_page(browser, site, "lstm")
    assert "parameters" in page.locator("#figures").inner_text()
    assert "1.5000 bits/char" in page.locator("#figures").inner_text()
    page.fill("#prompt", "BEN:")
    page.fill("#length", "200")
    page.fill("#top-k", "5")
    page.fill("#seed", "11")
    page.click("#generate")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('seed')")
    want = lm.generate("BEN:", 200, temperature=0.8, top_k=5, seed=11)
    assert page.locator("#output").inner_text() == want
    page.fill("#seed", "12")
    page.click("#generate")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('12')")
    assert page.locator("#output").inner_text() != want
    page.fill("#seed", "")
    page.fill("#length", "100000000")
    page.click("#generate")
    page.wait_for_function("() => document.querySelector('#output').textContent.length > 50")
    page.click("#stop")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('stop')")
    shown = page.locator("#output").inner_text()
    page.wait_for_timeout(200)
    assert page.locator("#output").inner_text() == shown and len(shown) < 10**8
    assert page.locator("#stop").is_disabled()
    page.fill("#temperature", "-1")
    page.click("#generate")
    page.wait_for_function("() => document.querySelector('#error').textContent !== ''")
    assert "temperature must be" in page.locator("#error").inner_text()


@pytest.mark.slow
def test_no_request_leaves_127_0_0_1(browser, site):
    open_page(browser, site, "lstm")
    open_page(browser, site, "lstm", via="file")
    url = site[1]
    assert browser.requests and all(r.startswith((url + "/", "file://")) for r in
                                    browser.requests), browser.requests


def test_fp16_halves_the_weights(tmp_path):
    lm = build("lstm")
    checkpoint.save(tmp_path / "ckpt", lm.model, lm.tokenizer, {})
    full = export_web(tmp_path / "ckpt", tmp_path / "fp32") / "model.js"
    half = export_web(tmp_path / "ckpt", tmp_path / "fp16", dtype="fp16") / "model.js"
    weights = lm.model.num_params() * 4 * 4 / 3  # bytes of base64
    assert abs(full.stat().st_size - half.stat().st_size - weights / 2) < 0.05 * weights


def test_bad_input_is_one_line_and_leaves_nothing(tmp_path):
    lm = build("lstm")
    checkpoint.save(tmp_path / "ckpt", lm.model, lm.tokenizer, {})
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        export_web(tmp_path / "ckpt", tmp_path / "taken")
    with pytest.raises(ValueError, match="unknown dtype"):
        export_web(tmp_path / "ckpt", tmp_path / "new", dtype="int8")
    params = lm.model.num_params()
    with pytest.raises(ValueError, match=f"{params:,} parameters, too many.*try --dtype fp16"):
        export_web(tmp_path / "ckpt", tmp_path / "new", max_bytes=params * 3)
    with pytest.raises(ValueError, match="too many") as refused:
        export_web(tmp_path / "ckpt", tmp_path / "new", max_bytes=params, dtype="fp16")
    assert "--dtype" not in str(refused.value)
    assert "at most 256 MiB of weights (67,108,864 parameters in fp32, 134,217,728 in fp16)" \
        in too_large(10**9, "fp32", MAX_WEB_BYTES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "taken"]


def test_the_cli_writes_a_page_and_refuses_what_it_cannot_do(tmp_path, capsys):
    """`textrnn export RUN --web DIR`: a finished run's page; one line, nothing written, for an
    unfinished run, a folder that exists (kept unless --overwrite) and flags of the other
    export."""
    from textrnn.cli import main
    lm = build("gru")
    run = tmp_path / "run"
    checkpoint.save(run, lm.model, lm.tokenizer, {"steps": 1})

    def cli(*argv):
        code = main([str(a) for a in argv])
        return code, capsys.readouterr().err

    code, err = cli("export", run, "--web", tmp_path / "page", "--dtype", "fp16")
    assert code == 0 and "wrote " in err and "index.html" in err, err
    assert sorted(p.name for p in (tmp_path / "page").iterdir()) == sorted(
        ["model.js", "index.html", "engine.js", "tokenize.js", "textrnn.js", "page.js"])
    assert '"dtype": "fp16"' in (tmp_path / "page" / "model.js").read_text()[:10_000]
    (tmp_path / "page" / "mine.txt").write_text("mine")
    unfinished = tmp_path / "unfinished"
    checkpoint.save(unfinished / "last", lm.model, lm.tokenizer, {"steps": 1})
    for argv, said in [
        ((run, "--web", tmp_path / "page"), "already exists"),
        ((unfinished, "--web", tmp_path / "new"), "holds no best checkpoint yet"),
        ((run, "--web", tmp_path / "new", "--sequence"), "--sequence is for --onnx"),
        ((run, "--onnx", tmp_path / "new.onnx", "--dtype", "fp16"), "--dtype is for --web"),
        ((run, "--web", tmp_path / "new", "--onnx", tmp_path / "x.onnx"), "not allowed with"),
    ]:
        code, err = cli("export", *argv)
        assert code == 1 and said in err.splitlines()[0] and "Traceback" not in err, err
    assert (tmp_path / "page" / "mine.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page", "run", "unfinished"]
    code, err = cli("export", run, "--web", tmp_path / "page", "--overwrite")
    assert code == 0, err
    assert not (tmp_path / "page" / "mine.txt").exists()
    assert '"dtype": "fp32"' in (tmp_path / "page" / "model.js").read_text()[:10_000]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page", "run", "unfinished"]
