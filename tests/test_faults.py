"""Faults: a kill in the middle of a save, a full disk, a failed start, broken and hostile
checkpoints. Nothing is lost, nothing is mixed, and the person gets one clear line."""

import errno
import hashlib
import json
import math
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import make_model
from textrnn import (ModelConfig, TrainConfig, TrainRecord, checkpoint, load, read_metrics,
                     train)
from support import Silent
from textrnn.cli import main
from textrnn.tokenizer import CharTokenizer


class Killed(BaseException):
    """Stands for a kill -9: nothing in the library catches it."""


def config(corpus, out, **kw):
    base = dict(corpus=str(corpus), out=str(out), seq_len=16, batch_size=4, lr=1e-2, evals=3,
                max_steps=30, precision="fp32", seed=3,
                model=ModelConfig(hidden=16, embed=8, layers=1, dropout=0.0))
    return TrainConfig(**{**base, **kw})



def sha(folder):
    weights = load_file(folder / "model.safetensors")
    return hashlib.sha256(b"".join(weights[k].numpy().tobytes() for k in sorted(weights))
                          ).hexdigest()


class Saves:
    """Counts each file a checkpoint save puts in place, and each folder rename; raises Killed
    right after the `kill_at`-th."""

    def __init__(self, monkeypatch, kill_at=None):
        self.n, self.kill_at, self.saved = 0, kill_at, {}
        write, rename, save = checkpoint._atomic_write, checkpoint.os.rename, checkpoint.save

        def counted(fn):
            def wrapper(*a, **kw):
                out = fn(*a, **kw)
                self.n += 1
                if self.n == self.kill_at:
                    raise Killed
                return out
            return wrapper

        def save_and_note(path, model, tokenizer, training, save_id=None):
            out = save(path, model, tokenizer, training, save_id)
            self.saved[training["steps"]] = sha(out)  # what each step's weights hash to
            return out

        monkeypatch.setattr(checkpoint, "_atomic_write", counted(write))
        monkeypatch.setattr(checkpoint.os, "rename", counted(rename))
        monkeypatch.setattr(checkpoint, "save", save_and_note)


@pytest.mark.slow
def test_a_kill_at_any_point_of_a_save_leaves_no_mix_and_resume_ends_the_same(
        corpus_file, tmp_path, monkeypatch):
    ref, marks = Saves(monkeypatch), []

    def mark(step):
        if step in (11, 21):  # the validations at steps 10 and 20 have saved
            marks.append(ref.n)
    whole = train(config(corpus_file, tmp_path / "whole"), Silent(mark))
    monkeypatch.undo()
    final, by_step = sha(whole / "last"), dict(ref.saved)
    # the saves at steps 10 and 20: the best checkpoint at the top, then last/ as a unit
    first, second = marks
    assert second - first >= 10  # 3 files at the top, 5 in last/, 2 renames
    for kill_at in range(1, second + 1):
        run = tmp_path / f"k{kill_at}"
        Saves(monkeypatch, kill_at)
        with pytest.raises(Killed):
            train(config(corpus_file, run), Silent())
        monkeypatch.undo()
        for folder in (run, checkpoint.last_dir(run)):  # consistent, or refused in one line
            if not checkpoint.is_checkpoint(folder):
                continue
            try:
                model, _, cfg = checkpoint.load(folder)
            except ValueError as e:
                assert folder == run and "parts of two saves" in str(e), e
                continue
            assert sha(folder) == by_step[cfg["training"]["steps"]], (kill_at, folder)
        if checkpoint.last_dir(run) != run:  # resume state: carry on to the same end
            again = train(config(corpus_file, run, resume=str(run)), Silent())
        elif checkpoint.holds_run(run):  # only a best checkpoint: its first save was cut
            with pytest.raises(FileNotFoundError, match="--overwrite"):
                train(config(corpus_file, run, resume=str(run)), Silent())
            again = train(config(corpus_file, run, overwrite=True), Silent())
        else:  # nothing worth keeping: a plain rerun is not blocked
            again = train(config(corpus_file, run), Silent())
        assert sha(again / "last") == final, kill_at
        assert not any(p.name.startswith(".") for p in run.iterdir()), list(run.iterdir())


def test_a_mixed_checkpoint_is_refused_in_one_line(corpus_file, tmp_path, capsys):
    run = train(config(corpus_file, tmp_path / "r", max_steps=20, evals=2), Silent())
    shutil.copy(run / "last" / "model.safetensors", run / "model.safetensors")  # a newer step
    with pytest.raises(ValueError, match="parts of two saves"):
        load(run)
    assert main(["sample", str(run), "--length", "5"]) == 1
    assert "parts of two saves" in capsys.readouterr().err
    shutil.copy(run / "model.safetensors", run / "last" / "resume.json")  # not even JSON
    assert main(["train", str(corpus_file), "--resume", str(run)]) == 1


def test_a_failed_start_leaves_nothing_that_blocks_a_rerun(corpus_file, tmp_path, capsys):
    out = tmp_path / "r"
    argv = ["train", str(corpus_file), "--out", str(out), "--max-steps", "5", "--hidden", "8",
            "--no-progress", "--precision", "fp32"]
    assert main([*argv, "--lr", "1e30", "--evals", "1"]) == 1  # NaN before the first save
    assert "loss became" in capsys.readouterr().err
    assert not out.exists()
    out.mkdir()  # a kill -9 before the first save leaves a log and half a save behind
    (out / "metrics.jsonl").write_text('{"step": 1, "train_loss": 3.1}\n{"step": 2, "tr')
    (out / ".model.safetensors.x1.tmp").write_bytes(b"half")
    assert main(argv) == 0
    assert checkpoint.holds_run(out) and not list(out.glob(".*.tmp"))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert main([*argv[:2], "--out", str(tmp_path / "mine"), *argv[4:]]) == 1
    assert "not a textrnn run" in capsys.readouterr().err


def test_a_torn_metrics_line_does_not_block_resume(corpus_file, tmp_path):
    run = train(config(corpus_file, tmp_path / "r", max_steps=10, evals=1), Silent())
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 11, "train_lo')
    train(config(corpus_file, run, max_steps=20, resume=str(run)), Silent())
    steps = [r.step for r in read_metrics(run) if isinstance(r, TrainRecord)]
    assert steps == sorted(set(steps)) and steps[-1] == 20


def test_a_full_disk_is_one_line_and_keeps_the_previous_checkpoint(corpus_file, tmp_path,
                                                                  monkeypatch, capsys):
    run = train(config(corpus_file, tmp_path / "r", max_steps=10, evals=1), Silent())
    before = sha(run)

    def full(tensors, filename, metadata=None):
        from safetensors import SafetensorError
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: "
                              "StorageFull, message: \"No space left on device\" })")

    monkeypatch.setattr(checkpoint, "save_file", full)
    code = main(["train", str(corpus_file), "--resume", str(run), "--max-steps", "20",
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "no space left on the device while writing" in err
    assert "Traceback" not in err and sha(run) == before
    monkeypatch.undo()

    def full_text(self, *a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.Path, "write_text", full_text)
    with pytest.raises(OSError, match="no space left on the device while writing .*other"):
        lm = load(run)
        checkpoint.save(tmp_path / "other", lm.model, lm.tokenizer, {"steps": 0})


# --- broken and hostile checkpoints ---

def tiny_checkpoint(path, tiny_text):
    tok = CharTokenizer.train(tiny_text)
    checkpoint.save(path, make_model(vocab=tok.vocab_size), tok, {"steps": 0})
    return path


def edit_config(path, fn):
    cfg = json.loads((path / "config.json").read_text())
    fn(cfg)
    (path / "config.json").write_text(json.dumps(cfg))


def test_sizes_are_checked_against_the_weights_before_anything_is_built(tmp_path, tiny_text):
    ck = tiny_checkpoint(tmp_path / "ck", tiny_text)
    edit_config(ck, lambda c: c["model"].update(hidden=60000))  # 29e9 weights, if built
    with pytest.raises(ValueError, match=r"rnn.weight_ih_l0 is \(64, 8\) there, and "
                                         r"\(240000, 8\) by config.json"):
        load(ck)


def test_nan_weights_and_duplicate_characters_are_refused(tmp_path, tiny_text):
    ck = tiny_checkpoint(tmp_path / "ck", tiny_text)
    weights = load_file(ck / "model.safetensors")
    weights["head.bias"][3] = math.nan
    save_file(weights, ck / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="NaN or infinite values .*head.bias"):
        load(ck)
    ck = tiny_checkpoint(tmp_path / "ck2", tiny_text)
    tok = json.loads((ck / "tokenizer.json").read_text())
    tok["chars"] = tok["chars"][:-1] + tok["chars"][0]
    (ck / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(ValueError, match="duplicate"):
        load(ck)


def test_a_long_prompt_primes_in_chunks_with_flat_memory():
    from textrnn import sample
    model = make_model(vocab=30).eval()
    lengths = []
    model.rnn.register_forward_hook(lambda m, inp, out: lengths.append(inp[0].size(1)))
    ids = torch.randint(1, 30, (3 * sample.PRIME_CHUNK + 5,))
    chunked = sample.Generation(model, ids, sample.Settings(0.0), fast=False)
    assert lengths[:4] == [sample.PRIME_CHUNK] * 3 + [5]
    logits, _, state = model(ids[None].long())  # the same state as one pass over the prompt
    torch.testing.assert_close(chunked.logits, logits[:, -1], rtol=1e-4, atol=1e-5)
    assert torch.equal(sample.Generation(model, ids, sample.Settings(0.0)).take(20),
                       chunked.take(20))


@pytest.mark.parametrize("t", [math.inf, -math.inf, math.nan])
def test_a_temperature_that_is_not_a_finite_number_is_refused(t):
    from textrnn import Settings
    with pytest.raises(ValueError, match="temperature"):
        Settings(t)


@pytest.mark.parametrize("argv, message", [
    (["sample", "{ck}", "--device", "banana"], "unknown device 'banana'"),
    (["eval", "{ck}", "{corpus}", "--device", "banana"], "unknown device 'banana'"),
    (["train", "{corpus}", "--hidden", "1000000", "--max-steps", "1"], "hidden must be at most"),
    (["train", "{corpus}", "--hidden", "60000", "--layers", "3", "--max-steps", "1"],
     "needs about"),
    (["train", "{corpus}", "--hidden", "60000", "--layers", "3", "--time-budget", "5"],
     "needs about"),  # refused before the timing of the budget builds it
    (["train", "{corpus}", "--layers", "100000"], "layers must be at most 64"),
    (["train", "{corpus}", "--seq-len", "1000000000"], "seq-len must be between 1 and 10,000"),
    (["train", "{utf16}", "--max-steps", "1"], "--encoding utf-16"),
    (["train", "{utf16le}", "--max-steps", "1"], "--encoding utf-16"),  # no byte order mark
    (["train", "{program}", "--max-steps", "1"], "looks like a binary file"),  # NULs everywhere
])
def test_absurd_settings_get_one_line_with_advice(argv, message, tmp_path, corpus_file, tiny_text,
                                                  capsys):
    ck = tiny_checkpoint(tmp_path / "ck", tiny_text)
    utf16 = tmp_path / "u16.txt"
    utf16.write_text(tiny_text, encoding="utf-16")
    (tmp_path / "u16le.txt").write_text(tiny_text, encoding="utf-16-le")
    (tmp_path / "program").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(
        [0, 0, 0, 0, 0x40, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0x38, 0, 7, 0, 0, 0, 0, 0, 0, 0xe8]) * 500)
    argv = [a.format(ck=ck, corpus=corpus_file, utf16=utf16, utf16le=tmp_path / "u16le.txt",
                     program=tmp_path / "program") for a in argv]
    assert main([*argv, "--out", str(tmp_path / "r")] if argv[0] == "train" else argv) == 1
    err = capsys.readouterr().err  # (a corpus read for the first time says where it cached it)
    lines = [line for line in err.strip().splitlines() if not line.startswith("token files:")]
    assert message in err and "Traceback" not in err and len(lines) == 1, err
    assert not (tmp_path / "r").exists()


def test_a_lone_surrogate_in_a_prompt_is_a_replacement_character(tmp_path):
    from textrnn.tokenizer import BPETokenizer, ByteTokenizer
    text = "a prompt \ud800 with half a pair"
    byte = ByteTokenizer()
    assert byte.decode(byte.encode(text)) == text.replace("\ud800", "\ufffd")
    bpe = BPETokenizer.train("some text to learn merges from, over and over. " * 20, 300)
    assert bpe.decode(bpe.encode(text)) == text.replace("\ud800", "\ufffd")


def test_the_kernel_running_out_of_memory_is_one_line(tmp_path, tiny_text, monkeypatch, capsys):
    from textrnn import fast

    def no_memory(*a):
        raise MemoryError("the generation kernel could not allocate its scratch memory")

    monkeypatch.setattr(fast.Stepper, "run", no_memory)
    ck = tiny_checkpoint(tmp_path / "ck", tiny_text)
    assert main(["sample", str(ck), "--length", "50", "--seed", "1"]) == 1
    err = capsys.readouterr().err
    assert "out of memory (the generation kernel could not allocate" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
