"""The page in Chromium (Playwright driving Debian's chromium): generate, train, look inside,
compare, shared links."""

import re
import shutil
import time
import urllib.parse

import pytest

from textrnn import fast, sample
from textrnn.web import request
from support import ARTIFACTS, OUT, ROOT, app_root, launch

pytestmark = pytest.mark.slow  # each test here drives Chromium


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
        page.get_by_role("tab", name="Compare").click()  # and Compare lists it, no reload
        page.locator("#model-b input").click()
        page.locator("#model-b").get_by_role("option", name=job.name, exact=True).wait_for(
            timeout=10_000)
        page.keyboard.press("Escape")
        # its one validation point is drawn, as a dot
        page.get_by_role("tab", name="Train").click()
        assert "textrnn-dot" in page.evaluate("""() => getComputedStyle(document.querySelector(
            "#train-curve .plot_marks path[stroke='#f59e0b']")).markerStart""")
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


def test_browser_at_phone_width_every_tab_table_column_and_detail_is_reachable(server):
    """At 390 px: the tabs wrap (no menu), the units table shows all its columns, a tap on a
    character shows its details, the colours have a legend, the loss plot's step labels stay
    apart and its validation points are dots, and a long text scrolls below its label."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 390, "height": 844}, has_touch=True,
                                is_mobile=True)
        page.goto(server)
        page.get_by_label("Model", exact=True).click()
        page.get_by_role("option", name="tiny", exact=True).click()
        assert page.get_by_role("button", name="More tabs").count() == 0
        for name in ("Generate", "Train", "Look inside", "Compare"):
            assert page.get_by_role("tab", name=name).is_visible(), name
        page.wait_for_selector("#curve .plot_marks path", timeout=10_000)
        marker = page.evaluate("""() => getComputedStyle(document.querySelector(
            "#curve .plot_marks path[stroke='#f59e0b']")).markerStart""")
        assert "textrnn-dot" in marker and page.locator("marker#textrnn-dot").count() == 1
        labels = page.evaluate("""() => [...document.querySelectorAll('#curve svg text')]
            .map(e => e.textContent)""")
        assert not any(re.search(r"\d,\d{3}\d", t) for t in labels), labels
        page.locator("#length input[type=number]").fill(str(request.MAX_NEW_CHARS))
        page.locator("#length input[type=number]").press("Tab")
        page.get_by_role("button", name="Generate").click()
        page.wait_for_function("() => document.querySelector('#status').innerText"
                               ".includes('done')", timeout=60_000)
        below = page.evaluate("""() => { const box = document.querySelector('#output');
            const label = box.querySelector('label'), text = box.querySelector('.html-container');
            return [label.getBoundingClientRect().bottom, text.getBoundingClientRect().top,
                    text.scrollHeight > text.clientHeight]; }""")
        assert below[2] and below[1] >= below[0], below  # it scrolls, below its label
        page.get_by_role("tab", name="Look inside").tap()
        page.get_by_role("button", name="Take the generated text").tap()
        page.get_by_role("button", name="Show surprise").tap()
        page.wait_for_selector("#inside-view pre > span[title]", timeout=30_000)
        assert "0 bits" in page.locator("#inside-view .legend").inner_text()
        span = page.locator("#inside-view pre > span").nth(12)
        span.tap()
        assert page.locator("#inside-detail").inner_text() == span.get_attribute("title")
        page.get_by_role("button", name="Find units").tap()
        page.wait_for_function("() => document.querySelector('#inside-totals').innerText"
                               ".includes('ranked')", timeout=30_000)
        cut = page.evaluate("""() => { const box = document.querySelector('#units')
            .getBoundingClientRect();
            return [...document.querySelectorAll('#units th')].filter(th => {
                const r = th.getBoundingClientRect();
                return r.right > box.right + 1 || th.scrollWidth > th.clientWidth + 1; })
              .map(th => th.innerText); }""")
        assert cut == [], cut
        page.screenshot(path=str(ARTIFACTS / "phone-inside.png"), full_page=True)
        browser.close()


def test_browser_downloads_the_picked_models_web_page(server, tmp_path):
    """The card's button: the default model's page after the page loads, another's after a
    pick, none for an unavailable model."""
    import json
    import zipfile
    from playwright.sync_api import sync_playwright
    ready = "() => document.querySelector('#webpage')?.innerText.includes('Download as a web')"
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(server)
        for name, hidden in (("tiny", 128), ("tiny-bpe", 32)):
            if name != "tiny":  # the default: offered after the page loads
                page.get_by_label("Model", exact=True).click()
                page.get_by_role("option", name=name, exact=True).click()
            zipped, deadline = None, time.time() + 30
            while zipped is None or zipped.name != f"{name}-web-page.zip":  # (the last
                assert time.time() < deadline, zipped   # model's, until the pick's event runs)
                page.wait_for_function(ready, timeout=30_000)
                with page.expect_download() as download:
                    page.locator("#webpage").click()
                zipped = tmp_path / download.value.suggested_filename
                download.value.save_as(zipped)
            with zipfile.ZipFile(zipped) as z:
                assert {n.split("/")[0] for n in z.namelist()} == {name}
                assert f"{name}/index.html" in z.namelist()
                model = z.read(f"{name}/model.js").decode()
            doc = json.loads(model[model.index("(") + 1:model.index(",\n\"")])
            assert doc["model"]["hidden"] == hidden
        page.get_by_label("Model", exact=True).click()
        page.get_by_role("option", name="broken (unavailable)", exact=True).click()
        page.locator("#webpage").wait_for(state="hidden", timeout=10_000)
        browser.close()
