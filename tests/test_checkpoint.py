import json
import math
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from conftest import ROOT, make_model
from textrnn import (Reporter, TrainRecord, ValRecord, checkpoint, load, metrics,
                     read_metrics)
from textrnn.model import ModelConfig, param_shapes
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


# --- hostile or hand-edited files: one line each, never a traceback ---

def edit_config(folder, **changes):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    for key, value in changes.items():
        *parents, last = key.split(".")
        section = config
        for p in parents:
            section = section[p]
        section[last] = value
    path.write_text(json.dumps(config))


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json"])
def test_json_nested_a_thousand_deep_is_refused_in_one_line(tmp_path, tiny_text, name):
    save_tiny(tmp_path / "ck", tiny_text)
    (tmp_path / "ck" / name).write_text("[" * 1000 + "]" * 1000)
    with pytest.raises(ValueError, match=f"{name} is not a valid textrnn {name}: it is nested "
                                         "too deep"):
        load(tmp_path / "ck")


def test_a_config_nested_under_the_parsers_limit_is_refused_too(tmp_path, tiny_text):
    save_tiny(tmp_path / "ck", tiny_text)
    edit_config(tmp_path / "ck", **{"training.deep": json.loads("[" * 900 + "]" * 900)})
    with pytest.raises(ValueError, match="nested too deep"):
        checkpoint.read_config(tmp_path / "ck")


def test_an_oversized_json_file_is_refused_unread(tmp_path, tiny_text):
    save_tiny(tmp_path / "ck", tiny_text)
    with open(tmp_path / "ck" / "config.json", "a") as f:
        f.write(" " * checkpoint.MAX_JSON_BYTES["config.json"])
    with pytest.raises(ValueError, match="config.json is over 1 MiB"):
        checkpoint.read_config(tmp_path / "ck")


@pytest.mark.parametrize("field, value, said", [
    ("hidden", 16.0, "hidden is 16.0, not a whole number"),
    ("layers", "2", 'layers is "2", not a whole number'),
    ("tie_weights", 0, "tie_weights is 0, not a boolean"),
    ("dropout", None, "dropout is null, not a number"),
    ("cell", 1, "cell is 1, not a string"),
])
def test_model_config_fields_must_have_their_types(tmp_path, tiny_text, field, value, said):
    save_tiny(tmp_path / "ck", tiny_text)
    edit_config(tmp_path / "ck", **{f"model.{field}": value})
    with pytest.raises(ValueError, match=f"bad model section: {said}"):
        load(tmp_path / "ck")


def test_a_format_version_of_the_wrong_type_is_named(tmp_path, tiny_text):
    save_tiny(tmp_path / "ck", tiny_text)
    edit_config(tmp_path / "ck", format_version="1")
    with pytest.raises(ValueError, match='format_version "1", a string; this textrnn reads '
                                         "the whole number 1"):
        load(tmp_path / "ck")


def test_a_bpe_tokenizer_json_without_its_model_is_not_called_unknown(tmp_path, tiny_text):
    save_tiny(tmp_path / "ck", tiny_text)
    tok = tmp_path / "ck" / "tokenizer.json"
    tok.write_text(json.dumps({**json.loads(tok.read_text()), "kind": "bpe"}))
    with pytest.raises(ValueError, match="kind 'bpe' but holds no BPE model") as e:
        load(tmp_path / "ck")
    assert "unknown" not in str(e.value)


def test_the_weight_size_limit_refuses_in_one_line(tmp_path, tiny_text):
    save_tiny(tmp_path / "ck", tiny_text)
    with pytest.raises(ValueError, match=r"model.safetensors is 0.0 MB of weights; the limit "
                                         r"is 0.0 MB"):
        checkpoint.load(tmp_path / "ck", max_weight_bytes=1000)
    assert checkpoint.MAX_WEIGHT_BYTES == 4 * 2**30


# --- big weights: info reads the header alone; load holds the weights once ---

def sparse_checkpoint(folder, tiny_text, hidden):
    """A checkpoint whose model.safetensors declares an LSTM `hidden` wide (2 layers) and is
    sparse on disk: zeros (finite) that take no disk space. Returns the file's size."""
    save_tiny(folder, tiny_text)
    config = json.loads((folder / "config.json").read_text())
    config["model"].update(hidden=hidden, embed=64)
    (folder / "config.json").write_text(json.dumps(config))
    shapes = param_shapes(ModelConfig(**config["model"]))
    header, offset = {"__metadata__": {"format": "pt", "save_id": config["save_id"]}}, 0
    for name, shape in shapes.items():
        size = 4 * math.prod(shape)
        header[name] = {"dtype": "F32", "shape": list(shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    weights = folder / "model.safetensors"
    with open(weights, "wb") as f:
        f.write(len(head).to_bytes(8, "little") + head)
    os.truncate(weights, 8 + len(head) + offset)
    return 8 + len(head) + offset


MEASURE = """
import resource, sys, time
import textrnn
from textrnn import checkpoint
from textrnn.cli import main
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if sys.argv[1] == "info":
    assert main(["info", sys.argv[2]]) == 0
else:
    model, _, _ = checkpoint.load(sys.argv[2])
    assert model.num_params() > 0
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(grew * 1024, time.perf_counter() - start, file=sys.stderr)
"""


def peak_growth(what, folder):
    """How far a fresh process's peak RSS grows past its imports while doing `what`."""
    done = subprocess.run([sys.executable, "-c", MEASURE, what, str(folder)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    grew, seconds = done.stderr.split()[-2:]
    return int(grew), float(seconds)


def test_info_reads_the_header_of_a_huge_file_and_no_tensor(tmp_path, tiny_text):
    size = sparse_checkpoint(tmp_path / "ck", tiny_text, hidden=8192)  # 2.2 GB, sparse
    grew, seconds = peak_growth("info", tmp_path / "ck")
    assert size > 2e9 and grew < 50e6, (size, grew)
    assert seconds < 30  # (the tensors alone would take several times this to read and check)


def test_load_holds_the_weights_once(tmp_path, tiny_text):
    size = sparse_checkpoint(tmp_path / "ck", tiny_text, hidden=2048)  # 201 MB
    grew, _ = peak_growth("load", tmp_path / "ck")
    assert 150e6 < size < 250e6 and grew < 1.3 * size, (size, grew)


def test_resuming_a_shipped_checkpoint_does_not_say_a_save_was_cut_short(tmp_path, tiny_text):
    save_tiny(tmp_path / "ck", tiny_text)  # as a zip, the Hub or a Space ship it: no last/
    with pytest.raises(FileNotFoundError, match="is a finished checkpoint with no resume state "
                                                r"\(no last/\).*start a new run") as e:
        checkpoint.load_resume(tmp_path / "ck")
    assert "cut short" not in str(e.value)
    (tmp_path / "ck" / checkpoint.LAST_NEW).mkdir()  # a first save of last/ that was cut
    with pytest.raises(FileNotFoundError, match="its first save was cut short"):
        checkpoint.load_resume(tmp_path / "ck")
