"""The model card a push carries (textrnn/card.py): its front matter and body, with the fields a
checkpoint holds treated as untrusted text."""

import re

import yaml

from textrnn import card

HOSTILE = 'x"\n---\nlicense: stolen\n<script>alert(1)</script> ``` '


def config(**training):
    return {"model": {"cell": "lstm", "layers": 2, "hidden": 64, "embed": 16},
            "tokenizer": {"kind": "char", "vocab_size": 65},
            "training": {"corpus_name": "poems.txt", "corpus_chars": 12345,
                         "corpus_sha256": "ab" * 32, "val_loss": 1.5, "val_chars": 999,
                         "val_source": "last 0.1 of the corpus", "steps": 40, "best_step": 40,
                         "train_time_s": 12.0, "device": "cpu", **training}}


def test_the_front_matter_holds_the_library_license_language_and_tags():
    text = card.card_text(config(), 1234, "alice/poems", ["a", "b", "c"], True, "mit", "fr")
    head, body = text.split("---\n")[1], text.split("---\n", 2)[2]
    lines = head.splitlines()
    assert 'library_name: "textrnn"' in lines and 'license: "mit"' in lines
    assert lines[lines.index("language:") + 1] == '- "fr"'
    assert '- "lstm"' in lines and '- "character-level"' in lines
    assert "**1.5000 nats/char** (2.1640 bits/char)" in body and "![Training" in body
    assert body.count("```text") == 3 and 'textrnn.load("alice/poems")' in body


def test_no_field_breaks_out_of_its_place():
    hostile = config(corpus_name=HOSTILE, val_source=HOSTILE, device=HOSTILE)
    hostile["model"]["cell"] = HOSTILE
    samples = ["```\n# not a heading\n```", "<b>bold</b>", "---\nlicense: x"]
    text = card.card_text(hostile, 1, "alice/x", samples, False, license=HOSTILE,
                          language=HOSTILE)
    assert text.startswith("---\n")
    head, body = text[4:].split("\n---\n", 1)  # the front matter: up to its one closing line
    meta = yaml.safe_load(head)  # as the Hub reads it
    assert set(meta) == {"library_name", "license", "language", "pipeline_tag", "tags"}
    assert meta["license"] == HOSTILE and meta["language"] == [HOSTILE]  # text, not structure
    assert meta["library_name"] == "textrnn" and HOSTILE in meta["tags"]
    prose = re.sub(r"(`{3,})text\n.*?\n\1", "", body, flags=re.S)  # the samples' fences out
    assert "<script>" not in prose and "&lt;script&gt;" in prose
    assert "\n---\n" not in prose and "\n# not a heading" not in prose
    for sample in samples:  # each whole inside a fence longer than any backticks it holds
        assert re.search(r"(`{3,})text\n" + re.escape(sample) + r"\n\1\n", body), sample


def test_an_averaged_run_says_so_and_a_plain_one_does_not():
    def body(**training):
        return card.card_text(config(**training), 1, "alice/x", [], False)
    assert "moving average of the trained ones (decay 0.999)." in body(
        train_config={"ema": 0.999})
    assert "average" not in body() and "average" not in body(train_config={"lr": 0.01})
