"""Token files: a corpus read in blocks gives the ids the whole text gives, is cached by its
content and settings, and is read by training through a memmap with bounded memory."""

import contextlib
import errno
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, TINY, make_model
from textrnn import Reporter, TrainConfig, corpus, train
from textrnn.data import read_corpus, split
from textrnn.evaluate import evaluate_ids
from textrnn.tokenizer import build

TEXT = ("\ufeff" + TINY.replace("\n", "\r\n") + "naïve café 日本語 🙂\r\n" * 30
        + "Ünïcödé ëvërÿwhërë\r\n" * 20)


def small_blocks(monkeypatch, n: int) -> None:
    """Files read `n` bytes at a time (data.BLOCK), and BPE's carry sized to match."""
    monkeypatch.setattr("textrnn.data.BLOCK", n)
    monkeypatch.setattr(corpus, "BLOCK", n)


def _folder(cfg) -> str:
    return corpus.prepare(cfg, log=lambda m: None).cache.name


def prepared(tmp_path, kind, text=TEXT, **kw):
    path = tmp_path / "c.txt"
    if not path.exists():
        path.write_bytes(text.encode("utf-8"))
    cfg = TrainConfig(corpus=str(path), tokenizer=kind, data_cache=str(tmp_path / "cache"),
                      vocab_size=300 if kind == "bpe" else None, **kw)
    return cfg, corpus.prepare(cfg, log=lambda m: None)


@pytest.mark.parametrize("kind", ["char", "byte", "bpe"])
def test_blocks_give_the_ids_of_the_whole_text(tmp_path, kind, monkeypatch):
    small_blocks(monkeypatch, 97)  # blocks end inside characters and inside "\r\n"
    cfg, c = prepared(tmp_path, kind)
    text = read_corpus(cfg.corpus)
    train_text, val_text = split(text, 0.1)
    tok = build(kind, train_text, cfg.vocab_size, log=lambda m: None)
    assert c.tokenizer.to_json() == tok.to_json()
    assert np.array_equal(c.train_ids, tok.encode(train_text).numpy())
    assert np.array_equal(c.val_ids, tok.encode(val_text).numpy())
    assert c.chars == len(text) and c.val_text_chars == len(val_text)
    assert c.train_ids.dtype == (np.uint16 if kind == "bpe" else np.uint8)
    assert c.tokenizer.decode(c.train_ids.tolist()) + c.tokenizer.decode(
        c.val_ids.tolist()) == text


def test_a_folder_reads_as_read_corpus_reads_it(tmp_path, monkeypatch):
    small_blocks(monkeypatch, 50)
    folder = tmp_path / "books"
    (folder / "b").mkdir(parents=True)
    (folder / "a.txt").write_text("first file, no newline at its end")
    (folder / "b" / "c.txt").write_text("second\r\nfile\n")
    (folder / "skip.md").write_text("not a .txt file")
    cfg = TrainConfig(corpus=str(folder), data_cache=str(tmp_path / "cache"), val_fraction=0.2)
    c = corpus.prepare(cfg, log=lambda m: None)
    text = read_corpus(folder)
    assert c.tokenizer.decode(c.train_ids.tolist() + c.val_ids.tolist()) == text


def test_the_cache_serves_a_second_run_and_a_changed_corpus_makes_new_files(tmp_path,
                                                                          monkeypatch):
    cfg, first = prepared(tmp_path, "char")
    monkeypatch.setattr(corpus, "read_blocks", lambda *a: pytest.fail("read again"))
    again = corpus.prepare(cfg, log=lambda m: None)
    assert again.cache == first.cache and np.array_equal(again.train_ids, first.train_ids)
    monkeypatch.undo()
    other = corpus.prepare(TrainConfig(**{**cfg.__dict__, "val_fraction": 0.2}),
                           log=lambda m: None)
    assert other.cache != first.cache  # another split, other files
    with open(cfg.corpus, "a", encoding="utf-8") as f:
        f.write("one more line\n")
    changed = corpus.prepare(cfg, log=lambda m: None)
    assert changed.cache not in (first.cache, other.cache) and changed.chars == first.chars + 14
    assert sorted(p.name for p in changed.cache.iterdir()) == [
        "meta.json", "tokenizer.json", "train.bin", "val.bin"]
    assert not [p for p in changed.cache.parent.iterdir() if p.name.startswith(".")]
    expected = np.array(changed.train_ids)
    del changed
    with open(other.cache.parent / _folder(cfg) / "train.bin", "r+b") as f:
        f.truncate(10)  # a damaged cache is made again, not read
    assert np.array_equal(corpus.prepare(cfg, log=lambda m: None).train_ids, expected)


def test_the_validation_split_is_capped_for_a_big_corpus(tmp_path):
    cfg, c = prepared(tmp_path, "char", max_val_chars=100)
    assert c.val_text_chars == 100 and c.chars - 100 == len(c.train_ids)


def test_bpe_learns_from_a_bounded_sample_of_a_big_corpus(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "BPE_SAMPLE", 64 * 20)  # 64 stretches of 20 characters
    said = []
    cfg = TrainConfig(corpus=str(tmp_path / "c.txt"), tokenizer="bpe", vocab_size=280,
                      data_cache=str(tmp_path / "cache"))
    (tmp_path / "c.txt").write_text(TEXT, encoding="utf-8")
    c = corpus.prepare(cfg, log=said.append)
    assert any("BPE learns its merges from 1,280 of the" in m for m in said)
    text = read_corpus(cfg.corpus)
    assert c.tokenizer.decode(c.train_ids.tolist() + c.val_ids.tolist()) == text


def test_training_resumes_on_the_cached_token_files(tmp_path, corpus_file):
    cache = tmp_path / "cache"
    cfg = dict(corpus=str(corpus_file), seq_len=16, batch_size=4, lr=1e-2, evals=2,
               precision="fp32", data_cache=str(cache),
               model=dict(hidden=16, embed=8, layers=1, dropout=0.0))
    run = train(TrainConfig(out=str(tmp_path / "r"), max_steps=10, **cfg), reporter=Reporter())
    folders = sorted(cache.iterdir())
    train(TrainConfig(out=str(run), resume=str(run), max_steps=20, **cfg), reporter=Reporter())
    assert sorted(cache.iterdir()) == folders and len(folders) == 1  # served, not made again


LINE = "".join(chr(97 + i % 26) for i in range(99)) + "\n"


def _big(path, mb: int):
    """A file of `mb` MB of LINE, and its size in characters."""
    lines = mb * 2**20 // len(LINE)
    with open(path, "w") as f:
        for _ in range(lines):
            f.write(LINE)
    return path, lines * len(LINE)


def _peak(code: str, *args) -> tuple[int, float]:
    """Run `code`, which prints a figure, its own peak RSS before the step measured and after;
    -> (the figure, MB the step added to the peak)."""
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                         text=True, check=True).stdout.split()
    n, base, peak = map(int, out)
    return n, (peak - base) / 1024


def test_preparing_holds_no_corpus_sized_object(tmp_path):
    big, _ = _big(tmp_path / "big.txt", 64)
    code = ("import resource, sys, textrnn\n"
            "from textrnn import corpus\n"
            "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "c = corpus.prepare(textrnn.TrainConfig(corpus=sys.argv[1], tokenizer='byte', "
            "data_cache=sys.argv[2]), log=lambda m: None)\n"
            "print(len(c.train_ids), base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    n, mb = _peak(code, big, tmp_path / "cache")
    assert n > 59 * 2**20  # all but the 4 Mi characters of validation
    assert mb < 120, f"{mb:.0f} MB for a 64 MB corpus"


def test_a_batched_validation_pass_scores_every_prediction_once():
    torch.manual_seed(0)
    model = make_model(vocab=30, layers=1).eval()
    with torch.no_grad():
        model.rnn.weight_hh_l0.zero_()  # no memory: slices can read exactly what one stream reads
    ids = torch.randint(1, 30, (5000,))
    one, n = evaluate_ids(model, ids)
    for streams, warmup in [(4, 0), (7, 16), (16, 100)]:
        many, m = evaluate_ids(model, ids.numpy().astype(np.uint8), chunk=333, streams=streams,
                               warmup=warmup)
        assert m == n == 4999 and many == pytest.approx(one, rel=1e-5)
    model = make_model(vocab=30).eval()  # with memory, close: slices warm up first
    one, _ = evaluate_ids(model, ids)
    many = evaluate_ids(model, ids, streams=8, warmup=64)[0]
    assert many == pytest.approx(one, rel=2e-3)
    for m in (2, 3, 8, 11):  # the shares of m processes add up to the whole pass
        parts = [evaluate_ids(model, ids, streams=8, warmup=64, part=(k, m)) for k in range(m)]
        assert sum(p[0] for p in parts) == pytest.approx(many, rel=1e-6)
        assert all(p[1] == 4999 for p in parts)
    short = ids[:100]  # one stream: process 0 reads it all
    assert evaluate_ids(model, short, streams=8, part=(1, 2)) == (0.0, 99)
    assert evaluate_ids(model, short, streams=8, part=(0, 2)) == evaluate_ids(model, short)


def test_meta_records_what_a_run_reports(tmp_path):
    _, c = prepared(tmp_path, "bpe")
    meta = json.loads((c.cache / "meta.json").read_text())
    assert meta["train_tokens"] == len(c.train_ids) and meta["val_tokens"] == len(c.val_ids)
    assert 1 < meta["chars_per_token"] < 5 and meta["dtype"] == "uint16"


def test_bpe_blocks_cut_only_where_the_whole_text_would(tmp_path, monkeypatch):
    small_blocks(monkeypatch, 97)
    text = ("a line\n\nafter a blank line \nafter trailing spaces  \n\n\n  indented\n" * 40
            + "no newline for a long while " * 40 + "\n" + TINY)
    cfg, c = prepared(tmp_path, "bpe", text=text)
    train_text, val_text = split(read_corpus(cfg.corpus), 0.1)
    hf = c.tokenizer.hf  # the whole text in one call: no cuts at all
    assert c.train_ids.tolist() == hf.encode(train_text, add_special_tokens=False).ids
    assert c.val_ids.tolist() == hf.encode(val_text, add_special_tokens=False).ids


def test_mistakes_in_a_prepared_corpus_are_one_clear_line(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(TINY)
    with pytest.raises(ValueError, match="--vocab-size applies to --tokenizer bpe"):
        corpus.prepare(TrainConfig(corpus=str(path), vocab_size=500,
                                   data_cache=str(tmp_path / "cache")), log=lambda m: None)
    blank = tmp_path / "blank.txt"
    blank.write_text("  \n\n ")
    with pytest.raises(ValueError, match="holds only whitespace"):
        corpus.prepare(TrainConfig(corpus=str(path), val_file=str(blank),
                                   data_cache=str(tmp_path / "cache")), log=lambda m: None)
    cfg = TrainConfig(corpus=str(path), data_cache=str(tmp_path / "cache"))
    made = corpus.prepare(cfg, log=lambda m: None)
    (made.cache / "tokenizer.json").write_text("{ not json")  # damaged: made again
    assert corpus.prepare(cfg, log=lambda m: None).tokenizer.to_json() == made.tokenizer.to_json()


def test_a_resumed_run_validates_on_as_many_tokens_as_it_started_with():
    from textrnn import ModelConfig
    from textrnn.config import resumed
    from textrnn.plan import resolve
    model = ModelConfig(vocab_size=30, hidden=16, layers=1, dropout=0.0)
    cfg = TrainConfig(time_budget=60, val_streams=16, precision="fp32", device="cpu",
                      resume="run")
    saved = {"seq_len": 16, "batch_size": 4, "lr": 0.01, "val_tokens": 300_000}
    r = resolve(resumed(cfg, saved, model), 10**6, 30, resume=saved, n_val=10**6)
    assert r.val_tokens == 300_000 and r.val_streams == 16


@pytest.mark.parametrize("rate, budget, expect", [
    (50_000, 600, 262_144),    # 6% of 600 s over 5 passes buys 360k tokens: 256k, a power of 2
    (50_000, 60, 65_536),      # 36k would do: the floor, 64k, and the note says what it costs
    (10**7, 600, 10**6)])      # more than there is: all of it
def test_a_time_budget_validates_on_a_share_of_it(monkeypatch, rate, budget, expect):
    from textrnn import ModelConfig, plan
    monkeypatch.setattr(plan, "eval_speed", lambda *a: rate)
    cfg = TrainConfig(time_budget=budget, precision="fp32", device="cpu", lr=0.01,
                      batch_size=4, seq_len=16,
                      model=ModelConfig(hidden=16, layers=1, dropout=0.0))
    r = plan.resolve(cfg, 10**6, 30, n_val=10**6)
    assert r.val_streams == 16 and r.val_tokens == expect
    share = f"{cfg.evals * expect / rate / budget:.0%} of the budget"
    assert any(share in note for note in r.notes) or expect == 10**6


def test_eval_speed_times_a_real_pass():
    from textrnn import ModelConfig
    from textrnn.evaluate import eval_speed
    mc = ModelConfig(vocab_size=30, hidden=16, layers=1, dropout=0.0, embed=8)
    speed = eval_speed(mc, 4, torch.device("cpu"), "fp32")
    assert np.isfinite(speed) and speed > 0


def _lm(kind: str, text: str = TEXT):
    from textrnn.lm import LM
    tok = build(kind, text, 300 if kind == "bpe" else None, log=lambda m: None)
    return LM(make_model(vocab=tok.vocab_size, hidden=16), tok)


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_evaluating_a_file_reads_it_in_blocks_and_scores_what_evaluate_scores(
        tmp_path, kind, monkeypatch):
    small_blocks(monkeypatch, 97)
    path = tmp_path / "c.txt"
    path.write_bytes(TEXT.encode("utf-8"))
    lm = _lm(kind)
    whole = lm.evaluate(read_corpus(path))
    assert lm.evaluate_file(path, streams=1) == whole
    many = lm.evaluate_file(path, streams=4)
    assert many["streams"] == 4 and many["tokens"] == whole["tokens"]
    assert many["loss"] == pytest.approx(whole["loss"], rel=0.02)
    heard = []
    lm.evaluate_file(path, progress=lambda *a: heard.append(a))
    assert heard[-1][0] == "evaluating" and heard[-1][1] == heard[-1][2] == whole["tokens"]
    assert {what for what, *_ in heard} == {"encoding", "evaluating"}


def test_evaluating_a_folder_is_evaluating_its_text(tmp_path):
    folder = tmp_path / "books"
    folder.mkdir()
    (folder / "a.txt").write_text(TINY[:500])
    (folder / "b.txt").write_text(TINY[500:1200])
    lm = _lm("char", TINY)
    assert lm.evaluate_file(folder) == lm.evaluate(read_corpus(folder))


def test_evaluating_a_file_leaves_no_token_file_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTRNN_CACHE", str(tmp_path / "cache"))
    small_blocks(monkeypatch, 97)
    lm = _lm("char")
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text(TEXT)
    bad.write_bytes(TEXT.encode("utf-8") + b"\xff" + TEXT.encode("utf-8"))  # not UTF-8, late
    lm.evaluate_file(good)
    with pytest.raises(ValueError, match="not valid utf-8"):
        lm.evaluate_file(bad)
    for wrong, message in [(tmp_path / "empty.txt", "is empty"), (good, "at least 1")]:
        wrong.touch()
        with pytest.raises(ValueError, match=message):
            lm.evaluate_file(wrong, streams=0 if wrong == good else None)
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


@pytest.mark.slow
def test_evaluating_a_big_file_holds_no_file_sized_object(tmp_path):
    big, chars = _big(tmp_path / "big.txt", 24)
    code = ("import resource, sys, torch, textrnn\n"
            "from textrnn import CharTokenizer, ModelConfig, RNNLM\n"
            "from textrnn.lm import LM\n"
            "torch.manual_seed(0)\n"
            "tok = CharTokenizer.train('abcdefghijklmnopqrstuvwxyz\\n')\n"
            "lm = LM(RNNLM(ModelConfig(vocab_size=tok.vocab_size, hidden=8, layers=1, "
            "embed=4, dropout=0.0)), tok)\n"
            "lm.evaluate_file(sys.argv[1], streams=1)  # warm: the libraries' own memory\n"
            "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "r = lm.evaluate_file(sys.argv[2], streams=64)\n"
            "print(r['tokens'], base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    small = tmp_path / "small.txt"
    small.write_text(LINE * 100)
    n, mb = _peak(code, small, big)
    assert n == chars - 1
    # the token file's 24 MB of mapped pages count here; the whole text would be 24 MB as a
    # str, and 96 MB more as code points, before its ids
    assert mb < 100, f"{mb:.0f} MB for a 24 MB file"


# --- a full disk, and the leftovers of a preparation that was killed ---

def full_disk(monkeypatch):
    """os.write raises ENOSPC for token files (*.bin), as a full disk would: fault injection at
    the one low-level call, the rest of the code path as it runs."""
    real = os.write

    def write(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".bin"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)
    monkeypatch.setattr(os, "write", write)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux's /proc")
def test_a_full_disk_while_preparing_or_evaluating_names_the_file(tmp_path, monkeypatch,
                                                                   corpus_file):
    from textrnn.cli import main
    cache = tmp_path / "cache"
    full_disk(monkeypatch)
    for argv in (["train", str(corpus_file), "--out", str(tmp_path / "r"), "--data-cache",
                  str(cache)], ["eval", str(ROOT / "checkpoints" / "shakespeare-char-lstm"),
                                str(corpus_file), "--no-progress"]):
        with contextlib.redirect_stderr(io.StringIO()) as err:
            assert main(argv) == 1
        said = err.getvalue()
        assert said.startswith("textrnn: error: no space left on the device while writing /")
        assert ".bin; free some" in said and "Errno" not in said and said.count("\n") == 1
    assert not list(cache.iterdir())  # the half-written token files are gone


def test_a_killed_preparations_folder_goes_once_its_owner_is_dead(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    root = tmp_path / "corpora"
    live = corpus.scratch(root, "abc")  # ours: this process is alive
    orphan = root / live.name.replace(f"~{os.getpid()}~", f"~{dead.pid}~")
    orphan.mkdir()
    (orphan / "train.bin").write_bytes(b"\0" * 1000)
    cfg = TrainConfig(corpus=str(tmp_path / "c.txt"), data_cache=str(root))
    (tmp_path / "c.txt").write_text(TINY)
    corpus.prepare(cfg, log=lambda m: None)
    assert live.is_dir() and not orphan.exists()
