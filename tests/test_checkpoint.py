import json
from dataclasses import replace

import pytest
import torch

from conftest import make_model
from textrnn import (Reporter, TrainRecord, ValRecord, checkpoint, load, metrics,
                     read_metrics)
from textrnn.tokenizer import CharTokenizer


def save_tiny(path, tiny_text, **kw):
    tok = CharTokenizer.train(tiny_text)
    model = make_model(vocab=tok.vocab_size, **kw)
    checkpoint.save(path, model, tok, {"steps": 0})
    return model, tok


@pytest.mark.parametrize("kw", [dict(cell="lstm"), dict(cell="gru"), dict(cell="rnn_relu"),
                                dict(hidden=8, embed=8, tie_weights=True)])
def test_save_load_gives_identical_logits(tmp_path, tiny_text, kw):
    model, tok = save_tiny(tmp_path / "ck", tiny_text, **kw)
    lm = load(tmp_path / "ck")
    idx = tok.encode(tiny_text[:50])[None]
    torch.testing.assert_close(lm.model(idx)[0], model.eval()(idx)[0], rtol=0, atol=0)
    assert lm.tokenizer.chars == tok.chars
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == sorted(checkpoint.FILES)


def test_format_version_mismatch_names_both(tmp_path, tiny_text):
    save_tiny(tmp_path / "ck", tiny_text)
    cfg_path = tmp_path / "ck" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["format_version"] = 99
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"version 99.*version 1"):
        load(tmp_path / "ck")


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="not a textrnn checkpoint"):
        load(tmp_path)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing")


@pytest.mark.parametrize("name, damage, message", [
    ("tokenizer.json", "{not json", "tokenizer.json is corrupt"),
    ("model.safetensors", "garbage", "model.safetensors"),
    ("config.json", "{", "config.json is corrupt"),
])
def test_corrupt_files_are_named(tmp_path, tiny_text, name, damage, message):
    save_tiny(tmp_path / "ck", tiny_text)
    (tmp_path / "ck" / name).write_text(damage)
    with pytest.raises(ValueError, match=message):
        load(tmp_path / "ck")


def test_crash_mid_save_keeps_the_old_file(tmp_path, tiny_text, monkeypatch):
    save_tiny(tmp_path / "ck", tiny_text)
    before = (tmp_path / "ck" / "model.safetensors").read_bytes()

    def broken_save(tensors, filename, metadata=None):
        open(filename, "wb").write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save_file", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_tiny(tmp_path / "ck", tiny_text, seed=1)
    assert (tmp_path / "ck" / "model.safetensors").read_bytes() == before
    assert not [p for p in (tmp_path / "ck").iterdir() if p.name.endswith(".tmp")]
    load(tmp_path / "ck")  # still whole


def test_the_metrics_log_is_read_and_trimmed_in_one_place(tmp_path):
    log = metrics.MetricsLog(tmp_path)
    for step in (10, 20, 30):
        log.write(TrainRecord(step=step, train_loss=1.0 / step))
    log.close()
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 40, "train_lo')  # the torn end of a killed writer
    assert [r.step for r in read_metrics(tmp_path)] == [10, 20, 30]
    metrics.MetricsLog(tmp_path, upto=20).close()
    assert [r.step for r in read_metrics(tmp_path)] == [10, 20]
    assert read_metrics(tmp_path / "nowhere") == []


def test_a_record_reads_back_as_it_was_written_and_odd_lines_are_left_out(tmp_path):
    train = TrainRecord(step=5, train_loss=2.5, train_bpc=3.6, train_nats_per_token=2.5,
                        lr=0.01, train_time=1.5, tokens=640, chars_per_s=900)
    val = ValRecord(step=5, val_loss=2.4, val_bpc=3.46, val_nats_per_token=2.4, train_time=1.5,
                    sample="ANNA:\nThe sea")
    log = metrics.MetricsLog(tmp_path)
    for r in (train, val, replace(val, step=6, sample=None)):
        log.write(r)
    log.close()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"step": 5, "train_loss": 2.5, "train_bpc": 3.6,
                                    "train_nats_per_token": 2.5, "lr": 0.01, "train_time": 1.5,
                                    "tokens": 640, "chars_per_s": 900}  # the format, unchanged
    assert "sample" not in json.loads(lines[2])
    with open(tmp_path / "metrics.jsonl", "a") as f:
        for odd in ('[1]', '{"step": "a", "train_loss": 1}', '{"train_loss": 2}',
                    '{"step": 7}', '{"step": 8, "val_loss": "low"}', '{"step": 9, "val_loss": 1,'
                    ' "sample": 3}', '{"step": 10, "val_loss": true}'):
            f.write(odd + "\n")
        f.write('{"step": 11, "val_loss": 1.5}\n')  # a hand-made one: the rest left unknown
    got = read_metrics(tmp_path)
    assert got[:3] == [train, val, replace(val, step=6, sample=None)]
    assert len(got) == 4 and got[3].step == 11 and got[3].val_loss == 1.5


def test_export_zip_holds_the_checkpoint_and_log_and_nothing_else(tmp_path):
    import zipfile
    from textrnn import ModelConfig, TrainConfig, export_zip, load, train
    corpus = tmp_path / "c.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    run = train(TrainConfig(corpus=str(corpus), out=str(tmp_path / "run"), max_steps=8,
                            evals=1, batch_size=4, seq_len=16,
                            model=ModelConfig(hidden=16, embed=8, layers=1)),
                reporter=Reporter())
    (run / "stray.tmp").write_text("x")
    path = export_zip(run, tmp_path / "m.zip", "mine")
    names = sorted(zipfile.ZipFile(path).namelist())
    assert names == ["mine/config.json", "mine/metrics.jsonl", "mine/model.safetensors",
                     "mine/tokenizer.json"]
    zipfile.ZipFile(path).extractall(tmp_path / "x")
    assert load(tmp_path / "x" / "mine").generate("the", 10, seed=1)
    with pytest.raises(ValueError):
        export_zip(tmp_path, tmp_path / "n.zip", "none")  # not a run
    assert not (tmp_path / "n.zip").exists()
