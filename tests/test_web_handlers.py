"""The page's handlers and catalog, called directly (no server)."""

import html
import re
import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import gradio as gr
import pytest

from textrnn.web import compare, generate, messages, request
from textrnn.web.catalog import Catalog, unavailable
from textrnn.web.page import build
from support import run_all


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
    from textrnn import TrainRecord, ValRecord
    from textrnn.web.catalog import curve_table
    assert curve_table([]) is None
    early = curve_table([TrainRecord(step=10, train_loss=3.0),
                         TrainRecord(step=20, train_loss=2.5)])
    assert list(early["split"]) == ["train", "train", "validation"]
    assert early["nats/char"].iloc[:2].tolist() == [3.0, 2.5] and early["nats/char"].isna()[2]
    later = curve_table([TrainRecord(step=10, train_loss=3.0), ValRecord(step=10, val_loss=2.9)])
    assert list(later["split"]) == ["train", "validation"] and not later.isna().any().any()


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


def _component(demo, elem_id):
    return next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id)


def _text(shown_html: str) -> str:
    """The text of a sample as `generate.shown` draws it."""
    return html.unescape(re.sub(r"<[^>]+>", "", shown_html))


def test_compare_clamps_out_of_range_numbers_and_says_so_in_one_line(catalog, capsys):
    """Gradio refuses a number past its field's bounds before the handler runs, with error
    badges and a logged traceback; Compare's fields have none, and its one request clamps."""
    demo = build(catalog)
    for elem_id in ("compare-length", "compare-temperature"):
        for value in (0, 99999, -1, 5):
            _component(demo, elem_id).preprocess(value)
    both = compare.make_compare(catalog)
    *_, (a, b, status) = both("tiny", "tiny", "ANNA:", "3", 0, 5)
    assert _text(a) == _text(b) and len(_text(a)) == len("ANNA:") + 1
    assert status == ("seed used: 3 · ⚠ Length raised to 1 character. · ⚠ Temperature cut to "
                      f"{request.MAX_TEMPERATURE}.")
    *_, (a, _, status) = both("tiny", "tiny-bpe", "ANNA:", "3", 99999, -1)
    assert len(_text(a)) == len("ANNA:") + request.MAX_NEW_CHARS
    assert "Length cut to 3,000 characters." in status and "raised to 0" in status
    assert "Traceback" not in capsys.readouterr().err


def test_compare_says_what_it_cannot_do_and_keeps_the_texts(catalog, capsys):
    both = compare.make_compare(catalog)
    for a, b, seed, said in [("tiny", "broken", "1", "broken is unavailable"),
                             ("tiny", "tiny", "1.5", "whole number"),
                             (None, "tiny", "1", "must be named")]:
        outs = list(both(a, b, "ANNA:", seed, 10, 0.8))
        *_, (_, text_b, status) = outs
        assert status.startswith("⚠") and said in status, status
        assert all(isinstance(o, dict) or "<pre>" in o for out in outs for o in out[:2])
    logged = capsys.readouterr().err
    assert "Traceback" not in logged and logged.count("refused:") == 3


def test_generate_says_a_length_of_0_was_raised_to_1(catalog):
    demo = build(catalog)
    assert _component(demo, "length").preprocess(0) == 0  # the browser sends the 0 on
    page_generate = generate.make_page_generate(catalog, generate.Stops())
    *_, last = page_generate("tiny", "ANNA:", 0, 0.8, 0, 1.0, "1")
    assert last[-1] == "done: 1 character · ⚠ Length raised to 1 character."


def test_the_page_names_a_broken_model_not_its_path_and_the_log_has_the_path(checkpoints,
                                                                              tmp_path, capsys):
    root = tmp_path / "ck"
    shutil.copytree(checkpoints / "broken", root / "broken")
    shutil.copytree(checkpoints / "tiny", root / "tiny")
    (root / "tiny" / "model.safetensors").write_bytes(b"not weights")  # fails only on load
    (root / "empty").mkdir()
    catalog = Catalog(root)
    catalog.rescan()
    said = [catalog.card("broken"), catalog.card("empty")]
    with pytest.raises(gr.Error) as refused:
        catalog.get("tiny")
    said += [refused.value.message, catalog.card("tiny")]
    assert "broken/config.json is corrupt" in said[0] and "empty is not" in said[1], said
    assert not any(str(tmp_path) in s or "/ck/" in s for s in said), said
    logged = capsys.readouterr().err
    assert logged.count(str(root / "broken")) == 1 and str(root / "tiny") in logged  # once
    assert unavailable(ValueError("pass a folder that `textrnn train` wrote"), "x") == (
        "pass a folder that textrnn train wrote")  # a toast shows Markdown as it is


def test_compare_lists_follow_a_visitors_runs_without_a_reload(checkpoints, tmp_path):
    """A run finished on the Train tab joins the visitor's runs (`mine`); Compare relists."""
    from textrnn.web.page import relist
    root = tmp_path / "ck"
    shutil.copytree(checkpoints / "tiny", root / "tiny")
    shutil.copytree(checkpoints / "tiny", root / "web" / "web-mine-1")
    catalog = Catalog(root, private=root / "web")
    a, b = relist(catalog)("tiny", "gone", ["web-mine-1"])
    assert [n for _, n in a.choices] == ["tiny", "web-mine-1"] == [n for _, n in b.choices]
    assert (a.value, b.value) == ("tiny", "tiny")
    demo = build(catalog)
    compare_lists = {_component(demo, "model-a")._id, _component(demo, "model-b")._id}
    assert any({o._id for o in f.outputs} == compare_lists and f.fn.__name__ == "on_change"
               for f in demo.fns.values())


def test_look_inside_shows_a_byte_model_by_characters():
    """A character's span holds the bits of all its bytes; no guess reads U+FFFD."""
    import math
    from conftest import make_model
    from textrnn import LM
    from textrnn.tokenizer import ByteTokenizer
    from textrnn.web import inside
    text = "ANNA: café 🙂 naïve —\n"
    ins = LM(make_model("gru", vocab=256, seed=3), ByteTokenizer()).inspect(text)
    for drawn in (inside.surprise_html(ins), inside.unit_html(ins, 0, "h", 0)):
        spans = re.findall(r'<span style="[^"]*" title="([^"]*)">([^<]*)</span>', drawn)
        assert [html.unescape(piece) for _, piece in spans] == list(text)
        assert "\ufffd" not in html.unescape(drawn)
    spans = re.findall(r'title="([^"]*)"', inside.surprise_html(ins))
    smile = html.unescape(spans[text.index("🙂")])
    start = len("ANNA: café ".encode())
    bits = ins.loss[start:start + 4].sum().item() / math.log(2)
    assert smile.startswith(f"{bits:.2f} bits for 🙂 (4 tokens: "), smile
    assert "top guesses for its first token" in smile and len(smile.splitlines()) == 6


def test_look_inside_says_what_its_colours_mean(catalog):
    from textrnn.web import inside
    ins = catalog.get("tiny").inspect("ANNA:\nThe sea")
    legend = re.search(r'<div class="legend".*?</div>', inside.surprise_html(ins))[0]
    assert "white: 0 bits" in legend and "red: 8 bits or more" in legend
    legend = re.search(r'<div class="legend".*?</div>', inside.unit_html(ins, 0, "c", 1))[0]
    assert "blue: below zero" in legend and "red: above zero" in legend


def test_the_page_keeps_every_tab_in_sight_and_short_step_labels(catalog):
    from textrnn.web.catalog import PLOT
    demo = build(catalog)
    tabs = [b for b in demo.blocks.values() if isinstance(b, gr.Tabs)]
    assert [t.overflow_behavior for t in tabs] == ["wrap"]  # not a "..." menu on a phone
    assert PLOT["x_axis_format"] == "~s"  # 1.6k, not 1,600 running into 2,000


def test_a_model_past_the_pages_size_limit_is_listed_unavailable_unread(checkpoints, tmp_path):
    """The page keeps what it loads in memory: weights past MAX_MODEL_BYTES are refused when
    the folder is first read (a sparse file: nothing of it is read), and said in one line."""
    from textrnn.web import catalog as module
    root = tmp_path / "ck"
    shutil.copytree(checkpoints / "tiny", root / "huge")
    with open(root / "huge" / "model.safetensors", "r+b") as f:
        f.truncate(module.MAX_MODEL_BYTES + 1)
    shutil.copytree(checkpoints / "tiny", root / "run" / "last")  # a run before its first best
    with open(root / "run" / "last" / "model.safetensors", "r+b") as f:
        f.truncate(module.MAX_MODEL_BYTES + 1)
    catalog = Catalog(root)
    assert catalog.choices() == [("huge (unavailable)", "huge"), ("run (unavailable)", "run")]
    said = catalog.card("huge")
    assert "MB of weights; the limit is 1,073.7 MB" in said and str(tmp_path) not in said
