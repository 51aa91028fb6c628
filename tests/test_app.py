"""The web app: handlers called directly, the API through gradio_client, the page in Chromium."""

import html
import json
import re
import shutil
import socket
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gradio as gr
import pytest

from textrnn import ModelConfig, TrainConfig, fast, sample, train

from textrnn.web import generate, messages, request, workbench
from textrnn.web.catalog import Catalog
from textrnn.web.page import build
from textrnn.web.server import MAX_REQUEST_BYTES, serve

ROOT = Path(__file__).resolve().parent.parent

ARTIFACTS = ROOT / "test-artifacts"
OUT = "(document.querySelector('#output pre')?.innerText ?? '')"  # the page's sample, as text


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A folder with one good checkpoint (trained on corpora/tiny.txt) and two broken ones."""
    root = tmp_path_factory.mktemp("checkpoints")
    cfg = TrainConfig(corpus=str(ROOT / "corpora" / "tiny.txt"), out=str(root / "tiny"),
                      model=ModelConfig(hidden=128, embed=16, layers=2), seq_len=32,
                      batch_size=4, lr=1e-2, max_steps=60, evals=2)
    train(cfg, log=lambda m: None, progress=False)
    shutil.rmtree(root / "tiny" / "last")
    train(TrainConfig(corpus=str(ROOT / "corpora" / "tiny.txt"), out=str(root / "tiny-bpe"),
                      tokenizer="bpe", vocab_size=300, model=ModelConfig(hidden=32, embed=16),
                      seq_len=16, batch_size=4, max_steps=20, evals=1),
          log=lambda m: None, progress=False)
    (root / "tiny" / "examples.json").write_text(json.dumps(
        {"about": "a toy", "prompts": ["ANNA:\n", "The sea"]}))
    (root / "broken").mkdir()
    (root / "broken" / "config.json").write_text("{ not json")
    shutil.copytree(root / "tiny", root / "future")
    cfg = json.loads((root / "future" / "config.json").read_text())
    cfg["format_version"] = 99
    (root / "future" / "config.json").write_text(json.dumps(cfg))
    return root


@pytest.fixture(scope="module")
def catalog(checkpoints):
    return Catalog(checkpoints)


def settings(**kw):
    base = dict(name="tiny", prompt="ANNA:", length=120, temperature=0.8, top_k=0, top_p=1.0,
                seed=7)
    return {**base, **kw}


def run_all(catalog, **kw):
    return list(generate.make_generate(catalog)(**settings(**kw)))


def test_catalog_lists_good_and_broken_folders(catalog):
    assert catalog.choices() == [("broken (unavailable)", "broken"),
                                 ("future (unavailable)", "future"), ("tiny", "tiny"),
                                 ("tiny-bpe", "tiny-bpe")]
    assert catalog.default() == "tiny"
    assert "version 99" in catalog.card("future") and "corrupt" in catalog.card("broken")
    assert "a toy" in catalog.card("tiny") and "2-layer LSTM" in catalog.card("tiny")
    assert catalog.examples("tiny") == ["ANNA:\n", "The sea"] and catalog.examples("broken") == []


def test_stream_grows_and_ends_at_the_asked_length(catalog):
    outs = run_all(catalog)
    texts = [t for t, _ in outs]
    assert texts[0] == "ANNA:" and len(texts[-1]) == len("ANNA:") + 120
    assert all(b.startswith(a) and len(b) >= len(a) for a, b in zip(texts, texts[1:]))
    assert {s for _, s in outs} == {7}


def test_a_bpe_checkpoint_streams_whole_characters(catalog):
    outs = run_all(catalog, name="tiny-bpe", prompt="Café 🙂 ", length=200, temperature=1.0)
    texts = [t for t, _ in outs]
    assert len(texts[-1]) == len("Café 🙂 ") + 200
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:]))
    assert "bpe" in catalog.card("tiny-bpe")


def test_seed_reproduces_and_blank_seed_is_reported(catalog):
    assert run_all(catalog)[-1] == run_all(catalog)[-1]
    text, seed = run_all(catalog, seed=None)[-1]
    assert isinstance(seed, int) and run_all(catalog, seed=seed)[-1] == (text, seed)


def test_limits_hold(catalog):
    text, _ = run_all(catalog, prompt="", length=10**9, temperature=99, top_k=-3,
                      top_p=-1)[-1]
    assert len(text) == request.MAX_NEW_CHARS
    long_prompt = "x" * (request.MAX_PROMPT_CHARS + 50)
    text, _ = run_all(catalog, prompt=long_prompt, length=5)[-1]
    assert len(text) == request.MAX_PROMPT_CHARS + 5
    text, _ = run_all(catalog, prompt="日本語 🙂", length=20, temperature=float("nan"))[-1]
    assert text.startswith("日本語 🙂") and len(text) == len("日本語 🙂") + 20


def test_concurrent_requests_get_their_own_results(catalog):
    seeds = (1, 2, 3, 4)
    alone = [run_all(catalog, seed=s)[-1] for s in seeds]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda s: run_all(catalog, seed=s)[-1], seeds))
    assert together == alone and len(set(alone)) == 4


def test_seed_must_be_a_whole_number(catalog):
    assert run_all(catalog, seed=" 12 ")[-1][1] == 12
    assert run_all(catalog, seed="-3")[-1][1] == -3  # used as given, not wrapped
    with pytest.raises(gr.Error, match="whole number"):
        run_all(catalog, seed="abc")
    with pytest.raises(gr.Error, match="between"):
        run_all(catalog, seed=str(2**53))


def test_a_message_quoting_a_request_is_short_one_line_and_escaped(catalog, capsys):
    """Toasts render HTML, and the log keeps every refusal: what a visitor sent is quoted
    cut, on one line, as text."""
    for seed in ("9" * 1_000_000, "<img src=x onerror=alert(1)>\n" * 1000):
        with pytest.raises(gr.Error) as refused:
            run_all(catalog, seed=seed)
        message = refused.value.message
        assert len(html.unescape(message)) <= messages.MAX_MESSAGE_CHARS, message[:400]
        assert "<" not in message
        logged = capsys.readouterr().err
        assert logged.count("\n") == 1 and len(logged) < 2 * messages.MAX_MESSAGE_CHARS
    assert messages.said("a <b>&\nc") == "a &lt;b&gt;&amp; c"


def test_bad_checkpoint_is_an_error_and_the_app_stays_up(catalog):
    for name in ("broken", "future", "nothing-here"):
        with pytest.raises(gr.Error):
            run_all(catalog, name=name)
    assert len(run_all(catalog)[-1][0]) == len("ANNA:") + 120


def test_curve_comes_from_metrics(catalog):
    df = catalog.curve("tiny")
    assert set(df["split"]) == {"train", "validation"} and df["step"].max() == 60
    assert catalog.curve("broken") is None  # nothing to plot: the plot is cleared


def test_a_curve_names_both_splits_from_its_first_point():
    """A plot keeps the colours of the splits in the first table it gets: a run's curve has a
    blank validation point until its first validation."""
    from textrnn.web.catalog import curve_table
    assert curve_table([]) is None and curve_table([{"step": 1, "lr": 0.1}]) is None
    early = curve_table([{"step": 10, "train_loss": 3.0}, {"step": 20, "train_loss": 2.5}])
    assert list(early["split"]) == ["train", "train", "validation"]
    assert early["nats/char"].iloc[:2].tolist() == [3.0, 2.5] and early["nats/char"].isna()[2]
    later = curve_table([{"step": 10, "train_loss": 3.0}, {"step": 10, "val_loss": 2.9}])
    assert list(later["split"]) == ["train", "validation"] and not later.isna().any().any()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVED: dict[str, Path] = {}  # url -> the checkpoints folder it serves


def app_root(url: str) -> Path:
    return SERVED[url]


@pytest.fixture(scope="module")
def server(catalog):
    port = free_port()
    demo = serve(build(catalog), "127.0.0.1", port, block=False)
    url = f"http://127.0.0.1:{port}/"
    SERVED[url] = catalog.root
    yield url
    demo.close()


@pytest.mark.slow
def test_gradio_client_streams_the_documented_endpoint(server):
    from gradio_client import Client
    client = Client(server, verbose=False)
    job = client.submit("tiny", "BEN:", 200, 0.8, 0, 1.0, "3", api_name="/generate")
    seen = [out[0] for out in job]
    text, seed = job.result()
    assert len(text) == len("BEN:") + 200 and seed == 3
    assert len(seen) >= 2 and seen[-1] == text


@pytest.mark.slow
def test_browser_generates_and_the_text_grows(server, monkeypatch):
    from playwright.sync_api import sync_playwright
    # The tiny model writes 3,000 characters in a blink; at ~500 a second, as a big model on a
    # slow machine would, the page has time to show the text growing and to be stopped.
    run = fast.Stepper.run
    monkeypatch.setattr(sample, "MAX_CHUNK", 1)
    monkeypatch.setattr(fast.Stepper, "run", lambda *a: time.sleep(0.002) or run(*a))
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu",
                                          "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1280, "height": 900},
                                permissions=["clipboard-read", "clipboard-write"])
        page.goto(server)
        page.get_by_label("Model", exact=True).click()
        page.get_by_role("option", name="tiny", exact=True).click()
        # The model card wraps inside its box, at desktop and at phone widths.
        # So does the loss plot, its x axis included.
        fits = """() => { const boxes = [...document.querySelectorAll('#card pre')];
            const plot = document.querySelector('#curve'), svg = plot?.querySelector('svg');
            return boxes.length > 0 && boxes.every(e => e.scrollWidth <= e.clientWidth + 1)
                && svg != null && svg.getBoundingClientRect().bottom
                    <= plot.getBoundingClientRect().bottom + 1; }"""
        page.wait_for_function(fits, timeout=10_000)
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_function(fits, timeout=10_000)
        page.set_viewport_size({"width": 1280, "height": 900})
        label = page.locator("#curve-caption").inner_text()  # both series named on screen
        assert "train" in label and "validation" in label, label
        used_box = page.locator("#used textarea, #used input").first
        assert used_box.input_value() == ""  # no seed used yet, not 0
        page.locator("#prompt textarea").fill("CARL:")
        # Record the output's length every few milliseconds from inside the page.
        page.evaluate(f"""() => {{ window.lens = []; setInterval(() => {{
            window.lens.push({OUT}.length); }}, 5); }}""")
        t0 = time.perf_counter()
        page.get_by_role("button", name="Generate").click()
        page.wait_for_function("() => window.lens.some(n => n > 'CARL:'.length)", timeout=30_000)
        first_char_ms = (time.perf_counter() - t0) * 1000
        page.wait_for_function("() => window.lens.at(-1) === 'CARL:'.length + 400",
                               timeout=60_000)
        lens = page.evaluate("window.lens")
        growing = sorted({n for n in lens if 5 < n < 405})
        assert len(growing) >= 2, lens  # seen part-way, more than once: it streamed
        assert page.evaluate(OUT).startswith("CARL:")
        # The prompt is set apart from what the model wrote: bold, in another colour.
        prompt_span = page.locator("#output .prompt")
        assert prompt_span.inner_text() == "CARL:"
        weight, colour, rest = page.evaluate("""() => {
            const p = document.querySelector('#output .prompt'), pre = p.parentElement;
            const s = getComputedStyle(p);
            return [s.fontWeight, s.color, getComputedStyle(pre).color]; }""")
        assert int(weight) >= 600 and colour != rest, (weight, colour, rest)
        print(f"first character after {first_char_ms:.0f} ms; {len(growing)} partial updates")
        page.wait_for_function("() => document.querySelector('#status').innerText"
                               ".includes('done: 400 characters')", timeout=10_000)
        page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)
        page.get_by_role("button", name="Copy text").click()
        assert page.evaluate("navigator.clipboard.readText()") == page.evaluate(OUT)

        # Every control has an accessible name, in Playwright's accessibility snapshot.
        tree = page.locator("main").aria_snapshot()
        controls = [line.strip() for line in tree.splitlines() if re.match(
            r"\s*- (button|textbox|combobox|slider|spinbutton|checkbox|radio|link)\b", line)]
        unnamed = [c for c in controls if not re.match(r'- \w+ "[^"]+"', c)]
        assert len(controls) >= 12 and not unnamed, (unnamed, tree)
        for name in ("Model", "Prompt", "Generate", "Stop", "Copy text", "Seed used"):
            assert f'"{name}"' in tree, (name, tree)
        assert 'region "Generated text"' in tree, tree

        # A seed the page cannot use keeps the text on screen and flags the field.
        shown, used = page.evaluate(OUT), used_box.input_value()
        seed_box = page.locator("#seed textarea, #seed input").first
        seed_box.fill("1.5")
        page.get_by_role("button", name="Generate").click()
        page.wait_for_function("() => document.querySelector('#seed').innerText.includes('⚠')",
                               timeout=10_000)
        time.sleep(0.5)
        assert page.evaluate(OUT) == shown
        assert used_box.input_value() == used
        seed_box.fill("-3")  # negative seeds are used as given
        page.get_by_role("button", name="Generate").click()
        page.wait_for_function("() => document.querySelector('#used textarea, #used input')"
                               ".value === '-3'", timeout=30_000)
        assert "⚠" not in page.locator("#seed").inner_text()
        page.wait_for_function("() => document.querySelector('#status').innerText"
                               ".includes('done: 400 characters')", timeout=30_000)
        seed_box.fill("")

        # Stop ends a long generation part-way.
        page.locator("#length input[type=number]").fill(str(request.MAX_NEW_CHARS))
        page.locator("#length input[type=number]").press("Tab")
        page.get_by_role("button", name="Generate").click()
        page.wait_for_function(f"() => {OUT}.length > 20 && {OUT}.length < 400",
                               timeout=30_000)
        status = page.locator("#status").inner_text()
        assert "/ 3,000 characters" in status, status
        page.get_by_role("button", name="Stop").click()
        stopped, still_since, deadline = -1, time.time(), time.time() + 20
        while time.time() - still_since < 1.0:  # wait until the text has not moved for 1 s
            assert time.time() < deadline, "the text kept growing after Stop"
            n = len(page.evaluate(OUT))
            if n != stopped:
                stopped, still_since = n, time.time()
            time.sleep(0.05)
        assert stopped < len("CARL:") + request.MAX_NEW_CHARS
        assert page.locator("#status").inner_text().startswith("stopped at ")
        assert page.get_by_text("Error", exact=True).count() == 0  # no badge on the outputs
        # Stop after the end changes nothing: the text is whole, and the status says so.
        page.locator("#length input[type=number]").fill("400")
        page.locator("#length input[type=number]").press("Tab")
        page.get_by_role("button", name="Generate").click()
        page.wait_for_function("() => document.querySelector('#status').innerText"
                               ".includes('done: 400 characters')", timeout=30_000)
        page.get_by_role("button", name="Stop").click()
        time.sleep(0.5)
        assert page.locator("#status").inner_text() == "done: 400 characters"

        # A run trained while the app is up shows after a reload; a checkpoint without
        # examples shows no empty Examples block.
        root = app_root(server)
        shutil.copytree(root / "tiny-bpe", root / "zz-later")
        page.reload()
        page.get_by_label("Model", exact=True).click()
        page.get_by_role("option", name="zz-later", exact=True).click()
        page.wait_for_function("() => document.querySelector('#card').innerText"
                               ".includes('zz-later')", timeout=10_000)
        assert page.get_by_text("Examples", exact=True).count() == 0
        browser.close()


def test_a_rescan_takes_in_new_and_mended_folders_and_keeps_loaded_models(checkpoints,
                                                                          tmp_path):
    root = tmp_path / "ck"
    shutil.copytree(checkpoints / "tiny", root / "a")
    catalog = Catalog(root)
    loaded = catalog.get("a")
    (root / "b").mkdir()  # a run that has not written its first checkpoint yet
    catalog.rescan()
    assert "error" in catalog.entries["b"]
    shutil.rmtree(root / "b")
    shutil.copytree(checkpoints / "tiny", root / "b")
    catalog.rescan()
    assert [n for n, _ in catalog.choices()] == ["a", "b"] and "error" not in catalog.entries["b"]
    assert catalog.get("a") is loaded and catalog.get("b") is not loaded


def test_no_checkpoint_however_broken_stops_the_app(checkpoints, tmp_path):
    root = tmp_path / "ck"
    for name, edit in [("steps", lambda c: c["training"].update(steps="x", val_loss="low")),
                       ("cell", lambda c: c["model"].update(cell=5, layers="two")),
                       ("training", lambda c: c.update(training=[1, 2])),
                       ("model", lambda c: c.update(model=None))]:
        shutil.copytree(checkpoints / "tiny", root / name)
        cfg = json.loads((root / name / "config.json").read_text())
        edit(cfg)
        (root / name / "config.json").write_text(json.dumps(cfg))
    (root / "steps" / "metrics.jsonl").write_text('{"step": "a", "train_loss": 1}\n[1]\n'
                                                 '{"train_loss": 2}\n{"step": 3, "val_loss": 1}\n')
    catalog = Catalog(root)
    build(catalog)  # the page builds: every card and curve can be drawn
    for name in ("steps", "cell", "training", "model"):
        assert catalog.card(name)
        catalog.curve(name)
    with pytest.raises(gr.Error):
        catalog.get("cell")  # and generating from it says why it cannot


def _join(url, demo, session, **kw):
    """POST a generation to the queue as the page does; the HTTP response."""
    import httpx
    fn = next(i for i, f in demo.fns.items() if f.api_name == "generate")
    data = list(settings(**kw).values())
    return httpx.post(url + "gradio_api/queue/join", timeout=30,
                      json={"data": data, "fn_index": fn, "session_hash": session,
                            "event_data": None, "trigger_id": None})


@pytest.mark.slow
def test_a_full_queue_says_busy_and_a_huge_request_is_refused_unread(catalog, monkeypatch,
                                                                     capfd):
    run = fast.Stepper.run
    monkeypatch.setattr(fast.Stepper, "run", lambda *a: time.sleep(0.05) or run(*a))
    port = free_port()
    demo = serve(build(catalog), "127.0.0.1", port, queue_size=2, concurrency=1,
                     block=False)
    url = f"http://127.0.0.1:{port}/"
    try:
        codes = [_join(url, demo, f"s{i}", length=request.MAX_NEW_CHARS).status_code
                 for i in range(6)]
        assert codes.count(200) in (3, 4) and set(codes[4:]) == {503}, codes
        capfd.readouterr()
        huge = _join(url, demo, "big", prompt="x" * (MAX_REQUEST_BYTES + 1))
        assert huge.status_code == 413 and "too large" in huge.json()["detail"]
        assert "refused: a /gradio_api/queue/join request over" in capfd.readouterr().err
        with pytest.raises(gr.Error, match="whole number"):
            run_all(catalog, seed="abc")
        err = capfd.readouterr().err
        assert "refused: Seed must be a whole number" in err and "Traceback" not in err
    finally:
        demo.close()


@pytest.mark.slow
def test_the_load_benchmark_loses_nothing_and_says_busy_past_the_queue(checkpoints, capsys):
    from benchmarks.__main__ import main as bench
    assert bench(["app", "--checkpoints", str(checkpoints), "--queue-size", "4",
                  "--concurrent", "2,24", "--length", "3000", "--model", "tiny"]) == 0
    out = capsys.readouterr().out
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| 2 |")
            or line.startswith("| 24 |")]
    (n1, served1, busy1, lost1), (n2, served2, busy2, lost2) = [r[:4] for r in rows]
    assert (served1, busy1, lost1) == ("2", "0", "0")  # 2 and the small one: room for all
    assert int(busy2) > 0 and lost2 == "0" and int(served2) + int(busy2) == 24


@pytest.fixture(scope="module")
def workbench_server(checkpoints, tmp_path_factory):
    runs = tmp_path_factory.mktemp("web-runs")
    bench = workbench.Workbench(runs, max_minutes=1)
    catalog = Catalog(checkpoints, private=runs)
    port = free_port()
    demo = serve(build(catalog, bench), "127.0.0.1", port, block=False)
    yield f"http://127.0.0.1:{port}/", bench
    demo.close()


def launch(p):
    return p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                             args=["--no-sandbox", "--disable-gpu",
                                   "--disable-background-networking"])


@pytest.mark.slow
def test_browser_trains_on_an_upload_then_generates_from_it_and_downloads_it(workbench_server,
                                                                            tmp_path):
    from playwright.sync_api import sync_playwright
    import textrnn
    url, bench = workbench_server
    corpus = tmp_path / "My Poems.txt"
    corpus.write_text((ROOT / "corpora" / "tiny.txt").read_text(encoding="utf-8") * 30)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url)
        page.get_by_role("tab", name="Train").click()
        # A bad upload is refused with the reason, and nothing is queued.
        bad = tmp_path / "photo.txt"
        bad.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0" * 100)
        page.locator("#upload input[type=file]").set_input_files(str(bad))
        page.get_by_role("button", name="Train", exact=True).click()
        page.wait_for_function("() => document.querySelector('#train-status').innerText"
                               ".includes('binary')", timeout=10_000)
        assert not bench.jobs
        page.locator("#upload").get_by_role("button", name="Clear").click()
        page.locator("#upload input[type=file]").set_input_files(str(corpus))
        page.get_by_role("button", name="Train", exact=True).click()
        page.wait_for_function("() => document.querySelector('#train-status').innerText"
                               ".includes('training:')", timeout=60_000)
        assert "left" in page.locator("#train-status").inner_text()
        assert "chose hidden" in page.locator("#train-log textarea").input_value()
        page.reload()  # the run is this visitor's still: the tab finds it again
        page.get_by_role("tab", name="Train").click()
        page.wait_for_function("() => document.querySelector('#train-status').innerText"
                               ".includes('training:')", timeout=30_000)
        page.locator("#upload input[type=file]").set_input_files(str(corpus))
        page.get_by_role("button", name="Train", exact=True).click()  # one run at a time
        page.wait_for_function("() => document.querySelector('#train-status').innerText"
                               ".includes('still going')", timeout=10_000)
        assert len(bench.jobs) == 1
        # The first validation brings a sample, and the curve is drawn as it grows.
        page.wait_for_function("() => document.querySelector('#train-sample textarea')"
                               ".value.startsWith('(step')", timeout=60_000)
        page.get_by_role("button", name="Stop training").click()
        page.wait_for_function("() => document.querySelector('#train-status').innerText"
                               ".includes('stopped:')", timeout=60_000)
        job = next(iter(bench.jobs.values()))
        assert job.name.startswith("web-my-poems-") and job.name in page.locator(
            "#train-status").inner_text()
        time.sleep(1.5)  # the plot draws
        box = page.locator("#train-curve").bounding_box()
        assert box["height"] > 150
        for colour in ("#6366f1", "#f59e0b"):  # both lines drawn, in their colours
            assert page.locator(f"#train-curve path[stroke='{colour}']").count(), colour
        plot = page.locator("#train-curve svg").first.bounding_box()
        assert plot["height"] > 150 and plot["y"] + plot["height"] <= box["y"] + box["height"] + 1
        page.screenshot(path=str(ARTIFACTS / "train.png"), full_page=True)
        with page.expect_download() as download:
            page.locator("#download").click()
        download.value.save_as(tmp_path / "model.zip")
        shutil.unpack_archive(tmp_path / "model.zip", tmp_path / "unzipped")
        lm = textrnn.load(tmp_path / "unzipped" / job.name)
        assert lm.config["training"]["steps"] > 0
        # The new model is in this visitor's list, chosen, and generates.
        page.get_by_role("tab", name="Generate").click()
        assert page.locator("#model input").input_value() == job.name
        page.locator("#prompt textarea").fill("ANNA:")
        page.get_by_role("button", name="Generate").click()
        page.wait_for_function("() => document.querySelector('#status').innerText"
                               ".includes('done: 400 characters')", timeout=30_000)
        assert page.evaluate(OUT).startswith("ANNA:")
        page.get_by_role("tab", name="Look inside").click()  # and it can be looked inside
        page.get_by_role("button", name="Take the generated text").click()
        page.get_by_role("button", name="Show surprise").click()
        page.wait_for_selector("#inside-view pre > span[title]", timeout=30_000)
        assert "bits/char" in page.locator("#inside-totals").inner_text()
        # Another visitor does not see it.
        other = browser.new_context().new_page()
        other.goto(url)
        other.get_by_label("Model", exact=True).click()
        options = other.get_by_role("option").all_inner_texts()
        assert options and not any(job.name in o for o in options), options
        browser.close()


@pytest.mark.slow
def test_gradio_client_inspects_and_finds_units(server, catalog):
    from gradio_client import Client
    client = Client(server, verbose=False)
    text = (ROOT / "corpora" / "tiny.txt").read_text(encoding="utf-8")[:300]
    got = client.predict("tiny", text, api_name="/inspect")
    assert "".join(got["pieces"]) == text and got["bits"][0] is None
    assert len(got["bits"]) == len(got["top"]) == len(got["pieces"])
    assert all(0 < len(t) <= 5 for t in got["top"][1:])
    assert got["bits_per_char"] == pytest.approx(catalog.get("tiny").evaluate(text)["bpc"],
                                                 rel=1e-4)
    units = client.predict("tiny", text, api_name="/find_units")
    assert units and all(0 <= u["score"] <= 1 and u["state"] in ("h", "c") for u in units)
    with pytest.raises(Exception, match="up to 3,000 characters"):
        client.predict("tiny", "a" * 3001, api_name="/inspect")


@pytest.mark.slow
def test_browser_looks_inside_compares_and_opens_a_shared_link(server):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(server)
        page.get_by_label("Model", exact=True).click()
        page.get_by_role("option", name="tiny", exact=True).click()
        page.locator("#prompt textarea").fill("BEN:")
        page.locator("#seed textarea, #seed input").first.fill("11")
        page.get_by_role("button", name="Generate").click()
        page.wait_for_function("() => document.querySelector('#status').innerText"
                               ".includes('done')", timeout=30_000)
        text = page.evaluate(OUT)
        # Surprise: every character coloured, its title the model's top 5 guesses.
        page.get_by_role("tab", name="Look inside").click()
        page.get_by_role("button", name="Take the generated text").click()
        page.wait_for_function("() => document.querySelector('#inside-text textarea').value"
                               ".length > 100", timeout=10_000)
        assert page.locator("#inside-text textarea").input_value() == text
        page.get_by_role("button", name="Show surprise").click()
        page.wait_for_selector("#inside-view span[title]", timeout=30_000)
        spans = page.locator("#inside-view pre > span")
        assert spans.count() == len(text)  # a char model: a span a character
        title = spans.nth(10).get_attribute("title")
        assert "bits for" in title and len(title.splitlines()) == 6, title  # line + 5 guesses
        colours = {spans.nth(i).evaluate("e => getComputedStyle(e).backgroundColor")
                   for i in range(1, 40)}
        assert len(colours) > 5, colours  # shades by surprise, not one colour
        assert "bits/char" in page.locator("#inside-totals").inner_text()
        # Neurons: ranked units, and a row picked colours the text by that unit.
        page.get_by_role("button", name="Find units").click()
        page.wait_for_function("() => document.querySelector('#inside-totals').innerText"
                               ".includes('ranked')", timeout=30_000)
        table = page.locator("#units").inner_text()
        assert "line position" in table or "in word" in table, table
        page.locator("#units").get_by_role("gridcell").nth(1).click()
        page.wait_for_function("() => document.querySelector('#inside-view [role=region]')"
                               "?.getAttribute('aria-label').includes('unit')", timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "inside.png"), full_page=True)
        # A refused look keeps what is drawn and says why, without Gradio's error badges.
        ranked = page.locator("#units").inner_text()
        drawn = page.locator("#inside-view").inner_html()
        page.locator("#unit input").fill("-3")
        page.get_by_role("button", name="Colour by this unit").click()
        page.wait_for_function("() => document.querySelector('#inside-totals').innerText"
                               ".includes('⚠')", timeout=10_000)
        assert "units 0-" in page.locator("#inside-totals").inner_text()
        page.locator("#inside-text textarea").fill("")
        page.get_by_role("button", name="Find units").click()
        page.wait_for_function("() => document.querySelector('#inside-totals').innerText"
                               ".includes('at least 2 tokens')", timeout=10_000)
        assert page.locator("#units").inner_text() == ranked
        assert page.locator("#inside-view").inner_html() == drawn
        assert page.get_by_text("Error", exact=True).count() == 0
        # Compare: the same seed on the same model twice gives the same text twice.
        page.get_by_role("tab", name="Compare").click()
        for side in ("a", "b"):
            page.locator(f"#model-{side} input").click()
            page.locator(f"#model-{side}").get_by_role("option", name="tiny", exact=True).click()
        page.locator("#compare-prompt textarea").fill("CARL:")
        page.get_by_role("button", name="Compare").click()
        page.wait_for_function("() => ['#out-a', '#out-b'].every(i => (document.querySelector("
                               "i + ' pre')?.innerText ?? '').length === 405)", timeout=30_000)
        assert page.locator("#out-a pre").inner_text() == page.locator("#out-b pre").inner_text()
        # Share: the address bar now reproduces the first sample.
        assert "seed=11" in page.url and "prompt=BEN" in page.url, page.url
        other = browser.new_page()
        other.goto(page.url)
        other.wait_for_function("() => (document.querySelector('#status')?.innerText ?? '')"
                                ".includes('done')", timeout=30_000)
        assert other.evaluate(OUT) == text
        # A link's values are shown as text, never as the page's own HTML.
        bait = '<a href="https://example.invalid/login">sign in again</a>'
        other.goto(server + "?" + urllib.parse.urlencode({"model": bait}))
        other.get_by_text("is not on this page").first.wait_for(timeout=30_000)
        assert other.locator("a[href*='example.invalid']").count() == 0
        assert bait in other.get_by_text("is not on this page").first.inner_text()
        other.goto(server + "?model=tiny&prompt=BEN&seed=abc")  # says why nothing is drawn
        other.get_by_text("seed 'abc' cannot be used").first.wait_for(timeout=30_000)
        assert other.locator("#prompt textarea").input_value() == "BEN"
        browser.close()


def test_a_shared_link_is_checked_like_a_request():
    models = ["tiny", "other"]
    got = request.shared_settings({"model": "tiny", "prompt": "x" * 5000, "length": "99999",
                               "temperature": "-1", "top_k": "7", "top_p": "nan",
                               "seed": "-3"}, models)
    assert got == {"model": "tiny", "prompt": "x" * request.MAX_PROMPT_CHARS,
                   "length": request.MAX_NEW_CHARS, "temperature": 0.0, "top_k": 7, "seed": "-3"}
    assert request.shared_settings({"model": "../etc", "seed": "1.5"}, models) == {}
    assert "seed" not in request.shared_settings({"seed": " "}, models)  # blank: no draw


def test_a_private_folder_inside_the_shared_one_is_not_listed_as_a_model(checkpoints,
                                                                       tmp_path):
    root = tmp_path / "ck"
    shutil.copytree(checkpoints / "tiny", root / "a")
    (root / "web").mkdir()
    shutil.copytree(checkpoints / "tiny", root / "web" / "web-mine-1")
    catalog = Catalog(root, private=root / "web")
    assert [n for _, n in catalog.choices()] == ["a"]
    assert [n for _, n in catalog.choices(["web-mine-1"])] == ["a", "web-mine-1"]
